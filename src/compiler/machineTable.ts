/**
 * A transition table compiled from a playbook machine's own state node tree
 * (`machine.root`), and a fold step that reads it instead of running xstate's
 * generic interpreter. The machine stays the one source of truth: the table is
 * derived from the resolved StateNodes (targets, guards, actions as xstate
 * resolved them), never from the playbook, and a differential property
 * (test/property/machineTable.test.ts) proves the step equal to
 * `machine.transition` after every event.
 *
 * What the table reproduces of xstate v5 (`macrostep`, `microstep`,
 * `transitionNode`, `removeConflictingTransitions`, `selectEventlessTransitions`,
 * `evaluateGuard`): compound, parallel and final states; `on` transitions with
 * named guards (a guard with a `check` method gets the snapshot, as xstate's
 * own `stateIn` does); targets resolved by xstate; transition domains, exit and
 * entry sets; selection across parallel regions (regions first, the parallel
 * node's own `on` only when no region took the event) and conflict removal;
 * eventless `always` transitions after the event, repeated until stable; the
 * single `apply` action, done through a function the caller gives.
 *
 * What it refuses at compile time, with a TypeError naming the state, because
 * it would silently differ otherwise: history states, entry/exit actions,
 * invocations, delayed transitions, `onDone`, wildcard or `xstate.*` event
 * descriptors, `reenter: true`, several targets, actions other than `apply`,
 * xstate's composite builtin guards (`and`, `or`, `not`, `stateIn`), a parallel
 * root and a context given as a function.
 */
import type { AnyStateMachine } from 'xstate';
import type { RunEvent } from '../events/types.js';
import { modelOfMachine } from './compilePlaybook.js';
import type { PlaybookMachine } from './compilePlaybook.js';
import type { RunSnapshot } from './foldRun.js';
import { evolve } from './runState.js';
import type { RunState } from './runState.js';

/** How an accepted event changes the context: the machine's `apply` action. Must return the whole next context. */
export type ApplyEvent = (context: RunState, event: RunEvent) => RunState;

/** The fold of one machine through its table. */
export interface MachineFold {
  /** The snapshot before any event (xstate's initial snapshot). */
  initial(): RunSnapshot;
  /** The snapshot after `event`, or undefined when the machine refuses it where `snapshot` stands. */
  step(snapshot: RunSnapshot, event: RunEvent): RunSnapshot | undefined;
}

type Kind = 'atomic' | 'compound' | 'parallel' | 'final';
type GuardArgs = { context: RunState; event: RunEvent };
/** A guard as the table calls it: the snapshot is only built for guards that read it. */
type TableGuard = (args: GuardArgs, snapshot: () => RunSnapshot) => boolean;

interface TableNode {
  readonly key: string;
  readonly id: string;
  readonly kind: Kind;
  readonly parent: TableNode | undefined;
  readonly depth: number;
  readonly children: TableNode[];
  readonly childByKey: Map<string, TableNode>;
  /** Keys from the root's value to this node's. */
  readonly path: string[];
  /** `on` transitions by event type, in the order xstate tries them. */
  readonly on: Map<string, TableTransition[]>;
  /** Own eventless transitions. */
  always: TableTransition[];
  /** For a leaf: the eventless transitions of it and its ancestors, innermost first (only non-empty lists). */
  alwaysChain: TableTransition[][];
  /** Whether a leaf below this node (or this one) can have eventless transitions: the eventless walk skips the rest. */
  reachesAlways: boolean;
  initial: TableNode | undefined;
  /**
   * For a leaf with no parallel ancestor: per event type, the candidates of
   * the leaf, then of each ancestor up to the root, the order xstate tries them.
   */
  serialCandidates: Map<string, TableTransition[]> | undefined;
}

interface TableTransition {
  readonly source: TableNode;
  /** Undefined for a targetless transition: actions only, nothing exited or entered. */
  readonly target: TableNode | undefined;
  readonly domain: TableNode;
  readonly guard: TableGuard | undefined;
  /** How many times `apply` runs. */
  readonly applies: number;
  /** The domain's state value once the transition is taken (every active state below the domain is exited, these entered). */
  domainValue: unknown;
  /** The whole state value after the transition, when no parallel state encloses its domain (otherwise computed per step). */
  rootValue: unknown;
  /** Whether the transition enters a final child of the root. */
  endsMachine: boolean;
}

interface Table {
  readonly root: TableNode;
  /** The one active leaf of each precomputed state value with no parallel state in it: a step's transitions are then one lookup. */
  readonly serialLeaves: WeakMap<object, TableNode>;
  readonly initialValue: unknown;
  readonly initialContext: RunState;
}

const tables = new WeakMap<AnyStateMachine, Table>();
const defaultFolds = new WeakMap<AnyStateMachine, MachineFold>();
/** The event xstate's initial macrostep evaluates eventless guards with. */
const INIT_EVENT = { type: 'xstate.init', input: undefined } as unknown as RunEvent;

/**
 * The table fold of a compiled playbook machine. `apply` defaults to
 * `evolve(modelOfMachine(machine), context, event)`, what the machine's own
 * `apply` action does. The table is compiled once per machine (cached); the
 * fold with the default `apply` too.
 *
 * Pure. Throws TypeError when the machine uses a construct the table does not
 * reproduce (see the module comment), or when no `apply` is given for a
 * machine that `compileModel` did not build.
 *
 * @example
 * const fold = createMachineFold(compilePlaybook(definition));
 * let snapshot = fold.initial();
 * for (const event of events) snapshot = fold.step(snapshot, event) ?? fail(event);
 */
export function createMachineFold(machine: PlaybookMachine, apply?: ApplyEvent): MachineFold {
  if (apply === undefined) {
    const cached = defaultFolds.get(machine);
    if (cached !== undefined) return cached;
    const model = modelOfMachine(machine);
    if (model === undefined) throw new TypeError(`machine '${machine.id}' was not compiled by compileModel: pass the apply function`);
    const fold = foldOf(tableOf(machine), (context, event) => evolve(model, context, event));
    defaultFolds.set(machine, fold);
    return fold;
  }
  return foldOf(tableOf(machine), apply);
}

function tableOf(machine: AnyStateMachine): Table {
  let table = tables.get(machine);
  if (table === undefined) {
    table = compileTable(machine);
    tables.set(machine, table);
  }
  return table;
}

function foldOf(table: Table, apply: ApplyEvent): MachineFold {
  return {
    initial: () => settle(table, { value: table.initialValue, context: table.initialContext, status: 'active' }, INIT_EVENT, apply).snapshot,
    step: (snapshot, event) => {
      if (event.type.startsWith('xstate.')) throw new TypeError(`the table fold does not take xstate's own event '${event.type}'`);
      const args: GuardArgs = { context: snapshot.context, event };
      const leaf = serialLeafOf(table, snapshot.value);
      const chosen = leaf === undefined ? select(table.root, snapshot.value, args, () => snapshot) : firstOf(leaf.serialCandidates?.get(event.type), args, () => snapshot);
      if (chosen === undefined) return undefined;
      const next = microstep(chosen, snapshot, event, apply);
      const settled = settle(table, next.snapshot, event, apply);
      return next.changed || settled.changed ? settled.snapshot : undefined;
    },
  };
}

// ---------------------------------------------------------------- the step

/**
 * The transitions the event enables, as xstate's transitionNode picks them:
 * the innermost state first, a compound's own `on` only if its child took
 * nothing, every region of a parallel state, its own `on` only if no region
 * took the event. Pure.
 */
function select(node: TableNode, value: unknown, args: GuardArgs, snapshot: () => RunSnapshot): TableTransition[] | undefined {
  if (typeof value === 'string') {
    const own = firstEnabled(childOf(node, value), args, snapshot);
    return own ?? firstEnabled(node, args, snapshot);
  }
  const keys = Object.keys(value as object);
  if (keys.length === 1) {
    const key = keys[0] as string;
    const inner = select(childOf(node, key), (value as Record<string, unknown>)[key], args, snapshot);
    return inner ?? firstEnabled(node, args, snapshot);
  }
  let all: TableTransition[] | undefined;
  for (const key of keys) {
    const inner = select(childOf(node, key), (value as Record<string, unknown>)[key], args, snapshot);
    if (inner !== undefined) all = all === undefined ? inner : [...all, ...inner];
  }
  return all ?? firstEnabled(node, args, snapshot);
}

/** The active leaf when the value is a precomputed one with a single leaf, else undefined (the generic walk). */
function serialLeafOf(table: Table, value: unknown): TableNode | undefined {
  if (typeof value === 'string') {
    const leaf = table.root.childByKey.get(value);
    return leaf?.serialCandidates === undefined ? undefined : leaf;
  }
  return typeof value === 'object' && value !== null ? table.serialLeaves.get(value) : undefined;
}

function childOf(node: TableNode, key: string): TableNode {
  const child = node.childByKey.get(key);
  if (child === undefined) throw new TypeError(`state '${key}' does not exist on '${node.id}'`);
  return child;
}

/** A state node's first candidate for the event whose guard holds (xstate's StateNode.next). */
function firstEnabled(node: TableNode, args: GuardArgs, snapshot: () => RunSnapshot): TableTransition[] | undefined {
  return firstOf(node.on.get(args.event.type), args, snapshot);
}

function firstOf(candidates: readonly TableTransition[] | undefined, args: GuardArgs, snapshot: () => RunSnapshot): TableTransition[] | undefined {
  if (candidates === undefined) return undefined;
  for (const candidate of candidates) {
    if (candidate.guard === undefined || candidate.guard(args, snapshot)) return [candidate];
  }
  return undefined;
}

/**
 * One microstep: drop conflicting transitions, exit every active state below
 * each domain, run the actions in order, enter the precomputed states. Pure.
 * `changed` is false only when nothing ran and nothing moved, where xstate
 * hands back the very snapshot it was given.
 */
function microstep(enabled: TableTransition[], snapshot: RunSnapshot, event: RunEvent, apply: ApplyEvent): { snapshot: RunSnapshot; changed: boolean } {
  const transitions = enabled.length === 1 ? enabled : removeConflicts(enabled);
  let context = snapshot.context;
  let value = snapshot.value;
  let status = snapshot.status;
  let changed = false;
  for (const t of transitions) {
    for (let i = 0; i < t.applies; i++) {
      context = apply(context, event);
      changed = true;
    }
  }
  for (const t of transitions) {
    if (t.target === undefined || t.domain.kind === 'atomic') continue;
    if (!changed && !sameConfiguration(valueAt(value, t.domain.path), t.domainValue)) changed = true;
    value = transitions.length === 1 && t.rootValue !== undefined ? t.rootValue : replaceAt(value, t.domain.path, 0, t.domainValue);
    if (t.endsMachine) status = 'done';
  }
  return { snapshot: { value, context, status }, changed };
}

/**
 * xstate's removeConflictingTransitions: two transitions conflict when their
 * exit sets meet, which (no history, no reentry) is when one domain encloses
 * the other's and the inner domain has active states below it. The inner
 * source wins; otherwise the earlier transition. Pure.
 */
function removeConflicts(enabled: readonly TableTransition[]): TableTransition[] {
  const kept: TableTransition[] = [];
  for (const t1 of enabled) {
    let preempted = false;
    const removed = new Set<TableTransition>();
    for (const t2 of kept) {
      if (!exitSetsMeet(t1, t2)) continue;
      if (isDescendant(t1.source, t2.source)) removed.add(t2);
      else {
        preempted = true;
        break;
      }
    }
    if (preempted) continue;
    for (let i = kept.length - 1; i >= 0; i--) if (removed.has(kept[i] as TableTransition)) kept.splice(i, 1);
    kept.push(t1);
  }
  return kept;
}

function exitSetsMeet(a: TableTransition, b: TableTransition): boolean {
  if (a.target === undefined || b.target === undefined) return false;
  const inner = a.domain.depth >= b.domain.depth ? a.domain : b.domain;
  const outer = inner === a.domain ? b.domain : a.domain;
  return inner.kind !== 'atomic' && (inner === outer || isDescendant(inner, outer));
}

/** Strictly below `ancestor`. */
function isDescendant(node: TableNode, ancestor: TableNode): boolean {
  let marker = node.parent;
  while (marker !== undefined && marker.depth >= ancestor.depth) {
    if (marker === ancestor) return true;
    marker = marker.parent;
  }
  return false;
}

/**
 * Eventless transitions after the event's microstep, on the updated context,
 * repeated until none is enabled or the machine is done (xstate's macrostep
 * loop). `changed` says whether any eventless microstep ran: when neither it
 * nor the event's microstep changed anything, xstate returns the snapshot it
 * was given, which the fold reads as a refusal. Pure.
 */
function settle(table: Table, start: RunSnapshot, event: RunEvent, apply: ApplyEvent): { snapshot: RunSnapshot; changed: boolean } {
  let snapshot = start;
  let changed = false;
  for (let round = 0; snapshot.status === 'active' && table.root.reachesAlways; round++) {
    if (round > 10_000) throw new TypeError(`eventless transitions of machine '${table.root.id}' never settle`);
    const current = snapshot;
    const enabled = new Set<TableTransition>();
    const args = { context: current.context, event };
    const leaf = serialLeafOf(table, current.value);
    if (leaf === undefined) collectEventless(table.root, current.value, args, () => current, enabled);
    else leafEventless(leaf, args, () => current, enabled);
    if (enabled.size === 0) break;
    const next = microstep([...enabled], current, event, apply);
    // Like xstate, an eventless microstep that moves nothing ends the loop.
    if (!next.changed) break;
    snapshot = next.snapshot;
    changed = true;
  }
  return { snapshot, changed };
}

/** Per active leaf, the first enabled eventless transition of it or its ancestors (xstate's selectEventlessTransitions). */
function collectEventless(node: TableNode, value: unknown, args: GuardArgs, snapshot: () => RunSnapshot, into: Set<TableTransition>): void {
  if (!node.reachesAlways) return;
  if (typeof value === 'string') {
    leafEventless(childOf(node, value), args, snapshot, into);
    return;
  }
  for (const key of Object.keys(value as object)) collectEventless(childOf(node, key), (value as Record<string, unknown>)[key], args, snapshot, into);
}

function leafEventless(leaf: TableNode, args: GuardArgs, snapshot: () => RunSnapshot, into: Set<TableTransition>): void {
  for (const list of leaf.alwaysChain) {
    const found = list.find((t) => t.guard === undefined || t.guard(args, snapshot));
    if (found !== undefined) {
      into.add(found);
      return;
    }
  }
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const key of path) current = (current as Record<string, unknown>)[key];
  return current;
}

/** `value` with the sub-value at `path` replaced; objects along the path are copied (key order kept), the rest shared. */
function replaceAt(value: unknown, path: readonly string[], index: number, replacement: unknown): unknown {
  if (index === path.length) return replacement;
  const key = path[index] as string;
  const copy = { ...(value as Record<string, unknown>) };
  copy[key] = replaceAt(copy[key], path, index + 1, replacement);
  return copy;
}

function sameConfiguration(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => key in b && sameConfiguration((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

// ---------------------------------------------------------------- compiling

type XNode = {
  key: string;
  id: string;
  type: string;
  parent?: XNode;
  states: Record<string, XNode>;
  config: Record<string, unknown>;
  transitions: Map<string, XTransition[]>;
  always?: XTransition[];
  initial?: { target: XNode[]; actions: unknown[] };
  entry: unknown[];
  exit: unknown[];
  invoke: unknown[];
};
type XTransition = { target?: XNode[]; guard?: unknown; actions: unknown[]; reenter: boolean; source: XNode };

/** Builds the table from the machine's resolved StateNode tree. Pure; throws TypeError on what it cannot reproduce. */
function compileTable(machine: AnyStateMachine): Table {
  const xroot = machine.root as unknown as XNode;
  if (xroot.type !== 'compound') throw new TypeError(`machine '${machine.id}': the table supports a compound root, found '${xroot.type}'`);
  const context = machine.config.context;
  if (typeof context !== 'object' || context === null) throw new TypeError(`machine '${machine.id}': the table needs the initial context as an object`);
  const maxIterations = (machine.options as { maxIterations?: number } | undefined)?.maxIterations ?? Infinity;
  if (maxIterations !== Infinity) throw new TypeError(`machine '${machine.id}': the table does not support a finite maxIterations`);
  const byX = new Map<XNode, TableNode>();
  const root = buildNode(xroot, undefined, byX);
  const guards = (machine.implementations as { guards: Record<string, unknown> }).guards;
  for (const [xnode, node] of byX) {
    for (const [descriptor, list] of xnode.transitions) {
      if (descriptor.includes('*') || descriptor.startsWith('xstate.')) unsupported(node, `event descriptor '${descriptor}'`);
      node.on.set(descriptor, list.map((t) => buildTransition(t, byX, guards, root)));
    }
    node.always = (xnode.always ?? []).map((t) => buildTransition(t, byX, guards, root));
  }
  for (const node of byX.values()) {
    node.alwaysChain = [];
    for (let s: TableNode | undefined = node; s !== undefined; s = s.parent) if (s.always.length > 0) node.alwaysChain.push(s.always);
  }
  markReachesAlways(root);
  for (const node of byX.values()) if (node.children.length === 0) node.serialCandidates = serialCandidatesOf(node);
  const serialLeaves = new WeakMap<object, TableNode>();
  for (const node of byX.values()) for (const t of [...[...node.on.values()].flat(), ...node.always]) finishTransition(t, root, serialLeaves);
  const initialValue = deepFreeze(valueOfEntry(root, defaultEntry(root)));
  registerSerial(root, initialValue, serialLeaves);
  return { root, serialLeaves, initialValue, initialContext: context as RunState };
}

/** A leaf's candidates per event type, innermost first; undefined under a parallel state (selection there is per region). */
function serialCandidatesOf(leaf: TableNode): Map<string, TableTransition[]> | undefined {
  const chain: TableNode[] = [];
  for (let s: TableNode | undefined = leaf; s !== undefined; s = s.parent) {
    if (s.kind === 'parallel') return undefined;
    chain.push(s);
  }
  const candidates = new Map<string, TableTransition[]>();
  for (const s of chain) {
    for (const [type, list] of s.on) candidates.set(type, [...(candidates.get(type) ?? []), ...list]);
  }
  return candidates;
}

/** Remembers a state value's one active leaf, when it has exactly one and no parallel state above it. */
function registerSerial(root: TableNode, value: unknown, serialLeaves: WeakMap<object, TableNode>): void {
  if (typeof value !== 'object' || value === null) return;
  let node = root;
  let current: unknown = value;
  while (typeof current === 'object' && current !== null) {
    const keys = Object.keys(current);
    if (keys.length !== 1 || node.kind !== 'compound') return;
    node = childOf(node, keys[0] as string);
    current = (current as Record<string, unknown>)[keys[0] as string];
  }
  if (node.kind !== 'compound' || typeof current !== 'string') return;
  const leaf = childOf(node, current);
  if (leaf.serialCandidates !== undefined) serialLeaves.set(value, leaf);
}

function buildNode(x: XNode, parent: TableNode | undefined, byX: Map<XNode, TableNode>): TableNode {
  const kind = x.type;
  if (kind !== 'atomic' && kind !== 'compound' && kind !== 'parallel' && kind !== 'final') throw new TypeError(`state '${x.id}': the table does not support '${kind}' states`);
  const node: TableNode = {
    key: x.key,
    id: x.id,
    kind,
    parent,
    depth: parent === undefined ? 0 : parent.depth + 1,
    children: [],
    childByKey: new Map(),
    path: parent === undefined ? [] : [...parent.path, x.key],
    on: new Map(),
    always: [],
    alwaysChain: [],
    reachesAlways: false,
    initial: undefined,
    serialCandidates: undefined,
  };
  if (x.entry.length > 0 || x.exit.length > 0) unsupported(node, 'entry or exit actions');
  if (x.invoke.length > 0) unsupported(node, 'invoked actors');
  if (x.config.after !== undefined) unsupported(node, 'delayed transitions');
  if (x.config.onDone !== undefined) unsupported(node, 'onDone');
  if (x.config.history !== undefined) unsupported(node, 'history');
  if (x.config.route !== undefined) unsupported(node, 'route');
  byX.set(x, node);
  for (const key of Object.keys(x.states)) {
    const child = buildNode(x.states[key] as XNode, node, byX);
    node.children.push(child);
    node.childByKey.set(key, child);
  }
  if (kind === 'compound') {
    const target = x.initial?.target;
    if (target?.length !== 1 || (x.initial?.actions.length ?? 0) > 0) unsupported(node, 'an initial transition other than one plain target');
    node.initial = byX.get(target[0] as XNode);
    if (node.initial?.parent !== node) unsupported(node, 'an initial state that is not a child');
  }
  return node;
}

function buildTransition(t: XTransition, byX: Map<XNode, TableNode>, guards: Record<string, unknown>, root: TableNode): TableTransition {
  const source = byX.get(t.source) as TableNode;
  if (t.reenter) unsupported(source, 'reenter: true');
  if ((t.target?.length ?? 0) > 1) unsupported(source, 'a transition with several targets');
  let applies = 0;
  for (const action of t.actions) {
    const name = typeof action === 'string' ? action : (action as { type?: unknown } | null)?.type;
    if (name !== 'apply' || (typeof action === 'object' && action !== null && 'params' in action)) unsupported(source, `action ${JSON.stringify(name ?? String(action))} (only 'apply')`);
    applies += 1;
  }
  const target = t.target?.[0] === undefined ? undefined : (byX.get(t.target[0]) as TableNode);
  return {
    source,
    target,
    domain: target === undefined ? source : domainOf(source, target, root),
    guard: t.guard === undefined ? undefined : compileGuard(t.guard, guards, source),
    applies,
    domainValue: undefined,
    rootValue: undefined,
    endsMachine: false,
  };
}

/** xstate's getTransitionDomain for one target, no reentry: the source when the target lies within it, else the nearest common ancestor. */
function domainOf(source: TableNode, target: TableNode, root: TableNode): TableNode {
  if (target === source || isDescendant(target, source)) return source;
  for (let ancestor = target.parent; ancestor !== undefined; ancestor = ancestor.parent) {
    if (isDescendant(source, ancestor)) return ancestor;
  }
  return root;
}

/**
 * Precomputes what taking `t` leaves below its domain: xstate's
 * computeEntrySet (the target unless it is the source itself, its default
 * descendants, its ancestors below the domain, and the other regions of every
 * parallel state among them), as a state value.
 */
function finishTransition(t: TableTransition, root: TableNode, serialLeaves: WeakMap<object, TableNode>): void {
  const target = t.target;
  if (target === undefined) return;
  const enter = new Set<TableNode>();
  if (t.source !== target || t.source !== t.domain) enter.add(target);
  addDefaults(target, enter);
  const ancestors: TableNode[] = [];
  for (let a = target.parent; a !== undefined && a !== t.domain; a = a.parent) ancestors.push(a);
  if (t.domain.kind === 'parallel') ancestors.push(t.domain);
  for (const ancestor of ancestors) {
    if (isDescendant(ancestor, t.domain)) enter.add(ancestor);
    if (ancestor.kind === 'parallel') {
      for (const child of ancestor.children) {
        if ([...enter].some((s) => s === child || isDescendant(s, child))) continue;
        enter.add(child);
        addDefaults(child, enter);
      }
    }
  }
  t.domainValue = deepFreeze(valueOfEntry(t.domain, enter));
  let whole: unknown = t.domainValue;
  for (let d: TableNode = t.domain; d.parent !== undefined && whole !== undefined; d = d.parent) {
    whole = d.parent.kind === 'compound' && t.domain.kind !== 'atomic' ? Object.freeze({ [d.key]: whole }) : undefined;
  }
  if (whole !== undefined) {
    t.rootValue = whole;
    registerSerial(root, whole, serialLeaves);
  }
  t.endsMachine = t.domain === root && target.parent === root && target.kind === 'final';
}

/** xstate's addDescendantStatesToEnter: a compound's initial child, a parallel state's every region, recursively. */
function addDefaults(node: TableNode, enter: Set<TableNode>): void {
  if (node.kind === 'compound') {
    const initial = node.initial as TableNode;
    enter.add(initial);
    addDefaults(initial, enter);
  } else if (node.kind === 'parallel') {
    for (const child of node.children) {
      if ([...enter].some((s) => s === child || isDescendant(s, child))) continue;
      enter.add(child);
      addDefaults(child, enter);
    }
  }
}

function defaultEntry(root: TableNode): Set<TableNode> {
  const enter = new Set<TableNode>();
  addDefaults(root, enter);
  return enter;
}

/**
 * The state value of `node` when exactly `active` is active below it, shaped
 * as xstate's getValueFromAdj: a compound with an atomic child is the child's
 * key, otherwise an object per active child (children in document order).
 */
function valueOfEntry(node: TableNode, active: ReadonlySet<TableNode>): unknown {
  const children = node.children.filter((child) => active.has(child));
  if (node.kind === 'compound') {
    const child = children[0];
    if (child === undefined) return {};
    if (child.kind === 'atomic' || child.kind === 'final') return child.key;
    return { [child.key]: valueOfEntry(child, active) };
  }
  const value: Record<string, unknown> = {};
  for (const child of children) value[child.key] = valueOfEntry(child, active);
  return value;
}

function markReachesAlways(node: TableNode): boolean {
  let reaches = node.alwaysChain.length > 0;
  for (const child of node.children) if (markReachesAlways(child)) reaches = true;
  node.reachesAlways = reaches;
  return reaches;
}

/**
 * A guard reference resolved against the machine's implementations, called as
 * xstate's evaluateGuard calls it: `check(snapshot, args, guard)` for a guard
 * with a `check` method, `guard(args, params)` otherwise.
 */
function compileGuard(reference: unknown, guards: Record<string, unknown>, source: TableNode): TableGuard {
  const inline = typeof reference === 'function';
  const name = typeof reference === 'string' ? reference : (reference as { type?: string }).type;
  const resolved = inline ? reference : guards[name as string];
  if (typeof resolved !== 'function') unsupported(source, `guard '${String(name)}' without a function among the machine's guards`);
  const impl = resolved as ((args: GuardArgs, params: unknown) => boolean) & { check?: (snapshot: unknown, args: GuardArgs, guard: unknown) => boolean };
  if ('guards' in impl || 'stateValue' in impl) unsupported(source, `xstate's composite guard '${String(name)}'`);
  const params = inline || typeof reference === 'string' ? undefined : (reference as { params?: unknown }).params;
  const check = impl.check;
  let guard: TableGuard;
  if (typeof check === 'function') guard = (args, snapshot) => check(snapshot(), args, impl);
  else if (typeof params === 'function') guard = (args) => impl(args, (params as (a: GuardArgs) => unknown)(args));
  else guard = (args) => impl(args, params);
  return (args, snapshot) => {
    try {
      return guard(args, snapshot);
    } catch (error) {
      throw new Error(`Unable to evaluate guard '${String(name)}' in transition for event '${args.event.type}' in state node '${source.id}':\n${(error as Error).message}`, { cause: error });
    }
  };
}

function unsupported(node: TableNode, what: string): never {
  throw new TypeError(`state '${node.id}': the machine table does not support ${what}`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
