/**
 * Resolution and pinning of child playbooks (SPEC §12): before a root run's
 * first event, every text its tree can start is resolved, parsed and checked,
 * so a missing playbook, a reference cycle or an input a child would refuse is
 * a coded error while nothing is recorded yet, and a file edited mid-run never
 * changes a running tree.
 *
 * Pure apart from the host's resolver, which is injected (the file resolver of
 * the CLI lives in `src/adapters/fileResolver.ts`, since this ring does no I/O).
 */
import { CantbookError, E_INPUT_MISSING, E_INPUT_UNKNOWN, E_PLAYBOOK_CYCLE, E_PLAYBOOK_NOT_FOUND, E_PLAYBOOK_RUNTIME_INVALID, exitCodes } from '../errors.js';
import type { PinnedPlaybooks, PinnedText } from '../events/types.js';
import { parsePlaybook } from './parsePlaybook.js';
import { closestMatch } from './suggest.js';
import type { ChildRunNode, PlaybookDefinition, PlaybookNode } from './types.js';

/** What a resolver found for a reference: a stable identity (a normalised path, a database key) and the text. */
export interface ResolvedPlaybook {
  id: string;
  source: string;
}

/**
 * The host's resolver: `from.id` is the id of the referring playbook (null for
 * a root passed without one), `from.name` its `name`. Returns null when the
 * reference names nothing; a thrown `CantbookError` propagates as it is.
 * Two references to the same text must resolve to the same `id`: cycles and
 * shared texts are found by id.
 */
export type PlaybookResolver = (ref: string, from: { id: string | null; name: string }) => ResolvedPlaybook | null | Promise<ResolvedPlaybook | null>;

/**
 * How many levels of child runs a tree may nest. Real trees are shallow; the
 * bound exists for resolvers that give a fresh id for the same text forever,
 * which the cycle check alone cannot see.
 */
export const MAX_PLAYBOOK_NESTING = 16;

/** A playbook that makes references: the root, or a text being walked. */
interface Referrer {
  id: string | null;
  name: string;
  definition: PlaybookDefinition;
}

/** One walk over a tree: what is pinned so far, and how deep each finished text nests. */
interface PinWalk {
  resolve: PlaybookResolver | undefined;
  /** By id, in the order first reached (a Map: ids are the host's strings, `__proto__` included). */
  texts: Map<string, PinnedText>;
  definitions: Map<string, PlaybookDefinition>;
  /** For each text walked to its end: how many levels of child runs nest below it (0 for a leaf). */
  heights: Map<string, number>;
}

/**
 * The `playbook` and `map` nodes of a playbook, parallel branches included at
 * any depth, in document order. Pure.
 */
export function* childRunNodes(nodes: readonly PlaybookNode[]): Generator<ChildRunNode> {
  for (const node of nodes) {
    if (node.type === 'playbook' || node.type === 'map') yield node;
    else if (node.type === 'parallel') for (const branch of node.branches) yield* childRunNodes(branch.nodes);
  }
}

/**
 * Resolves, parses and pins every playbook the tree under `root` can start.
 *
 * Walks each `playbook` / `map` node depth first (parallel branches
 * included), calling `resolve(node.playbook, {id, name})` of the referring
 * playbook once per distinct reference of each text. Each text reached is
 * parsed once (a diamond shares it) with `parsePlaybook(source, {fileName:
 * id})`, and each referring node's inputs are checked against the inputs the
 * child declares. Pure apart from `resolve`; touches no store.
 *
 * Returns `{refs, texts}` (refs: the root's references -> ids; texts: every
 * reachable text by id, with its own refs), or `undefined` when the root
 * references nothing (then `resolve` is never called and may be absent).
 * Rejects, before anything is recorded, with:
 * - `E_PLAYBOOK_NOT_FOUND`: no resolver, the resolver returned null, or it
 *   threw something that is not a `CantbookError` (`details: {ref, nodeId, from}`);
 * - `E_PLAYBOOK_CYCLE`: a resolved id is already on the path from the root
 *   (the root's own id included; `details.cycle` lists the ids), or the tree
 *   nests more than {@link MAX_PLAYBOOK_NESTING} levels;
 * - `E_PLAYBOOK_PARSE` (`PlaybookParseError`, naming the file): a child text is invalid;
 * - `E_INPUT_UNKNOWN` / `E_INPUT_MISSING`: a node gives an input its child does
 *   not declare, or leaves out one the child requires and has no default for;
 * - `E_PLAYBOOK_RUNTIME_INVALID`: the resolver answered something that is not `{id, source}`;
 * - any `CantbookError` the resolver threw.
 *
 * @example
 * const pinned = await pinPlaybookTree({ definition, id: '/repo/epic.cantbook' }, createFileResolver());
 */
export async function pinPlaybookTree(root: { definition: PlaybookDefinition; id?: string | null }, resolve: PlaybookResolver | undefined): Promise<PinnedPlaybooks | undefined> {
  const walk: PinWalk = { resolve, texts: new Map(), definitions: new Map(), heights: new Map() };
  const referrer: Referrer = { id: root.id ?? null, name: root.definition.name, definition: root.definition };
  const { refs } = await pinReferences(walk, referrer, [referrer]);
  if (Object.keys(refs).length === 0) return undefined;
  return { refs, texts: Object.fromEntries(walk.texts) };
}

/**
 * Pins the references `referrer` makes, walking each new text below it.
 * `chain` is the path from the root to `referrer`, both included. Returns the
 * references (ref -> id) and how many levels nest below `referrer`.
 */
async function pinReferences(walk: PinWalk, referrer: Referrer, chain: readonly Referrer[]): Promise<{ refs: Record<string, string>; height: number }> {
  const refs = new Map<string, string>();
  let height = 0;
  for (const node of childRunNodes(referrer.definition.nodes)) {
    // The same reference in two nodes of one text resolves once: one ref, one id; each node's inputs are still checked.
    const known = refs.get(node.playbook);
    const knownDefinition = known === undefined ? undefined : walk.definitions.get(known);
    if (knownDefinition !== undefined) checkChildInputs(node, referrer, knownDefinition);
    const id = known ?? await pinReference(walk, node, referrer, chain);
    refs.set(node.playbook, id);
    height = Math.max(height, 1 + (walk.heights.get(id) ?? 0));
  }
  return { refs: Object.fromEntries(refs), height };
}

/**
 * Resolves one reference of `referrer`, checks the node's inputs against the
 * text it names and, the first time that text is reached, walks it. Returns
 * the text's id.
 */
async function pinReference(walk: PinWalk, node: ChildRunNode, referrer: Referrer, chain: readonly Referrer[]): Promise<string> {
  // 1. Resolve the reference, relative to the referring playbook.
  const { id, source } = await resolveReference(walk.resolve, node, referrer);
  // 2. Refuse a cycle over resolved ids, and a tree nesting too deep (a text seen before brings its own depth).
  guardCycle(chain, id, node);
  guardDepth(chain, id, walk.heights.get(id) ?? 0);
  // 3. Parse a text once (a diamond shares it), then check the node's inputs before walking further down.
  const seen = walk.definitions.get(id);
  if (seen !== undefined) {
    checkChildInputs(node, referrer, seen);
    return id;
  }
  const { definition, sourceHash } = parsePlaybook(source, { fileName: id });
  const text: PinnedText = { source, sourceHash, refs: {} };
  walk.texts.set(id, text);
  walk.definitions.set(id, definition);
  checkChildInputs(node, referrer, definition);
  // 4. Walk the child's own references, depth first.
  const child: Referrer = { id, name: definition.name, definition };
  const { refs, height } = await pinReferences(walk, child, [...chain, child]);
  text.refs = refs;
  walk.heights.set(id, height);
  return id;
}

const isCantbookError = (error: unknown): error is CantbookError =>
  typeof error === 'object' && error !== null && Object.hasOwn(exitCodes, String((error as { code?: unknown }).code));

/** The referring playbook as messages and details name it: its id, else its name. */
const nameOf = (playbook: { id: string | null; name: string }): string => playbook.id ?? playbook.name;

/** The base name of an id that is a path (`/repo/a.cantbook` -> `a.cantbook`); other ids as they are. */
const shortName = (id: string): string => id.split(/[\\/]/).filter((part) => part !== '').pop() ?? id;

/** Calls the resolver for `node.playbook`, turning every way it can fail into a coded error. */
async function resolveReference(resolve: PlaybookResolver | undefined, node: ChildRunNode, referrer: Referrer): Promise<ResolvedPlaybook> {
  const from = nameOf(referrer);
  const ref = node.playbook;
  const notFound = (why: string): CantbookError =>
    new CantbookError(E_PLAYBOOK_NOT_FOUND, `playbook '${ref}' named by node '${node.id}' of '${from}' ${why}`, { ref, nodeId: node.id, from });
  if (resolve === undefined) throw notFound('cannot be resolved: no playbook resolver was given (resolvePlaybook)');
  let resolved: unknown;
  try {
    resolved = await resolve(ref, { id: referrer.id, name: referrer.name });
  } catch (error) {
    if (isCantbookError(error)) throw error;
    throw notFound(`could not be resolved: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (resolved === null || resolved === undefined) throw notFound('was not found');
  const answer = resolved as Partial<ResolvedPlaybook>;
  if (typeof answer.id !== 'string' || answer.id === '' || typeof answer.source !== 'string') {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `the playbook resolver answered '${ref}' (node '${node.id}' of '${from}') with something other than {id: non-empty string, source: string}`, { ref, nodeId: node.id, from });
  }
  return { id: answer.id, source: answer.source };
}

/** Throws E_PLAYBOOK_CYCLE when `id` is already on the path from the root. */
function guardCycle(chain: readonly Referrer[], id: string, node: ChildRunNode): void {
  const start = chain.findIndex((link) => link.id === id);
  if (start === -1) return;
  const cycle = [...chain.slice(start).map(nameOf), id];
  const referrer = chain.at(-1);
  throw new CantbookError(
    E_PLAYBOOK_CYCLE,
    `playbook references form a cycle: ${cycle.map(shortName).join(' -> ')} (node '${node.id}' of '${referrer === undefined ? '' : nameOf(referrer)}' names '${node.playbook}'); a playbook cannot start itself, directly or through others`,
    { cycle, nodeId: node.id, ref: node.playbook },
  );
}

/** Throws E_PLAYBOOK_CYCLE when a child at the end of `chain`, with `below` levels under it, nests too deep. */
function guardDepth(chain: readonly Referrer[], id: string, below: number): void {
  const depth = chain.length + below;
  if (depth <= MAX_PLAYBOOK_NESTING) return;
  const path = [...chain.map(nameOf), id];
  const shown = path.length > 6 ? [...path.slice(0, 3), '...', ...path.slice(-2)] : path;
  throw new CantbookError(
    E_PLAYBOOK_CYCLE,
    `playbook references nest ${depth} levels deep (${shown.map(shortName).join(' -> ')}), more than the ${MAX_PLAYBOOK_NESTING} allowed; a resolver that gives the same playbook a new id each time makes a cycle look endless`,
    { chain: path, depth, maxDepth: MAX_PLAYBOOK_NESTING },
  );
}

/** `'a', 'b'`: names as messages quote them. */
const quoted = (names: readonly string[]): string => names.map((name) => `'${name}'`).join(', ');

/**
 * The input rules of SPEC §4 for a child, checked statically: the keys a node
 * gives are its `inputs` keys plus a map's `item_input`. When the child
 * declares inputs, every key given must be one of them (E_INPUT_UNKNOWN); every
 * required input without a default must be given (E_INPUT_MISSING).
 */
function checkChildInputs(node: ChildRunNode, referrer: Referrer, child: PlaybookDefinition): void {
  const given = [...Object.keys(node.inputs ?? {}), ...(node.type === 'map' ? [node.item_input] : [])];
  const declared = child.inputs.map((input) => input.name);
  const where = `node '${node.id}' of '${referrer.name}'`;
  const details = { nodeId: node.id, from: nameOf(referrer), ref: node.playbook, playbook: child.name };
  const unknown = declared.length === 0 ? [] : given.filter((key) => !declared.includes(key));
  if (unknown.length > 0) {
    const hints = unknown.map((key) => {
      const near = closestMatch(key, declared);
      return `'${key}'${near === undefined ? '' : ` (did you mean '${near}'?)`}`;
    });
    throw new CantbookError(
      E_INPUT_UNKNOWN,
      `${where} gives input${unknown.length > 1 ? 's' : ''} ${hints.join(', ')} that '${child.name}' does not declare; it declares ${quoted(declared)}`,
      { ...details, unknown, declared },
    );
  }
  const missing = child.inputs.filter((input) => input.required && input.default === undefined && !given.includes(input.name)).map((input) => input.name);
  if (missing.length === 0) return;
  throw new CantbookError(
    E_INPUT_MISSING,
    `${where} does not give '${child.name}' its required input${missing.length > 1 ? 's' : ''} ${quoted(missing)}; add ${missing.length > 1 ? 'them' : 'it'} to the node's inputs${node.type === 'map' ? ' (or name it in item_input)' : ''}`,
    { ...details, missing },
  );
}

/**
 * What a child run whose text is `id` can start in turn: its own references
 * and every text reachable from them, cut from the tree its parent pinned
 * (the child's `RunStarted.pinned`, so every log is self-contained).
 *
 * Pure. Returns `undefined` when the text references nothing. Throws
 * `CantbookError` `E_PLAYBOOK_NOT_FOUND` when `id`, or a text it reaches, is
 * not in `pinned.texts` (a pinned set that was not built by {@link pinPlaybookTree}).
 *
 * @example pinnedSubtree(parent.pinned, parent.pinned.refs['ivtr.cantbook'])
 */
export function pinnedSubtree(pinned: PinnedPlaybooks, id: string): PinnedPlaybooks | undefined {
  const refs = pinnedText(pinned, id).refs;
  if (Object.keys(refs).length === 0) return undefined;
  const texts = new Map<string, PinnedText>();
  const queue = Object.values(refs);
  for (let i = 0; i < queue.length; i += 1) {
    const next = queue[i] ?? '';
    if (texts.has(next)) continue;
    const text = pinnedText(pinned, next);
    texts.set(next, text);
    queue.push(...Object.values(text.refs));
  }
  return { refs: { ...refs }, texts: Object.fromEntries(texts) };
}

/** The pinned text `id`, or E_PLAYBOOK_NOT_FOUND. */
function pinnedText(pinned: PinnedPlaybooks, id: string): PinnedText {
  const text = Object.hasOwn(pinned.texts, id) ? pinned.texts[id] : undefined;
  if (text === undefined) {
    throw new CantbookError(E_PLAYBOOK_NOT_FOUND, `playbook text '${id}' is not among the pinned texts (${quoted(Object.keys(pinned.texts))})`, { id });
  }
  return text;
}
