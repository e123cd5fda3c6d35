/**
 * Which agent a command that continues a run uses, and whether it needs one
 * at all (SPEC §7, docs/adr/0010-runs-remember-their-agent.md): the run remembers
 * the spec it was started with, unless the spec carries a credential, and
 * only the nodes the run can still run decide whether an agent is needed.
 */
import { activeNodes, loadRun, parsePlaybook, remainingNodes, splitCommandLine } from '../index.js';
import type { EventStore, LoadedRun, PlaybookDefinition, PlaybookNode, RunSettings, RunStartedData } from '../index.js';

/** An agentic node, and the playbook it is in. */
export interface AgenticNode {
  id: string;
  playbook: string;
}

/** What a command that dispatches needs to choose an agent. */
export interface AgentNeed {
  /** The agentic nodes that may still run (every one of a new run's tree). */
  agentic: readonly AgenticNode[];
  /** What the run's tree remembers of how it was started (its root's settings). */
  remembered?: RunSettings;
}

/** Names that say a value is a credential, in a query parameter or an option. */
const SECRET_NAME = /(key|token|secret|passw(or)?d|auth|credential|signature|sig$)/i;

/**
 * Why `spec` must not be remembered (it would put a credential in the
 * store), or undefined when it may be: an `http(s)` URL with userinfo or a
 * query parameter named like a secret; a command line with an option named
 * like one (`--api-key=…`, `--token …`) or an inline environment assignment.
 * Pure.
 */
export function credentialIn(spec: string): string | undefined {
  const text = spec.trim();
  if (/^https?:/i.test(text)) {
    let url: URL;
    try {
      url = new URL(/^https?:\/\//i.test(text) ? text : `http://${text.slice('http:'.length)}`);
    } catch {
      return undefined; // not a URL: the dispatcher refuses it with its own code
    }
    if (url.username !== '' || url.password !== '') return 'its URL carries a user name or password';
    const named = [...url.searchParams.keys()].find((name) => SECRET_NAME.test(name));
    return named === undefined ? undefined : `its URL has a query parameter '${named}'`;
  }
  const line = text.replace(/^(exec|module):/i, '');
  let words: string[];
  try {
    words = splitCommandLine(line);
  } catch {
    return undefined;
  }
  if (words.some((word) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(word))) return 'it sets an environment variable inline';
  const option = words.find((word) => /^--?[^=]+/.test(word) && SECRET_NAME.test(word.split('=')[0] as string));
  return option === undefined ? undefined : `it passes the option '${option.split('=')[0] as string}'`;
}

/**
 * The settings a new run remembers for `agentFlag` (ADR 0010): the spec as
 * given, or nothing (with the reason) when it carries a credential. A run
 * started without `--agent` remembers nothing: the config file it used is
 * still there for the commands that follow. Pure.
 */
export function settingsFor(agentFlag: string | undefined): { settings?: RunSettings; refused?: string } {
  const spec = agentFlag?.trim();
  if (spec === undefined || spec === '') return {};
  const why = credentialIn(spec);
  return why === undefined ? { settings: { agent: spec } } : { refused: why };
}

/** Every agentic node of a new run's tree (the root first, then each child playbook). Pure. */
export function agentNeedOfTree(tree: readonly PlaybookDefinition[]): AgentNeed {
  return { agentic: tree.flatMap((definition) => agenticOf(definition.nodes, definition.name)) };
}

/**
 * What continuing run `runId` needs: the agentic nodes of its tree that may
 * still run, and its root's remembered settings. Its own remaining nodes
 * (remainingNodes) with those of the child runs in flight, then each
 * parent's the same way up to the root, the child on the way up counted
 * once. A child-run node counts by its whole child playbook (and the ones it
 * names) for what has not started. Null when a run of the way up is not in
 * the store or its log does not fold: the command then reports it with the
 * proper code.
 */
export async function agentNeedOfRun(store: EventStore, runId: string): Promise<AgentNeed | null> {
  const agentic: AgenticNode[] = [];
  let id = runId;
  let from: string | undefined;
  for (let depth = 0; depth < MAX_DEPTH; depth += 1) {
    const run = await readRun(store, id);
    if (run === null) return null;
    agentic.push(...(await remainingAgentic(store, run, from, depth)));
    const parent = run.started.parent;
    if (parent === undefined) {
      const remembered = await store.getRunSettings(id);
      return remembered === null ? { agentic } : { agentic, remembered };
    }
    from = id;
    id = parent.runId;
  }
  return { agentic };
}

/** Deeper than any tree can be (resolution refuses more than 16 levels). */
const MAX_DEPTH = 32;

interface StoredRun {
  loaded: LoadedRun;
  started: RunStartedData;
}

async function readRun(store: EventStore, runId: string): Promise<StoredRun | null> {
  // One fold of the log, its last state only: what can still run is read from where the run stands.
  const loaded = await loadRun(store, runId).catch(() => null);
  if (loaded === null) return null;
  return { loaded, started: (loaded.events[0] as { data: RunStartedData }).data };
}

/** The agentic nodes `run` may still run, its children in flight included (but `skip`, counted by the caller). */
async function remainingAgentic(store: EventStore, run: StoredRun, skip: string | undefined, depth: number): Promise<AgenticNode[]> {
  const { snapshot } = run.loaded;
  const { model } = run.loaded.playbook;
  const active = new Set(activeNodes(model, snapshot.value).map((node) => node.nodeId));
  const out: AgenticNode[] = [];
  for (const nodeId of remainingNodes(model, snapshot)) {
    const node = model.nodes.get(nodeId) as PlaybookNode;
    if (node.type === 'agentic') out.push({ id: node.id, playbook: model.definition.name });
    if (node.type !== 'playbook' && node.type !== 'map') continue;
    const set = snapshot.context.children[nodeId];
    if (!active.has(nodeId) || set === undefined || set.next < set.items.length || depth >= MAX_DEPTH) {
      // Children still to start (or, once this attempt ends, a retry's): the whole child playbook.
      out.push(...agenticOfPinned(run.started, node.playbook));
      continue;
    }
    for (const childId of Object.values(set.inFlight)) {
      if (childId === skip) continue;
      const child = await readRun(store, childId);
      // A child recorded but not written yet starts from the beginning.
      out.push(...(child === null ? agenticOfPinned(run.started, node.playbook) : await remainingAgentic(store, child, undefined, depth + 1)));
    }
  }
  return out;
}

/** The agentic nodes of the child playbook `ref` names in a run's pinned texts, and of those it names in turn. */
function agenticOfPinned(started: RunStartedData, ref: string): AgenticNode[] {
  const texts = started.pinned?.texts ?? {};
  const out: AgenticNode[] = [];
  const seen = new Set<string>();
  const visit = (textId: string | undefined): void => {
    if (textId === undefined || seen.has(textId)) return;
    seen.add(textId);
    const text = texts[textId];
    if (text === undefined) return;
    let definition: PlaybookDefinition;
    try {
      definition = parsePlaybook(text.source, { pinned: true }).definition;
    } catch {
      out.push({ id: '?', playbook: ref }); // cannot tell: ask for an agent rather than guess
      return;
    }
    out.push(...agenticOf(definition.nodes, definition.name));
    for (const next of Object.values(text.refs)) visit(next);
  };
  visit(started.pinned?.refs[ref]);
  return out;
}

/** The agentic nodes of a graph, parallel branches included. */
function agenticOf(nodes: readonly PlaybookNode[], playbook: string): AgenticNode[] {
  return nodes.flatMap((node) => (node.type === 'agentic' ? [{ id: node.id, playbook }] : node.type === 'parallel' ? node.branches.flatMap((branch) => agenticOf(branch.nodes, playbook)) : []));
}
