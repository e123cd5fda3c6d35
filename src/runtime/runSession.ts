import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createActor } from 'xstate';
import type { Actor, InspectionEvent, Observer } from 'xstate';
import { MAX_ATTEMPT_LOG_BYTES } from '../adapters/types.js';
import type { AgentDispatcher, DeterministicRunner, NodeOutcome } from '../adapters/types.js';
import { CREDENTIAL_BYTES, digestContext, hashResumeToken, issueResumeToken } from '../approvals/resumeToken.js';
import { FoldError, foldRun, initialRunSnapshot } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import { clipError, nextSteps, runStatusOf } from '../compiler/nextStep.js';
import type { NextStep, RunStatus } from '../compiler/nextStep.js';
import { FoldDraft, contextOf } from '../compiler/runState.js';
import type { GateState, RunError } from '../compiler/runState.js';
import { attemptTimeoutMs } from '../compiler/playbookModel.js';
import { exitViolation } from '../contracts/checkContracts.js';
import type { SchemaRegistry } from '../contracts/ensuresSchema.js';
import { decideGatePolicy } from '../policy/gatePolicy.js';
import { policyRuleIssues } from '../policy/evaluatePolicy.js';
import type { PolicyRule } from '../policy/evaluatePolicy.js';
import { activeNodes } from '../compiler/stateValue.js';
import type { EscalationData, NewRunEvent, RunContext, RunEvent, RunOwner } from '../events/types.js';
import {
  CantbookError,
  E_CONCURRENT_UPDATE,
  E_LEASE_LOST,
  E_PLAYBOOK_RESUME_BLOCKED,
  E_PLAYBOOK_RUNTIME_INVALID,
  E_RUN_ACTIVE,
  E_RUN_INTERRUPTED,
  E_STORE_UNAVAILABLE,
  hasCode,
} from '../errors.js';
import { parseDuration } from '../playbook/duration.js';
import { renderTemplate } from '../playbook/templates.js';
import type { PlaybookNode } from '../playbook/types.js';
import { toChangedApprovalRows, toRunChanges, toRunRow } from '../projections/projectRun.js';
import type { AttemptLog, EventStore, Lease, RunSettings } from '../store/eventStore.js';
import { clockOf, sleep } from './clock.js';
import type { Clock } from './clock.js';
import type { CompiledPlaybook } from './playbookCache.js';
import { cancelTree, ChildTracker, unsettledChildren } from './childRuns.js';
import { loadRun } from './loadRun.js';

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
  /** The clock (default: the system clock). `clock`, when given, wins. */
  now?: () => Date;
  /** The clock and its timers (SPEC §10): injected in tests, so that time moves by hand. */
  clock?: Clock;
  /** How long a driver's lease on a run lasts without renewal (default 30 s); renewed every third of it (SPEC §11). */
  leaseMs?: number;
  /** Who drives, as leases and `NodeStarted.owner` record it (default `<host>:<pid>`). */
  workerId?: string;
  /**
   * Host shutdown: when it aborts, the driver aborts its attempts, waits until
   * their processes are gone, records nothing about them, releases the run's
   * lease and throws E_RUN_INTERRUPTED. The run stays recoverable.
   */
  signal?: AbortSignal;
  /** Id generator for approval ids (default: crypto.randomUUID). */
  newId?: () => string;
  /** An XState inspection observer (e.g. @statelyai/inspect's `inspect`) that sees the run's machine. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Called with each batch of events once it is durable. */
  onEvents?: (events: readonly RunEvent[]) => void;
  /**
   * The `ensures.schema` registry (SPEC §13): schema name -> zod schema (or
   * `{schema, key}`), beside the built-ins `task_tree` and `evidence`. A name
   * in neither fails closed.
   */
  schemas?: SchemaRegistry;
  /** The rules of gates with `policy: custom` (SPEC §13); `permissive` gates use DEFAULT_POLICY_RULES. */
  policyRules?: readonly PolicyRule[];
  /**
   * What a new root run remembers of how it is driven (the agent spec it was
   * started with; docs/adr/0010), stored beside its log with its first event
   * and read back by `getRunSettings`. Never put a credential here.
   */
  runSettings?: RunSettings;
}

/** This process, as NodeStarted records it (information: leases decide who drives). */
export const thisProcess: RunOwner = { host: hostname(), pid: process.pid };

/** Default lease length (SPEC §11): a driver that dies is taken over this long after its last renewal. */
export const DEFAULT_LEASE_MS = 30_000;

/** A worker's session hands a run back (lease released, woken by its due time) rather than wait longer than this. */
const HAND_BACK_MS = 1000;

/**
 * Sessions driving each run in this process right now: an append by anyone in
 * this process (a cancellation, a human's decision) tells them at once, rather
 * than at their next lease renewal.
 */
const liveSessions = new Map<string, Set<RunSession>>();

/** Tells the sessions of this process that drive `runId` that its log moved on. */
export function noticeAppend(runId: string, except?: RunSession): void {
  for (const session of liveSessions.get(runId) ?? []) if (session !== except) session.markStale();
}

type Outcome = { status: 'success'; output: RunContext; exitCode?: number } | { status: 'failure'; error: string; retryable?: false };

/** How a driving call ended for a worker: a result, or the run handed back until `dueAt` (null: until a child run it waits for ends). */
export type DriveOutcome = { kind: 'result'; result: PlaybookResult } | { kind: 'waiting'; dueAt: string | null };

/** Why the runtime gave an attempt up: it decides what (if anything) the attempt records. */
type AttemptStop =
  | { kind: 'aborted'; why: string } // fail-fast: NodeFailed{aborted}
  | { kind: 'timed_out'; why: string } // its timeout: NodeFailed{timedOut}
  | { kind: 'halted'; why: string }; // the driver stops (shutdown, lease lost, run ended, error): nothing

/** A dispatch this session started and has not recorded the end of yet. */
interface Attempt {
  nodeId: string;
  attempt: number;
  controller: AbortController;
  /** Set when the runtime gave the attempt up; what it records then depends on why. */
  stop?: AttemptStop;
  /** The dispatch's lazy `context` (LazyContext), sealed once the dispatch settled. */
  context?: LazyContext;
  /** Cancels the attempt's timeout timer. */
  cancelTimeout?: () => void;
  /** The session's reload count when dispatched: a result refused after a reload was overtaken by another writer. */
  generation: number;
  /** What the dispatch returned as its log, bounded (SPEC §7). */
  log?: AttemptLog;
}

/**
 * One run being driven by this process: the folded snapshot, the events decided
 * but not yet committed, the attempts in flight, the lease that lets it drive,
 * and the loop that executes what the machine decides.
 *
 * Guarantees: the session drives only while it holds the run's lease, and
 * every append it makes carries the lease's fencing token (SPEC §11);
 * `NodeStarted` is durable before its node is dispatched; the ready nodes of
 * every branch are dispatched concurrently and each result is committed with
 * whatever the machine decides next as it arrives; an attempt is recorded
 * only after its dispatch settled (an aborted attempt's processes are gone
 * first). If another writer moved the run on, the session re-reads the log
 * and re-applies the results it holds; a resume claim that loses gives
 * E_PLAYBOOK_RESUME_BLOCKED. A transient store error is retried within the
 * lease and otherwise stops the session without recording anything.
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
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private lease: Lease | undefined;
  /** Set when the session must stop without recording more (shutdown, lost lease): thrown by the loop. */
  private halt: CantbookError | undefined;
  /** Another writer appended to the run: fold the log again before deciding. */
  private stale = false;
  private committing = false;
  /** How many times the log was folded again (see Attempt.generation). */
  private generation = 0;
  private cancelRenewal: (() => void) | undefined;
  private cancelDeadline: (() => void) | undefined;
  private driving = false;
  /**
   * The session owns its fold: each event updates the run's maps in place
   * (FoldDraft), so a step costs what it changes. Going back to the committed
   * state (dropping decisions not committed) means folding the log again
   * (`reload`).
   */
  private draft = new FoldDraft();
  /** The child runs this session looks after (SPEC §12), once its steps name one. */
  private children: ChildTracker | undefined;
  /** Driving for a worker: children are left to workers, and the run is handed back while it waits for them. */
  private handBack = false;
  /** Stops the child sessions this one drives inline when it stops. */
  private readonly childStop = new AbortController();
  /** Inline, the lease was let go while only children run (SPEC §12): the next commit leases the run again, if it still can. */
  private waitingForChildren = false;
  /** Logs of recorded attempts, by attempt key, written with the commit that holds the attempt's result. */
  private readonly logs = new Map<string, AttemptLog>();

  constructor(
    private readonly store: EventStore,
    private readonly playbook: CompiledPlaybook,
    snapshot: RunSnapshot,
    private readonly options: HostOptions,
    lease?: Lease,
  ) {
    this.snapshot = snapshot;
    this.committed = { version: snapshot.context.version, value: snapshot.value };
    this.clock = clockOf(options);
    this.leaseMs = leaseMsOf(options.leaseMs);
    this.lease = lease;
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
    return this.clock.now().toISOString();
  }

  /** Decides an event: folds it into the snapshot now, writes it at the next commit. Throws FoldError if the machine refuses it. */
  record(event: Omit<NewRunEvent, 'at'>, runId = this.runId, at = this.now()): void {
    const stored = { ...event, at, runId, seq: this.snapshot.context.version + 1, globalSeq: 0, hash: '' } as RunEvent;
    this.snapshot = foldRun(this.playbook.machine, this.snapshot, [stored], { draft: this.draft });
    this.pending.push(stored);
  }

  /**
   * Makes the decided events durable, with their projections, in one
   * transaction, carrying the lease's token when driving. The commit after
   * which the drive ends (the run ended, or only gates wait) releases the
   * lease in the same transaction; should the session have to write again,
   * it leases the run again first.
   */
  async commit(): Promise<void> {
    if (this.pending.length === 0) return;
    // A new run takes its first lease in its first append; a drive that released its lease takes it again.
    const creating = this.driving && this.lease === undefined && this.startsRun();
    if (creating) this.lease = { runId: this.runId, owner: this.owner(), token: 1, expiresAt: this.expiry() };
    else if (this.driving && this.lease === undefined) await this.takeLease();
    const lease = this.lease;
    const release = lease !== undefined && this.driving && this.endsDrive();
    const approvals = toChangedApprovalRows(this.snapshot, this.pending);
    const events = this.pending.map(({ type, data, at }) => ({ type, data, at }) as NewRunEvent);
    const starts = events.some((event) => event.type === 'RunStarted');
    // A child run's last commit wakes its parent, which learns how it ended from this log (SPEC §12).
    const parent = this.snapshot.context.parent;
    const wakeParent = parent !== null && isEnd(this.snapshot.value) && !isEnd(this.committed.value);
    const { sourceHash, source, model } = this.playbook;
    const attemptLogs = this.logs.size === 0 ? [] : this.logsOf(events);
    // What a root run remembers of how it is driven (docs/adr/0010): written once, with its first event.
    const settings = starts && parent === null ? this.options.runSettings : undefined;
    this.committing = true;
    let stored: RunEvent[];
    try {
      stored = await this.store.append({
        runId: this.runId,
        expectedVersion: this.committed.version,
        events,
        run: toRunRow(this.playbook.model, this.snapshot),
        changed: toRunChanges(model, events),
        approvals,
        ...(starts ? { playbook: { sourceHash, name: model.definition.name, source } } : {}),
        ...(wakeParent ? { wakeRun: parent.runId } : {}),
        ...(attemptLogs.length === 0 ? {} : { attemptLogs }),
        ...(settings === undefined ? {} : { settings }),
        ...(lease === undefined ? {} : { lease: { token: lease.token, ...(release ? { release } : {}), ...(creating ? { create: { owner: lease.owner, expiresAt: lease.expiresAt } } : {}) } }),
      });
    } catch (error) {
      if (creating) this.lease = undefined;
      throw error;
    } finally {
      this.committing = false;
    }
    if (release) this.lease = undefined;
    for (const log of attemptLogs) this.logs.delete(attemptKey(log.nodeId, log.attempt));
    for (const event of stored) this.mirror?.send(event as never);
    this.pending = [];
    this.committed = { version: this.snapshot.context.version, value: this.snapshot.value };
    noticeAppend(this.runId, this);
    this.options.onEvents?.(stored);
  }

  /**
   * Commits; a transient store error (a lock held by another connection) is
   * retried with growing pauses while the session's lease has time left
   * (SPEC §4: a node's result is not lost to a transient error). Without a
   * lease (a human's decision), a few times.
   */
  private async commitDurably(): Promise<void> {
    for (let pause = 100, tries = 1; ; pause = Math.min(pause * 2, 2000), tries += 1) {
      try {
        await this.commit();
        return;
      } catch (error) {
        if (!isTransient(error)) throw error;
        const room = this.lease === undefined ? (tries < 4 ? Infinity : 0) : Date.parse(this.lease.expiresAt) - this.clock.now().getTime() - pause;
        if (room <= 0 || this.halt !== undefined) throw error;
        await sleep(this.clock, pause);
        if (this.halt !== undefined) throw this.halt;
      }
    }
  }

  /**
   * Commits; when another writer appended first (a human deciding a gate in
   * another branch, a cancellation), re-reads the log, keeps the results of
   * this session's attempts that the machine still accepts, and lets the loop
   * decide again. A resume claim is never re-applied: it lost.
   */
  private async commitOrRebase(): Promise<boolean> {
    try {
      await this.commitDurably();
      return true;
    } catch (error) {
      if (!hasCode(error, E_CONCURRENT_UPDATE) || this.pending.some((event) => event.type === 'RunResumed')) throw error;
      const results = this.pending.filter((event) => (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') && this.isOwnResult(event));
      this.pending = [];
      await this.reload();
      for (const event of results) {
        try {
          // A success is checked again against its contracts on the log as it now stands.
          if (event.type === 'NodeSucceeded') this.recordSuccess(event.data.nodeId, event.data.attempt, event.data.output, event.data.exitCode);
          else this.record({ type: event.type, data: event.data } as Omit<NewRunEvent, 'at'>);
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
    this.generation += 1;
    this.snapshot = foldRun(machine, initialRunSnapshot(machine), await this.store.readRun(this.runId), { draft: this.draft });
    this.committed = { version: this.snapshot.context.version, value: this.snapshot.value };
  }

  /** The logs of the attempts whose results `events` record. */
  private logsOf(events: readonly NewRunEvent[]): AttemptLog[] {
    const logs: AttemptLog[] = [];
    for (const event of events) {
      if (event.type !== 'NodeSucceeded' && event.type !== 'NodeFailed') continue;
      const log = this.logs.get(attemptKey(event.data.nodeId, event.data.attempt));
      if (log !== undefined) logs.push(log);
    }
    return logs;
  }

  /** A result of an attempt this session dispatched (not an interruption it recorded for a dead process). */
  private isOwnResult(event: RunEvent): boolean {
    if (event.type === 'NodeSucceeded') return true;
    return event.type === 'NodeFailed' && event.data.interrupted !== true;
  }

  /** Whether the events to commit start the run (its RunStarted, nothing in the store yet). */
  private startsRun(): boolean {
    return this.committed.version === 0 && this.pending[0]?.type === 'RunStarted';
  }

  private owner(): string {
    return ownerOf(this.options);
  }

  private expiry(): string {
    return new Date(this.clock.now().getTime() + this.leaseMs).toISOString();
  }

  /** Whether the drive ends with the events decided now: the run ended, or nothing is left but gates waiting for a human. */
  private endsDrive(): boolean {
    if (typeof this.snapshot.value === 'string') return true;
    if (this.inFlight.size > 0 || this.arrived.length > 0) return false;
    // A batch that starts a node (the common step) goes on: no need to read the machine state.
    for (let i = this.pending.length - 1; i >= 0; i--) if (this.pending[i]?.type === 'NodeStarted') return false;
    return runStatusOf(this.playbook.model, this.snapshot) === 'paused';
  }

  /** Someone else appended to the run: the loop folds the log again before its next decision. */
  markStale(): void {
    if (!this.driving) return;
    this.stale = true;
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Stops the session: every attempt is aborted (and recorded as nothing), and the loop throws `error`. */
  private haltWith(error: CantbookError): void {
    if (this.halt !== undefined) return;
    this.halt = error;
    for (const nodeId of [...this.inFlight.keys()]) this.stopAttempt(nodeId, { kind: 'halted', why: error.message });
    this.poke();
  }

  /**
   * The loop (SPEC §4, §9, §10) under the run's lease: 1. fold the results
   * that arrived, 2. let the machine's state name the next steps, 3. record
   * every decision they call for (a due gate's expiry, a retry's backoff
   * included), 4. commit before any side effect, 5. dispatch every node ready
   * to start now, 6. wait for the next result or due time; repeat until the
   * run finishes or nothing is left but gates waiting for a human.
   *
   * An approved gate nobody resumed is runnable work: the session resumes it
   * (its `RunResumed` is committed alone, so of two resumers exactly one wins).
   * Never leaves the run `running` after an internal error: in-flight attempts
   * are aborted and awaited, then RunFailed (internal_error) is recorded when
   * the store still accepts writes. A host shutdown, a lost lease and a
   * transient store error record nothing: the run stays recoverable.
   *
   * Takes the run's lease first unless the session was given one (a worker's
   * claim); E_RUN_ACTIVE while another driver holds a live one.
   */
  async drive(): Promise<PlaybookResult> {
    const outcome = await this.driveFor(false);
    if (outcome.kind !== 'result') throw new TypeError('an inline driver never hands a run back');
    return outcome.result;
  }

  /** As drive, for a worker: a run whose next step waits longer than a second is handed back (its lease released; its due time wakes a worker). */
  driveForWorker(): Promise<DriveOutcome> {
    return this.driveFor(true);
  }

  private async driveFor(handBack: boolean): Promise<DriveOutcome> {
    const runId = this.runId;
    const signal = this.options.signal;
    const onAbort = (): void => this.haltWith(new CantbookError(E_RUN_INTERRUPTED, `the driver of run '${runId}' was asked to stop; the run is left for a worker or \`cantbook recover\``, { runId }));
    this.driving = true;
    this.handBack = handBack;
    const sessions = liveSessions.get(runId) ?? new Set<RunSession>();
    sessions.add(this);
    liveSessions.set(runId, sessions);
    try {
      // A run not started yet is leased by its first append (commit); any other before anything else.
      if (this.lease === undefined && !this.startsRun()) await this.takeLease();
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.renewLater();
      await this.cancelIfOrphaned();
      return await this.loop(handBack);
    } catch (error) {
      await this.settleAll({ kind: 'halted', why: 'the run stopped on an error' });
      if (isStop(error)) throw error;
      await this.failInternally(error);
      throw error;
    } finally {
      this.driving = false;
      signal?.removeEventListener('abort', onAbort);
      this.cancelRenewal?.();
      this.cancelDeadline?.();
      sessions.delete(this);
      if (sessions.size === 0) liveSessions.delete(runId);
      // Children driven inline stop with their parent's driver (recorded as nothing: recoverable).
      this.childStop.abort();
      await this.children?.stop();
      await this.releaseLease();
      this.mirror?.stop();
    }
  }

  /** Leases the run for this session; E_RUN_ACTIVE while someone else holds a live lease. */
  private async takeLease(): Promise<void> {
    this.lease = await leaseRun(this.store, this.runId, this.options);
  }

  private async releaseLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease === undefined || hasCode(this.halt, E_LEASE_LOST)) return;
    try {
      await this.store.releaseLease(lease);
    } catch {
      // It expires on its own.
    }
  }

  /**
   * Renews the lease every third of its length. The renewal also says whether
   * someone else appended (a cancellation from another process): then the
   * loop re-reads the log. A lease that cannot be renewed any more (taken
   * over, or expired while the store was unreachable) halts the session.
   *
   * The lease's own end is a deadline too, kept by this host's clock: a
   * driver whose renewals get no answer at all (a partition, a connection
   * that hangs) halts when its lease runs out, not when the store answers,
   * so it stops its attempts before another driver may take the run over.
   */
  private renewLater(): void {
    const every = Math.max(1, Math.floor(this.leaseMs / 3));
    this.cancelRenewal = this.clock.setTimer(() => void this.renew().finally(() => {
      if (this.driving && this.halt === undefined) this.renewLater();
    }), every);
    this.keepDeadline();
  }

  /** Halts the session once its lease's expiry passes unrenewed (a new run's lease exists from its first commit on). */
  private keepDeadline(): void {
    this.cancelDeadline?.();
    const lease = this.lease;
    const left = lease === undefined ? this.leaseMs : Date.parse(lease.expiresAt) - this.clock.now().getTime();
    this.cancelDeadline = this.clock.setTimer(() => {
      const current = this.lease;
      if (!this.driving || this.halt !== undefined) return;
      if (current === undefined || this.clock.now().getTime() < Date.parse(current.expiresAt)) {
        this.keepDeadline();
        return;
      }
      this.haltWith(new CantbookError(E_LEASE_LOST, `the lease of run '${this.runId}' expired at ${current.expiresAt} before a renewal was answered; the run is left to whoever takes it next`, { runId: this.runId }));
    }, Math.max(1, left));
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || !this.driving) return;
    try {
      const renewed = await this.store.renewLease(lease, { now: this.now(), ttlMs: this.leaseMs });
      if (this.lease === lease) this.lease = renewed.lease;
      if (renewed.version !== this.committed.version && !this.committing) this.markStale();
    } catch (error) {
      if (hasCode(error, E_LEASE_LOST)) this.haltWith(error as CantbookError);
      else if (this.clock.now().getTime() >= Date.parse(lease.expiresAt)) {
        this.haltWith(new CantbookError(E_LEASE_LOST, `the lease of run '${this.runId}' expired while it could not be renewed (${messageOf(error)}); the run is left to whoever takes it next`, { runId: this.runId }, { cause: error }));
      }
      // Otherwise a transient failure: the next renewal tries again.
    }
  }

  private childTracker(): ChildTracker {
    this.children ??= new ChildTracker(
      { store: this.store, parent: () => ({ playbook: this.playbook, state: this.snapshot.context }), childOptions: () => this.childOptions(), poke: () => this.poke() },
      !this.handBack,
    );
    return this.children;
  }

  /** What a child session of this one runs with: the same host, no inspector, stopped with this session. */
  private childOptions(): HostOptions {
    const { inspect: _inspect, signal, ...host } = this.options;
    return { ...host, signal: signal === undefined ? this.childStop.signal : AbortSignal.any([signal, this.childStop.signal]) };
  }

  /**
   * Inline, a run whose only work is its children's waits for them without
   * its lease (SPEC §12), as a worker's does: the lease goes with the run's
   * own next due time, and the commit that records a child's end leases the
   * run again.
   */
  private async waitWithoutLease(dueMs: number | undefined): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || this.children === undefined) return;
    this.lease = undefined;
    this.waitingForChildren = true;
    await this.store.releaseLease(lease, { wakeAt: dueMs === undefined ? null : new Date(dueMs).toISOString() });
  }

  /**
   * Another driver took the run while this one waited for its children
   * without the lease: follows the log until the run ends, or until nobody
   * holds it any more (then this session leases it again and goes on:
   * undefined). Its children, driven here, go on meanwhile.
   */
  private async followElsewhere(): Promise<DriveOutcome | undefined> {
    this.pending = [];
    for (;;) {
      if (this.halt !== undefined) throw this.halt;
      await this.reload();
      if (typeof this.snapshot.value === 'string') return { kind: 'result', result: this.finish() };
      try {
        await this.takeLease();
        this.waitingForChildren = false;
        return undefined;
      } catch (error) {
        if (!hasCode(error, E_RUN_ACTIVE)) throw error;
      }
      await sleep(this.clock, FOLLOW_MS);
    }
  }

  /** Records how the children with news ended, as their own logs say (ChildRunSettled). */
  private async settleChildren(): Promise<void> {
    for (const data of await (this.children as ChildTracker).settled()) {
      try {
        this.record({ type: 'ChildRunSettled', data });
      } catch (refused) {
        // After a re-read of the log, another driver of this run may have recorded it first.
        if (!(refused instanceof FoldError)) throw refused;
      }
    }
  }

  /**
   * The run waits for child runs, and otherwise at most for a due time
   * (`wakeAt`: a retry's backoff, a gate's expiry): its lease goes, and its
   * wake time becomes that due time (a run with unsettled children is
   * otherwise claimable, so a driver that dies is replaced), since each
   * child's last commit wakes it. A child that ended just before the release
   * would have woken nobody, so the children are looked at once more
   * afterwards: true when one ended and the loop must go on, under the lease
   * again (false when another driver took the run meanwhile: it goes on).
   */
  private async letChildrenGo(wakeAt: string | null): Promise<boolean> {
    const lease = this.lease;
    if (lease !== undefined) {
      this.lease = undefined;
      await this.store.releaseLease(lease, { wakeAt });
    }
    const ids = unsettledChildren(this.snapshot.context);
    const rows = await Promise.all(ids.map((id) => this.store.getRun(id)));
    if (!rows.some((row) => row !== null && hasEnded(row.status))) return false;
    try {
      await this.takeLease();
    } catch (error) {
      if (hasCode(error, E_RUN_ACTIVE)) return false;
      throw error;
    }
    this.childTracker().lookAgain();
    return true;
  }

  /**
   * A child run whose parent ended (cancelled, or failed without waiting for
   * it) is cancelled by whoever drives it: a cascade cut short by a crash is
   * finished here (SPEC §12).
   */
  private async cancelIfOrphaned(): Promise<void> {
    const parent = this.snapshot.context.parent;
    if (parent === null || typeof this.snapshot.value === 'string') return;
    // The row is written with the log in one transaction: a parent it shows running has not ended. Its log decides.
    const row = await this.store.getRun(parent.runId);
    if (row === null || !hasEnded(row.status)) return;
    const ended = (await loadRun(this.store, parent.runId)).snapshot.value;
    if (typeof ended !== 'string' || ended === 'idle') return;
    this.record({ type: 'RunCancelled', data: { reason: `its parent run '${parent.runId}' ended (${ended}) without waiting for it` } });
    await this.commitDurably();
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
    await this.commitDurably();
  }

  private async loop(handBack: boolean): Promise<DriveOutcome> {
    for (;;) {
      if (this.halt !== undefined) {
        await this.settleAll({ kind: 'halted', why: this.halt.message });
        throw this.halt;
      }
      if (this.stale && this.pending.length === 0) {
        this.stale = false;
        await this.reload();
      }
      // 1. Results that arrived become events (each in the state the machine is in now), and so do child runs that ended.
      for (const { attempt, outcome } of this.arrived.splice(0)) this.recordResult(attempt, outcome);
      if (this.children?.hasNews() === true) await this.settleChildren();
      // 2-3. Decisions, one at a time: each changes what the machine allows next.
      const now = this.clock.now().getTime();
      const steps = nextSteps(this.playbook.model, this.snapshot);
      // Entering a group or a child-run node dispatches nothing: a decision like any other.
      const decision = steps.find((step) => isDecision(step, this.inFlight, now) || (step.kind === 'start' && !isDispatched(this.playbook.model.nodes.get(step.nodeId)) && !isLater(step.notBefore, now)));
      if (decision) {
        await this.decide(decision);
        continue;
      }
      // 4-5. Every dispatch the machine allows now: durable first, then sent.
      const starts = steps.filter((step): step is Extract<NextStep, { kind: 'start' }> => step.kind === 'start' && !isLater(step.notBefore, now));
      const owner: RunOwner = this.options.workerId === undefined ? thisProcess : { ...thisProcess, worker: this.options.workerId };
      for (const step of starts) this.record({ type: 'NodeStarted', data: { nodeId: step.nodeId, attempt: step.attempt, owner } });
      // A child is recorded before its stream exists (SPEC §12): a child never exists without its parent's record of it.
      const childStarts = steps.filter((step) => step.kind === 'start_child');
      for (const step of childStarts) this.record({ type: 'ChildRunStarted', data: { nodeId: step.nodeId, attempt: step.attempt, index: step.index, childRunId: step.childRunId } });
      let committed: boolean;
      try {
        committed = await this.commitOrRebase();
      } catch (error) {
        // Another driver (a worker) took the run while it waited for its children without its lease: follow it.
        if (!this.waitingForChildren || !hasCode(error, E_RUN_ACTIVE)) throw error;
        const followed = await this.followElsewhere();
        if (followed !== undefined) return followed;
        continue;
      }
      if (!committed) continue; // another writer moved the run: decide again on its log
      if (this.lease !== undefined) this.waitingForChildren = false;
      // Halted while that commit was out (the lease ran out): nothing more is sent; recovery finds these attempts interrupted.
      if (this.halt !== undefined) continue;
      for (const step of starts) this.dispatchAttempt(step.nodeId, step.attempt);
      if (steps.some(isChildStep)) this.childTracker().follow(steps);
      for (const step of steps) if (step.kind === 'abort') this.stopAttempt(step.nodeId, { kind: 'aborted', why: 'a sibling branch failed its fail_fast group' });
      if (steps.some((step) => step.kind === 'finished')) {
        // Ended by another writer (a cancellation) while attempts were in flight: stop them first.
        await this.settleAll({ kind: 'halted', why: 'the run ended' });
        this.arrived.length = 0;
        return { kind: 'result', result: this.finish() };
      }
      // 6. What to wait for: results in flight, retries waiting for their backoff, gates that will expire.
      const retryAt = earliest(steps.map((step) => (step.kind === 'start' && isLater(step.notBefore, now) ? step.notBefore : undefined)));
      const expiryAt = earliest(steps.map((step) => (step.kind === 'paused' ? step.expiresAt : undefined)));
      if (this.inFlight.size === 0 && starts.length === 0 && childStarts.length === 0 && this.arrived.length === 0 && this.children?.busy() !== true) {
        // Nothing runs: done, or waiting for humans (their gates expire without us), for child runs, or for a backoff.
        const awaiting = steps.some((step) => step.kind === 'await_child');
        const ends = retryAt === undefined || (handBack && retryAt - now > HAND_BACK_MS) || (handBack && awaiting);
        // Handed back while it waits for children, it still wakes for its own next due time.
        const dueMs = Math.min(retryAt ?? Infinity, expiryAt ?? Infinity);
        if (ends && awaiting && (await this.letChildrenGo(Number.isFinite(dueMs) ? new Date(dueMs).toISOString() : null))) continue;
        if (ends && handBack && (awaiting || retryAt !== undefined)) return { kind: 'waiting', dueAt: retryAt === undefined ? null : new Date(retryAt).toISOString() };
        if (retryAt === undefined) return { kind: 'result', result: this.finish() };
      }
      // Still driving: wake for the next retry, and for a gate's expiry, which the machine decides then.
      const wakeAt = retryAt === undefined ? expiryAt : expiryAt === undefined ? retryAt : Math.min(retryAt, expiryAt);
      // The children just started are awaited now: read the steps as they stand after their record.
      const waiting = childStarts.length > 0 ? nextSteps(this.playbook.model, this.snapshot) : steps;
      if (this.inFlight.size === 0 && this.arrived.length === 0 && this.pending.length === 0 && waiting.some((step) => step.kind === 'await_child') && waiting.every(waitsOnly)) {
        await this.waitWithoutLease(wakeAt);
      }
      await this.waitForNews(wakeAt === undefined ? undefined : wakeAt - now);
    }
  }

  /**
   * Step 6: waits for a result, a due time (`inMs`), another writer's append,
   * news of a child run, or a halt. When other attempts are still out, lets this turn of the event loop
   * deliver every result that is ready, so they share one commit.
   */
  private async waitForNews(inMs: number | undefined): Promise<void> {
    if (this.arrived.length === 0 && !this.stale && this.halt === undefined && this.children?.hasNews() !== true) {
      const cancel = inMs === undefined ? undefined : this.clock.setTimer(() => this.poke(), Math.max(0, inMs));
      await new Promise<void>((resolve) => (this.wake = resolve));
      cancel?.();
    }
    if (this.inFlight.size > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Records the one event a decision step calls for (and commits a resume claim at once). */
  private async decide(step: NextStep): Promise<void> {
    switch (step.kind) {
      case 'start': // a group or a child-run node: entering it dispatches nothing
        this.record({ type: 'NodeStarted', data: { nodeId: step.nodeId, attempt: step.attempt } });
        return;
      case 'in_flight': // started by a driver whose lease is gone (recovery): record the interruption
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'the process running this node stopped before it finished', interrupted: true } });
        return;
      case 'abort': // in flight in a process that is gone, inside a failing fail_fast group
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'aborted: a sibling branch failed its fail_fast group', aborted: true, interrupted: true } });
        return;
      case 'schedule_retry': {
        // The due time is the event's own time plus the backoff: the machine checks exactly that.
        const at = this.clock.now();
        const dueAt = new Date(at.getTime() + step.delayMs).toISOString();
        this.record({ type: 'NodeRetryScheduled', data: { nodeId: step.nodeId, attempt: step.attempt, dueAt } }, this.runId, at.toISOString());
        return;
      }
      case 'paused': // its expiry is due (isDecision): the gate expires
        this.record({ type: 'ApprovalExpired', data: { approvalId: step.approvalId, nodeId: step.nodeId } });
        return;
      case 'escalate':
        this.record({ type: 'NodeEscalated', data: { from: step.from, to: step.to, error: step.error } });
        return;
      case 'pause':
        this.openGate(step);
        return;
      case 'violate':
        this.record({ type: 'ContractViolated', data: { nodeId: step.nodeId, attempt: step.attempt, ...step.violation } });
        return;
      case 'cancel_gate':
        this.record({ type: 'ApprovalCancelled', data: { approvalId: step.approvalId, nodeId: step.nodeId, reason: 'a sibling branch failed its fail_fast group' } });
        return;
      case 'resume': {
        this.record({ type: 'RunResumed', data: { approvalId: step.approvalId, nodeId: step.nodeId } });
        try {
          // Claim the resume before anything runs: of two resumers, exactly one gets past here.
          await this.commitDurably();
        } catch (error) {
          if (hasCode(error, E_CONCURRENT_UPDATE)) {
            throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `gate '${step.approvalId}' of run '${this.runId}' was resumed by another process`, { runId: this.runId, approvalId: step.approvalId }, { cause: error });
          }
          throw error;
        }
        return;
      }
      case 'join':
        this.recordSuccess(step.nodeId, step.attempt, step.output);
        return;
      case 'stop_group':
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: 'aborted: a sibling branch failed its fail_fast group', aborted: true } });
        return;
      case 'fail_group':
        this.record({ type: 'NodeFailed', data: { nodeId: step.nodeId, attempt: step.attempt, error: step.error, ...(step.retryable === false ? { retryable: false } : {}) } });
        return;
      case 'complete':
        this.record({ type: 'RunCompleted', data: {} });
        return;
      case 'fail': {
        const gate = step.approvalId === undefined ? {} : { approvalId: step.approvalId };
        if (step.branch) {
          const cause = step.cause as Exclude<typeof step.cause, 'internal_error' | 'cancelled'>;
          this.record({ type: 'BranchFailed', data: { ...step.branch, nodeId: step.nodeId, cause, error: step.error, ...gate } });
        } else {
          this.record({ type: 'RunFailed', data: { nodeId: step.nodeId, cause: step.cause, error: step.error, ...gate } });
        }
        return;
      }
      default:
        throw new TypeError(`step '${step.kind}' is not a decision`);
    }
  }

  private recordResult(attempt: Attempt, outcome: Outcome): void {
    const { nodeId, attempt: n, stop } = attempt;
    if (stop?.kind === 'halted') return; // the driver stopped: the attempt is recovered later, never recorded falsely
    if (attempt.log !== undefined) this.logs.set(attemptKey(nodeId, n), attempt.log);
    let data: Extract<NewRunEvent, { type: 'NodeFailed' }>['data'] | undefined;
    if (stop?.kind === 'aborted') data = { nodeId, attempt: n, error: `aborted: ${stop.why}`, aborted: true };
    else if (stop?.kind === 'timed_out') data = { nodeId, attempt: n, error: stop.why, timedOut: true };
    else if (outcome.status === 'failure') data = { nodeId, attempt: n, error: outcome.error, ...(outcome.retryable === false ? { retryable: false } : {}) };
    try {
      if (data !== undefined) this.record({ type: 'NodeFailed', data });
      else if (outcome.status === 'success') this.recordSuccess(nodeId, n, outcome.output, outcome.exitCode);
    } catch (refused) {
      // After a re-read of the log, another writer may have ended the attempt (a forced recovery) or the run (a cancellation).
      if (!(refused instanceof FoldError) || attempt.generation === this.generation) throw refused;
    }
  }

  /**
   * Records a success: first the contract check that failed once its output
   * is merged, if any (`ContractViolated`, SPEC §13), then `NodeSucceeded`;
   * the machine's contract_violation handler decides what follows.
   */
  private recordSuccess(nodeId: string, attempt: number, output: RunContext, exitCode?: number): void {
    const { model } = this.playbook;
    const violation = exitViolation(model, this.snapshot.context, nodeId, output, this.options.schemas ?? {}, exitCode);
    if (violation !== undefined) this.record({ type: 'ContractViolated', data: { nodeId, attempt, ...violation } });
    this.record({ type: 'NodeSucceeded', data: { nodeId, attempt, output, ...(exitCode === undefined ? {} : { exitCode }) } });
  }

  /**
   * Records RunPaused with a fresh token and keeps the token (its only copy)
   * for the result: an approval node's own gate, or an escalation gate an
   * error handler opens on a work node. A gate whose `policy` passes it
   * (SPEC §13: `permissive`, `custom` with the host's rules) is granted at
   * once, `ApprovalGranted{auto: true, rule, approver: 'policy'}`, and its
   * token is never handed out.
   */
  private openGate(step: Extract<NextStep, { kind: 'pause' }>): void {
    const { nodeId, escalation } = step;
    const { model } = this.playbook;
    const node = model.nodes.get(nodeId);
    if (node === undefined || (node.type === 'approval') === (escalation !== undefined)) throw new TypeError(`node '${nodeId}' cannot open ${escalation === undefined ? 'an approval' : 'an escalation'} gate`);
    const state = this.snapshot.context;
    const context = contextOf(model, state, nodeId);
    const approvalId = (this.options.newId ?? randomUUID)();
    const handler = escalation === undefined ? undefined : model.handlers[escalation.on];
    const timeout = node.type === 'approval' ? node.timeout : handler?.timeout;
    const timeoutMs = timeout === undefined ? null : parseDuration(timeout);
    const expiresAt = timeoutMs === null ? null : new Date(Date.parse(this.now()) + timeoutMs).toISOString();
    const contextDigest = digestContext(context);
    // The credential exists only in the token returned to the caller: nothing stored or inherited can recreate it.
    const token = issueResumeToken(approvalId, randomBytes(CREDENTIAL_BYTES));
    const render = (text: string) => renderTemplate(text, { inputs: state.inputs, context });
    // Checked above: an approval node opens its own gate, any other node an escalation.
    const prompt = node.type === 'approval' ? render(node.prompt) : escalationPrompt((escalation as EscalationData).on, nodeId, step.reason ?? '', handler?.message, render);
    this.record({
      type: 'RunPaused',
      data: { approvalId, nodeId, prompt: clipError(prompt), tokenHash: hashResumeToken(token), contextDigest, ...(expiresAt === null ? {} : { expiresAt }), ...(escalation === undefined ? {} : { escalation }) },
    });
    if (model.contracts && node.type === 'approval' && (node.policy === 'permissive' || node.policy === 'custom')) {
      const decision = decideGatePolicy(model.definition, nodeId, this.options.policyRules === undefined ? {} : { policyRules: this.options.policyRules });
      if (decision.autoPass) {
        const reason = `auto-passed by policy '${decision.policy}': every command it guards is auto-approved (${decision.rule})`;
        this.record({ type: 'ApprovalGranted', data: { approvalId, nodeId, approver: 'policy', reason: clipError(reason), auto: true, rule: decision.rule } });
        return;
      }
    }
    this.tokens.set(approvalId, token);
  }

  /** Step 5: hands one node to its dispatcher or runner; the outcome arrives later. */
  private dispatchAttempt(nodeId: string, attempt: number): void {
    const node = this.playbook.model.nodes.get(nodeId) as PlaybookNode;
    const entry: Attempt = { nodeId, attempt, controller: new AbortController(), generation: this.generation };
    this.inFlight.set(nodeId, entry);
    const arrive = (outcome: Outcome): void => {
      entry.context?.seal();
      entry.cancelTimeout?.();
      this.inFlight.delete(nodeId);
      this.arrived.push({ attempt: entry, outcome });
      this.poke();
    };
    const timeoutMs = attemptTimeoutMs(node);
    if (timeoutMs !== null) {
      const what = node.type === 'deterministic' ? `command '${node.command}'` : `node '${nodeId}'`;
      entry.cancelTimeout = this.clock.setTimer(() => this.stopAttempt(nodeId, { kind: 'timed_out', why: `${what} timed out after ${describeMs(timeoutMs)}` }), timeoutMs);
    }
    let pending: Promise<NodeOutcome> | NodeOutcome;
    try {
      pending = this.dispatch(node, entry);
    } catch (error) {
      queueMicrotask(() => arrive({ status: 'failure', error: clipError(messageOf(error)) }));
      return;
    }
    Promise.resolve(pending).then(
      (outcome) => {
        const log = attemptLogOf(nodeId, attempt, outcome);
        if (log !== undefined) entry.log = log;
        arrive(outcomeOf(nodeId, outcome));
      },
      (error: unknown) => arrive({ status: 'failure', error: clipError(messageOf(error)) }),
    );
  }

  /** Gives an attempt up: its signal aborts (its processes are killed); the first reason stands. */
  private stopAttempt(nodeId: string, stop: AttemptStop): void {
    const entry = this.inFlight.get(nodeId);
    if (!entry || entry.stop !== undefined) return;
    entry.stop = stop;
    entry.controller.abort(new Error(`cantbook gave up on ${nodeId} attempt ${entry.attempt}: ${stop.why}`));
  }

  /** Aborts every attempt still in flight and waits until each dispatch has settled. */
  private async settleAll(stop: AttemptStop): Promise<void> {
    for (const nodeId of [...this.inFlight.keys()]) this.stopAttempt(nodeId, stop);
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
          ...(node.ensures?.exitCode === undefined || node.ensures.exitCode === 0 ? {} : { expectedExitCode: node.ensures.exitCode }),
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
   * the run stays as committed and recovery can finish it later.
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
      await this.commitDurably();
    } catch {
      this.pending = []; // the run stays as committed; recovery finishes it
      return;
    }
    // Children it waited for are cancelled (their own drivers would otherwise find it ended and do so).
    for (const id of unsettledChildren(this.snapshot.context)) await cancelTree(this.store, id, `its parent run '${this.runId}' failed`).catch(() => undefined);
  }

  /** Builds the caller's result from the fold (and the gates its children wait at). */
  private finish(): PlaybookResult {
    return resultOf(this.playbook, this.snapshot, this.tokens, this.children?.gates() ?? []);
  }
}

/** What an escalation gate asks, by trigger: the handler's `message` (rendered) when it has one, and always why. */
function escalationPrompt(on: string, nodeId: string, reason: string, message: string | undefined, render: (text: string) => string): string {
  const ask =
    on === 'iteration_cap_exceeded'
      ? `approve to give '${nodeId}' another round of its cap, reject to fail`
      : on === 'agentic_timeout'
        ? `approve to run '${nodeId}' again with a fresh round of its cap, reject to fail`
        : `approve to go on despite the violation, reject to fail`;
  const head = message === undefined ? `escalated (${on}) at '${nodeId}'` : render(message);
  return `${head}: ${reason}; ${ask}`;
}

/**
 * Refuses host options the runtime would otherwise trip over mid-run
 * (malformed `policyRules`, `schemas` that are not a map), with
 * E_PLAYBOOK_RUNTIME_INVALID. Every entry point calls it before it takes a
 * lease or writes anything.
 */
export function checkHostOptions(options: Pick<HostOptions, 'policyRules' | 'schemas'>): void {
  if (options.policyRules !== undefined) {
    const issues = policyRuleIssues(options.policyRules);
    if (issues.length > 0) throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `policyRules: ${issues.map((issue) => issue.message).join('; ')}`, { issues });
  }
  const schemas: unknown = options.schemas;
  if (schemas !== undefined && (typeof schemas !== 'object' || schemas === null || Array.isArray(schemas))) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, 'schemas must be an object mapping schema names to zod schemas');
  }
}

/** The lease length of the options: a positive integer of milliseconds. */
function leaseMsOf(leaseMs: number | undefined): number {
  const ms = leaseMs ?? DEFAULT_LEASE_MS;
  if (!Number.isInteger(ms) || ms < 3) throw new TypeError(`leaseMs must be an integer of at least 3 milliseconds, got ${String(leaseMs)}`);
  return ms;
}

/**
 * Leases `runId` for a driver with these options (its `workerId`, clock and
 * `leaseMs`). Throws E_RUN_ACTIVE while someone else holds a live lease,
 * unless `force` (recoverRun's takeover).
 */
export async function leaseRun(store: EventStore, runId: string, options: HostOptions, force = false): Promise<Lease> {
  const owner = ownerOf(options);
  const now = clockOf(options).now().toISOString();
  const lease = await store.acquireLease({ runId, owner, now, ttlMs: leaseMsOf(options.leaseMs), ...(force ? { force: true } : {}) });
  if (lease === null) throw await runActive(store, runId);
  return lease;
}

/** Who drives, as a lease records it: the host's worker id, else `<host>:<pid>`. */
function ownerOf(options: HostOptions): string {
  return options.workerId ?? `${thisProcess.host}:${thisProcess.pid}`;
}

/** E_RUN_ACTIVE naming who holds the run's lease and until when. */
export async function runActive(store: EventStore, runId: string): Promise<CantbookError> {
  const lease = await store.getLease(runId);
  const who = lease === null ? 'another driver' : `'${lease.owner}'`;
  const until = lease === null ? '' : ` (its lease runs until ${lease.expiresAt} unless renewed)`;
  return new CantbookError(
    E_RUN_ACTIVE,
    `run '${runId}' is being driven by ${who}${until}; it is taken over only once that lease expires, or by forcing the takeover`,
    { runId, owner: lease?.owner ?? null, expiresAt: lease?.expiresAt ?? null },
  );
}

/** Errors that stop a driver without recording anything: the run stays as committed, recoverable. */
function isStop(error: unknown): boolean {
  const stops = [E_CONCURRENT_UPDATE, E_PLAYBOOK_RESUME_BLOCKED, E_LEASE_LOST, E_RUN_INTERRUPTED, E_RUN_ACTIVE] as const;
  return stops.some((code) => hasCode(error, code)) || isTransient(error);
}

/** A store error that may pass if the same call is made again (a lock held by another connection). */
export function isTransient(error: unknown): boolean {
  return hasCode(error, E_STORE_UNAVAILABLE) && (error as CantbookError).details?.transient === true;
}

function isLater(at: string | undefined, now: number): boolean {
  return at !== undefined && Date.parse(at) > now;
}

/** The earliest of some ISO times, in epoch ms; undefined when there is none. */
function earliest(times: readonly (string | undefined)[]): number | undefined {
  let min: number | undefined;
  for (const at of times) {
    if (at === undefined) continue;
    const ms = Date.parse(at);
    if (min === undefined || ms < min) min = ms;
  }
  return min;
}

function describeMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
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

/** Whether a node's attempt is a dispatch (an agent or a command), not branches or child runs. */
function isDispatched(node: PlaybookNode | undefined): boolean {
  return node?.type === 'agentic' || node?.type === 'deterministic';
}

/** How often an inline driver looks at a run another driver took from it while it waited for children. */
const FOLLOW_MS = 250;

/** Steps that only wait: for child runs, a human, or a retry's due time (nothing to record or dispatch now). */
function waitsOnly(step: NextStep): boolean {
  return step.kind === 'await_child' || step.kind === 'paused' || (step.kind === 'start' && step.notBefore !== undefined);
}

/** A step about a child run (SPEC §12). */
function isChildStep(step: NextStep): boolean {
  return step.kind === 'start_child' || step.kind === 'await_child' || step.kind === 'cancel_child';
}

/** A runs row's status that no driver changes any more. */
function hasEnded(status: RunStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** A state value in which the run has ended (not `idle`, which has not begun). */
function isEnd(value: unknown): boolean {
  return typeof value === 'string' && value !== 'idle';
}

function isQuietDecision(step: NextStep): boolean {
  return ['escalate', 'cancel_gate', 'join', 'fail_group', 'stop_group', 'complete', 'fail', 'violate'].includes(step.kind);
}

/**
 * Decisions are recorded before any dispatch; a `start` of a group is one (it
 * dispatches nothing), and so is a gate whose expiry is due at `now`.
 */
function isDecision(step: NextStep, inFlight: ReadonlyMap<string, Attempt>, now: number): boolean {
  switch (step.kind) {
    case 'paused':
      return step.expiresAt !== undefined && Date.parse(step.expiresAt) <= now;
    case 'finished':
    case 'not_started':
      return false;
    case 'start':
      return false; // handled in the loop, which knows groups from work nodes
    case 'in_flight':
    case 'abort':
      return !inFlight.has(step.nodeId); // ours end when their dispatch settles
    case 'start_child':
    case 'await_child':
    case 'cancel_child':
      return false; // carried out by the loop and the child tracker
    default:
      return true;
  }
}

/**
 * The §6 result of a folded run. `tokens` holds the tokens of gates opened by
 * the current call (approvalId -> token); `childGates` the gates its child
 * runs wait at (SPEC §12: a run waiting only for children that wait for
 * humans is `pending_approval` with their gates).
 */
export function resultOf(playbook: Pick<CompiledPlaybook, 'model'>, snapshot: RunSnapshot, tokens: ReadonlyMap<string, string> = new Map(), childGates: readonly PendingGate[] = []): PlaybookResult {
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
  if (runStatusOf(playbook.model, snapshot) === 'paused' || childGates.length > 0) {
    const gates = Object.values(state.approvals).filter((gate): gate is GateState => gate.status === 'pending');
    const own = gates.map(({ approvalId, nodeId, runId }): PendingGate => {
      const token = tokens.get(approvalId);
      return token === undefined ? { approvalId, nodeId, runId } : { approvalId, nodeId, runId, token };
    });
    const approvals = [...own, ...childGates];
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

const attemptKey = (nodeId: string, attempt: number): string => `${nodeId}\u0000${attempt}`;

/** The attempt's log (SPEC §7): the last MAX_ATTEMPT_LOG_BYTES of what its dispatch returned as `log`, cut at a character. */
export function attemptLogOf(nodeId: string, attempt: number, outcome: NodeOutcome): AttemptLog | undefined {
  const text = (outcome as { log?: unknown } | null)?.log;
  if (typeof text !== 'string' || text === '') return undefined;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_ATTEMPT_LOG_BYTES) return { nodeId, attempt, text, droppedBytes: 0 };
  let start = bytes.length - MAX_ATTEMPT_LOG_BYTES;
  while (start < bytes.length && ((bytes[start] as number) & 0xc0) === 0x80) start += 1; // not inside a character
  return { nodeId, attempt, text: bytes.subarray(start).toString('utf8'), droppedBytes: start };
}

function outcomeOf(nodeId: string, outcome: NodeOutcome): Outcome {
  if (outcome?.status === 'success') {
    const output = outcome.output ?? {};
    if (typeof output !== 'object' || output === null || Array.isArray(output)) {
      return { status: 'failure', error: `node '${nodeId}' returned output that is not an object` };
    }
    try {
      // The log stores JSON; the live fold must see exactly what a replay will.
      const copy = JSON.parse(JSON.stringify(output)) as RunContext;
      // A runner's exit code is kept only when it is one (an integer): it is a fact the contract check reads.
      return Number.isInteger(outcome.exitCode) ? { status: 'success', output: copy, exitCode: outcome.exitCode as number } : { status: 'success', output: copy };
    } catch (error) {
      return { status: 'failure', error: `node '${nodeId}' returned output that is not JSON: ${messageOf(error)}` };
    }
  }
  if (outcome?.status === 'failure') {
    const error = clipError(outcome.error ?? `node '${nodeId}' failed`);
    return outcome.retryable === false ? { status: 'failure', error, retryable: false } : { status: 'failure', error };
  }
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
