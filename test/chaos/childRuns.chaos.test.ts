/**
 * Chaos for child runs (issue 13, SPEC §4, §11, §12): a real driver process
 * executes a root whose `map` runs six children of a three-node playbook,
 * three at a time, with a short lease and an agent that takes a few random
 * milliseconds and fails some first attempts. The test waits until three
 * children are in flight (their own runs rows say `running`), waits a few
 * random milliseconds more (in about a third of the trials it first waits
 * for the second wave of children) and SIGKILLs the driver. Recovery
 * alternates between trials: `recoverRun` on the root in this process
 * (retried while it refuses with E_RUN_ACTIVE, a lease still live), or a
 * worker (`runUntilIdle`, repeated until the root ended).
 *
 * The oracle, for every trial: the root and all six children complete (the
 * agent's failure script fails only first attempts, and the one kill costs a
 * node at most one more, within its cap of 3); every run of the tree
 * verifies; no more than three children were ever in flight at once (in the
 * dead driver's log, and in the whole log after recovery); the root records
 * exactly one ChildRunStarted and one
 * ChildRunSettled per (node, attempt, index), under the derived id, and the
 * store holds exactly those child streams, each started once by the right
 * parent, item and attempt; the map's output lists the items in item order;
 * no log starts one attempt of a node twice; the only failures are the
 * scripted ones and interruptions; from the agent's side no idempotency key
 * was dispatched twice and no two attempts of one node overlapped.
 *
 * On a failure the seed is in the message and every event of the tree is
 * written to a JSON file under the OS temp dir (its path is in the message).
 * Sized by CHAOS_CHILD_TRIALS (default 10 on SQLite, 5 on PostgreSQL);
 * CHAOS_SEED fixes the first trial's seed.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorker, getRun, hasCode, listRuns, readRunEvents, recoverRun, verifyRun } from '../../src/index.js';
import type { EventStore, PlaybookResult, RunEvent } from '../../src/index.js';
import { tempStore, testStoreKind } from '../helpers/testStores.js';
import type { TestStore } from '../helpers/testStores.js';
import { createChaosAgent, failsOnPurpose, ITEM_NODES, itemsOf, seededRandom } from './fixtures/childRunAgent.js';

const kind = testStoreKind();
const TRIALS = Number(process.env['CHAOS_CHILD_TRIALS'] ?? (kind === 'postgres' ? 5 : 10));
const FIRST_SEED = Number(process.env['CHAOS_SEED'] ?? Math.floor(Math.random() * 1_000_000));
/** Every driver's lease, the dead one's and recovery's: short, so recovery need not wait long. */
const LEASE_MS = 500;
/** How long one trial may take to reach three children in flight, and then to recover. */
const PHASE_MS = 30_000;
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const driverScript = fileURLToPath(new URL('./fixtures/childRunDriver.ts', import.meta.url));

const started = new Set<ChildProcess>();
afterAll(() => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ended = (status: string | undefined) => status === 'completed' || status === 'failed' || status === 'cancelled';

interface Trial {
  seed: number;
  recovery: 'inline' | 'worker';
  /** Children whose own row said `running` right after the kill. */
  inFlightAtKill: number;
  /** Child streams that existed right after the kill (the rest were created by recovery). */
  childrenAtKill: number;
  /** recoverRun calls refused with E_RUN_ACTIVE (inline), or runUntilIdle rounds (worker). */
  tries: number;
  interrupted: number;
  scriptedFailures: number;
  ms: number;
}

/** Starts the driver process on the trial's store. */
function startDriver(t: TestStore, rootId: string, agentLog: string, seed: number): { proc: ChildProcess; output: () => string; exited: Promise<void> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', driverScript, t.spec, rootId, agentLog, String(seed), String(LEASE_MS)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  let text = '';
  proc.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  proc.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => started.delete(proc));
  return { proc, output: () => text, exited };
}

/** The root and, breadth first, every run below it. */
async function treeOf(store: EventStore, rootId: string): Promise<string[]> {
  const ids = [rootId];
  for (let i = 0; i < ids.length; i++) for (const child of await listRuns(store, { parentRunId: ids[i] as string })) ids.push(child.runId);
  return ids;
}

/** Recovery (a): recoverRun on the root in this process, retried while the dead driver's lease is live. */
async function recoverInline(store: EventStore, rootId: string, agentLog: string, seed: number): Promise<{ result: PlaybookResult; tries: number }> {
  const dispatcher = createChaosAgent({ log: agentLog, seed, delaySeed: seed * 7 + 2 });
  const until = Date.now() + PHASE_MS;
  for (let refused = 0; ; refused++) {
    try {
      return { result: await recoverRun({ store, runId: rootId, dispatcher, leaseMs: LEASE_MS }), tries: refused };
    } catch (error) {
      if (!hasCode(error, 'E_RUN_ACTIVE') || Date.now() > until) throw error;
      await sleep(50);
    }
  }
}

/** Recovery (b): a worker, runUntilIdle repeated until the root ended. Errors it reports (other than lost races) are returned. */
async function recoverByWorker(store: EventStore, rootId: string, agentLog: string, seed: number): Promise<{ rounds: number; errors: string[] }> {
  const errors: string[] = [];
  const worker = createWorker({
    store,
    dispatcher: createChaosAgent({ log: agentLog, seed, delaySeed: seed * 7 + 3 }),
    pollMs: 20,
    leaseMs: LEASE_MS,
    concurrency: 4,
    onError: (error, runId) => errors.push(`${runId}: ${error instanceof Error ? error.message : String(error)}`),
  });
  const until = Date.now() + PHASE_MS;
  for (let rounds = 1; ; rounds++) {
    await worker.runUntilIdle();
    if (ended((await getRun(store, rootId))?.status)) return { rounds, errors };
    if (Date.now() > until) throw new Error(`a worker did not finish root '${rootId}' within ${PHASE_MS} ms (${rounds} rounds of runUntilIdle); it reported ${errors.length} errors, the first: ${errors.slice(0, 3).join(' | ')}`);
    await sleep(50);
  }
}

/** The most children a parent's log has started and not yet settled at once. */
function peakInFlight(events: readonly RunEvent[]): number {
  let running = 0;
  let peak = 0;
  for (const event of events) {
    if (event.type === 'ChildRunStarted') running += 1;
    if (event.type === 'ChildRunSettled') running -= 1;
    peak = Math.max(peak, running);
  }
  return peak;
}

/** The oracle for one trial's tree (see the file's comment). Returns what it counted. */
async function checkTree(store: EventStore, rootId: string, seed: number, agentLog: string, killed: { pid: number; at: number }): Promise<{ interrupted: number; scripted: number }> {
  const items = itemsOf(seed);
  const childIds = items.map((_, index) => `${rootId}.each.1.${index}`);

  // The root completed, and every run in the store is the root or one of its six children, each completed and verified.
  const rootRow = await getRun(store, rootId);
  expect(rootRow?.status, `root '${rootId}'`).toBe('completed');
  expect((await store.listRunIds()).sort()).toEqual([rootId, ...childIds].sort());
  expect((await treeOf(store, rootId)).sort()).toEqual([rootId, ...childIds].sort());
  for (const row of await listRuns(store)) expect(row.status, `${row.runId} is ${row.status}`).toBe('completed');
  for (const id of [rootId, ...childIds]) expect((await verifyRun(store, id)).problems, id).toEqual([]);

  // Exactly one ChildRunStarted and one ChildRunSettled per (node, attempt, index), under the derived id; the map ran one attempt.
  const rootEvents = await readRunEvents(store, rootId);
  const startedKeys = rootEvents.flatMap((event) => (event.type === 'ChildRunStarted' ? [`${event.data.nodeId}.${event.data.attempt}.${event.data.index} ${event.data.childRunId}`] : []));
  expect(startedKeys.sort()).toEqual(childIds.map((id) => `${id.slice(rootId.length + 1)} ${id}`).sort());
  const settled = rootEvents.flatMap((event) => (event.type === 'ChildRunSettled' ? [`${event.data.childRunId} ${event.data.status}`] : []));
  expect(settled.sort()).toEqual(childIds.map((id) => `${id} completed`).sort());
  expect(peakInFlight(rootEvents), 'children in flight at once (max_concurrency 3)').toBeLessThanOrEqual(3);
  expect(rootEvents.filter((event) => event.type === 'NodeStarted' && event.data.nodeId === 'each').map((event) => event.type === 'NodeStarted' && event.data.attempt)).toEqual([1]);

  // Each child stream was started once, by this parent, for its item and attempt.
  for (const [index, id] of childIds.entries()) {
    const events = await readRunEvents(store, id);
    const starts = events.filter((event) => event.type === 'RunStarted');
    expect(starts, id).toHaveLength(1);
    const first = events[0];
    expect(first?.type).toBe('RunStarted');
    if (first?.type === 'RunStarted') {
      expect(first.data.parent, id).toEqual({ runId: rootId, nodeId: 'each', attempt: 1, index });
      expect(first.data.context['item'], id).toBe(items[index]);
    }
  }

  // The map's output: the items in item order, each child's outputs.
  const each = rootRow?.bindings['each'] as { runId: string; status: string; output: Record<string, unknown> }[];
  expect(each.map((entry) => [entry.runId, entry.status])).toEqual(childIds.map((id) => [id, 'completed']));
  expect(each.map((entry) => entry.output)).toEqual(items.map((item) => Object.fromEntries(ITEM_NODES.map((node) => [node, `${item}/${node}`]))));
  expect(rootRow?.bindings['ship']).toBe('shipped');

  // In every log: no attempt of a node started twice; every failure scripted or an interruption.
  let interrupted = 0;
  let scripted = 0;
  for (const id of [rootId, ...childIds]) {
    const events = await readRunEvents(store, id);
    const attempts = events.flatMap((event) => (event.type === 'NodeStarted' ? [`${event.data.nodeId}#${event.data.attempt}`] : []));
    expect(attempts.filter((key, i) => attempts.indexOf(key) !== i), `${id}: attempts started twice`).toEqual([]);
    for (const event of events) {
      if (event.type !== 'NodeFailed') continue;
      if (event.data.interrupted === true) interrupted += 1;
      else {
        expect(failsOnPurpose(id, event.data.nodeId, event.data.attempt), `${id}: unscripted failure ${JSON.stringify(event.data)}`).toBe(true);
        scripted += 1;
      }
    }
  }

  // From the agent's side: no idempotency key dispatched twice, no two attempts of one node at once.
  const attempts = new Map<string, { attempt: number; start: number; end?: number; pid: number }[]>();
  const seen = new Set<string>();
  for (const line of readFileSync(agentLog, 'utf8').split('\n').filter(Boolean)) {
    const [what, runId, nodeId, attempt, pid, at] = line.split(' ') as [string, string, string, string, string, string];
    const key = `${runId}:${nodeId}:${attempt}`;
    const list = attempts.get(`${runId} ${nodeId}`) ?? [];
    attempts.set(`${runId} ${nodeId}`, list);
    if (what === 'start') {
      expect(seen.has(key), `${key} was dispatched twice`).toBe(false);
      seen.add(key);
      list.push({ attempt: Number(attempt), start: Number(at), pid: Number(pid) });
    } else {
      const entry = list.find((a) => a.attempt === Number(attempt));
      if (entry) entry.end = Number(at);
    }
  }
  for (const [key, list] of attempts) {
    const ordered = [...list].sort((a, b) => a.start - b.start);
    for (let i = 1; i < ordered.length; i++) {
      const before = ordered[i - 1] as (typeof ordered)[number];
      const next = ordered[i] as (typeof ordered)[number];
      // An attempt that never ended died with the killed driver: it lasted until the kill at the latest.
      const end = before.end ?? (before.pid === killed.pid ? killed.at : undefined);
      expect(end, `${key} attempt ${before.attempt} never ended, and its process ${before.pid} was not killed`).toBeDefined();
      expect(end as number, `${key}: attempt ${next.attempt} started while attempt ${before.attempt} ran`).toBeLessThanOrEqual(next.start);
    }
  }
  return { interrupted, scripted };
}

/** Every event of every run in the store, for the report of a failed trial. */
async function dumpStore(store: EventStore, file: string): Promise<void> {
  const runs: Record<string, RunEvent[]> = {};
  for (const id of (await store.listRunIds()).sort()) runs[id] = await readRunEvents(store, id);
  writeFileSync(file, JSON.stringify(runs, null, 1));
}

async function runTrial(n: number): Promise<Trial> {
  const seed = FIRST_SEED + n;
  const recovery = n % 2 === 0 ? 'inline' : 'worker';
  const random = seededRandom(seed * 13 + 5);
  const began = Date.now();
  const t = await tempStore();
  const { store } = t;
  const rootId = `chaos${seed.toString(36)}`;
  const agentLog = join(t.dir, 'agent.log');
  try {
    // 1. The driver runs until three children are in flight (their own rows: running), then a few random ms more.
    // In about a third of the trials it waits for the second wave: three in flight after one has completed.
    const secondWave = random() < 0.35;
    const driver = startDriver(t, rootId, agentLog, seed);
    const until = Date.now() + PHASE_MS;
    for (;;) {
      if (driver.proc.exitCode !== null || driver.proc.signalCode !== null) throw new Error(`the driver exited (${driver.proc.exitCode ?? driver.proc.signalCode}) before three children were in flight:\n${driver.output()}`);
      if (Date.now() > until) throw new Error(`three children were never in flight within ${PHASE_MS} ms:\n${driver.output()}`);
      const rows = await listRuns(store, { parentRunId: rootId });
      const running = rows.filter((row) => row.status === 'running').length;
      if (running >= 3 && (!secondWave || rows.some((row) => row.status === 'completed'))) break;
      await sleep(5);
    }
    await sleep(Math.floor(random() * 40));
    // 2. SIGKILL (only this trial's driver), and look at what it left.
    const killed = { pid: driver.proc.pid as number, at: Date.now() };
    driver.proc.kill('SIGKILL');
    await driver.exited;
    expect(driver.proc.signalCode, driver.output()).toBe('SIGKILL');
    const children = await listRuns(store, { parentRunId: rootId });
    const inFlightAtKill = children.filter((row) => row.status === 'running').length;
    expect(ended((await getRun(store, rootId))?.status), 'the root ended before the kill').toBe(false);

    let tries: number;
    try {
      expect(inFlightAtKill, 'children running at the kill (max_concurrency 3)').toBeLessThanOrEqual(3);
      expect(peakInFlight(await readRunEvents(store, rootId)), 'children the dead driver had in flight at once (max_concurrency 3)').toBeLessThanOrEqual(3);
      // 3. Recovery: inline or by a worker.
      if (recovery === 'inline') {
        const recovered = await recoverInline(store, rootId, agentLog, seed);
        expect(recovered.result.terminalStatus, JSON.stringify(recovered.result.error)).toBe('completed');
        tries = recovered.tries;
      } else {
        const recovered = await recoverByWorker(store, rootId, agentLog, seed);
        expect(recovered.errors, 'errors the worker reported').toEqual([]);
        tries = recovered.rounds;
      }
      // 4. The oracle.
      const counted = await checkTree(store, rootId, seed, agentLog, killed);
      return { seed, recovery, inFlightAtKill, childrenAtKill: children.length, tries, interrupted: counted.interrupted, scriptedFailures: counted.scripted, ms: Date.now() - began };
    } catch (error) {
      const file = join(tmpdir(), `cantbook-child-chaos-${kind}-${seed}.json`);
      await dumpStore(store, file).catch(() => undefined);
      if (existsSync(agentLog)) writeFileSync(`${file}.agent.log`, readFileSync(agentLog));
      if (existsSync(`${agentLog}.batches`)) writeFileSync(`${file}.batches`, readFileSync(`${agentLog}.batches`));
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`trial ${n} (seed ${seed}, ${recovery} recovery, ${inFlightAtKill} children in flight at the kill): ${message}\nevents of the tree: ${file}\nagent log: ${file}.agent.log\nthe driver's durable batches: ${file}.batches`, { cause: error });
    }
  } finally {
    await t.cleanup();
  }
}

describe(`chaos: the driver of a map SIGKILLed with three children in flight (${kind === 'sqlite' ? 'SQLite file' : 'PostgreSQL'})`, () => {
  it(`${TRIALS} trials, recovered inline and by a worker in turn: every run of the tree completes once, nothing started twice`, async () => {
    const began = Date.now();
    const trials: Trial[] = [];
    for (let n = 0; n < TRIALS; n++) trials.push(await runTrial(n));

    // The chaos really happened: kills with three children in flight, attempts cut off, both recoveries, scripted retries.
    const withThree = trials.filter((trial) => trial.inFlightAtKill === 3).length;
    expect(withThree).toBeGreaterThan(0);
    expect(trials.reduce((sum, trial) => sum + trial.interrupted, 0)).toBeGreaterThan(0);
    expect(trials.reduce((sum, trial) => sum + trial.scriptedFailures, 0)).toBeGreaterThan(0);
    const inline = trials.filter((trial) => trial.recovery === 'inline').length;
    const spread = (pick: (trial: Trial) => number) => JSON.stringify(trials.map(pick));
    console.info(
      `chaos child runs (${kind}): ${TRIALS} trials from seed ${FIRST_SEED}, recovered ${inline} inline / ${TRIALS - inline} by a worker, ` +
        `${withThree} kills with 3 children in flight (in flight per trial ${spread((trial) => trial.inFlightAtKill)}, child streams at the kill ${spread((trial) => trial.childrenAtKill)}), ` +
        `${trials.reduce((sum, trial) => sum + trial.interrupted, 0)} attempts interrupted, ${trials.reduce((sum, trial) => sum + trial.scriptedFailures, 0)} scripted failures, ` +
        `recoverRun refused while the lease was live ${spread((trial) => (trial.recovery === 'inline' ? trial.tries : -1))} (-1: worker), ` +
        `ms per trial ${spread((trial) => trial.ms)}, ${Math.round((Date.now() - began) / 1000)} s`,
    );
  }, TRIALS * 2 * PHASE_MS);
});
