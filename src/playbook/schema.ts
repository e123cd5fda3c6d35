/**
 * zod schemas for the `.cantbook` format (SPEC §2), defaults applied.
 *
 * Every object is strict: unknown keys are issues, never silently dropped. The
 * schemas describe single-field and per-object rules; rules that span the whole
 * graph (references, cycles, entry, reachability) live in `graphIssues.ts`.
 * Cross-field refinements carry their issue code in `params.issueCode`.
 */
import * as z from 'zod';
import { parseDuration } from './duration.js';
import { I_AGENT_MISSING, I_INVALID_VALUE, I_WHEN_INVALID } from './issues.js';
import type { EdgeCondition, PlaybookDefinition, PlaybookNode } from './types.js';

/** The keys each strict object accepts, by the unknown-key message it reports (so issues can suggest one). */
const acceptedKeysByMessage = new Map<string, readonly string[]>();

/**
 * The keys accepted where zod reported an unknown key with `message`, or `[]`.
 * Pure; used to say "did you mean `skill`?" for a misspelt key.
 */
export function acceptedKeys(message: string): readonly string[] {
  return acceptedKeysByMessage.get(message) ?? [];
}

/** A strict object whose unknown-key message lists the keys it accepts. */
function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const keys = Object.keys(shape);
  const expected = `expected one of: ${keys.join(', ')}`;
  acceptedKeysByMessage.set(expected, keys);
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? expected : undefined) });
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Object-level refinements run even when a sibling field failed, so every issue is reported. */
const alwaysOnObjects = { when: (payload: { value: unknown }) => isRecord(payload.value) };

const nonEmptyString = z.string().min(1);
const stringList = z.array(z.string());
/** Node ids name machine states (`#playbook.active.<id>`), so they are identifiers: no dots, no `#`. */
const nodeId = z.string().min(1).regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'expected an identifier (a letter or "_", then letters, digits, "_" or "-")');

/** The operators a `when` condition may use; exactly one must be present. */
export const whenOperators = ['equals', 'notEquals', 'exists', 'in', 'truthy'] as const;

/** One declared run input. */
export const inputSchema = strict({
  name: nonEmptyString,
  required: z.boolean().default(false),
  default: z.unknown().exactOptional(),
  description: z.string().exactOptional(),
});

/** A `timeout` such as `72h`: `<integer><ms|s|m|h|d>`, greater than zero. */
export const durationSchema = z.string().superRefine((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null || ms === 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a positive duration like "30m", "72h" or "7d" (an integer and one of ms, s, m, h, d), found "${text}"`,
      params: { issueCode: I_INVALID_VALUE },
    });
  }
});

/** `on_failure.backoff` (SPEC §10): before in-place attempt n >= 2 wait min(max, initial * factor^(n-2)). */
export const backoffSchema = strict({
  initial: durationSchema,
  factor: z.number().min(1).max(100).exactOptional(),
  max: durationSchema.exactOptional(),
});

/** `on_failure`: retry cap and escalation target. `max_iterations` absent means the runtime default. */
export const onFailureSchema = strict({
  max_iterations: z.int().min(0).max(10).exactOptional(),
  inject_into: nonEmptyString.exactOptional(),
  escalate: z.boolean().exactOptional(),
  backoff: backoffSchema.exactOptional(),
});

/** `requires`: where a node's inputs come from. */
export const requiresSchema = strict({
  from: nonEmptyString.exactOptional(),
  fields: stringList.exactOptional(),
});

/** `ensures`: what a node promises to produce. `schema` names a registered schema (SPEC §13); a map is the v1 declaration. */
export const ensuresSchema = strict({
  outputFiles: stringList.exactOptional(),
  exitCode: z.int().exactOptional(),
  schema: z.union([nonEmptyString, z.record(z.string(), z.unknown())], { error: 'expected a schema name (a string such as task_tree), or a map' }).exactOptional(),
});

/** What an edge contract side accepts when it is neither a list of context keys nor the node-style map. */
export const contractSideExpected = 'expected a list of context keys (e.g. [topic]) or a map';

/**
 * An edge contract's `requires` / `ensures`: a list of context keys (the
 * original format, `requires: [topic]`) or the node-style map. A list is read as
 * `{fields: [...]}` for `requires` and `{outputFiles: [...]}` for `ensures`
 * (outputFiles are context keys), so the definition has one shape.
 */
const contractRequires = z.union([
  z.array(nonEmptyString).transform((fields) => ({ fields })),
  requiresSchema,
], { error: `${contractSideExpected} {from?, fields?}` });
const contractEnsures = z.union([
  z.array(nonEmptyString).transform((outputFiles) => ({ outputFiles })),
  ensuresSchema,
], { error: `${contractSideExpected} {outputFiles?, exitCode?, schema?}` });

const nodeBase = {
  id: nodeId,
  description: z.string().exactOptional(),
  depends: z.array(nonEmptyString).default([]),
  on_failure: onFailureSchema.exactOptional(),
  requires: requiresSchema.exactOptional(),
  ensures: ensuresSchema.exactOptional(),
};

/** An agent step: dispatched to `agent`, else `skill`. */
export const agenticNodeSchema = strict({
  ...nodeBase,
  type: z.literal('agentic'),
  skill: nonEmptyString.exactOptional(),
  agent: nonEmptyString.exactOptional(),
  role: z.enum(['orchestrator', 'lead', 'worker']).exactOptional(),
  inputs: z.record(z.string(), z.string()).exactOptional(),
  profile: nonEmptyString.exactOptional(),
  model: nonEmptyString.exactOptional(),
  provider: nonEmptyString.exactOptional(),
  allowed_skills: stringList.exactOptional(),
  allowed_tools: stringList.exactOptional(),
  context_files: stringList.exactOptional(),
  timeout: durationSchema.exactOptional(),
}).superRefine((node, ctx) => {
  if (node.skill === undefined && node.agent === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `agentic node "${String(node.id)}" needs "skill" or "agent" (the agent dispatched is agent, else skill); found neither`,
      params: { issueCode: I_AGENT_MISSING },
    });
  }
}, alwaysOnObjects);

/** A command step, run without a shell. */
export const deterministicNodeSchema = strict({
  ...nodeBase,
  type: z.literal('deterministic'),
  command: nonEmptyString,
  args: stringList.default([]),
  cwd: z.string().exactOptional(),
  env: z.record(z.string(), z.string()).exactOptional(),
  timeout_ms: z.int().min(0).exactOptional(),
});

/** A human gate: pauses the run until approved or rejected. */
export const approvalNodeSchema = strict({
  ...nodeBase,
  type: z.literal('approval'),
  prompt: nonEmptyString,
  policy: z.enum(['conservative', 'permissive', 'custom']).exactOptional(),
  timeout: durationSchema.exactOptional(),
});

/** One branch of a parallel group: its own graph of nodes and edges. */
export const branchSchema = strict({
  id: nodeId,
  description: z.string().exactOptional(),
  get nodes() {
    return z.array(nodeSchema).min(1);
  },
  get edges() {
    return z.array(edgeSchema).default([]);
  },
});

/** A group of branches run at the same time (SPEC §9). */
export const parallelNodeSchema = strict({
  ...nodeBase,
  type: z.literal('parallel'),
  failure: z.enum(['fail_fast', 'wait_all']).default('fail_fast'),
  max_concurrency: z.int().min(1).exactOptional(),
  get branches() {
    return z.array(branchSchema).min(2, 'a parallel group needs at least two branches');
  },
});

/** A sub-playbook run as a child run (SPEC §12). */
export const playbookRefNodeSchema = strict({
  ...nodeBase,
  type: z.literal('playbook'),
  playbook: nonEmptyString,
  inputs: z.record(z.string(), z.string()).exactOptional(),
});

/** One child run per item of a list in the context (SPEC §12). */
export const mapNodeSchema = strict({
  ...nodeBase,
  type: z.literal('map'),
  items: nonEmptyString,
  playbook: nonEmptyString,
  item_input: nonEmptyString,
  inputs: z.record(z.string(), z.string()).exactOptional(),
  max_concurrency: z.int().min(1).exactOptional(),
  tolerate: z.int().min(0).default(0),
});

/** Any node, chosen by its `type`. */
export const nodeSchema: z.ZodType<PlaybookNode, unknown> = z.discriminatedUnion('type', [
  agenticNodeSchema,
  deterministicNodeSchema,
  approvalNodeSchema,
  parallelNodeSchema,
  playbookRefNodeSchema,
  mapNodeSchema,
]) as never;

/** A branch guard: `field` plus exactly one operator. */
export const whenSchema = strict({
  field: nonEmptyString,
  equals: z.unknown().exactOptional(),
  notEquals: z.unknown().exactOptional(),
  exists: z.boolean().exactOptional(),
  in: z.array(z.unknown()).min(1).exactOptional(),
  truthy: z.boolean().exactOptional(),
}).superRefine((when, ctx) => {
  const present = whenOperators.filter((op) => Object.hasOwn(when, op));
  if (present.length !== 1) {
    const found = present.length === 0 ? 'none' : present.join(', ');
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `expected exactly one operator (${whenOperators.join(' | ')}) besides "field", found ${found}`,
      params: { issueCode: I_WHEN_INVALID },
    });
  }
}, alwaysOnObjects).transform((when): EdgeCondition => {
  const { field } = when;
  if (when.exists !== undefined) return { field, exists: when.exists };
  if (when.truthy !== undefined) return { field, truthy: when.truthy };
  if (when.in !== undefined) return { field, in: when.in };
  if (Object.hasOwn(when, 'notEquals')) return { field, notEquals: when.notEquals };
  return { field, equals: when.equals };
});

/** An edge `from -> to`, optionally guarded by `when`. */
export const edgeSchema = strict({
  from: nonEmptyString,
  to: nonEmptyString,
  contract: strict({ requires: contractRequires.exactOptional(), ensures: contractEnsures.exactOptional() }).exactOptional(),
  when: whenSchema.exactOptional(),
});

/** A playbook-wide reaction to a class of failure. */
export const errorHandlerSchema = strict({
  on: z.enum(['agentic_timeout', 'iteration_cap_exceeded', 'contract_violation']),
  action: z.enum(['inject_hint', 'hitl_escalate', 'abort']),
  message: z.string().exactOptional(),
  /** hitl_escalate: the escalation gate expires after this long (SPEC §10, §13), failing the run approval_expired. */
  timeout: durationSchema.exactOptional(),
});

/**
 * The whole document. Parsing with it applies the defaults (`inputs`, `edges`,
 * `error_handlers`, `depends`, `args` = `[]`; `required` = false) and yields a
 * {@link PlaybookDefinition}. It does not check the graph: use `parsePlaybook`.
 */
export const playbookSchema = strict({
  version: z.literal('1.0'),
  name: nonEmptyString,
  description: z.string().exactOptional(),
  inputs: z.array(inputSchema).default([]),
  nodes: z.array(nodeSchema).min(1),
  edges: z.array(edgeSchema).default([]),
  error_handlers: z.array(errorHandlerSchema).default([]),
});

// Compile-time proof that the schema and the hand-written types agree both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesTypes: Same<z.output<typeof playbookSchema>, PlaybookDefinition> = true;
void schemaMatchesTypes;
