import type { RunContext } from '../events/types.js';

/**
 * What a node handed to an agent or a command returns. A dispatcher that throws
 * is the same as `{status: 'failure'}` with the thrown message as `error`.
 *
 * `log`, on either: what the attempt wrote for its operator (an exec agent's
 * or a command's stderr). The runtime keeps its last {@link MAX_ATTEMPT_LOG_BYTES}
 * as the attempt's log beside the run's events (`show --logs`, the viewer;
 * SPEC §7), never in an event.
 */
export type NodeOutcome =
  /** `exitCode`: what a command exited with (a runner's report; `ensures.exitCode` checks it, SPEC §13). */
  | { status: 'success'; output?: Record<string, unknown>; exitCode?: number; log?: string }
  /** `retryable: false`: retrying in place is pointless (the node fails for good, or escalates; SPEC §4). */
  | { status: 'failure'; error?: string; retryable?: boolean; log?: string };

/** How much of an attempt's log is kept: its last 64 KiB (SPEC §7: bounded). */
export const MAX_ATTEMPT_LOG_BYTES = 64 * 1024;

/** Fields every node dispatch carries. */
interface DispatchBase {
  runId: string;
  nodeId: string;
  /**
   * A deep copy of the context the node sees, made when first read; mutating
   * it changes nothing. Read it during the call (the run moves on after it).
   */
  context: RunContext;
  /** 1-based attempt ordinal of this node in the run. */
  iteration: number;
  /**
   * `runId:nodeId:attempt`. Delivery is at-least-once: after a crash the same
   * node may be dispatched again with a new attempt, and a dispatch may be
   * repeated with the same key if the process died after the agent finished.
   */
  idempotencyKey: string;
  playbookName: string;
  /**
   * Always present. Aborted when the runtime gives up on the attempt (its
   * timeout, a cancellation, a failed sibling branch of a `fail_fast` group,
   * a lost lease, host shutdown, an internal error; SPEC §4): stop the work
   * and every process it started, then return. The attempt is recorded only
   * once the call has returned.
   */
  signal: AbortSignal;
}

/** An agentic node (or a deterministic node when no runner is configured). */
export interface DispatchRequest extends DispatchBase {
  /** The node's `agent`, else its `skill`; `deterministic:<command>` for the fallback. */
  agentId: string;
  /** `context.taskId` when it is a non-empty string, else the run id. */
  taskId: string;
  /** The node's `inputs` templates rendered against the context. */
  bindings: Record<string, string>;
  role?: string;
  profile?: string;
  model?: string;
  provider?: string;
  allowed_skills?: string[];
  allowed_tools?: string[];
  context_files?: string[];
  /** For the deterministic fallback: the rendered command line. */
  command?: string;
  args?: string[];
}

/** Hands agentic nodes to an agent. Injected by the host. */
export interface AgentDispatcher {
  dispatch(request: DispatchRequest): Promise<NodeOutcome> | NodeOutcome;
}

/** A deterministic node's command, args rendered. */
export interface RunCommandRequest extends DispatchBase {
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  timeout_ms?: number;
  /**
   * The node's `ensures.exitCode` when it names one other than 0: the exit
   * code the command is expected to end with, which a runner reports as a
   * success (with `exitCode`) rather than a failure.
   */
  expectedExitCode?: number;
}

/** Runs deterministic nodes. Injected by the host (see createSubprocessRunner). */
export interface DeterministicRunner {
  run(request: RunCommandRequest): Promise<NodeOutcome> | NodeOutcome;
}
