/**
 * Child runs at run time (SPEC §12): creating a child's stream, driving it
 * (inline) or leaving it to workers, reading how it ended from its own log,
 * and cancelling a tree. The parent's machine decides every step
 * (`start_child`, `await_child`, `cancel_child`); this module only carries
 * them out and reports what the child's log says.
 */
import { childInputsOf, childOutputOf } from '../compiler/childRuns.js';
import { initialRunSnapshot } from '../compiler/foldRun.js';
import type { NextStep } from '../compiler/nextStep.js';
import { contextKeysWritten } from '../compiler/runState.js';
import type { RunState } from '../compiler/runState.js';
import type { ChildRunSettledData, ChildRunStatus } from '../events/types.js';
import {
  CantbookError,
  E_CONCURRENT_UPDATE,
  E_LEASE_LOST,
  E_LOG_CORRUPT,
  E_PLAYBOOK_RESUME_BLOCKED,
  E_RUN_ACTIVE,
  E_RUN_FINISHED,
  E_RUN_INTERRUPTED,
  E_RUN_NOT_FOUND,
  hasCode,
} from '../errors.js';
import { pinnedSubtree } from '../playbook/resolvePlaybooks.js';
import type { ChildRunNode } from '../playbook/types.js';
import type { EventStore } from '../store/eventStore.js';
import { initialContextOf } from './executePlaybook.js';
import { loadRun } from './loadRun.js';
import type { LoadedRun } from './loadRun.js';
import { compileSource } from './playbookCache.js';
import type { CompiledPlaybook } from './playbookCache.js';
import type { HostOptions, PendingGate, PlaybookResult } from './runSession.js';
import { cancelRun } from './runControl.js';
import { isTransient, leaseRun, RunSession } from './runSession.js';

/** A step about one child of a node's attempt. */
export type ChildStep = Extract<NextStep, { kind: 'start_child' | 'await_child' | 'cancel_child' }>;

/** How long an inline driver waits before it looks again at a child someone else drives. */
const CHILD_POLL_MS = 250;

/**
 * The child run for a step as a new session that has recorded (not yet
 * committed) its `RunStarted`: the text pinned in the parent's `RunStarted`
 * for the node's reference, the node's inputs rendered, the parent's cap
 * default, epic and session, and the part of the parent's pinned texts the
 * child can start in turn. Throws E_LOG_CORRUPT when the parent's log does
 * not pin the text (a log no runtime writes).
 */
export function prepareChild(store: EventStore, parent: { playbook: CompiledPlaybook; state: RunState }, step: ChildStep, options: HostOptions): RunSession {
  const { model } = parent.playbook;
  const { state } = parent;
  const node = model.nodes.get(step.nodeId) as ChildRunNode;
  const id = state.pinned?.refs[node.playbook];
  const text = id === undefined ? undefined : state.pinned?.texts[id];
  if (id === undefined || text === undefined) {
    throw new CantbookError(E_LOG_CORRUPT, `run '${state.runId}' does not pin playbook '${node.playbook}' that node '${node.id}' starts`, { runId: state.runId, nodeId: node.id });
  }
  const playbook = compileSource(text.source, { pinned: true });
  const context = initialContextOf(playbook.model.definition, childInputsOf(model, state, node, step.index));
  const pinned = pinnedSubtree(state.pinned as NonNullable<RunState['pinned']>, id);
  const session = new RunSession(store, playbook, initialRunSnapshot(playbook.machine), options);
  session.record(
    {
      type: 'RunStarted',
      data: {
        playbookName: playbook.model.definition.name,
        sourceHash: playbook.sourceHash,
        source: playbook.source,
        contracts: true,
        context,
        maxIterationsDefault: state.maxIterationsDefault,
        ...(state.epicId === null ? {} : { epicId: state.epicId }),
        ...(state.sessionId === null ? {} : { sessionId: state.sessionId }),
        parent: { runId: state.runId, nodeId: step.nodeId, attempt: step.attempt, index: step.index },
        ...(pinned === undefined ? {} : { pinned }),
      },
    },
    step.childRunId,
  );
  return session;
}

/** How a child ended, as its parent records it; undefined while it has not ended. Pure. */
export function settledFromLog(step: ChildStep, child: LoadedRun): ChildRunSettledData | undefined {
  const value = child.snapshot.value;
  if (typeof value !== 'string' || value === 'idle') return undefined;
  const status: ChildRunStatus = value === 'completed' ? 'completed' : value === 'cancelled' ? 'cancelled' : 'failed';
  const state = child.snapshot.context;
  const output = childOutputOf((event) => contextKeysWritten(child.playbook.model, event), child.events, state.context);
  const error = status === 'completed' ? undefined : (state.error?.message ?? `child run '${state.runId}' ${status}`);
  return { nodeId: step.nodeId, attempt: step.attempt, index: step.index, childRunId: step.childRunId, status, output, ...(error === undefined ? {} : { error }) };
}

/** A child's log, or null when its stream does not exist (its parent recorded it and stopped before creating it). */
export async function loadChild(store: EventStore, runId: string): Promise<LoadedRun | null> {
  try {
    return await loadRun(store, runId);
  } catch (error) {
    if (hasCode(error, E_RUN_NOT_FOUND)) return null;
    throw error;
  }
}

/** What a parent's session lets its children tracker do. */
export interface ChildHost {
  readonly store: EventStore;
  /** The parent as it stands now (its playbook and fold). */
  parent(): { playbook: CompiledPlaybook; state: RunState };
  /** Options for child sessions (the parent's dispatcher, clock, schemas; a signal that stops them with the parent). */
  childOptions(): HostOptions;
  /** Wakes the parent's loop: a child's log moved. */
  poke(): void;
}

interface ChildWatch {
  step: ChildStep;
  /** Inline: the drive (or the wait for someone else's) under way. */
  work?: Promise<void> | undefined;
  /** The child waits for a human: the gates of its tree (tokens of the gates this process opened). */
  gates?: PendingGate[] | undefined;
  /** Why looking after it failed in a way no retry mends (a log that does not fold): the parent fails on it. */
  error?: unknown;
}

/**
 * The children a parent's session looks after (SPEC §12). Inline (an
 * embedded host's `executePlaybook`, `resumePlaybook`, `recoverRun`), it
 * drives each child itself, concurrently, each under its own lease, and
 * follows children another driver holds until they end or wait for a human.
 * For a worker it only makes sure each child's stream exists: workers claim
 * children like any run, and a child's last commit wakes its parent.
 * Either way the parent learns how a child ended only from the child's log.
 */
export class ChildTracker {
  private readonly watches = new Map<string, ChildWatch>();
  /** Children whose logs may have moved: read them at the parent's next turn. */
  private readonly news = new Set<string>();
  private stopped = false;

  constructor(
    private readonly host: ChildHost,
    private readonly inline: boolean,
  ) {}

  /** Takes up the children the parent's steps name: starts, creates or follows each one once. */
  follow(steps: readonly NextStep[]): void {
    for (const step of steps) {
      if (step.kind !== 'start_child' && step.kind !== 'await_child' && step.kind !== 'cancel_child') continue;
      let watch = this.watches.get(step.childRunId);
      if (watch === undefined) {
        watch = { step };
        this.watches.set(step.childRunId, watch);
        this.begin(watch);
      }
      watch.step = step;
      if (step.kind === 'cancel_child' && watch.work === undefined) this.begin(watch);
    }
  }

  /** Whether the parent should wait for a child: one is being driven or followed here, or has news to read. */
  busy(): boolean {
    if (this.news.size > 0) return true;
    for (const watch of this.watches.values()) if (watch.work !== undefined) return true;
    return false;
  }

  /** Whether the parent's loop has child logs to read. */
  hasNews(): boolean {
    return this.news.size > 0;
  }

  /** Marks every child the parent still waits for as news: read again before handing the parent back. */
  lookAgain(): void {
    for (const id of this.watches.keys()) this.news.add(id);
  }

  /** The gates of every child waiting for a human, in the order the children started. */
  gates(): PendingGate[] {
    return [...this.watches.values()].flatMap((watch) => watch.gates ?? []);
  }

  /**
   * Reads the logs of children with news and returns how each one that ended
   * did, for the parent to record (ChildRunSettled). A child whose stream
   * never got created is created now (the parent stopped between its record
   * of the child and the child's first commit).
   */
  async settled(): Promise<ChildRunSettledData[]> {
    const out: ChildRunSettledData[] = [];
    for (const id of [...this.news]) {
      this.news.delete(id);
      const watch = this.watches.get(id);
      if (watch === undefined) continue;
      const child = await loadChild(this.host.store, id);
      if (child === null) {
        // Cancelled before it ever existed: nothing ran, nothing to cancel.
        if (watch.step.kind === 'cancel_child') out.push({ ...refOf(watch.step), status: 'cancelled', output: {}, error: 'cancelled before it started' });
        else if (watch.work === undefined) this.begin(watch);
        continue;
      }
      const ended = settledFromLog(watch.step, child);
      if (ended !== undefined) {
        this.watches.delete(id);
        out.push(ended);
      } else if (watch.error !== undefined) {
        throw watch.error;
      } else if (watch.work === undefined && !this.stopped && (watch.step.kind === 'cancel_child' || (this.inline && watch.gates === undefined))) {
        // To be cancelled while it was being created; or (inline) its driver stopped short, a lease taken over: again.
        this.begin(watch);
      }
    }
    return out;
  }

  /** Stops following: inline drives stop with the parent's signal; waits until they have. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.watches.values()].map((watch) => watch.work));
  }

  /** Starts the work a child needs; when it is done, the child's log is read at the parent's next turn. */
  private begin(watch: ChildWatch): void {
    watch.error = undefined;
    const work: Promise<void> = this.work(watch)
      .catch((error: unknown) => {
        watch.error = error;
      })
      .finally(() => {
        if (watch.work === work) watch.work = undefined;
        this.news.add(watch.step.childRunId);
        this.host.poke();
      });
    watch.work = work;
  }

  private async work(watch: ChildWatch): Promise<void> {
    const { store } = this.host;
    if (watch.step.kind === 'cancel_child') {
      await cancelTree(store, watch.step.childRunId, `its parent '${this.host.parent().state.runId}' stopped node '${watch.step.nodeId}'`);
      return;
    }
    for (;;) {
      if (this.stopped) return;
      try {
        if (await this.driveOnce(watch)) return;
      } catch (error) {
        // A driver that stopped on request stops here too; anything but a race or a passing store error is the parent's to fail on.
        if (hasCode(error, E_RUN_INTERRUPTED)) return;
        if (!isRace(error) && !isTransient(error)) throw error;
      }
      // Someone else drives it (a worker, another process after a takeover): look again soon.
      await new Promise((resolve) => setTimeout(resolve, CHILD_POLL_MS));
    }
  }

  /**
   * One try at a child: create it when its stream does not exist yet (and,
   * inline, drive it), else drive it inline under its own lease. True when
   * there is nothing more to do for now (it ended, waits for a human, or is
   * left to workers).
   */
  private async driveOnce(watch: ChildWatch): Promise<boolean> {
    const { store } = this.host;
    const child = await loadChild(store, watch.step.childRunId);
    if (child === null) {
      const session = prepareChild(store, this.host.parent(), watch.step, this.host.childOptions());
      if (this.inline) this.keep(watch, await session.drive());
      else await session.commit();
      return true;
    }
    if (!this.inline || typeof child.snapshot.value === 'string') return true;
    const lease = await leaseRun(store, watch.step.childRunId, this.host.childOptions());
    let current: LoadedRun;
    try {
      current = await loadRun(store, watch.step.childRunId);
    } catch (error) {
      await store.releaseLease(lease).catch(() => undefined);
      throw error;
    }
    this.keep(watch, await new RunSession(store, current.playbook, current.snapshot, this.host.childOptions(), lease).drive());
    return true;
  }

  /** A child's drive ended: waiting for humans (its gates are the tree's), or ended (read at the next turn). */
  private keep(watch: ChildWatch, result: PlaybookResult): void {
    watch.gates = result.terminalStatus === 'pending_approval' ? (result.approvals ?? []) : undefined;
  }
}

/** Errors that mean another driver got there first: the child is theirs for now. */
function isRace(error: unknown): boolean {
  return ([E_RUN_ACTIVE, E_CONCURRENT_UPDATE, E_LEASE_LOST, E_PLAYBOOK_RESUME_BLOCKED] as const).some((code) => hasCode(error, code));
}

function refOf(step: ChildStep): Pick<ChildRunSettledData, 'nodeId' | 'attempt' | 'index' | 'childRunId'> {
  return { nodeId: step.nodeId, attempt: step.attempt, index: step.index, childRunId: step.childRunId };
}

/**
 * Cancels a run and, depth first, every child it still waits for (SPEC §12:
 * cancelling a parent cancels its children). Runs that already ended, or
 * were never created, are left as they are. Idempotent: a cascade cut short
 * by a crash is finished by calling it again (and by each child's driver,
 * which cancels a child whose parent ended).
 */
export async function cancelTree(store: EventStore, runId: string, reason: string, by?: string): Promise<void> {
  try {
    await cancelRun({ store, runId, reason, ...(by === undefined ? {} : { by }) });
  } catch (error) {
    if (!hasCode(error, E_RUN_FINISHED) && !hasCode(error, E_RUN_NOT_FOUND)) throw error;
  }
}

/** The children a run's fold says are started and not settled, in node then item order. */
export function unsettledChildren(state: RunState): string[] {
  const out: string[] = [];
  for (const set of Object.values(state.children)) {
    out.push(...Object.values(set.inFlight));
  }
  return out;
}
