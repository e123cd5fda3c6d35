import type { NewRunEvent, RunEvent } from '../events/types.js';
import type { ApprovalRow, ApprovalStatus, RunChanges, RunRow, RunStatus } from '../projections/types.js';

/**
 * One atomic append: events for one run plus the projection rows they produce.
 *
 * The store writes all of it in one transaction or none of it. `expectedVersion`
 * is the seq of the last event the writer folded (0 for a new run); if the stream
 * has moved on, the append fails with `E_CONCURRENT_UPDATE` and nothing is written.
 * `run.version` must equal `expectedVersion + events.length`, and `run` and every
 * approval must carry this `runId`; an empty `events` list or a mismatch is a
 * programmer error (TypeError), not a conflict.
 */
export interface AppendRequest {
  runId: string;
  expectedVersion: number;
  events: readonly NewRunEvent[];
  /** The runs-projection row after these events. */
  run: RunRow;
  /**
   * Which `run.bindings` keys and `run.iterationCounts` nodes these events
   * changed (`toRunChanges` in projections/projectRun.ts computes it from the
   * events). A store that keeps them per key writes only these, taking their
   * values from `run`; a listed key missing from `run` is removed. Keys not
   * listed must be unchanged: the store does not check, the projection would
   * simply be stale until a rebuild. Absent means "everything": the store
   * replaces all of the run's keys with `run`'s (for callers that do not know,
   * at a cost proportional to the whole context).
   */
  changed?: RunChanges;
  /** Approval rows created or changed by these events (upserted by approvalId). */
  approvals: readonly ApprovalRow[];
  /**
   * The playbook text a `RunStarted` in this batch pins the run to, stored by its
   * hash (`getPlaybookSource`). The runtime passes it; the store never digs it out
   * of an event.
   */
  playbook?: { sourceHash: string; name: string; source: string };
  /**
   * The writer's lease on the run (SPEC §11). A driver's appends carry it: the
   * store checks in the same transaction as the expected version that `token`
   * is still the run's current fencing token, else throws `E_LEASE_LOST` and
   * writes nothing. Absent for decisions made from outside the driver (a
   * human's approval or rejection, a cancellation): the expected version
   * alone orders those against the driver. `release`: the driver's last
   * append (the run paused or ended) also releases the lease, in the same
   * transaction (as `releaseLease` does). `create`: a new run's first append
   * (expectedVersion 0) takes the run's first lease (token 1) in the same
   * transaction, so starting a run costs no extra write; refused with
   * `E_RUN_ACTIVE` when the run id already has a lease.
   */
  lease?: { token: number; release?: boolean; create?: { owner: string; expiresAt: string } };
  /**
   * A wake-up for another run, carried by a child run's final commit for its
   * parent (SPEC §12, docs/adr/0009-child-runs.md). In the same transaction as
   * the append, the store moves the `wakeAt` of run `wakeRun`'s row to the `at`
   * of this append's last event, or keeps it when it is earlier already, so a
   * worker can claim the parent and fold the settled child. Only a row whose
   * status is `running` or `paused` is touched: an ended run is left alone,
   * and a run without a row is no error (nothing is written for it). The
   * append then also wakes workers ({@link appendMayWakeWorkers}).
   *
   * A hint in the projection, never the truth, and not kept: the parent's own
   * next append (or a rebuild) writes the `wakeAt` its fold computes, so a
   * parent that appends between folding a child's log and committing can
   * overwrite the hint of a child that ended meanwhile (recovery finds such a
   * parent). Name the parent only: two appends whose runs wake each other
   * could deadlock on PostgreSQL (the server then aborts one of them, a
   * transient E_STORE_UNAVAILABLE).
   */
  wakeRun?: string;
  /**
   * How the run is driven, remembered beside its log (SPEC §7, docs/adr/0010):
   * written with the first append of a root run (expectedVersion 0) and never
   * changed after. Not an event, never hashed, never read by the fold or the
   * machine: host configuration that lets a pasted `approve` or `resume` find
   * the run's agent. Ignored on any later append (the first one's are kept,
   * never overwritten), and not written when the append is refused.
   */
  settings?: RunSettings;
  /**
   * The logs of the attempts whose results these events record (what the agent
   * or the command wrote to stderr, bounded by the runtime), stored in the same
   * transaction beside the log (`listAttemptLogs`). Not events: diagnostics,
   * never hashed or folded. One per (nodeId, attempt); a second write of the
   * same attempt replaces the first (within one request too: the last one
   * wins). Not written when the append is refused. A NUL character in `text`
   * is stored as U+FFFD (PostgreSQL's text cannot hold one).
   */
  attemptLogs?: readonly AttemptLog[];
}

/** What a run remembers of how it was started (ADR 0010). `{}` (no agent) is stored and read back as `{}`. */
export interface RunSettings {
  /** The agent spec (`exec:…`, `module:…`, `http:…`) it was started with; never one that carries a credential. */
  agent?: string;
}

/** What one attempt of a node wrote to stderr, kept as its log (SPEC §7). */
export interface AttemptLog {
  nodeId: string;
  attempt: number;
  /** The log's text: its last part, when it was longer than the bound. */
  text: string;
  /** How many bytes of the start were dropped to keep it within the bound (0: all of it). */
  droppedBytes: number;
}

/** Who may drive a run until when (SPEC §11). `token` is the fencing token: it only grows. */
export interface Lease {
  runId: string;
  owner: string;
  token: number;
  /** ISO-8601; the lease is live while this is later than the clock. Empty once released. */
  expiresAt: string;
}

export interface AcquireLeaseRequest {
  runId: string;
  /** Who drives (a worker id, or a one-off driver's id): information for operators. */
  owner: string;
  /** The caller's clock, ISO-8601 (injected in tests). */
  now: string;
  ttlMs: number;
  /** Take the run even from a live lease (recoverRun's `force`): the old holder's next append fails E_LEASE_LOST. */
  force?: boolean;
}

export interface ClaimRunsRequest {
  owner: string;
  now: string;
  ttlMs: number;
  /** At most this many runs. */
  limit: number;
}

/** Which runs `listRuns` returns; the conditions given must all hold. */
export interface ListRunsFilter {
  status?: RunStatus;
  /** Only the child runs this run started (`RunRow.parentRunId`, by an index). */
  parentRunId?: string;
  /** Only runs of the playbook with this `name`. */
  playbookName?: string;
  /** Only runs started at or after this ISO-8601 time. */
  startedSince?: string;
  /** Newest first (by `startedAt`, then id, both descending); default oldest first. */
  newestFirst?: boolean;
  /** At most this many runs (a positive integer), the first ones in the order asked for. */
  limit?: number;
}

export interface ListApprovalsFilter {
  status?: ApprovalStatus;
  runId?: string;
}

/**
 * Where runs live: an append-only, per-run hash-chained event log plus the
 * inline projections (runs, approvals) written in the same transaction.
 *
 * Contract (tested by test/contract/eventStore.contract.ts for every store):
 * - `append` is atomic; seq runs 1..n per run without gaps; globalSeq increases
 *   across the store; hashes come from `chainEvents` (events/hashChain.ts).
 * - Two appends at the same expected version: exactly one succeeds, the other
 *   throws a CantbookError `E_CONCURRENT_UPDATE` and writes nothing.
 * - `request.playbook`, when given, is stored by sourceHash (`getPlaybookSource`).
 * - `request.wakeRun`, when given, moves that run's `wakeAt` in the same
 *   transaction (see AppendRequest); a refused append wakes nothing.
 * - `request.settings` (on a run's first append) and `request.attemptLogs` are
 *   written in the append's transaction, so a refused append writes neither.
 *   They are kept beside the log, not projected from it: `replaceProjections`
 *   never touches them.
 * - Reads never see a half-written append.
 * - A store that cannot be opened or read (corrupt file, wrong schema) throws
 *   `E_STORE_UNAVAILABLE` or `E_LOG_CORRUPT`, never a raw driver error.
 */
export interface EventStore {
  /** Appends atomically; returns the stored events (with seq, globalSeq, hash). */
  append(request: AppendRequest): Promise<RunEvent[]>;
  /** The run's events with seq > afterSeq (default 0), in seq order. */
  readRun(runId: string, afterSeq?: number): Promise<RunEvent[]>;
  /** Events of all runs with globalSeq > afterGlobalSeq, in globalSeq order, at most `limit`. */
  readAll(afterGlobalSeq: number, limit: number): Promise<RunEvent[]>;
  getRun(runId: string): Promise<RunRow | null>;
  /** Runs matching `filter` (all by default), by start time, then run id. */
  listRuns(filter?: ListRunsFilter): Promise<RunRow[]>;
  getApproval(approvalId: string): Promise<ApprovalRow | null>;
  listApprovals(filter?: ListApprovalsFilter): Promise<ApprovalRow[]>;
  /** The exact playbook text stored for a sourceHash, or null. */
  getPlaybookSource(sourceHash: string): Promise<string | null>;
  /** The settings the run was started with (`AppendRequest.settings`), or null when it has none. */
  getRunSettings(runId: string): Promise<RunSettings | null>;
  /** The run's attempt logs, by node id then attempt; only `nodeId`'s when given. */
  listAttemptLogs(runId: string, filter?: { nodeId?: string }): Promise<(AttemptLog & { runId: string })[]>;
  /** Ids of every run that has events (for verify and rebuild). */
  listRunIds(): Promise<string[]>;
  /**
   * Replaces one run's projection rows (rebuild from events); writes no events.
   * Approvals of the run not in `approvals` are removed; `run = null` removes the
   * run's projection rows. What is kept beside the log rather than folded from
   * it is left alone either way: the run's settings and attempt logs (no fold
   * could write them again), its lease and its playbook text. A non-null `run`
   * must be the fold of the whole log: if `run.version`
   * is not the stream's current version, nothing is written and it throws
   * `E_CONCURRENT_UPDATE` (an append raced the rebuild).
   */
  replaceProjections(runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]): Promise<void>;
  /**
   * A new lease of the run for `owner` (token = the previous token + 1, or 1),
   * or null when someone holds a live one (expiresAt > now) and `force` is not
   * set. The run need not have events yet (a driver leases a run before its
   * `RunStarted`).
   */
  acquireLease(request: AcquireLeaseRequest): Promise<Lease | null>;
  /**
   * Extends a lease to now + ttlMs while its token is still current and it
   * has not run out (expiresAt after now), and reports the run's stream
   * version (so a driver sees that someone, e.g. a cancellation, appended).
   * Throws E_LEASE_LOST otherwise: a lease that ran out is its driver's no
   * more, even while nobody has taken the run (its driver halted at expiry).
   */
  renewLease(lease: Lease, request: { now: string; ttlMs: number }): Promise<{ lease: Lease; version: number }>;
  /**
   * Ends a lease at once (nothing happens if it is no longer current); its
   * token is never reused. With `wakeAt`, the run's `wake_at` is set to it in
   * the same transaction, while the lease is still current: how a driver that
   * waits only for child runs hands its run back (SPEC §12), since the wake
   * time its last append gave it (claimable, in case the driver dies) would
   * otherwise make it claimable at once; each child's last commit wakes it
   * instead (`AppendRequest.wakeRun`).
   */
  releaseLease(lease: Lease, options?: { wakeAt?: string | null }): Promise<void>;
  /** The run's lease row (live or not), or null when it never had one. */
  getLease(runId: string): Promise<Lease | null>;
  /**
   * The claim protocol (SPEC §11): atomically leases up to `limit` runnable runs
   * for `owner`: runs whose `wakeAt` is at or before `now` and that nobody holds
   * a live lease on, earliest due first. Two claimers never get the same run.
   */
  claimRuns(request: ClaimRunsRequest): Promise<Lease[]>;
  /**
   * The earliest time after `now` at which a run may become runnable: the next
   * `wakeAt` in the future, or the next expiry of a live lease (a driver that
   * died); null when there is neither. How long an idle worker may sleep. It
   * is an early bound: a worker that wakes then may find nothing (the lease
   * was renewed), never a late one. Costs the same whatever the backlog.
   */
  nextWakeAt(now: string): Promise<string | null>;
  /**
   * Calls `listener` soon after a write may have made a run claimable: an
   * append that leaves the run a wake time and no driver ({@link appendMayWakeWorkers}:
   * a run recorded for workers, a decided gate, a driver handing its run back),
   * an append that wakes another run (`wakeRun`: a child's end, its parent), or
   * a released lease. Returns a function that stops the calls. A hint, never
   * the truth: a worker still polls, so a missed call delays work by at most
   * its poll interval. The SQLite store hears its own writes only (other
   * processes are heard by polling); the PostgreSQL store hears every
   * process's, by LISTEN/NOTIFY on a connection of its own that it re-opens
   * when lost (and then calls the listeners once, for what it may have missed).
   */
  onRunnable(listener: () => void): () => void;
  close(): Promise<void>;
}

/**
 * Whether a committed append may let a worker claim a run: it leaves its run a
 * wake time and no driver holds the run after it, or it wakes another run
 * (`wakeRun`, a child's end waking its parent).
 */
export function appendMayWakeWorkers(request: AppendRequest): boolean {
  if (request.wakeRun !== undefined) return true;
  return request.run.wakeAt !== null && (request.lease === undefined || request.lease.release === true);
}

/** Calls every listener; one that throws never stops the others or the write that called them. */
export function callListeners(listeners: ReadonlySet<() => void>): void {
  for (const listener of [...listeners]) {
    try {
      listener();
    } catch {
      // A hint's listener failing is its own business.
    }
  }
}
