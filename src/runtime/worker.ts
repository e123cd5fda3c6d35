/**
 * Workers (SPEC §11): processes that claim runnable runs from the store and
 * drive them, so that no process owns a run and every due time fires.
 */
import { randomBytes } from 'node:crypto';
import { E_CONCURRENT_UPDATE, E_LEASE_LOST, E_PLAYBOOK_RESUME_BLOCKED, E_RUN_INTERRUPTED, hasCode } from '../errors.js';
import type { RunEvent } from '../events/types.js';
import type { EventStore, Lease } from '../store/eventStore.js';
import { clockOf, sleep } from './clock.js';
import { loadRun } from './loadRun.js';
import { checkHostOptions, DEFAULT_LEASE_MS, isTransient, RunSession, thisProcess } from './runSession.js';
import type { DriveOutcome, HostOptions } from './runSession.js';

export interface WorkerOptions extends Omit<HostOptions, 'signal' | 'onEvents'> {
  store: EventStore;
  /** How many runs it drives at once (default 4). */
  concurrency?: number;
  /** The longest an idle worker sleeps before it looks for work again (default 1000 ms); it wakes earlier for a due time it knows of. */
  pollMs?: number;
  /** Called with each durable batch of every run it drives. */
  onEvents?: (events: readonly RunEvent[]) => void;
  /**
   * Told about a run it could not drive (other than a lost race, which is
   * normal; the run stays runnable), and with runId '' about the store: an
   * error looking for work, or a transient one (the database restarting, a
   * standby) that has lasted a whole lease length, once per outage.
   */
  onError?: (error: unknown, runId: string) => void;
  /** Told about each drive that ended: a result, or the run handed back until its due time. */
  onDriven?: (runId: string, outcome: DriveOutcome) => void;
}

/** What a worker did so far. */
export interface WorkerStats {
  /** Runs claimed. */
  claimed: number;
  /** Drives that ended in a result (completed, failed, paused, ...). */
  settled: number;
  /** Drives that handed the run back to wait for a due time. */
  handedBack: number;
  /** Drives that stopped without finishing (a lost lease or race, an error, a stop). */
  stopped: number;
  /** Runs being driven right now. */
  active: number;
}

export interface Worker {
  /** Its id, as leases and NodeStarted.owner record it. */
  readonly id: string;
  /** Starts claiming and driving in the background until `stop`. */
  start(): void;
  /**
   * Stops claiming, lets the runs in flight go on for up to `graceMs`
   * (default 10 s), then aborts the rest (their attempts are killed, nothing
   * false is recorded) and releases their leases. Resolves once nothing runs.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  /**
   * Claims and drives until nothing is runnable *now* and nothing it drives is
   * still going (tests, cron). Due times in the future are left for later.
   */
  runUntilIdle(): Promise<WorkerStats>;
  readonly stats: Readonly<WorkerStats>;
}

/**
 * Creates a worker over a store (SPEC §11). It claims up to `concurrency`
 * runnable runs at a time through the store's claim protocol (a run started by
 * `startRun`, an approved gate nobody resumed, a retry whose backoff is due, a
 * gate whose expiry is due, a run whose driver's lease expired), and drives
 * each under its lease until the run pauses, ends, or waits more than a second
 * for a due time (then it hands the run back: the due time wakes a worker).
 * Idle, it sleeps until the store's next due time or `pollMs`, whichever is
 * sooner, or until the store hints that a run may be claimable
 * (`EventStore.onRunnable`: another process's start, approval or hand-back on
 * PostgreSQL, this process's own on SQLite): it never busy-polls.
 *
 * @example
 * const worker = createWorker({ store, dispatcher, concurrency: 8 });
 * worker.start();
 * process.on('SIGTERM', () => void worker.stop({ graceMs: 30_000 }));
 */
export function createWorker(options: WorkerOptions): Worker {
  checkHostOptions(options);
  const { store } = options;
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`createWorker: concurrency must be a positive integer, got ${String(options.concurrency)}`);
  const pollMs = options.pollMs ?? 1000;
  if (!Number.isInteger(pollMs) || pollMs < 1) throw new TypeError(`createWorker: pollMs must be a positive integer, got ${String(options.pollMs)}`);
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const clock = clockOf(options);
  const id = options.workerId ?? `worker:${thisProcess.host}:${thisProcess.pid}:${randomBytes(3).toString('hex')}`;
  const stats: WorkerStats = { claimed: 0, settled: 0, handedBack: 0, stopped: 0, active: 0 };
  const active = new Map<string, { controller: AbortController; done: Promise<void> }>();
  let running: Promise<void> | undefined;
  let stopping: AbortController | undefined;
  let poke: (() => void) | undefined;
  const wake = (): void => {
    const resolve = poke;
    poke = undefined;
    resolve?.();
  };
  // The store's hint that a run may have become claimable (onRunnable). Kept until the next claim,
  // so a hint that arrives while this worker is claiming is not lost.
  let hinted = false;
  const hint = (): void => {
    hinted = true;
    wake();
  };
  // A store that keeps failing transiently: ridden out quietly for a lease length, then reported once.
  let outage: { since: number; told: boolean } | undefined;
  const storeFailed = (error: unknown): void => {
    if (!isTransient(error)) {
      options.onError?.(error, '');
      return;
    }
    const now = clock.now().getTime();
    outage ??= { since: now, told: false };
    if (!outage.told && now - outage.since >= leaseMs) {
      outage.told = true;
      options.onError?.(error, '');
    }
  };

  async function drive(lease: Lease, controller: AbortController): Promise<void> {
    try {
      // Read under the lease: nobody else writes as a driver now.
      const run = await loadRun(store, lease.runId);
      const host: HostOptions = { ...options, workerId: id, signal: controller.signal, leaseMs };
      const outcome = await new RunSession(store, run.playbook, run.snapshot, host, lease).driveForWorker();
      if (outcome.kind === 'result') stats.settled += 1;
      else stats.handedBack += 1;
      options.onDriven?.(lease.runId, outcome);
    } catch (error) {
      stats.stopped += 1;
      // A lost race or lease, a stop: normal. Anything else is the host's to hear about. A run whose log cannot
      // be read keeps this lease until it expires, so it is not claimed again in a tight loop.
      if (!isExpectedStop(error)) options.onError?.(error, lease.runId);
    }
  }

  /** Claims what it has room for and starts driving it; returns how many runs it claimed. */
  async function claim(): Promise<number> {
    const room = concurrency - active.size;
    if (room <= 0 || stopping?.signal.aborted === true) return 0;
    hinted = false;
    const leases = await store.claimRuns({ owner: id, now: clock.now().toISOString(), ttlMs: leaseMs, limit: room });
    outage = undefined;
    for (const lease of leases) {
      const controller = new AbortController();
      stats.claimed += 1;
      const done = drive(lease, controller).finally(() => {
        active.delete(lease.runId);
        stats.active = active.size;
        wake();
      });
      active.set(lease.runId, { controller, done });
      stats.active = active.size;
    }
    return leases.length;
  }

  /**
   * Sleeps until there may be work: with a free slot, until the store's next
   * due time or pollMs, whichever is sooner; with every slot busy, until a
   * drive ends or pollMs (due runs it has no room for are not its concern
   * then). At once when stopped. Never a busy loop.
   */
  async function idle(): Promise<void> {
    const now = clock.now().getTime();
    let due = pollMs;
    if (active.size < concurrency) {
      try {
        const next = await store.nextWakeAt(new Date(now).toISOString());
        if (next !== null) due = Math.max(1, Math.min(pollMs, Date.parse(next) - now));
      } catch (error) {
        storeFailed(error);
      }
    }
    // The sleep ends early on a poke, a hint or a stop; either way its timer is cleared.
    if (stopping?.signal.aborted === true || (hinted && active.size < concurrency)) return;
    const woken = new AbortController();
    const wakeUp = (): void => woken.abort();
    poke = wakeUp;
    const stop = stopping?.signal;
    stop?.addEventListener('abort', wakeUp, { once: true });
    await sleep(clock, due, woken.signal);
    stop?.removeEventListener('abort', wakeUp);
    if (poke === wakeUp) poke = undefined;
  }

  async function loop(): Promise<void> {
    while (stopping?.signal.aborted !== true) {
      let claimed = 0;
      try {
        claimed = await claim();
      } catch (error) {
        storeFailed(error);
      }
      if (claimed === 0) await idle();
    }
  }

  return {
    id,
    stats,
    start() {
      if (running !== undefined) return;
      stopping = new AbortController();
      const unsubscribe = store.onRunnable(hint);
      running = loop().finally(unsubscribe);
    },
    async stop(stopOptions = {}) {
      const graceMs = stopOptions.graceMs ?? 10_000;
      stopping ??= new AbortController();
      stopping.abort();
      wake();
      await running;
      const all = () => Promise.all([...active.values()].map((entry) => entry.done));
      const grace = new AbortController();
      await Promise.race([all(), sleep(clock, graceMs, grace.signal)]);
      grace.abort();
      for (const entry of active.values()) entry.controller.abort();
      await all();
      running = undefined;
    },
    async runUntilIdle() {
      for (;;) {
        const claimed = await claim();
        if (claimed > 0) continue;
        if (active.size === 0) return { ...stats };
        await Promise.race([...active.values()].map((entry) => entry.done));
      }
    },
  };
}

/** Ends of a drive that need nobody's attention: another driver has the run, or the worker was told to stop. */
function isExpectedStop(error: unknown): boolean {
  const expected = [E_LEASE_LOST, E_CONCURRENT_UPDATE, E_PLAYBOOK_RESUME_BLOCKED, E_RUN_INTERRUPTED] as const;
  return expected.some((code) => hasCode(error, code));
}
