/**
 * The `ensures.schema` registry (SPEC §13): named zod schemas a node's output
 * must satisfy, the built-ins `task_tree` and `evidence`, and the pure check
 * the runtime runs after a node's output is merged into the context.
 *
 * Pure: no I/O, no clock. A check returns data (ok, or a violation with a
 * code and a message); it never throws for bad context values or unknown names.
 */
import * as z from 'zod';

/** The part of a zod schema the check uses; any zod v3/v4 schema has it. */
export interface SafeParser {
  safeParse(value: unknown): { success: true } | { success: false; error: { issues: readonly ZodLikeIssue[] } };
}

/** The fields of a zod issue the check reads. */
export interface ZodLikeIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/**
 * A registry entry: a schema alone (it checks `context[name]`), or
 * `{schema, key}` to check `context[key]` instead (a schema named `plan` that
 * reads the context key `tasks`).
 */
export type SchemaEntry = SafeParser | { schema: SafeParser; key?: string };

/** Schema name -> entry. Hosts pass theirs as the `schemas` option. */
export type SchemaRegistry = Readonly<Record<string, SchemaEntry>>;

/** The named schema is in neither the host's registry nor the built-ins (or its entry is not a schema). */
export const C_SCHEMA_UNKNOWN = 'C_SCHEMA_UNKNOWN';
/** The context value the schema checks does not satisfy it. */
export const C_SCHEMA_MISMATCH = 'C_SCHEMA_MISMATCH';

/** A failed `ensures.schema` check, ready for `ContractViolated{nodeId, kind, key, message}`. */
export interface SchemaViolation {
  code: typeof C_SCHEMA_UNKNOWN | typeof C_SCHEMA_MISMATCH;
  kind: 'schema';
  /** The schema name as the playbook wrote it. */
  schema: string;
  nodeId: string;
  /** The context key checked (the name, or the entry's `key`). */
  key: string;
  /** Path of the first issue inside `context[key]` (`[0, 'title']`); `[]` for the value itself or an unknown name. */
  path: (string | number)[];
  /** `ensures.schema[task_tree] on emit: expected a non-empty title at 0.title` */
  message: string;
  /**
   * True for an unknown name: SPEC §13 fails the run even when no
   * `contract_violation` handler is declared (an unchecked promise is never
   * taken as kept).
   */
  failClosed: boolean;
}

/** What {@link checkEnsuresSchema} returns. */
export type EnsuresSchemaResult = { ok: true; schema: string; key: string } | { ok: false; violation: SchemaViolation };

const nonBlank = (text: string): boolean => text.trim() !== '';

/** One task of a `task_tree`. Extra fields are allowed: agents add descriptions, estimates, owners. */
const taskSchema = z.looseObject({
  title: z.string({ error: 'expected a title (a string)' }).min(1, { error: 'expected a non-empty title' }),
  acceptance: z
    .array(z.string({ error: 'expected an acceptance criterion (a string)' }), { error: 'expected acceptance criteria (a list of strings)' })
    .min(1, { error: 'expected at least one acceptance criterion' })
    .refine((items) => items.some(nonBlank), { error: 'expected at least one acceptance criterion that is not blank' }),
  id: z.string({ error: 'expected the id as a string' }).min(1, { error: 'expected a non-empty id' }).optional(),
  parentId: z.string({ error: 'expected parentId as a string' }).min(1, { error: 'expected a non-empty parentId' }).optional(),
  depends: z.array(z.string({ error: 'expected a task id (a string)' }), { error: 'expected depends as a list of task ids' }).optional(),
}, { error: 'expected a task: a map with title and acceptance' });

/**
 * `task_tree`: a non-empty list of tasks `{title, acceptance, id?, parentId?,
 * depends?}`; `title` non-empty; `acceptance` a non-empty list of strings with
 * at least one that is not blank.
 */
export const taskTreeSchema = z
  .array(taskSchema, { error: 'expected a task tree: a list of tasks' })
  .min(1, { error: 'expected a task tree with at least one task' });

/** `evidence`: a non-empty string, a non-empty list, or a map with at least one key. */
export const evidenceSchema = z.union([
  z.string().min(1, { error: 'expected evidence text that is not empty' }),
  z.array(z.unknown()).min(1, { error: 'expected an evidence list with at least one item' }),
  z.record(z.string(), z.unknown()).refine((value) => Object.keys(value).length > 0, { error: 'expected an evidence map with at least one key' }),
], { error: 'expected evidence: a non-empty string, list or map' });

/** The schemas every run knows, frozen. A host entry with the same name takes precedence. */
export const BUILTIN_SCHEMAS: SchemaRegistry = Object.freeze({
  task_tree: taskTreeSchema,
  evidence: evidenceSchema,
});

const isParser = (value: unknown): value is SafeParser =>
  typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function';

/** The entry for `name`, host first, own properties only (`toString` names no schema). */
function lookUp(name: string, registry: SchemaRegistry): { parser: SafeParser; key: string } | { problem: string } {
  const source = Object.hasOwn(registry, name) ? registry : Object.hasOwn(BUILTIN_SCHEMAS, name) ? BUILTIN_SCHEMAS : undefined;
  if (source === undefined) {
    const known = [...new Set([...Object.keys(registry), ...Object.keys(BUILTIN_SCHEMAS)])].sort().map((n) => JSON.stringify(n)).join(', ');
    return { problem: `unknown schema ${JSON.stringify(name)}; known schemas: ${known}` };
  }
  const entry: unknown = source[name];
  if (isParser(entry)) return { parser: entry, key: name };
  if (typeof entry === 'object' && entry !== null && isParser((entry as { schema?: unknown }).schema)) {
    const key = (entry as { key?: unknown }).key;
    if (key === undefined) return { parser: (entry as { schema: SafeParser }).schema, key: name };
    if (typeof key === 'string' && key !== '') return { parser: (entry as { schema: SafeParser }).schema, key };
    return { problem: `the registry entry for schema ${JSON.stringify(name)} has a key that is not a non-empty string` };
  }
  return { problem: `the registry entry for schema ${JSON.stringify(name)} is not a zod schema or {schema, key}` };
}

/** `0.title` for `[0, 'title']`; `(root)` for the value itself. */
function dotted(path: readonly (string | number)[]): string {
  return path.length === 0 ? '(root)' : path.join('.');
}

/**
 * Checks a node's `ensures.schema: <name>` against the run context.
 *
 * Pure; never throws (pass `{}` as `registry` for the built-ins only; a schema whose `safeParse` throws is reported as a
 * mismatch with the thrown message). Looks `name` up in `registry` (the host's
 * `schemas`), then in {@link BUILTIN_SCHEMAS}; validates `context[key]` where
 * `key` is the entry's `key` or else `name`. Returns `{ok: true}`, or a
 * violation whose message names the schema, the node and the path of the first
 * issue: `ensures.schema[task_tree] on emit: expected a non-empty title at 0.title`.
 * An unknown name is `C_SCHEMA_UNKNOWN` with `failClosed: true`; any other
 * failure is `C_SCHEMA_MISMATCH` with `failClosed: false` (the
 * `contract_violation` handler decides).
 *
 * @example
 * checkEnsuresSchema('task_tree', { task_tree: [{ title: '', acceptance: ['ok'] }] }, {}, { nodeId: 'emit' })
 * // { ok: false, violation: { code: 'C_SCHEMA_MISMATCH', kind: 'schema', schema: 'task_tree', nodeId: 'emit', key: 'task_tree',
 * //   path: [0, 'title'], message: 'ensures.schema[task_tree] on emit: expected a non-empty title at 0.title', failClosed: false } }
 */
export function checkEnsuresSchema(
  name: string,
  context: Readonly<Record<string, unknown>>,
  registry: SchemaRegistry,
  where: { nodeId: string },
): EnsuresSchemaResult {
  return checkEnsuresSchemaWith(name, (key) => (Object.hasOwn(context, key) ? context[key] : undefined), registry, where);
}

/**
 * As {@link checkEnsuresSchema}, reading the checked context key through
 * `read` (the runtime reads the context a node sees after its output is
 * merged, without building it). Pure; never throws.
 */
export function checkEnsuresSchemaWith(
  name: string,
  read: (key: string) => unknown,
  registry: SchemaRegistry,
  where: { nodeId: string },
): EnsuresSchemaResult {
  const prefix = `ensures.schema[${String(name)}] on ${where.nodeId}`;
  const found = typeof name === 'string' && name !== '' ? lookUp(name, registry ?? {}) : { problem: `expected a schema name (a non-empty string), found ${JSON.stringify(name) ?? typeof name}` };
  if ('problem' in found) {
    return {
      ok: false,
      violation: { code: C_SCHEMA_UNKNOWN, kind: 'schema', schema: String(name), nodeId: where.nodeId, key: String(name), path: [], message: `${prefix}: ${found.problem}`, failClosed: true },
    };
  }
  const { parser, key } = found;
  const value = read(key);
  const mismatch = (path: (string | number)[], what: string): EnsuresSchemaResult => ({
    ok: false,
    violation: { code: C_SCHEMA_MISMATCH, kind: 'schema', schema: name, nodeId: where.nodeId, key, path, message: `${prefix}: ${what}`, failClosed: false },
  });
  if (value === undefined) return mismatch([], `the context has no ${JSON.stringify(key)} (the node's output must set it)`);
  let result: ReturnType<SafeParser['safeParse']>;
  try {
    result = parser.safeParse(value);
  } catch (error) {
    return mismatch([], `the schema threw: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (result.success) return { ok: true, schema: name, key };
  const [first] = result.error.issues;
  const path = (first?.path ?? []).map((segment) => (typeof segment === 'number' ? segment : String(segment)));
  return mismatch(path, `${first?.message ?? 'the value does not match'} at ${dotted(path)}`);
}
