/**
 * Reading a compiled machine's state value (`snapshot.value`): where each node
 * of a run stands. The state value is the one truth about a run's position;
 * status, active nodes and "what happens next" are all read from it here.
 */
import type { BranchEnd, NodePhase } from './compilePlaybook.js';
import type { PlaybookModel } from './playbookModel.js';

/** One node state that is active, and its phase. */
export interface ActiveNode {
  nodeId: string;
  phase: NodePhase;
}

type Value = unknown;
const isObject = (value: Value): value is Record<string, Value> => typeof value === 'object' && value !== null;

/** The keys from the root to a node's state: `active`, then `<group>.running.<branch>.nodes` per enclosing branch. */
export function statePathOf(model: PlaybookModel, nodeId: string): string[] {
  const path = ['active'];
  for (const branchId of model.branchChain.get(nodeId) ?? []) {
    path.push(model.branches.get(branchId)?.groupId as string, 'running', branchId, 'nodes');
  }
  path.push(nodeId);
  return path;
}

function at(value: Value, path: readonly string[]): Value {
  let current = value;
  for (const key of path) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/**
 * The regions of a parallel group while its branches run: branch id -> the
 * region's end (`succeeded`, `failed`, `stopped`) or its nodes' state. Undefined
 * when the group is not running. Pure.
 */
export function groupRegions(model: PlaybookModel, value: Value, groupId: string): Record<string, BranchEnd | Record<string, Value>> | undefined {
  const state = at(value, statePathOf(model, groupId));
  return isObject(state) && isObject(state.running) ? (state.running as Record<string, BranchEnd | Record<string, Value>>) : undefined;
}

/**
 * Every active node, in the order a reader expects: depth first through the
 * graph, branches in declaration order. A running group is listed with phase
 * `running`, followed by its branches' active nodes. Pure.
 */
export function activeNodes(model: PlaybookModel, value: Value): ActiveNode[] {
  const out: ActiveNode[] = [];
  const visitGraph = (states: Value): void => {
    if (!isObject(states)) return;
    for (const [nodeId, phase] of Object.entries(states)) {
      if (typeof phase === 'string') {
        out.push({ nodeId, phase: phase as NodePhase });
      } else if (isObject(phase) && isObject(phase.running)) {
        out.push({ nodeId, phase: 'running' });
        const group = model.nodes.get(nodeId);
        if (group?.type !== 'parallel') continue;
        for (const branch of group.branches) {
          const region = phase.running[branch.id];
          if (isObject(region)) visitGraph(region.nodes);
        }
      }
    }
  };
  if (isObject(value)) visitGraph(value.active);
  return out;
}

/**
 * Visits every node state inside a running group's regions, nested groups'
 * included: `state` is a phase string, or a nested group's state object. Pure.
 */
function forEachInGroup(model: PlaybookModel, value: Value, groupId: string, visit: (nodeId: string, state: Value) => void): void {
  const visitRegions = (regions: Record<string, Value>): void => {
    for (const region of Object.values(regions)) {
      if (!isObject(region) || !isObject(region.nodes)) continue;
      for (const [nodeId, state] of Object.entries(region.nodes)) {
        visit(nodeId, state);
        if (isObject(state) && isObject(state.running)) visitRegions(state.running);
      }
    }
  };
  const regions = groupRegions(model, value, groupId);
  if (regions !== undefined) visitRegions(regions);
}

/** How many nodes inside a running group (nested groups included) are in `phase`; groups themselves are not counted. Pure. */
export function busyLeaves(model: PlaybookModel, value: Value, groupId: string, phase: 'running' | 'paused'): number {
  let count = 0;
  forEachInGroup(model, value, groupId, (_nodeId, state) => {
    if (state === phase) count += 1;
  });
  return count;
}

/** How many parallel groups nested inside a running group are themselves running. Pure. */
export function runningGroups(model: PlaybookModel, value: Value, groupId: string): number {
  let count = 0;
  forEachInGroup(model, value, groupId, (_nodeId, state) => {
    if (isObject(state) && isObject(state.running)) count += 1;
  });
  return count;
}

/**
 * Whether a `fail_fast` group enclosing the node has a failed branch: then the
 * node's in-flight attempt is aborted, its gate cancelled, and nothing in it
 * starts (SPEC §9). The one rule the compiler's guards and `nextSteps` read. Pure.
 */
export function stoppedByFailFast(model: PlaybookModel, value: Value, nodeId: string): boolean {
  for (const branchId of model.branchChain.get(nodeId) ?? []) {
    const groupId = model.branches.get(branchId)?.groupId as string;
    const group = model.nodes.get(groupId);
    if (group?.type !== 'parallel' || group.failure !== 'fail_fast') continue;
    const regions = groupRegions(model, value, groupId);
    if (regions !== undefined && group.branches.some((branch) => regions[branch.id] === 'failed')) return true;
  }
  return false;
}

/**
 * Nothing inside a running group is in flight, waiting at a gate, or a nested
 * group still running: what a `fail_fast` group (or a group a failing ancestor
 * stops) waits for before it may end. Pure.
 */
export function isGroupSettled(model: PlaybookModel, value: Value, groupId: string): boolean {
  return busyLeaves(model, value, groupId, 'running') === 0 && busyLeaves(model, value, groupId, 'paused') === 0 && runningGroups(model, value, groupId) === 0;
}
