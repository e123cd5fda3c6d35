import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createActor } from 'xstate';
import type { Actor, InspectionEvent, Observer } from 'xstate';
import type { AgentDispatcher, DeterministicRunner, NodeOutcome } from '../adapters/types.js';
import { CREDENTIAL_BYTES, digestContext, hashResumeToken, issueResumeToken } from '../approvals/resumeToken.js';
import { FoldError, foldRun, initialRunSnapshot } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import { clipError, nextSteps, runStatusOf } from '../compiler/nextStep.js';
import type { NextStep } from '../compiler/nextStep.js';
import { FoldDraft, contextOf } from '../compiler/runState.js';
import type { GateState, RunError } from '../compiler/runState.js';
import { activeNodes } from '../compiler/stateValue.js';
import type { NewRunEvent, RunContext, RunEvent, RunOwner } from '../events/types.js';
import { CantbookError, E_CONCURRENT_UPDATE, E_PLAYBOOK_RESUME_BLOCKED, hasCode } from '../errors.js';
import { parseDuration } from '../playbook/duration.js';
import { renderTemplate } from '../playbook/templates.js';
import type { PlaybookNode } from '../playbook/types.js';
import { toChangedApprovalRows, toRunChanges, toRunRow } from '../projections/projectRun.js';
import type { EventStore } from '../store/eventStore.js';
import type { CompiledPlaybook } from './playbookCache.js';

/** How a call into the runtime ended (SPEC §4). */
export type TerminalStatus = 'completed' | 'failed' | 'pending_approval' | 'exceeded_iteration_cap' | 'cancelled';

/** A gate left waiting for a human by a call (SPEC §6). */
export interface PendingGate {
  approvalId: string;
  nodeId: string;
  runId: string;
  /** The gate's resume token: only for gates this call opened (it is never stored). */
  token?: string;
}

/** What executePlaybook, resumePlaybook and recoverRun return (SPEC §6). */
export interface PlaybookResult {
  runId: string;
  terminalStatus: TerminalStatus;
  finalContext: RunContext;
  /** When paused: the first token of `approvals` (the only copy of it). */
  approvalToken?: string;
  /** When paused: every gate waiting for a human, in the order opened. */
  approvals?: PendingGate[];
  /** When paused: the first gate's approval id and node. */
  approvalId?: string;
  pausedNodeId?: string;
  failedNodeId?: string;
  exceededNodeId?: string;
  /** The last error message (the shape `@cleocode/playbooks` returns), when the run ended badly. */
  errorContext?: string;
  /** How the run ended badly, structured. */
  error?: RunError;
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

type Outcome = { status: 'success'; output: RunContext } | { status: 'failure'; error: string };

/** A dispatch this session started and has not recorded the end of yet. */
interface Attempt {
  nodeId: string;
  attempt: number;
  controller: AbortController;
  /** Set when the runtime gave the attempt up (fail-fast): its result is recorded as aborted. */
  abortedBecause?: string;
  /** The dispatch's lazy `context` (LazyContext), sealed once the dispatch settled. */
  context?: LazyContext;
}

/**
 * One run being driven by this process: the folded snapshot, the events decided
 * but not yet committed, the attempts in flight, and the loop that executes
 * what the machine decides.
 *
 * Guarantees: `NodeStarted` is durable before its node is dispatched; the
 * ready nodes of every branch are dispatched concurrently and each result is
 * committed with whatever the machine decides next as it arrives; an attempt
 * is recorded only after its dispatch settled (an aborted attempt's processes
 * are gone first). If another writer moved the run on, the session re-reads
 * the log and re-applies the results it holds; a resume claim that loses gives
 * E_PLAYBOOK_RESUME_BLOCKED.
 */
export class RunSession {
  private snapshot: RunSnapshot;
  private pending: RunEvent[] = [];
  /** Where the log stands: the version and state value of the last commit. */
  private committed: { version: number; value: unknown };
  private readonly mirror: Actor<CompiledPlaybook['machine']> | undefined;
  private readonly inFlight = new Map<string, Attempt>();
  private readonly arrived: { attempt: Attempt; outcome: Outcome }[] = [];
  private wake: (() => void) | undefined;
  private readonly tokens = new Map<string, string>();
  /**
   * The session owns its fold: each event updates the run's maps in place
   * (FoldDraft), so a step costs what it changes. Going back to the committed
   * state (dropping decisions not committed) means folding the log again
   * (`reload`).
   */
  private draft = new FoldDraft();

  constructor(
    private readonly store: EventStore,
    private readonly playbook: CompiledPlaybook,
    snapshot: RunSnapshot,
    private readonly options: HostOptions,
  ) {
    this.snapshot = snapshot;
    this.committed = { version: snapshot.context.version, value: snapshot.value };
    if (options.inspect) {
      // The mirror actor only exists so inspectors see a live machine; the fold stays the truth.
      // The fold's snapshots are plain {value, context, status}: xstate restores its own from the value.
      const restored = playbook.machine.resolveState({ value: snapshot.value as never, context: snapshot.context });
      this.mirror = createActor(playbook.machine, { snapshot: restored as never, inspect: options.inspect as never });
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

  /** Decides an event: folds it into the snapshot now, writes it at the next commit. Throws FoldError if the machine refuses it. */
  record(event: Omit<NewRunEvent, 'at'>, runId = this.runId): void {
    const stored = { ...event, at: this.now(), runId, seq: this.snapshot.context.version + 1, globalSeq: 0, hash: '' } as RunEvent;
    this.snapshot = foldRun(this.playbook.machine, this.snapshot, [stored], { draft: this.draft });
    this.pending.push(stored);
  }

  /** Makes the decided events durable, with their projections, in one transaction. */
  async commit(): Promise<void> {
    if (this.pending.length === 0) return;
    const approvals = toChangedApprovalRows(this.snapshot, this.pending);
    const events = this.pending.map(({ type, data, at }) => ({ type, data, at }) as NewRunEvent);
    const starts = events.some((event) => event.type === 'RunStarted');
    const { sourceHash, source, model } = this.playbook;
    const stored = await this.store.append({
      runId: this.runId,
      expectedVersion: this.committed.version,
      events,
      run: toRunRow(this.playbook.model, this.snapshot),
      changed: toRunChanges(model, events),
      approvals,
      ...(starts ? { playbook: { sourceHash, name: model.definition.name, source } } : {}),
    });
    for (const event of stored) this.mirror?.send(event as never);
    this.pending = [];
    this.committed = { version: this.snapshot.context.version, value: this.snapshot.value };
    this.options.onEvents?.(stored);
  }

  /**
   * Commits; when another writer appended first (a human deciding a gate in
   * another branch, say), re-reads the log, keeps the results of this
   * session's attempts that the machine still accepts, and lets the loop
   * decide again. A resume claim is never re-applied: it lost.
   */
  private async commitOrRebase(): Promise<boolean> {
    try {
      await this.commit();
      return true;
    } catch (error) {
      if (!hasCode(error, E_CONCURRENT_UPDATE) || this.pending.some((event) => event.type === 'RunResumed')) throw error;
      const results = this.pending.filter((event) => (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') && this.isOwnResult(event));
      this.pending = [];
      await this.reload();
      for (const event of results) {
        try {
          this.record({ type: event.type, data: event.data } as Omit<NewRunEvent, 'at'>);
        } catch (refused) {
          if (!(refused instanceof FoldError)) throw refused;
          // Someone else ended this attempt (a forced recovery, a cancellation): theirs stands.
        }
      }
      return false;
    }
  }

  /** Folds the whole log again from the store: the committed state, with no decision pending. */
  private async reload(): Promise<void> {
    const { machine } = this.playbook;
    this.draft = new FoldDraft();
    this.snapshot = foldRun(machine, initialRunSnapshot(machine), await this.store.readRun(this.runId), { draft: this.draft });
    this.committed = { version: this.snapshot.context.version, value: this.snapshot.value };
  }

  /** A result of an attempt this session dispatched (not an interruption it recorded for a dead process). */
  private isOwnResult(event: RunEvent): boolean {
    if (event.type === 'NodeSucceeded') return true;
    return event.type === 'NodeFailed' && event.data.interrupted !== true;
  }

  /**
   * The loop (SPEC §4, §9): 1. fold the results that arrived, 2. let the
   * machine's state name the next steps, 3. record every decision they call
   * for, 4. commit before any side effect, 5. dispatch every node ready to
   * start, 6. wait for the next result; repeat until the run finishes or
   * nothing is left but gates waiting for a human.
   *
   * An approved gate nobody resumed is runnable work: the session resumes it
   * (its `RunResumed` is committed alone, so of two resumers exactly one wins).
   * Never leaves the run `running` after an internal error: in-flight attempts
   * are aborted and awaited, then RunFailed (internal_error) is recorded when
   * the store still accepts writes.
   */
  async drive(): Promise<PlaybookResult> {
    const runId = this.runId;
    drivenHere.set(runId, (drivenHere.get(runId) ?? 0) + 1);
    try {
      return await this.loop();
    } catch (error) {
      await this.settleAll('the run stopped on an error');
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

  /**
   * Records the decisions the machine allows that need no dispatch, no new
   * gate and no resume claim (a branch ending, a join, a failure), commits
   * them, and stops: what a human's rejection or an expiry sets off, written
   * by a caller that has no dispatcher. Whoever drives the run next goes on.
   */
  async settleDecisions(): Promise<void> {
    for (;;) {
      const step = nextSteps(this.playbook.model, this.snapshot).find(isQuietDecision);
      if (step === undefined) break;
      await this.decide(step);
    }
    await this.commit();
  }

  private async loop(): Promise<PlaybookResult> {
    for (;;) {
      // 1. Results that arrived become events (each in the state the machine is in now).
      for (const { attempt, outcome } of this.arrived.splice(0)) this.recordResult(attempt, outcome);
      // 2-3. Decisions, one at a time: each changes what the machine allows next.
      const steps = nextSteps(this.playbook.model, this.snapshot);
      const decision = steps.find((step) => isDecision(step, this.inFlight) || (step.kind === 'start' && this.playbook.model.nodes.get(step.nodeId)?.type === 'parallel'));
      if (decision) {
        await this.decide(decision);
        continue;
      }
      // 4-5. Every dispatch the machine allows now: durable first, then sent.
      const starts = steps.filter((step): step is Extract<NextStep, { kind: 'start' }> => step.kind === 'start');
      for (const step of starts) this.record({ type: 'NodeStarted', data: { nodeId: step.nodeId, attempt: step.attempt, owner: thisProcess } });
      if (!(await this.commitOrRebase())) continue; // another writer moved the run: decide again on its log
      for (const step of starts) this.dispatchAttempt(step.nodeId, step.attempt);
      for (const step of steps) if (step.kind === 'abort') this.abortAttempt(step.nodeId, 'a sibling branch failed its fail_fast group');
      if (steps.some((step) => step.kind === 'finished')) {
        // Ended by another writer (a cancellation) while attempts were in flight: stop them first.
        await this.settleAll('the run ended');
        this.arrived.length = 0;
        return this.finish();
      }
      if (this.inFlight.size === 0 && starts.length === 0) return this.finish();
      // 6. Wait for whatever finishes first; when other attempts are still out, let this turn of
      // the event loop deliver every result that is ready, so they share one commit.
      if (this.arrived.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
      if (this.inFlight.size > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Records the one event a decision step calls for (and commits a resume claim at once). */
  private async decide(step: NextStep): Promise<void> {
    switch (step.kind) {
      case 'start': // a group: entering it dispatches nothing
        this.record({ type: 'NodeStarted', data: { nodeId: step.nodeId, attempt: step.attempt } });
        return;
      case 'in_flight': // started by a process that is gone (recovery): record the interruption
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'the process running this node stopped before it finished', interrupted: true } });
        return;
      case 'abort': // in flight in a process that is gone, inside a failing fail_fast group
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'aborted: a sibling branch failed its fail_fast group', aborted: true, interrupted: true } });
        return;
      case 'escalate':
        this.record({ type: 'NodeEscalated', data: { from: step.from, to: step.to, error: step.error } });
        return;
      case 'pause':
        this.openGate(step.nodeId);
        return;
      case 'cancel_gate':
        this.record({ type: 'ApprovalCancelled', data: { approvalId: step.approvalId, nodeId: step.nodeId, reason: 'a sibling branch failed its fail_fast group' } });
        return;
      case 'resume': {
        this.record({ type: 'RunResumed', data: { approvalId: step.approvalId, nodeId: step.nodeId } });
        try {
          // Claim the resume before anything runs: of two resumers, exactly one gets past here.
          await this.commit();
        } catch (error) {
          if (hasCode(error, E_CONCURRENT_UPDATE)) {
            throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `gate '${step.approvalId}' of run '${this.runId}' was resumed by another process`, { runId: this.runId, approvalId: step.approvalId }, { cause: error });
          }
          throw error;
        }
        return;
      }
      case 'join':
        this.record({ type: 'NodeSucceeded', data: { nodeId: step.nodeId, attempt: step.attempt, output: step.output } });
        return;
      case 'stop_group':
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'aborted: a sibling branch failed its fail_fast group', aborted: true } });
        return;
      case 'fail_group':
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: step.error } });
        return;
      case 'complete':
        this.record({ type: 'RunCompleted', data: {} });
        return;
      case 'fail':
        if (step.branch) {
          const cause = step.cause as Exclude<typeof step.cause, 'internal_error' | 'cancelled'>;
          this.record({ type: 'BranchFailed', data: { ...step.branch, nodeId: step.nodeId, cause, error: step.error } });
        } else {
          this.record({ type: 'RunFailed', data: { nodeId: step.nodeId, cause: step.cause, error: step.error } });
        }
        return;
      default:
        throw new TypeError(`step '${step.kind}' is not a decision`);
    }
  }

  private recordResult(attempt: Attempt, outcome: Outcome): void {
    const { nodeId, attempt: n } = attempt;
    if (attempt.abortedBecause !== undefined) {
      this.record({ type: 'NodeFailed', data: { nodeId, attempt: n, error: `aborted: ${attempt.abortedBecause}`, aborted: true } });
    } else if (outcome.status === 'success') {
      this.record({ type: 'NodeSucceeded', data: { nodeId, attempt: n, output: outcome.output } });
    } else {
      this.record({ type: 'NodeFailed', data: { nodeId, attempt: n, error: outcome.error } });
    }
  }

  /** Records RunPaused with a fresh token; keeps the token (its only copy) for the result. */
  private openGate(nodeId: string): void {
    const node = this.playbook.model.nodes.get(nodeId);
    if (node?.type !== 'approval') throw new TypeError(`node '${nodeId}' is not an approval node`);
    const state = this.snapshot.context;
    const context = contextOf(this.playbook.model, state, nodeId);
    const approvalId = (this.options.newId ?? randomUUID)();
    const timeoutMs = node.timeout === undefined ? null : parseDuration(node.timeout);
    const expiresAt = timeoutMs === null ? null : new Date(Date.parse(this.now()) + timeoutMs).toISOString();
    const contextDigest = digestContext(context);
    // The credential exists only in the token returned to the caller: nothing stored or inherited can recreate it.
    const token = issueResumeToken(approvalId, randomBytes(CREDENTIAL_BYTES));
    const prompt = renderTemplate(node.prompt, { inputs: state.inputs, context });
    this.record({
      type: 'RunPaused',
      data: { approvalId, nodeId, prompt, tokenHash: hashResumeToken(token), contextDigest, ...(expiresAt === null ? {} : { expiresAt }) },
    });
    this.tokens.set(approvalId, token);
  }

  /** Step 5: hands one node to its dispatcher or runner; the outcome arrives later. */
  private dispatchAttempt(nodeId: string, attempt: number): void {
    const node = this.playbook.model.nodes.get(nodeId) as PlaybookNode;
    const entry: Attempt = { nodeId, attempt, controller: new AbortController() };
    this.inFlight.set(nodeId, entry);
    const arrive = (outcome: Outcome): void => {
      entry.context?.seal();
      this.inFlight.delete(nodeId);
      this.arrived.push({ attempt: entry, outcome });
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    };
    let pending: Promise<NodeOutcome> | NodeOutcome;
    try {
      pending = this.dispatch(node, entry);
    } catch (error) {
      queueMicrotask(() => arrive({ status: 'failure', error: clipError(messageOf(error)) }));
      return;
    }
    Promise.resolve(pending).then(
      (outcome) => arrive(outcomeOf(nodeId, outcome)),
      (error: unknown) => arrive({ status: 'failure', error: clipError(messageOf(error)) }),
    );
  }

  private abortAttempt(nodeId: string, why: string): void {
    const entry = this.inFlight.get(nodeId);
    if (!entry || entry.abortedBecause !== undefined) return;
    entry.abortedBecause = why;
    entry.controller.abort(new Error(`cantbook gave up on ${nodeId} attempt ${entry.attempt}: ${why}`));
  }

  /** Aborts every attempt still in flight and waits until each dispatch has settled. */
  private async settleAll(why: string): Promise<void> {
    for (const nodeId of [...this.inFlight.keys()]) this.abortAttempt(nodeId, why);
    while (this.inFlight.size > 0) await new Promise<void>((resolve) => (this.wake = resolve));
  }

  private dispatch(node: PlaybookNode, entry: Attempt): Promise<NodeOutcome> | NodeOutcome {
    const { attempt, controller: { signal } } = entry;
    const state = this.snapshot.context;
    const context = contextOf(this.playbook.model, state, node.id);
    const lazy = new LazyContext(context, `${node.id} attempt ${attempt}`);
    entry.context = lazy;
    const withContext = <T extends object>(request: T) => lazy.attach(request);
    const render = (text: string) => renderTemplate(text, { inputs: state.inputs, context });
    // cwd and env read the inputs only (SPEC §2 trust note; the parser refuses context templates there too).
    const renderFromInputs = (text: string) => renderTemplate(text, { inputs: state.inputs, context: {} });
    const base = {
      runId: state.runId,
      nodeId: node.id,
      iteration: attempt,
      idempotencyKey: `${state.runId}:${node.id}:${attempt}`,
      playbookName: state.playbookName,
      signal,
    };
    const taskId = typeof context.taskId === 'string' && context.taskId !== '' ? context.taskId : state.runId;
    if (node.type === 'deterministic') {
      const args = node.args.map(render);
      const runner = this.options.deterministicRunner;
      if (runner) {
        return runner.run(withContext({
          ...base,
          command: node.command,
          args,
          ...(node.cwd === undefined ? {} : { cwd: renderFromInputs(node.cwd) }),
          ...(node.env === undefined ? {} : { env: Object.fromEntries(Object.entries(node.env).map(([name, value]) => [name, renderFromInputs(value)])) }),
          ...(node.timeout_ms === undefined ? {} : { timeout_ms: node.timeout_ms }),
        }));
      }
      return this.options.dispatcher.dispatch(withContext({ ...base, agentId: `deterministic:${node.command}`, taskId, bindings: {}, command: node.command, args }));
    }
    if (node.type !== 'agentic') throw new TypeError(`node '${node.id}' cannot be dispatched`);
    const bindings: Record<string, string> = {};
    for (const [key, template] of Object.entries(node.inputs ?? {})) bindings[key] = render(template);
    const pins = pick(node, ['role', 'profile', 'model', 'provider', 'allowed_skills', 'allowed_tools', 'context_files']);
    return this.options.dispatcher.dispatch(withContext({ ...base, ...pins, agentId: (node.agent ?? node.skill) as string, taskId, bindings }));
  }

  /**
   * Records an internal error as RunFailed on top of the last committed state
   * (decisions not yet committed are dropped). If the store refuses this too,
   * the run stays as committed and `recoverRun` can finish it later.
   */
  private async failInternally(error: unknown): Promise<void> {
    const uncommitted = this.pending.length > 0;
    this.pending = [];
    this.arrived.length = 0;
    if (typeof this.committed.value === 'string') return; // idle or already ended
    try {
      // The decisions dropped were folded into the session's maps: fold the log again without them.
      if (uncommitted) await this.reload();
      if (typeof this.snapshot.value === 'string') return;
      const nodeId = activeNodes(this.playbook.model, this.snapshot.value).find((node) => this.playbook.model.nodes.get(node.nodeId)?.type !== 'parallel')?.nodeId;
      this.record({
        type: 'RunFailed',
        data: { ...(nodeId === undefined ? {} : { nodeId }), cause: 'internal_error', error: clipError(`internal error: ${messageOf(error)}`) },
      });
      await this.commit();
    } catch {
      this.pending = []; // the run stays as committed; recovery finishes it
    }
  }

  /** Builds the caller's result from the fold. */
  private finish(): PlaybookResult {
    return resultOf(this.playbook, this.snapshot, this.tokens);
  }
}

/**
 * A dispatch's `context`: a deep copy of what the node sees, made the first
 * time the dispatcher reads it during the call. The run's context is written
 * in place as the run moves on (FoldDraft), so handing a node its context
 * costs nothing until it is read and one copy when it is (SPEC §15). Read
 * only once the dispatch settled, there is no copy of the context it had any
 * more: the read throws rather than show a later one.
 */
class LazyContext {
  private copy: RunContext | undefined;
  private view: RunContext | undefined;

  constructor(
    view: RunContext,
    private readonly what: string,
  ) {
    this.view = view;
  }

  /** Defines `request.context` as this lazy copy. */
  attach<T extends object>(request: T): T & { context: RunContext } {
    return Object.defineProperty(request, 'context', {
      enumerable: true,
      configurable: true,
      get: () => this.read(),
      set: (value: RunContext) => {
        this.copy = value;
      },
    }) as T & { context: RunContext };
  }

  /** The dispatch settled: from now on only a copy already made can be read. */
  seal(): void {
    this.view = undefined;
  }

  private read(): RunContext {
    if (this.copy !== undefined) return this.copy;
    if (this.view === undefined) {
      throw new TypeError(`the context of ${this.what} was read after its dispatch settled; read it (or copy the request) during the call`);
    }
    this.copy = structuredClone(this.view);
    return this.copy;
  }
}

function isQuietDecision(step: NextStep): boolean {
  return ['escalate', 'cancel_gate', 'join', 'fail_group', 'stop_group', 'complete', 'fail'].includes(step.kind);
}

/** Decisions are recorded before any dispatch; a `start` of a group is one (it dispatches nothing). */
function isDecision(step: NextStep, inFlight: ReadonlyMap<string, Attempt>): boolean {
  switch (step.kind) {
    case 'paused':
    case 'finished':
    case 'not_started':
      return false;
    case 'start':
      return false; // handled in the loop, which knows groups from work nodes
    case 'in_flight':
    case 'abort':
      return !inFlight.has(step.nodeId); // ours end when their dispatch settles
    default:
      return true;
  }
}

/**
 * The §6 result of a folded run. `tokens` holds the tokens of gates opened by
 * the current call (approvalId -> token).
 */
export function resultOf(playbook: Pick<CompiledPlaybook, 'model'>, snapshot: RunSnapshot, tokens: ReadonlyMap<string, string> = new Map()): PlaybookResult {
  const state = snapshot.context;
  const result: PlaybookResult = { runId: state.runId, terminalStatus: 'failed', finalContext: state.context };
  const value = snapshot.value;
  if (value === 'completed' || value === 'failed' || value === 'cancelled' || value === 'exceeded_iteration_cap') {
    result.terminalStatus = value;
    if (state.error) {
      result.error = state.error;
      result.errorContext = state.error.message;
    }
    if (value === 'failed' && state.error?.nodeId !== undefined) result.failedNodeId = state.error.nodeId;
    if (value === 'exceeded_iteration_cap' && state.error?.nodeId !== undefined) result.exceededNodeId = state.error.nodeId;
    return result;
  }
  if (runStatusOf(playbook.model, snapshot) === 'paused') {
    const gates = Object.values(state.approvals).filter((gate): gate is GateState => gate.status === 'pending');
    const approvals = gates.map(({ approvalId, nodeId, runId }): PendingGate => {
      const token = tokens.get(approvalId);
      return token === undefined ? { approvalId, nodeId, runId } : { approvalId, nodeId, runId, token };
    });
    const [first] = approvals;
    if (first) {
      result.terminalStatus = 'pending_approval';
      result.approvals = approvals;
      result.approvalId = first.approvalId;
      result.pausedNodeId = first.nodeId;
      const token = approvals.find((gate) => gate.token !== undefined)?.token;
      if (token !== undefined) result.approvalToken = token;
      return result;
    }
  }
  throw new TypeError(`run '${state.runId}' is still running at ${JSON.stringify(value)}`);
}

function outcomeOf(nodeId: string, outcome: NodeOutcome): Outcome {
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
  if (outcome?.status === 'failure') return { status: 'failure', error: clipError(outcome.error ?? `node '${nodeId}' failed`) };
  return { status: 'failure', error: `node '${nodeId}': the dispatcher returned ${JSON.stringify(outcome) ?? 'nothing'} instead of {status: 'success' | 'failure'}` };
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
