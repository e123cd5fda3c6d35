/**
 * How the CLI and the viewer present child runs (SPEC §12): where a child sits
 * in its parent (`node implement_all, item 2`), a run's children with their
 * statuses, and the runs listing as a tree. Everything but
 * {@link readRunFamily} (which reads the store) is pure. What is shown here is
 * display only: read from the projection and the logs, never used to decide.
 */
import { createPlaybookModel, getRun, listRuns, parsePlaybook, readRunEvents } from '../index.js';
import type { EventStore, PlaybookDefinition, RunEvent, RunRow, RunStatus } from '../index.js';

/** Where a parent started a child: its node, the node's attempt, and the item's index (0 for a `playbook` node). */
export interface ChildPlace {
  nodeId: string;
  attempt: number;
  index: number;
}

/** One child run as `show` and the viewer list it: its row's status, and where its parent started it. */
export interface ChildRunView {
  runId: string;
  playbookName: string;
  status: RunStatus;
  /** The child's first active node (a paused child: its gate); null once it completed. */
  currentNode: string | null;
  /** Where the parent started it, from the parent's `ChildRunStarted`; null when the parent's log does not say. */
  nodeId: string | null;
  attempt: number | null;
  index: number | null;
}

/** The run that started this one, as `show` and the viewer name it. */
export interface ParentRunView extends ChildPlace {
  runId: string;
  /** From the parent's row; null when the store has no row for it (display only). */
  playbookName: string | null;
  status: RunStatus | null;
}

/** One line of the runs tree: the row, how deep it sits, and the tree glyphs that go before its id. */
export interface RunTreeLine {
  row: RunRow;
  depth: number;
  /** `''` at the top level, then `├─ `, `└─ ` and `│  ` as in `tree(1)`. */
  prefix: string;
}

/** A run's parent and children, and the map nodes of each side's playbook (to name items only where a map has them). */
export interface RunFamily {
  parent: ParentRunView | null;
  parentMaps: ReadonlySet<string> | null;
  children: ChildRunView[];
  maps: ReadonlySet<string> | null;
}

/**
 * Reads what `show` and the viewer say of a run's parent and children: the children are
 * the rows `listRuns({parentRunId})` finds, placed by the run's own
 * `ChildRunStarted` events; the parent is the one its `RunStarted` names. A
 * run with neither costs one query. Read-only; display only.
 */
export async function readRunFamily(store: EventStore, row: RunRow): Promise<RunFamily> {
  const rows = await listRuns(store, { parentRunId: row.runId });
  if (rows.length === 0 && row.parentRunId === null) return { parent: null, parentMaps: null, children: [], maps: null };
  const events = await readRunEvents(store, row.runId);
  const place = parentOfLog(events);
  let parent: ParentRunView | null = null;
  let parentMaps: ReadonlySet<string> | null = null;
  if (place !== null) {
    parent = parentView(place, await getRun(store, place.runId));
    parentMaps = mapNodeIdsOfLog(await readRunEvents(store, place.runId));
  }
  return { parent, parentMaps, children: childRunsOf(events, rows), maps: mapNodeIdsOfLog(events) };
}

/** The ids of a playbook's `map` nodes (branches included): only their children have an item worth naming. Pure. */
export function mapNodeIds(definition: PlaybookDefinition): ReadonlySet<string> {
  return new Set([...createPlaybookModel(definition).nodes.values()].filter((node) => node.type === 'map').map((node) => node.id));
}

/**
 * The map nodes of the playbook a log was pinned to (its `RunStarted` text),
 * or null when the log has no `RunStarted` or its text does not parse: then
 * every child's item is named. Pure.
 */
export function mapNodeIdsOfLog(events: readonly RunEvent[]): ReadonlySet<string> | null {
  const first = events[0];
  if (first?.type !== 'RunStarted') return null;
  try {
    return mapNodeIds(parsePlaybook(first.data.source).definition);
  } catch {
    // A log whose pinned text no longer parses is for `verify` to report; naming items needs no parse.
    return null;
  }
}

/**
 * `node implement_all, item 2` for a map's child, `node plan` for a
 * `playbook` node's (its only child), with `, attempt 2` after a retry.
 * `maps` null (the node types are unknown) names the item always. Pure.
 */
export function describePlace(place: ChildPlace, maps: ReadonlySet<string> | null): string {
  const item = maps === null || maps.has(place.nodeId) ? `, item ${place.index}` : '';
  return `node ${place.nodeId}${item}${place.attempt > 1 ? `, attempt ${place.attempt}` : ''}`;
}

/** The parent a run's log names (`RunStarted.parent`), or null for a root run. Pure. */
export function parentOfLog(events: readonly RunEvent[]): (ChildPlace & { runId: string }) | null {
  const first = events[0];
  if (first?.type !== 'RunStarted' || first.data.parent === undefined) return null;
  const { runId, nodeId, attempt, index } = first.data.parent;
  return { runId, nodeId, attempt, index };
}

/** A run's parent with its row's name and status (`row` null when the store has none). Pure. */
export function parentView(parent: ChildPlace & { runId: string }, row: RunRow | null): ParentRunView {
  return { ...parent, playbookName: row?.playbookName ?? null, status: row?.status ?? null };
}

/**
 * A run's children: the rows `listRuns({parentRunId})` found, each placed by
 * the parent's `ChildRunStarted` that named it, in the order the parent
 * started them (a retry's children after the first attempt's). A row the log
 * does not name (it should not happen) comes last, unplaced. Pure.
 */
export function childRunsOf(parentEvents: readonly RunEvent[], rows: readonly RunRow[]): ChildRunView[] {
  const started = new Map<string, { order: number; place: ChildPlace }>();
  for (const event of parentEvents) {
    if (event.type !== 'ChildRunStarted' || started.has(event.data.childRunId)) continue;
    const { nodeId, attempt, index } = event.data;
    started.set(event.data.childRunId, { order: started.size, place: { nodeId, attempt, index } });
  }
  const orderOf = (row: RunRow): number => started.get(row.runId)?.order ?? Number.MAX_SAFE_INTEGER;
  // Array.prototype.sort is stable: unplaced rows keep the listing's order.
  return [...rows]
    .sort((a, b) => orderOf(a) - orderOf(b))
    .map((row) => {
      const place = started.get(row.runId)?.place;
      return {
        runId: row.runId,
        playbookName: row.playbookName,
        status: row.status,
        currentNode: row.currentNode,
        nodeId: place?.nodeId ?? null,
        attempt: place?.attempt ?? null,
        index: place?.index ?? null,
      };
    });
}

/**
 * The runs listing as a tree: each run in the listing's order, its children
 * right under it (in the listing's order too, so oldest first), indented. A
 * child whose parent is not in the listing (a `--status` filter left it out)
 * is at the top level. Every row appears exactly once. Pure.
 *
 * @example
 * orderRunTree([root, child]).map((line) => `${line.prefix}${line.row.runId}`);
 * // ['r1', '└─ r1.plan.1.0']
 */
export function orderRunTree(rows: readonly RunRow[]): RunTreeLine[] {
  const listed = new Set(rows.map((row) => row.runId));
  const children = new Map<string, RunRow[]>();
  const roots: RunRow[] = [];
  for (const row of rows) {
    const parent = row.parentRunId;
    if (parent === null || parent === row.runId || !listed.has(parent)) roots.push(row);
    else {
      const siblings = children.get(parent);
      if (siblings === undefined) children.set(parent, [row]);
      else siblings.push(row);
    }
  }
  // Children in the order they started, whatever order the runs are listed in (newest first, say); ties keep the listing's.
  for (const siblings of children.values()) siblings.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  const lines: RunTreeLine[] = [];
  const placed = new Set<string>();
  const walk = (row: RunRow, depth: number, prefix: string, indent: string): void => {
    if (placed.has(row.runId)) return;
    placed.add(row.runId);
    lines.push({ row, depth, prefix });
    const below = (children.get(row.runId) ?? []).filter((child) => !placed.has(child.runId));
    below.forEach((child, position) => {
      const last = position === below.length - 1;
      walk(child, depth + 1, `${indent}${last ? '└─ ' : '├─ '}`, `${indent}${last ? '   ' : '│  '}`);
    });
  };
  for (const root of roots) walk(root, 0, '', '');
  // Rows on a parent cycle (a corrupt projection) reach no root: still listed, at the top level.
  for (const row of rows) walk(row, 0, '', '');
  return lines;
}
