/**
 * Runs the zod schema over the plain value of a YAML document and turns zod's
 * issues into playbook issues with codes, paths and messages that say what was
 * expected and what was found.
 */
import type * as z from 'zod';
import { describeValue, quote } from './describeValue.js';
import { formatPath } from './formatIssues.js';
import {
  I_INVALID_TYPE, I_INVALID_VALUE, I_MAX_ITERATIONS_RANGE, I_MISSING_FIELD, I_UNKNOWN_KEY,
  I_UNKNOWN_NODE_TYPE, I_VERSION, I_WHEN_INVALID, issueCodes,
} from './issues.js';
import type { DraftIssue, IssueCode } from './issues.js';
import { acceptedKeys, playbookSchema } from './schema.js';
import { didYouMean } from './suggest.js';
import type { NodeType, PlaybookDefinition } from './types.js';

type Path = (string | number)[];

/** Gives the exact source text of the scalar at a path, when there is one. */
export type SourceTextAt = (path: Path) => string | undefined;

/** The value at `path` inside `root`, through own properties only. */
export function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

const expectedNames: Readonly<Record<string, string>> = {
  string: 'a string', number: 'a number', int: 'an integer', boolean: 'a boolean (true or false)',
  array: 'a list', object: 'a map', record: 'a map',
};

/** Every node type, as a record so that a type added to `NodeType` cannot be left out of the message. */
const nodeTypeSet: Readonly<Record<NodeType, true>> = { agentic: true, deterministic: true, approval: true, parallel: true, playbook: true, map: true };
const nodeTypes = Object.keys(nodeTypeSet);
const nodeTypesExpected = `one of ${nodeTypes.map((type) => `"${type}"`).join(', ')}`;

const isIssueCode = (value: unknown): value is IssueCode => (issueCodes as readonly unknown[]).includes(value);

/** The generic translation of one zod issue, before path-specific rules refine it. */
function translate(issue: z.core.$ZodIssue, path: Path, raw: unknown, sourceAt: SourceTextAt): DraftIssue[] {
  const where = formatPath(path);
  const found = (): string => describeValue(valueAt(raw, path), sourceAt(path));
  const draft = (code: IssueCode, message: string): DraftIssue[] => [{ code, path, message, at: 'value' }];
  if (issue.code !== 'unrecognized_keys' && issue.code !== 'custom' && path.length > 0 && valueAt(raw, path) === undefined) {
    const parent = path.slice(0, -1);
    return draft(I_MISSING_FIELD, `${formatPath(parent)}: missing required field ${quote(String(path.at(-1)))}`);
  }
  switch (issue.code) {
    case 'unrecognized_keys': {
      const accepted = acceptedKeys(issue.message);
      return issue.keys.map((key) => ({
        code: I_UNKNOWN_KEY, path: [...path, key], at: 'key',
        message: `unknown key ${quote(key)} in ${where}${didYouMean(key, accepted)}; ${issue.message}`,
      }));
    }
    case 'invalid_type':
      return draft(I_INVALID_TYPE, `${where}: expected ${expectedNames[issue.expected] ?? issue.expected}, found ${found()}`);
    case 'invalid_union': {
      const value = valueAt(raw, path);
      if (issue.discriminator === 'type' && path.at(-1) === 'type') {
        if (typeof value !== 'string') return draft(I_INVALID_TYPE, `${where}: expected ${nodeTypesExpected}, found ${found()}`);
        return draft(I_UNKNOWN_NODE_TYPE, `${where}: unknown node type ${quote(value)}${didYouMean(value, nodeTypes)}; expected ${nodeTypesExpected}`);
      }
      // A union of different kinds (a list or a map): when the value is of exactly one option's kind, that option's
      // issues are the useful ones (`requires[1]: expected a string`), not "matches no option".
      const ofItsKind = issue.errors.filter((errors) => !errors.some((inner) => inner.code === 'invalid_type' && inner.path.length === 0));
      const [only] = ofItsKind;
      if (ofItsKind.length === 1 && only !== undefined && only.length > 0) {
        return only.flatMap((inner) => {
          const innerPath = [...path, ...inner.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)))];
          return translate(inner, innerPath, raw, sourceAt);
        });
      }
      return draft(ofItsKind.length === 0 ? I_INVALID_TYPE : I_INVALID_VALUE, `${where}: ${issue.message}, found ${found()}`);
    }
    case 'invalid_value':
      return draft(I_INVALID_VALUE, `${where}: expected ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}, found ${found()}`);
    case 'too_small': {
      if (issue.origin === 'string') return draft(I_INVALID_VALUE, `${where}: expected a non-empty string, found ""`);
      if (issue.origin === 'array') return draft(I_INVALID_VALUE, `${where}: expected a non-empty list, found an empty list`);
      return draft(I_INVALID_VALUE, `${where}: expected a number >= ${String(issue.minimum)}, found ${found()}`);
    }
    case 'too_big':
      return draft(I_INVALID_VALUE, `${where}: expected a number <= ${String(issue.maximum)}, found ${found()}`);
    case 'custom': {
      const code: unknown = issue.params?.['issueCode'];
      return draft(isIssueCode(code) ? code : I_INVALID_VALUE, `${where}: ${issue.message}`);
    }
    default:
      return draft(I_INVALID_VALUE, `${where}: ${issue.message}, found ${found()}`);
  }
}

/** Path-specific rules: `version`, `max_iterations` and `when` have their own codes. */
function refine(draft: DraftIssue, raw: unknown, sourceAt: SourceTextAt): DraftIssue {
  const { path } = draft;
  if (draft.code === I_UNKNOWN_KEY) return draft;
  if (path.length === 1 && path[0] === 'version' && draft.code !== I_MISSING_FIELD) {
    const value = valueAt(raw, path);
    const hint = typeof value === 'number' ? '; quote it: version: "1.0"' : '';
    return { ...draft, code: I_VERSION, message: `version: expected the string "1.0", found ${describeValue(value, sourceAt(path))}${hint}` };
  }
  if (path.at(-1) === 'max_iterations' && path.at(-2) === 'on_failure') {
    const found = describeValue(valueAt(raw, path), sourceAt(path));
    return { ...draft, code: I_MAX_ITERATIONS_RANGE, message: `${formatPath(path)}: expected an integer from 0 to 10, found ${found}` };
  }
  if (path[0] === 'edges' && path[2] === 'when') return { ...draft, code: I_WHEN_INVALID };
  return draft;
}

/**
 * Validates `raw` (a plain object) against the playbook schema.
 *
 * Pure; never throws. Returns the definition with defaults applied when there are
 * no issues, else every schema issue found (graph rules are not checked here).
 */
export function schemaIssues(raw: Record<string, unknown>, sourceAt: SourceTextAt): { definition?: PlaybookDefinition; issues: DraftIssue[] } {
  const result = playbookSchema.safeParse(raw);
  if (result.success) return { definition: result.data, issues: [] };
  const issues = result.error.issues.flatMap((issue) => {
    const path = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
    return translate(issue, path, raw, sourceAt).map((draft) => refine(draft, raw, sourceAt));
  });
  return { issues };
}
