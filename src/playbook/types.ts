/**
 * The parsed, validated shape of a `.cantbook` playbook (SPEC §2), with every
 * default applied. Field names follow the YAML file exactly.
 *
 * `parsePlaybook` is the only producer of these values; the zod schema in
 * `schema.ts` is checked against these interfaces at compile time.
 */

export type NodeType = 'agentic' | 'deterministic' | 'approval' | 'parallel' | 'playbook' | 'map';
/** How a parallel group reacts to a failed branch (SPEC §9). */
export type GroupFailure = 'fail_fast' | 'wait_all';
export type AgentRole = 'orchestrator' | 'lead' | 'worker';
export type ApprovalPolicy = 'conservative' | 'permissive' | 'custom';
export type ErrorHandlerTrigger = 'agentic_timeout' | 'iteration_cap_exceeded' | 'contract_violation';
export type ErrorHandlerAction = 'inject_hint' | 'hitl_escalate' | 'abort';

export interface PlaybookInput {
  name: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

export interface OnFailure {
  /** 0..10, default 3 (the run's `maxIterationsDefault` when the key is absent). */
  max_iterations?: number;
  inject_into?: string;
  escalate?: boolean;
  /** Waits between in-place retries (SPEC §10); durations such as `30s`. */
  backoff?: Backoff;
}

/** `on_failure.backoff`: before in-place attempt n >= 2 the node waits min(max, initial * factor^(n-2)). */
export interface Backoff {
  initial: string;
  /** >= 1, default 2. */
  factor?: number;
  max?: string;
}

export interface Requires {
  from?: string;
  fields?: string[];
}

export interface Ensures {
  outputFiles?: string[];
  exitCode?: number;
  /**
   * The name of a schema in the host's registry or a built-in (`task_tree`,
   * `evidence`; SPEC §13). A map is the v1 form: kept, never checked.
   */
  schema?: string | Record<string, unknown>;
}

interface NodeBase {
  id: string;
  description?: string;
  /** `depends: [x]` means an edge x -> this node. */
  depends: string[];
  on_failure?: OnFailure;
  requires?: Requires;
  ensures?: Ensures;
}

export interface AgenticNode extends NodeBase {
  type: 'agentic';
  skill?: string;
  agent?: string;
  role?: AgentRole;
  /** Bindings: string templates rendered against the run context. */
  inputs?: Record<string, string>;
  profile?: string;
  model?: string;
  provider?: string;
  allowed_skills?: string[];
  allowed_tools?: string[];
  context_files?: string[];
  /** A duration such as `10m`: an attempt running longer is aborted and fails `timedOut` (SPEC §10). */
  timeout?: string;
}

export interface DeterministicNode extends NodeBase {
  type: 'deterministic';
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  timeout_ms?: number;
}

export interface ApprovalNode extends NodeBase {
  type: 'approval';
  prompt: string;
  policy?: ApprovalPolicy;
  /** A duration such as `30m`, `72h`, `7d`. */
  timeout?: string;
}

/** One branch of a parallel group: a graph under the same rules as the top level (SPEC §9). */
export interface PlaybookBranch {
  /** Unique across the whole playbook (node ids and branch ids share one namespace). */
  id: string;
  description?: string;
  nodes: PlaybookNode[];
  edges: PlaybookEdge[];
}

/** A group of branches that run at the same time and join in declaration order. */
export interface ParallelNode extends NodeBase {
  type: 'parallel';
  /** `fail_fast` (default): the first failed branch fails the group and aborts the rest. */
  failure: GroupFailure;
  /** Dispatches in flight in this group (its nested groups included) at most. */
  max_concurrency?: number;
  /** At least two. */
  branches: PlaybookBranch[];
}

/**
 * Runs another playbook as a child run of its own (SPEC §12): the node
 * succeeds when the child completes, with the keys the child's nodes produced
 * as its output, and fails like any node otherwise (a retry starts a new child).
 */
export interface PlaybookRefNode extends NodeBase {
  type: 'playbook';
  /** The playbook to run: a path relative to this file (CLI), or whatever the host's `resolvePlaybook` understands. */
  playbook: string;
  /** The child's inputs: templates rendered against this run's context when the child starts. */
  inputs?: Record<string, string>;
}

/**
 * Runs a playbook once per item of a list in the context (SPEC §12), at most
 * `max_concurrency` children at a time. Its output is `{<id>: [{runId,
 * status, output}, ...]}` in item order; it fails when more than `tolerate`
 * children fail (the rest are cancelled).
 */
export interface MapNode extends NodeBase {
  type: 'map';
  /** A single template naming a list in the context, such as `{{tasks}}`. */
  items: string;
  playbook: string;
  /** The child input that receives each item. */
  item_input: string;
  /** The other child inputs, rendered as for a `playbook` node. */
  inputs?: Record<string, string>;
  /** Children in flight at once (default: every item at once). */
  max_concurrency?: number;
  /** Failed children tolerated before the map fails (default 0). */
  tolerate: number;
}

/** A node whose attempt is child runs rather than a dispatch. */
export type ChildRunNode = PlaybookRefNode | MapNode;

export type PlaybookNode = AgenticNode | DeterministicNode | ApprovalNode | ParallelNode | PlaybookRefNode | MapNode;

/** Exactly one operator besides `field`. */
export type EdgeCondition =
  | { field: string; equals: unknown }
  | { field: string; notEquals: unknown }
  | { field: string; exists: boolean }
  | { field: string; in: unknown[] }
  | { field: string; truthy: boolean };

/**
 * An edge's contract. The file may give either side as a list of context keys
 * (`requires: [topic]`); the parser reads it as `{fields: [topic]}` /
 * `{outputFiles: [plan]}`, so the definition always holds the map shape.
 */
export interface EdgeContract {
  requires?: Requires;
  ensures?: Ensures;
}

export interface PlaybookEdge {
  from: string;
  to: string;
  contract?: EdgeContract;
  when?: EdgeCondition;
}

export interface ErrorHandler {
  on: ErrorHandlerTrigger;
  action: ErrorHandlerAction;
  /** What the hint or the escalation gate's prompt says (templates rendered for a gate). */
  message?: string;
  /** For `hitl_escalate`: a duration after which the escalation gate expires, like an approval's `timeout`. */
  timeout?: string;
}

export interface PlaybookDefinition {
  version: '1.0';
  name: string;
  description?: string;
  inputs: PlaybookInput[];
  nodes: PlaybookNode[];
  edges: PlaybookEdge[];
  error_handlers: ErrorHandler[];
}

/** One problem found in a playbook. `line`/`column` are 1-based when known. */
export interface PlaybookIssue {
  code: string;
  /** Path into the document, e.g. `['nodes', 2, 'on_failure', 'max_iterations']`. */
  path: (string | number)[];
  message: string;
  line?: number;
  column?: number;
}

export interface ParsedPlaybook {
  definition: PlaybookDefinition;
  /** SHA-256 hex of the exact source text. */
  sourceHash: string;
}

export interface ParsePlaybookOptions {
  fileName?: string;
  /**
   * The text is one a run was pinned to when it started, perhaps by an earlier
   * version: rules added since that only guard what new runs may start with
   * (the v2 trust rule on `cwd`/`env` templates, `I_TEMPLATE_NOT_ALLOWED`; the
   * contract and handler rules `I_CONTRACT_NOT_ALLOWED`, `I_EXIT_CODE_NOT_ALLOWED`,
   * `I_HANDLER_NOT_ALLOWED`) are not applied, so such a run keeps folding,
   * verifying and resuming. Its `cwd`/`env` are still rendered from inputs only.
   */
  pinned?: boolean;
}
