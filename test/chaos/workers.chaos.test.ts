/**
 * Chaos on one store (issues 11 and 12, SPEC §11): four `cantbook worker`
 * processes drive the runs of a playbook with retries, backoff, a parallel
 * group and a gate decided by a separate approver process, while the test
 * SIGKILLs a random worker every 200–800 ms and starts a new one. At the end:
 * every run ended in the state its machine says and verifies; no attempt of a
 * node overlapped another of the same node (from the agent's own log, with
 * times); no idempotency key was dispatched twice; nothing is left runnable.
 *
 * On SQLite (one file) 200 runs. On PostgreSQL (the `postgres` project) 300
 * runs, on a throwaway cluster of this test's own (scripts/pgTestCluster.sh),
 * which the test also restarts once mid-test (a fast shutdown: every session
 * cut), so other test files on the shared test server are not disturbed.
 *
 * Sized by CHAOS_RUNS and CHAOS_WORKERS (default 4).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { hasCode, listRuns, openPostgresStore, openSqliteStore, verifyRun } from '../../src/index.js';
import type { EventStore } from '../../src/index.js';
import { testStoreKind } from '../helpers/testStores.js';

const kind = testStoreKind();
const RUNS = Number(process.env['CHAOS_RUNS'] ?? (kind === 'postgres' ? 300 : 200));
const WORKERS = Number(process.env['CHAOS_WORKERS'] ?? 4);
const DEADLINE_MS = 240_000;
const here = fileURLToPath(new URL('.', import.meta.url));
const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const fixture = (name: string) => join(here, 'fixtures', name);

const dir = mkdtempSync(join(tmpdir(), 'cantbook-chaos-'));
const clusterScript = fileURLToPath(new URL('../../scripts/pgTestCluster.sh', import.meta.url));
// A directory of its own: the script hands it to the server's user (the test's temp dir is private).
const clusterDir = kind === 'postgres' ? mkdtempSync(join(tmpdir(), 'cantbook-chaos-pg-')) : '';
/** The store as `--db` takes it: a SQLite file, or a URL on this test's own cluster. */
const db = kind === 'sqlite' ? join(dir, 'chaos.db') : `${execFileSync('bash', [clusterScript, 'start', clusterDir], { encoding: 'utf8' }).trim()}&schema=chaos`;
const agentLog = join(dir, 'agent.log');
const tokensFile = join(dir, 'tokens.txt');
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (kind === 'postgres') execFileSync('bash', [clusterScript, 'stop', clusterDir]);
  rmSync(dir, { recursive: true, force: true });
});

async function openStore(): Promise<EventStore> {
  if (kind === 'sqlite') return openSqliteStore(db, { readonly: true });
  return openPostgresStore(db.replace('&schema=chaos', ''), { schema: 'chaos', maxConnections: 2 });
}

/** listRuns, or undefined while the database is restarting. */
async function runsIfUp(store: EventStore): Promise<Awaited<ReturnType<typeof listRuns>> | undefined> {
  try {
    return await listRuns(store);
  } catch (error) {
    if (hasCode(error, 'E_STORE_UNAVAILABLE')) return undefined;
    throw error;
  }
}

const TOKEN = /cbk1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}/g;

function startWorker(): ChildProcess {
  const child = spawn(process.execPath, [cli, 'worker', '--db', db, '--concurrency', '2', '--agent', `module:${fixture('chaosAgent.mjs')}`], {
    env: { PATH: process.env['PATH'] ?? '', HOME: dir, CANTBOOK_LEASE_MS: '1000', CHAOS_LOG: agentLog },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  // A gate's token exists only in what its driver printed: hand each to the approver.
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) for (const token of line.match(TOKEN) ?? []) appendFileSync(tokensFile, `${token}\n`);
  });
  child.stderr?.resume();
  return child;
}

function runNode(args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => child.once('exit', resolve));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Attempt {
  start: number;
  end?: number;
  pid: number;
}

describe(`chaos: workers SIGKILLed at random on one ${kind === 'sqlite' ? 'SQLite file' : 'PostgreSQL server, restarted once mid-test'}`, () => {
  it(`${RUNS} runs by ${WORKERS} workers, one killed every 200-800 ms: every run ends as its machine says, no attempt overlaps`, async () => {
    expect(await runNode([fixture('startRuns.mjs'), db, String(RUNS)])).toBe(0);
    const approver = spawn(process.execPath, [fixture('approver.mjs'), db, tokensFile], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(approver);
    let workers = Array.from({ length: WORKERS }, startWorker);
    const kills = new Map<number, number>(); // pid -> when it was killed
    const store = await openStore();
    const started = Date.now();
    let killed = 0;
    let restartedAt: number | undefined;
    try {
      for (;;) {
        await sleep(200 + Math.floor(Math.random() * 600));
        const seen = await runsIfUp(store);
        expect(Date.now() - started, 'the runs did not end in time').toBeLessThan(DEADLINE_MS);
        if (seen === undefined) continue;
        const open = seen.filter((run) => run.status === 'running' || run.status === 'paused').length;
        if (open === 0) break;
        if (kind === 'postgres' && restartedAt === undefined && open <= (RUNS * 2) / 3) {
          // Once a third of the runs ended: every session is cut, appends in flight fail, the server comes back.
          restartedAt = Date.now();
          execFileSync('bash', [clusterScript, 'restart', clusterDir]);
          console.info(`chaos: PostgreSQL restarted with ${open} runs open, down for ${Date.now() - restartedAt} ms`);
        }
        const victim = workers[Math.floor(Math.random() * workers.length)] as ChildProcess;
        kills.set(victim.pid as number, Date.now());
        victim.kill('SIGKILL');
        killed += 1;
        workers = workers.map((worker) => (worker === victim ? startWorker() : worker));
      }
    } finally {
      for (const worker of workers) worker.kill('SIGTERM');
      approver.kill('SIGTERM');
      await Promise.all([...children].map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)))));
    }
    expect(killed).toBeGreaterThanOrEqual(15);
    if (kind === 'postgres') expect(restartedAt, 'the server was restarted mid-test').toBeDefined();

    // Every run ended, in the state its machine says (verify folds the log and compares), with nothing left to wake.
    const runs = await listRuns(store);
    expect(runs).toHaveLength(RUNS);
    const endings = new Map<string, number>();
    for (const run of runs) {
      expect(['completed', 'failed'], `${run.runId} is ${run.status}`).toContain(run.status);
      expect(run.wakeAt).toBeNull();
      const check = await verifyRun(store, run.runId);
      expect(check.problems, run.runId).toEqual([]);
      let ending = run.status === 'completed' ? 'completed' : `${run.error?.cause ?? '?'} at ${run.error?.nodeId ?? '?'}`;
      // A node the agent never fails can still run out of attempts, if every one of them was cut off by a kill or the
      // restart (SPEC §4: an interrupted attempt is a failure like any other). Then every failure of it, or inside it, was an interruption.
      if (ending.startsWith('exceeded_iteration_cap at ') && ending !== 'exceeded_iteration_cap at prep') {
        const nodeId = run.error?.nodeId as string;
        const inside = nodeId === 'fan' ? ['fan', 'a1', 'b1'] : [nodeId];
        const failures = (await store.readRun(run.runId)).filter((event) => event.type === 'NodeFailed' && inside.includes(event.data.nodeId) && event.data.aborted !== true);
        const cause = (event: (typeof failures)[number]) => (event.type === 'NodeFailed' && event.data.interrupted === true ? 'interrupted' : `failed: ${event.type === 'NodeFailed' ? event.data.error : ''}`);
        expect(failures.map(cause), `${run.runId}: ${nodeId} ran out of attempts`).toEqual(failures.map(() => 'interrupted'));
        ending = 'exceeded_iteration_cap by interruptions';
      }
      endings.set(ending, (endings.get(ending) ?? 0) + 1);
    }
    // Only the endings the playbook allows: prep out of retries, a gate whose token died with its worker, or a node whose every attempt was cut off.
    for (const ending of endings.keys()) expect(['completed', 'exceeded_iteration_cap at prep', 'approval_expired at gate', 'exceeded_iteration_cap by interruptions']).toContain(ending);
    expect(endings.get('completed') ?? 0).toBeGreaterThan(RUNS / 2);
    expect(await store.nextWakeAt(new Date(Date.now() + 365 * 86_400_000).toISOString())).toBeNull();
    // The chaos really happened: attempts interrupted by kills and recovered, gates approved by the other process and resumed by workers.
    const logs = await Promise.all(runs.map((run) => store.readRun(run.runId)));
    const interrupted = logs.flat().filter((event) => event.type === 'NodeFailed' && event.data.interrupted === true).length;
    const resumed = logs.flat().filter((event) => event.type === 'RunResumed').length;
    expect(interrupted).toBeGreaterThan(0);
    expect(resumed).toBeGreaterThan(RUNS / 2);

    // From the agent's side: each idempotency key dispatched once, and attempts of one node never overlap.
    expect(existsSync(agentLog)).toBe(true);
    const attempts = new Map<string, Map<number, Attempt>>();
    for (const line of readFileSync(agentLog, 'utf8').split('\n').filter(Boolean)) {
      const [kind, runId, nodeId, attempt, pid, at] = line.split(' ');
      const key = `${runId} ${nodeId}`;
      const byAttempt = attempts.get(key) ?? new Map<number, Attempt>();
      attempts.set(key, byAttempt);
      const n = Number(attempt);
      if (kind === 'start') {
        expect(byAttempt.has(n), `${key} attempt ${n} was dispatched twice`).toBe(false);
        byAttempt.set(n, { start: Number(at), pid: Number(pid) });
      } else {
        (byAttempt.get(n) as Attempt).end = Number(at);
      }
    }
    for (const [key, byAttempt] of attempts) {
      const ordered = [...byAttempt.entries()].sort((a, b) => a[1].start - b[1].start);
      for (let i = 1; i < ordered.length; i++) {
        const [previous, before] = ordered[i - 1] as [number, Attempt];
        const [current, next] = ordered[i] as [number, Attempt];
        // An attempt that never ended died with its worker: it lasted until that kill at the latest.
        const ended = before.end ?? kills.get(before.pid);
        expect(ended, `${key} attempt ${previous} never ended, and its worker ${before.pid} was not killed`).toBeDefined();
        expect(ended as number, `${key}: attempt ${current} started while attempt ${previous} ran`).toBeLessThanOrEqual(next.start);
      }
    }
    console.info(`chaos (${kind}): ${RUNS} runs, ${killed} workers killed, ${interrupted} attempts interrupted, ${resumed} gates resumed, endings ${JSON.stringify(Object.fromEntries(endings))}, ${Math.round((Date.now() - started) / 1000)} s`);
    await store.close();
  }, DEADLINE_MS + 60_000);
});
