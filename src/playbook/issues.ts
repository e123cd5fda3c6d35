/**
 * Issue codes for problems found in a `.cantbook` file.
 *
 * Every issue `parsePlaybook` reports carries exactly one of these codes. They
 * are stable: tools and tests branch on them, and docs/errors.md explains each
 * one with a fix (a test keeps that table complete).
 */

/** The YAML text itself is malformed (bad indentation, unclosed brackets, tabs, ...). */
export const I_YAML_SYNTAX = 'I_YAML_SYNTAX';
/** A YAML map repeats a key. */
export const I_DUPLICATE_KEY = 'I_DUPLICATE_KEY';
/** The document trips a parser safety limit (alias expansion, nesting depth). */
export const I_YAML_LIMIT = 'I_YAML_LIMIT';
/** The document is empty or its root is not a map. */
export const I_ROOT_NOT_MAP = 'I_ROOT_NOT_MAP';
/** `version` is not the string `"1.0"`. */
export const I_VERSION = 'I_VERSION';
/** A key that the format does not define. */
export const I_UNKNOWN_KEY = 'I_UNKNOWN_KEY';
/** A required field is absent. */
export const I_MISSING_FIELD = 'I_MISSING_FIELD';
/** A field holds the wrong kind of value (a list where a string belongs, ...), or the source is not a string. */
export const I_INVALID_TYPE = 'I_INVALID_TYPE';
/** A field has the right kind of value but an invalid one (empty string, unknown enum member, bad duration). */
export const I_INVALID_VALUE = 'I_INVALID_VALUE';
/** A node's `type` is not `agentic`, `deterministic`, `approval`, `parallel`, `playbook` or `map`. */
export const I_UNKNOWN_NODE_TYPE = 'I_UNKNOWN_NODE_TYPE';
/** An agentic node names neither `skill` nor `agent`. */
export const I_AGENT_MISSING = 'I_AGENT_MISSING';
/** Two nodes share an id. */
export const I_DUPLICATE_ID = 'I_DUPLICATE_ID';
/** Two inputs share a name. */
export const I_DUPLICATE_INPUT = 'I_DUPLICATE_INPUT';
/** An edge, `depends` entry or `inject_into` names a node id that does not exist. */
export const I_UNKNOWN_REF = 'I_UNKNOWN_REF';
/** `on_failure.inject_into` names the node itself. */
export const I_INJECT_SELF = 'I_INJECT_SELF';
/** A `{{inputs.x}}` template names an input the playbook does not declare. */
export const I_UNKNOWN_INPUT = 'I_UNKNOWN_INPUT';
/**
 * A template where the format forbids it: a deterministic node's `cwd` or `env`
 * reading the run context (only `{{inputs.*}}` is allowed there), or any template
 * in `command` (never rendered). What program runs, and where, must not depend
 * on what an agent wrote.
 */
export const I_TEMPLATE_NOT_ALLOWED = 'I_TEMPLATE_NOT_ALLOWED';
/** Edges and `depends` together form a cycle. */
export const I_CYCLE = 'I_CYCLE';
/** No node is free of predecessors, so there is nowhere to start. */
export const I_NO_ENTRY = 'I_NO_ENTRY';
/** Several nodes have no predecessors; exactly one entry is allowed. */
export const I_MULTIPLE_ENTRIES = 'I_MULTIPLE_ENTRIES';
/** A node cannot be reached from the entry node. */
export const I_UNREACHABLE = 'I_UNREACHABLE';
/** A node has more than one unguarded (default) outgoing edge. */
export const I_MULTIPLE_DEFAULT_EDGES = 'I_MULTIPLE_DEFAULT_EDGES';
/** An edge's `when` is malformed (no operator, several operators, bad operand, missing field). */
export const I_WHEN_INVALID = 'I_WHEN_INVALID';
/** `on_failure.max_iterations` is not an integer between 0 and 10. */
export const I_MAX_ITERATIONS_RANGE = 'I_MAX_ITERATIONS_RANGE';
/** An edge, `depends` or `inject_into` names a node of another branch (or of the top level from a branch). */
export const I_BRANCH_BOUNDARY = 'I_BRANCH_BOUNDARY';
/** Parallel groups nest deeper than 8 levels. */
export const I_NESTING_DEPTH = 'I_NESTING_DEPTH';
/**
 * A contract where no check could hold: `requires` or `ensures` on an approval
 * node (a gate is not dispatched and produces no output), or a `contract` on an
 * explicit edge leaving one (the gate changes nothing but `__lastApproval`).
 */
export const I_CONTRACT_NOT_ALLOWED = 'I_CONTRACT_NOT_ALLOWED';
/** `ensures.exitCode` on a node that is not `deterministic` (agentic, parallel, playbook, map): only a command has an exit code. */
export const I_EXIT_CODE_NOT_ALLOWED = 'I_EXIT_CODE_NOT_ALLOWED';
/**
 * An `error_handlers` entry pairs a trigger with an action it cannot take:
 * `inject_hint` on `iteration_cap_exceeded` (a node at its cap has no attempt
 * left to read the hint).
 */
export const I_HANDLER_NOT_ALLOWED = 'I_HANDLER_NOT_ALLOWED';
/**
 * A `map` node's `items` is not exactly one template naming a list: `{{tasks}}`,
 * `{{plan.tasks}}` or `{{inputs.tasks}}`, nothing around it. The list is read as
 * a value, never rendered into text, so literal text or a second template has no meaning.
 */
export const I_MAP_ITEMS_INVALID = 'I_MAP_ITEMS_INVALID';
/**
 * A `map` node's `item_input` is not an identifier, or is also a key of the
 * node's `inputs` (the child input would get two values).
 */
export const I_MAP_ITEM_INPUT_INVALID = 'I_MAP_ITEM_INPUT_INVALID';

/** Every issue code, in documentation order. */
export const issueCodes = [
  I_YAML_SYNTAX, I_DUPLICATE_KEY, I_YAML_LIMIT, I_ROOT_NOT_MAP, I_VERSION, I_UNKNOWN_KEY,
  I_MISSING_FIELD, I_INVALID_TYPE, I_INVALID_VALUE, I_UNKNOWN_NODE_TYPE, I_AGENT_MISSING,
  I_DUPLICATE_ID, I_DUPLICATE_INPUT, I_UNKNOWN_REF, I_INJECT_SELF, I_UNKNOWN_INPUT, I_TEMPLATE_NOT_ALLOWED, I_CYCLE,
  I_NO_ENTRY, I_MULTIPLE_ENTRIES, I_UNREACHABLE, I_MULTIPLE_DEFAULT_EDGES, I_WHEN_INVALID,
  I_MAX_ITERATIONS_RANGE, I_BRANCH_BOUNDARY, I_NESTING_DEPTH, I_CONTRACT_NOT_ALLOWED, I_EXIT_CODE_NOT_ALLOWED,
  I_HANDLER_NOT_ALLOWED, I_MAP_ITEMS_INVALID, I_MAP_ITEM_INPUT_INVALID,
] as const;

/** One of the codes in {@link issueCodes}. */
export type IssueCode = (typeof issueCodes)[number];

/**
 * An issue before it is placed in the source: `at` says whether its position is
 * the key named by the last path segment or the value at the path.
 */
export interface DraftIssue {
  code: IssueCode;
  path: (string | number)[];
  message: string;
  at: 'key' | 'value';
}
