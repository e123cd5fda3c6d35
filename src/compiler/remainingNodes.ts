/**
 * Which nodes a run can still run from where its fold stands (SPEC §7: a part
 * of a run with no agentic node left needs no agent). Read from the machine's
 * state value and the model alone.
 */
import type { RunSnapshot } from './foldRun.js';
import { enclosingGroups } from './playbookModel.js';
import type { PlaybookModel } from './playbookModel.js';
import { redriveNodeOf } from './runState.js';
import { activeNodes } from './stateValue.js';

/**
 * The nodes that may still start: the active ones (for an ended run, the node
 * a retry would redrive, if any), every node reachable from them by edges and
 * `inject_into`, the nodes inside every group among them, and what follows the
 * groups that enclose them. A superset of what will run: a branch condition
 * not taken still counts. Pure.
 */
export function remainingNodes(model: PlaybookModel, snapshot: RunSnapshot): Set<string> {
  const starts = typeof snapshot.value === 'string' ? [redriveNodeOf(model, snapshot.context)].filter((id) => id !== undefined) : activeNodes(model, snapshot.value).map((node) => node.nodeId);
  const seen = new Set<string>();
  const queue: string[] = [];
  const visit = (id: string): void => {
    if (seen.has(id) || !model.nodes.has(id)) return;
    seen.add(id);
    queue.push(id);
  };
  const visitNext = (id: string): void => {
    for (const edge of model.edges.get(id) ?? []) visit(edge.to);
    const injectInto = model.nodes.get(id)?.on_failure?.inject_into;
    if (injectInto !== undefined) visit(injectInto);
  };
  // The groups the active nodes are in: what follows each runs once it joins.
  const entered = new Set(starts.flatMap((id) => enclosingGroups(model, id)));
  for (const id of starts) visit(id);
  for (const group of entered) {
    seen.add(group);
    visitNext(group);
  }
  while (queue.length > 0) {
    const id = queue.pop() as string;
    visitNext(id);
    // A group reached from outside runs all of its nodes; one entered already, only those still to come.
    if (!entered.has(id)) for (const inner of model.descendants.get(id) ?? []) visit(inner);
  }
  return seen;
}
