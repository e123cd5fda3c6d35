/**
 * Child runs (SPEC §12), as the fold and the machine see them: a `playbook`
 * node's attempt is one child run, a `map` node's attempt one child per item
 * of a list in the context. Everything here is pure: the items are read from
 * the fold when the attempt starts, so a replay never renders them again.
 */
import { canonicalJson } from '../events/canonicalJson.js';
import type { RunContext, RunEvent } from '../events/types.js';
import { clipText } from '../playbook/describeValue.js';
import { mapItemsPath } from '../playbook/graphIssues.js';
import { renderTemplate } from '../playbook/templates.js';
import type { ChildRunNode, MapNode, PlaybookNode } from '../playbook/types.js';
import { readPath } from './branching.js';
import type { PlaybookModel } from './playbookModel.js';
import { contextOf, readContext } from './runState.js';
import type { ChildOutcome, ChildSet, RunState } from './runState.js';

/** Whether a node's attempts are child runs rather than dispatches. Pure. */
export function isChildNode(node: PlaybookNode | undefined): node is ChildRunNode {
  return node?.type === 'playbook' || node?.type === 'map';
}

/**
 * The id of the child run for one item of one attempt (SPEC §12). Derived, so
 * a parent that crashed between recording a child and creating it finds the
 * same child again, and the machine can refuse any other id. Pure.
 */
export function childRunIdOf(parentRunId: string, nodeId: string, attempt: number, index: number): string {
  return `${parentRunId}.${nodeId}.${attempt}.${index}`;
}

/**
 * A map's items as its node sees them now: the list its `items` template
 * names (`{{inputs.x}}` reads the inputs, anything else the context; the
 * parser's own reading of the template, `mapItemsPath`), or why it is not
 * one. Pure.
 */
export function readItems(model: PlaybookModel, state: RunState, node: MapNode): { items: readonly unknown[] } | { error: string } {
  const where = mapItemsPath(node.items);
  if (where === null) return { error: `map '${node.id}': items '${node.items}' is not a single {{path}} template` };
  const path = where.path.join('.');
  const value = where.source === 'inputs' ? readPath(state.inputs, path) : readContext(model, state, node.id, path);
  if (Array.isArray(value)) return { items: value };
  const found = value === undefined ? 'nothing' : value === null ? 'null' : typeof value;
  return { error: `map '${node.id}': ${node.items} must be a list in the context, found ${found}` };
}

/**
 * The children of a new attempt (its `NodeStarted` was just folded). A map
 * keeps, from the node's previous attempt, every child that completed for
 * the same item (by canonical JSON): a retry runs only what did not complete.
 * Pure.
 */
export function openChildSet(model: PlaybookModel, state: RunState, node: ChildRunNode, attempt: number, previous: ChildSet | undefined): ChildSet {
  const set: ChildSet = { attempt, items: [null], itemsError: null, started: {}, inFlight: {}, settled: {}, next: 0, running: 0, failed: 0, settledCount: 0 };
  if (node.type === 'playbook') return set;
  const read = readItems(model, state, node);
  if ('error' in read) return { ...set, items: [], itemsError: read.error };
  set.items = read.items;
  if (previous !== undefined && previous.items.length > 0) {
    read.items.forEach((item, index) => {
      const before = previous.settled[index];
      if (before?.status !== 'completed' || index >= previous.items.length || canonicalJson(previous.items[index]) !== canonicalJson(item)) return;
      set.started[index] = before.runId;
      set.settled[index] = { ...before, kept: true };
      set.settledCount += 1;
    });
  }
  set.next = nextUnstarted(set, 0);
  return set;
}

/** The lowest index at or after `from` without a child. */
export function nextUnstarted(set: ChildSet, from: number): number {
  let index = from;
  while (index < set.items.length && set.started[index] !== undefined) index += 1;
  return index;
}

/** How many children of a node may be in flight at once. */
export function childConcurrency(node: ChildRunNode): number {
  return node.type === 'map' ? (node.max_concurrency ?? Infinity) : 1;
}

/** Failed children a node tolerates before it fails. */
function tolerated(node: ChildRunNode): number {
  return node.type === 'map' ? node.tolerate : 0;
}

/** Whether more children failed than the node tolerates: no more start, the rest are cancelled. Pure. */
export function isFailing(node: ChildRunNode, set: ChildSet): boolean {
  return set.itemsError !== null || set.failed > tolerated(node);
}

/** Where an attempt's children stand. */
export type ChildrenOutcome =
  | { kind: 'pending' }
  | { kind: 'succeeded'; output: RunContext }
  | { kind: 'failed'; error: string; retryable?: false };

/**
 * What an attempt's children add up to (SPEC §12): succeeded once every
 * child settled and no more than `tolerate` failed; failed once more did and
 * none is still in flight (a map's items that are no list fail at once, not
 * worth retrying: the context will not change by itself). Pure.
 */
export function childrenOutcome(node: ChildRunNode, set: ChildSet): ChildrenOutcome {
  if (set.itemsError !== null) return { kind: 'failed', error: set.itemsError, retryable: false };
  if (isFailing(node, set)) return set.running === 0 ? { kind: 'failed', error: failureMessage(node, set) } : { kind: 'pending' };
  if (set.settledCount < set.items.length) return { kind: 'pending' };
  if (node.type === 'playbook') return { kind: 'succeeded', output: (set.settled[0] as ChildOutcome).output };
  const results = set.items.map((_, index) => {
    const { runId, status, output, error } = set.settled[index] as ChildOutcome;
    return error === undefined ? { runId, status, output } : { runId, status, output, error };
  });
  return { kind: 'succeeded', output: { [node.id]: results } };
}

/** Why an attempt's children failed it: the children that did not complete, in item order. */
function failureMessage(node: ChildRunNode, set: ChildSet): string {
  const bad = set.items.flatMap((_, index) => {
    const outcome = set.settled[index];
    return outcome === undefined || outcome.status === 'completed' ? [] : [{ index, outcome }];
  });
  const what = (outcome: ChildOutcome) => `${outcome.status}${outcome.error === undefined ? '' : `: ${outcome.error}`}`;
  if (node.type === 'playbook') {
    const outcome = bad[0]?.outcome;
    return clipText(`child run '${outcome?.runId ?? '?'}' of '${node.playbook}' ${outcome === undefined ? 'failed' : what(outcome)}`, 4000);
  }
  const listed = bad.map(({ index, outcome }) => `item ${index} (${outcome.runId}) ${what(outcome)}`).join('; ');
  return clipText(`map '${node.id}': ${bad.length} of ${set.items.length} children did not complete (tolerate ${node.tolerate}): ${listed}`, 4000);
}

/**
 * The initial context of the child for `index` (SPEC §12): the node's
 * `inputs` rendered against what the node sees, as strings like an agent's
 * bindings; a map's `item_input` receives the item itself. Pure.
 */
export function childInputsOf(model: PlaybookModel, state: RunState, node: ChildRunNode, index: number): RunContext {
  const context = contextOf(model, state, node.id);
  const inputs: RunContext = {};
  for (const [key, template] of Object.entries(node.inputs ?? {})) inputs[key] = renderTemplate(template, { inputs: state.inputs, context });
  if (node.type === 'map') inputs[node.item_input] = state.children[node.id]?.items[index] ?? null;
  return inputs;
}

/**
 * What a child run hands its parent: the top-level keys its nodes produced
 * (every event's context writes but RunStarted's inputs), with their final
 * values; the runtime's own `__` keys stay in the child. Pure.
 */
export function childOutputOf(keysWritten: (event: RunEvent) => readonly string[], events: readonly RunEvent[], context: RunContext): RunContext {
  const output: RunContext = {};
  for (const event of events) {
    if (event.type === 'RunStarted') continue;
    for (const key of keysWritten(event)) if (!key.startsWith('__') && Object.hasOwn(context, key)) output[key] = context[key];
  }
  return output;
}
