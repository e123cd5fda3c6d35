import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createActor } from 'xstate';
import type { Actor, InspectionEvent, Observer } from 'xstate';
import type { AgentDispatcher, DeterministicRunner, NodeOutcome } from '../adapters/types.js';
import { CREDENTIAL_BYTES, digestContext, hashResumeToken, issueResumeToken } from '../approvals/resumeToken.js';
import { foldRun } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import { nextStep } from '../compiler/nextStep.js';
import type { NewRunEvent, RunContext, RunEvent, RunOwner } from '../events/types.js';
import { CantbookError, E_CONCURRENT_UPDATE, E_PLAYBOOK_RESUME_BLOCKED, hasCode } from '../errors.js';
import { parseDuration } from '../playbook/duration.js';
import { renderTemplate } from '../playbook/templates.js';
import type { PlaybookNode } from '../playbook/types.js';
import { toRunRow } from '../projections/projectRun.js';
import type { ErrorContext } from '../projections/types.js';
import type { EventStore } from '../store/eventStore.js';
import type { CompiledPlaybook } from './playbookCache.js';

/** How a call into the runtime ended (SPEC §4). */
export type TerminalStatus = 'completed' | 'failed' | 'pending_approval' | 'exceeded_iteration_cap' | 'cancelled';

/** What executePlaybook, resumePlaybook and recoverRun return (SPEC §6). */
export interface PlaybookResult {
  runId: string;
  terminalStatus: TerminalStatus;
  finalContext: RunContext;
  /** Only when the run just paused at a gate: the one and only copy of the token. */
  approvalToken?: string;
  /** When paused: the gate's approval id and node. */
  approvalId?: string;
  pausedNodeId?: string;
  failedNodeId?: string;
  exceededNodeId?: string;
  errorContext?: ErrorContext;
}

/** Collaborators a run needs to make progress. */
export interface HostOptions {
  dispatcher: AgentDispatcher;
  deterministicRunner?: DeterministicRunner;
  /**
   * Accepted for compatibility with v1 hosts and ignored: a gate's token is a
   * fresh random credential, and only its SHA-256 is stored (docs/security.md).
   */
  approvalSecret?: string;
  /** The clock (default: the system clock). */
  now?: () => Date;
  /** Id generator for approval ids (default: crypto.randomUUID). */
  newId?: () => string;
  /** An XState inspection observer (e.g. @statelyai/inspect's `inspect`) that sees the run's machine. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Called with each batch of events once it is durable. */
  onEvents?: (events: readonly RunEvent[]) => void;
}

const MAX_ERROR_LENGTH = 4000;

/** This process, as NodeStarted records it. */
export const thisProcess: RunOwner = { host: hostname(), pid: process.pid };

/**
 * Sessions in this process driving each run right now (recoverRun must not take
 * them over). A count, not a set: two resumers of one run may overlap in time.
 */
const drivenHere = new Map<string, number>();

/** True while a session in this process is driving `runId`. */
export function isDrivenHere(runId: string): boolean {
  return drivenHere.has(runId);
}

/**
 * One run being driven by this process: the folded snapshot, the events decided
 * but not yet committed, and the loop that executes what the machine decides.
 *
 * Guarantees: `NodeStarted` is durable before its node is dispatched; a node's
 * result is committed together with whatever the machine decides next (one
 * commit per step); if another writer moved the run on, the commit fails with
 * E_CONCURRENT_UPDATE and this session stops without writing.
 */
export class RunSession {
  private snapshot: RunSnapshot;
  private pending: RunEvent[] = [];
  private committedSnapshot: RunSnapshot;
  private readonly mirror: Actor<CompiledPlaybook['machine']> | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly playbook: CompiledPlaybook,
    snapshot: RunSnapshot,
    private readonly options: HostOptions,
  ) {
    this.snapshot = snapshot;
    this.committedSnapshot = snapshot;
    if (options.inspect) {
      // The mirror actor only exists so inspectors see a live machine; the fold stays the truth.
      this.mirror = createActor(playbook.machine, { snapshot: snapshot as never, inspect: options.inspect as never });
      this.mirror.start();
    }
  }

  get runId(): string {
    return this.snapshot.context.runId;
  }

  get state(): RunSnapshot {
    return this.snapshot;
  }

  private now(): string {
    return (this.options.now?.() ?? new Date()).toISOString();
  }

  /** Decides an event: folds it into the snapshot now, writes it at the next commit. */
  record(event: Omit<NewRunEvent, 'at'>, runId = this.runId): void {
    const stored = { ...event, at: this.now(), runId, seq: this.snapshot.context.version + 1, globalSeq: 0, hash: '' } as RunEvent;
    this.snapshot = foldRun(this.playbook.machine, this.snapshot, [stored]);
    this.pending.push(stored);
  }

  /** Step 4 of the loop: makes the decided events durable, with their projections, in one transaction. */
  async commit(): Promise<void> {
    if (this.pending.length === 0) return;
    const context = this.snapshot.context;
    const before = this.committedSnapshot.context;
    const changed = Object.values(context.approvals).filter((row) => before.approvals[row.approvalId] !== row);
    const events = this.pending.map(({ type, data, at }) => ({ type, data, at }) as NewRunEvent);
    const stored = await this.store.append({
      runId: context.runId,
      expectedVersion: before.version,
      events,
      run: toRunRow(context),
      approvals: changed,
    });
    for (const event of stored) this.mirror?.send(event as never);
    this.pending = [];
    this.committedSnapshot = this.snapshot;
    this.options.onEvents?.(stored);
  }

  /**
   * The loop (SPEC §4): 1. read where the fold stands, 2. let the machine's
   * state name the next step, 3. record the event(s) it calls for, 4. commit
   * before any side effect, 5. execute the node, 6. record its result; repeat
   * until the run finishes or pauses.
   *
   * `resume: true` lets it record `RunResumed` for an approved gate (only
   * resumePlaybook passes it). Never leaves the run `running` after an internal
   * error: that is recorded as RunFailed (cause internal_error) when the store
   * still accepts writes.
   */
  async drive({ resume = false } = {}): Promise<PlaybookResult> {
    const runId = this.runId;
    drivenHere.set(runId, (drivenHere.get(runId) ?? 0) + 1);
    try {
      return await this.loop(resume);
    } catch (error) {
      if (hasCode(error, E_CONCURRENT_UPDATE) || hasCode(error, E_PLAYBOOK_RESUME_BLOCKED)) throw error;
      await this.failInternally(error);
      throw error;
    } finally {
      const sessions = (drivenHere.get(runId) ?? 1) - 1;
      if (sessions === 0) drivenHere.delete(runId);
      else drivenHere.set(runId, sessions);
      this.mirror?.stop();
    }
  }

  private async loop(resume: boolean): Promise<PlaybookResult> {
    let token: string | undefined;
    for (;;) {
      const step = nextStep(this.playbook.model, this.snapshot);
      switch (step.kind) {
        case 'start': {
          this.record({ type: 'NodeStarted', data: { nodeId: step.nodeId, attempt: step.attempt, owner: thisProcess } });
          await this.commit();
          const outcome = await this.execute(step.nodeId, step.attempt);
          this.record(
            outcome.status === 'success'
              ? { type: 'NodeSucceeded', data: { nodeId: step.nodeId, attempt: step.attempt, output: outcome.output } }
              : { type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: outcome.error } },
          );
          break;
        }
        case 'in_flight':
          // Only a recovering session sees this: the process that started the node died.
          this.record({
            type: 'NodeFailed',
            data: { nodeId: step.nodeId, attempt: step.attempt, error: 'the process running this node stopped before it finished', interrupted: true },
          });
          break;
        case 'escalate': {
          const error = lastNodeError(this.pending, step.from);
          this.record({ type: 'NodeEscalated', data: { from: step.from, to: step.to, error } });
          break;
        }
        case 'pause':
          token = this.openGate(step.nodeId);
          break;
        case 'resume': {
          if (!resume) return this.finish(token);
          const gate = Object.values(this.snapshot.context.approvals).findLast((row) => row.nodeId === step.nodeId && row.status === 'approved' && !row.resumed);
          if (!gate) throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `run '${this.runId}' has no approved gate at '${step.nodeId}' to resume`);
          this.record({ type: 'RunResumed', data: { approvalId: gate.approvalId, nodeId: step.nodeId } });
          try {
            // Claim the resume before anything runs: of two resumers, exactly one gets past here.
            await this.commit();
          } catch (error) {
            if (hasCode(error, E_CONCURRENT_UPDATE)) {
              throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `gate '${gate.approvalId}' of run '${this.runId}' was resumed by another process`, { runId: this.runId, approvalId: gate.approvalId }, { cause: error });
            }
            throw error;
          }
          resume = false;
          break;
        }
        case 'complete':
          this.record({ type: 'RunCompleted', data: {} });
          break;
        case 'fail': {
          // A run that ran out of attempts says why its last attempt failed, not only that it did.
          const last = step.cause === 'exceeded_iteration_cap' ? findNodeError(this.pending, step.nodeId) : undefined;
          const error = last === undefined ? step.error : clip(`${step.error}; last error: ${last}`);
          this.record({ type: 'RunFailed', data: { nodeId: step.nodeId, cause: step.cause, error } });
          break;
        }
        case 'paused':
        case 'finished':
          await this.commit();
          return this.finish(token);
        case 'not_started':
          throw new TypeError(`run has no RunStarted event`);
      }
    }
  }

  /** Records RunPaused with a fresh token; returns the token (its only copy). */
  private openGate(nodeId: string): string {
    const node = this.playbook.model.nodes.get(nodeId);
    if (node?.type !== 'approval') throw new TypeError(`node '${nodeId}' is not an approval node`);
    const context = this.snapshot.context;
    const approvalId = (this.options.newId ?? randomUUID)();
    const timeoutMs = node.timeout === undefined ? null : parseDuration(node.timeout);
    const expiresAt = timeoutMs === null ? null : new Date(Date.parse(this.now()) + timeoutMs).toISOString();
    const contextDigest = digestContext(context.context);
    // The credential exists only in the token returned to the caller: nothing stored or inherited can recreate it.
    const token = issueResumeToken(approvalId, randomBytes(CREDENTIAL_BYTES));
    const prompt = renderTemplate(node.prompt, { inputs: context.inputs, context: context.context });
    this.record({
      type: 'RunPaused',
      data: { approvalId, nodeId, prompt, tokenHash: hashResumeToken(token), contextDigest, ...(expiresAt === null ? {} : { expiresAt }) },
    });
    return token;
  }

  /** Step 5: hands one node to its dispatcher or runner. Never throws: failures are outcomes. */
  private async execute(nodeId: string, attempt: number): Promise<{ status: 'success'; output: RunContext } | { status: 'failure'; error: string }> {
    const node = this.playbook.model.nodes.get(nodeId) as PlaybookNode;
    let outcome: NodeOutcome;
    try {
      outcome = await this.dispatch(node, attempt);
    } catch (error) {
      return { status: 'failure', error: clip(messageOf(error)) };
    }
    if (outcome?.status === 'success') {
      const output = outcome.output ?? {};
      if (typeof output !== 'object' || output === null || Array.isArray(output)) {
        return { status: 'failure', error: `node '${nodeId}' returned output that is not an object` };
      }
      try {
        // The log stores JSON; the live fold must see exactly what a replay will.
        return { status: 'success', output: JSON.parse(JSON.stringify(output)) as RunContext };
      } catch (error) {
        return { status: 'failure', error: `node '${nodeId}' returned output that is not JSON: ${messageOf(error)}` };
      }
    }
    if (outcome?.status === 'failure') return { status: 'failure', error: clip(outcome.error ?? `node '${nodeId}' failed`) };
    return { status: 'failure', error: `node '${nodeId}': the dispatcher returned ${JSON.stringify(outcome) ?? 'nothing'} instead of {status: 'success' | 'failure'}` };
  }

  private dispatch(node: PlaybookNode, attempt: number): Promise<NodeOutcome> | NodeOutcome {
    const state = this.snapshot.context;
    const render = (text: string) => renderTemplate(text, { inputs: state.inputs, context: state.context });
    // cwd and env read the inputs only (SPEC §2 trust note; the parser refuses context templates there too).
    const renderFromInputs = (text: string) => renderTemplate(text, { inputs: state.inputs, context: {} });
    const base = {
      runId: state.runId,
      nodeId: node.id,
      context: structuredClone(state.context),
      iteration: attempt,
      idempotencyKey: `${state.runId}:${node.id}:${attempt}`,
      playbookName: state.playbookName,
    };
    const taskId = typeof state.context.taskId === 'string' && state.context.taskId !== '' ? state.context.taskId : state.runId;
    if (node.type === 'deterministic') {
      const args = node.args.map(render);
      const runner = this.options.deterministicRunner;
      if (runner) {
        return runner.run({
          ...base,
          command: node.command,
          args,
          ...(node.cwd === undefined ? {} : { cwd: renderFromInputs(node.cwd) }),
          ...(node.env === undefined ? {} : { env: Object.fromEntries(Object.entries(node.env).map(([name, value]) => [name, renderFromInputs(value)])) }),
          ...(node.timeout_ms === undefined ? {} : { timeout_ms: node.timeout_ms }),
        });
      }
      return this.options.dispatcher.dispatch({ ...base, agentId: `deterministic:${node.command}`, taskId, bindings: {}, command: node.command, args });
    }
    if (node.type !== 'agentic') throw new TypeError(`node '${node.id}' cannot be dispatched`);
    const bindings: Record<string, string> = {};
    for (const [key, template] of Object.entries(node.inputs ?? {})) bindings[key] = render(template);
    const pins = pick(node, ['role', 'profile', 'model', 'provider', 'allowed_skills', 'allowed_tools', 'context_files']);
    return this.options.dispatcher.dispatch({ ...base, ...pins, agentId: (node.agent ?? node.skill) as string, taskId, bindings });
  }

  /**
   * Records an internal error as RunFailed on top of the last committed state
   * (decisions not yet committed are dropped). If the store refuses this too,
   * the run stays as committed and `recoverRun` can finish it later.
   */
  private async failInternally(error: unknown): Promise<void> {
    this.pending = [];
    this.snapshot = this.committedSnapshot;
    if (this.snapshot.context.status !== 'running' || this.snapshot.value === 'idle') return;
    try {
      const nodeId = this.snapshot.context.currentNode;
      this.record({
        type: 'RunFailed',
        data: { ...(nodeId === null ? {} : { nodeId }), cause: 'internal_error', error: clip(`internal error: ${messageOf(error)}`) },
      });
      await this.commit();
    } catch {
      this.pending = [];
      this.snapshot = this.committedSnapshot;
    }
  }

  /** Builds the caller's result from the fold. */
  private finish(token: string | undefined): PlaybookResult {
    return resultOf(this.snapshot, token);
  }
}

/** The §6 result of a folded run. */
export function resultOf(snapshot: RunSnapshot, token?: string): PlaybookResult {
  const state = snapshot.context;
  const result: PlaybookResult = { runId: state.runId, terminalStatus: 'failed', finalContext: state.context };
  if (state.error) result.errorContext = state.error;
  const value = snapshot.value;
  if (value === 'completed' || value === 'failed' || value === 'cancelled' || value === 'exceeded_iteration_cap') {
    result.terminalStatus = value;
    if (value === 'failed' && state.error?.nodeId !== undefined) result.failedNodeId = state.error.nodeId;
    if (value === 'exceeded_iteration_cap' && state.error?.nodeId !== undefined) result.exceededNodeId = state.error.nodeId;
    return result;
  }
  const gate = Object.values(state.approvals).at(-1);
  if (state.status === 'paused' && gate) {
    result.terminalStatus = 'pending_approval';
    result.approvalId = gate.approvalId;
    result.pausedNodeId = gate.nodeId;
    if (token !== undefined) result.approvalToken = token;
    return result;
  }
  throw new TypeError(`run '${state.runId}' is still ${state.status} at ${JSON.stringify(value)}`);
}

/** The error of the node's latest failure among the events not yet committed, if there is one. */
function findNodeError(pending: readonly RunEvent[], nodeId: string): string | undefined {
  const failed = pending.findLast((event) => event.type === 'NodeFailed' && event.data.nodeId === nodeId);
  return failed?.type === 'NodeFailed' ? failed.data.error : undefined;
}

function lastNodeError(pending: readonly RunEvent[], nodeId: string): string {
  return findNodeError(pending, nodeId) ?? `node '${nodeId}' failed`;
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
}

function clip(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}… (${text.length - MAX_ERROR_LENGTH} more characters)` : text;
}
