/**
 * `parsePlaybook`: YAML text -> validated {@link PlaybookDefinition}, or a
 * {@link PlaybookParseError} listing every issue with its line and column.
 */
import { createHash } from 'node:crypto';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { describeValue } from './describeValue.js';
import { graphIssues } from './graphIssues.js';
import {
  I_CONTRACT_NOT_ALLOWED, I_EXIT_CODE_NOT_ALLOWED, I_HANDLER_NOT_ALLOWED, I_INVALID_TYPE, I_ROOT_NOT_MAP, I_TEMPLATE_NOT_ALLOWED,
  I_YAML_LIMIT,
} from './issues.js';
import type { DraftIssue } from './issues.js';
import { PlaybookParseError } from './parseError.js';
import { schemaIssues } from './schemaIssues.js';
import { yamlIssues } from './yamlIssues.js';
import type { ParsedPlaybook, ParsePlaybookOptions, PlaybookIssue } from './types.js';

/** Alias expansions allowed while converting YAML to plain values (guards against "billion laughs"). */
const maxAliasCount = 100;

type Path = (string | number)[];

/**
 * Finds the YAML node (or map key) a path designates. When the path does not
 * exist, returns its deepest existing ancestor, or `null` if `exact` is set.
 */
function locate(doc: Document, path: readonly (string | number)[], at: 'key' | 'value', exact = false): YamlNode | null {
  let node: unknown = doc.contents;
  let last: YamlNode | null = isScalar(node) || isMap(node) || isSeq(node) ? node : null;
  const missing = (): YamlNode | null => (exact ? null : last);
  for (const [i, segment] of path.entries()) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) return missing();
      if (i === path.length - 1 && at === 'key' && isScalar(pair.key)) return pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
    } else {
      return missing();
    }
    // An alias stays as it is, so an issue in aliased data points at the alias, not the anchor.
    if (isScalar(node) || isMap(node) || isSeq(node) || isAlias(node)) last = node;
    else return missing();
  }
  return last;
}

function position(lineCounter: LineCounter, offset: number | undefined): { line?: number; column?: number } {
  if (offset === undefined) return {};
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/** Sorts by position (issues without one last), keeping discovery order for ties. */
function byPosition(a: PlaybookIssue, b: PlaybookIssue): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Rules a pinned text is exempt from: they were added after runs could be started without them.
 * Each is checked in `graphIssues`, never by the schema, so dropping it still leaves a definition.
 */
const PINNED_EXEMPT: ReadonlySet<string> = new Set([
  I_TEMPLATE_NOT_ALLOWED, I_CONTRACT_NOT_ALLOWED, I_EXIT_CODE_NOT_ALLOWED, I_HANDLER_NOT_ALLOWED,
]);

/**
 * Parses and validates a `.cantbook` playbook.
 *
 * Pure (no I/O, no clock). Returns the definition with every default applied and
 * `sourceHash`, the SHA-256 hex of the exact `source` text. Throws only
 * {@link PlaybookParseError} (`E_PLAYBOOK_PARSE`, exit code 70), whatever the
 * input, carrying every issue found: YAML syntax errors alone when the YAML is
 * broken (one per location, in plain words; a key-less `: value` line counts as
 * one), else schema and graph issues together, sorted by line and column.
 * Messages for a misspelt key, node type, id or input suggest the closest
 * valid one ("did you mean `skill`?").
 *
 * @example
 * const { definition, sourceHash } = parsePlaybook(text, { fileName: 'starter/release.cantbook' });
 */
export function parsePlaybook(source: string, options: ParsePlaybookOptions = {}): ParsedPlaybook {
  const fileName = typeof options?.fileName === 'string' ? options.fileName : undefined;
  const fail = (issues: PlaybookIssue[]): never => {
    throw new PlaybookParseError(issues, fileName);
  };
  if (typeof source !== 'string') {
    fail([{ code: I_INVALID_TYPE, path: [], message: `expected the playbook source text (a string), found ${describeValue(source)}` }]);
  }

  // 1. YAML text -> document -> plain value. Syntax errors make the tree unreliable, so they end parsing.
  const lineCounter = new LineCounter();
  let doc: Document;
  let raw: unknown;
  try {
    // logLevel 'error': the yaml library would otherwise print process warnings (e.g. for a map used as a key);
    // the pure ring reports problems as issues, never on stderr.
    doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
    const syntax = yamlIssues(doc, lineCounter, source);
    if (syntax.length > 0) fail(syntax);
    raw = doc.toJS({ maxAliasCount });
  } catch (error) {
    if (error instanceof PlaybookParseError) throw error;
    // Alias bombs and pathological nesting surface as exceptions from the yaml library.
    const reason = error instanceof Error ? error.message : String(error);
    return fail([{ code: I_YAML_LIMIT, path: [], message: `the document exceeds a parser safety limit (at most ${maxAliasCount} alias expansions, bounded nesting): ${reason}`, line: 1, column: 1 }]);
  }

  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const found = raw === null || raw === undefined ? 'an empty document' : describeValue(raw);
    fail([{ code: I_ROOT_NOT_MAP, path: [], message: `expected a map with version, name and nodes at the top level, found ${found}`, ...position(lineCounter, doc.contents?.range?.[0] ?? 0) }]);
  }
  const root = raw as Record<string, unknown>;

  // 2. Schema and graph rules, both over the same plain value, so one run reports everything.
  const sourceAt = (path: Path): string | undefined => {
    const node = locate(doc, path, 'value', true);
    return isScalar(node) && node.range ? source.slice(node.range[0], node.range[1]).trim() : undefined;
  };
  const { definition, issues: schemaProblems } = schemaIssues(root, sourceAt);
  const drafts: DraftIssue[] = [...schemaProblems, ...graphIssues(root)].filter((draft) => options.pinned !== true || !PINNED_EXEMPT.has(draft.code));

  if (drafts.length === 0 && definition !== undefined) {
    return { definition, sourceHash: createHash('sha256').update(source, 'utf8').digest('hex') };
  }

  // 3. Place each issue in the file; drop repeats of the same code at the same path.
  const seen = new Set<string>();
  const issues: PlaybookIssue[] = [];
  for (const draft of drafts) {
    const key = `${draft.code} ${JSON.stringify(draft.path)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ code: draft.code, path: draft.path, message: draft.message, ...position(lineCounter, locate(doc, draft.path, draft.at)?.range?.[0]) });
  }
  return fail(issues.sort(byPosition));
}
