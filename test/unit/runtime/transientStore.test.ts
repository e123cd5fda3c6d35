/**
 * A transient store error never fails a run (SPEC §4): another process holds
 * the SQLite file's write lock for 8 s while a run commits a node's result.
 * Within the lease the driver retries the commit and the run completes with
 * the result kept; past it the driver stops without recording anything and the
 * run is recovered afterwards. The lock holder is a real process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentDispatcher } from '../../../src/adapters/types.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, tempSqliteStore } from '../../helpers/runtimeHarness.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const LOCK_MS = 8000;

let store: EventStore;
let path: string;
let cleanup: () => Promise<void>;
let holder: ChildProcess | undefined;
beforeEach(() => ({ store, path, cleanup } = tempSqliteStore()));
afterEach(async () => {
  holder?.kill('SIGKILL');
  await cleanup();
});

/** Starts a process that takes the database's write lock and keeps it for `ms`; resolves once it holds it. */
async function holdLock(ms: number): Promise<ChildProcess> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, Number(process.argv[2]));
  `;
  const child = spawn(process.execPath, ['-e', script, path, String(ms)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${String(code)} before locking`)));
  });
  return child;
}

const chain = playbookFrom(`
version: "1.0"
name: chain
nodes:
  - { id: a, type: agentic, skill: s }
  - { id: b, type: agentic, skill: s, depends: [a] }
  - { id: c, type: agentic, skill: s, depends: [b] }
`);

/** Succeeds every node; b takes the lock in another process before it answers, so b's result meets a locked file. */
function lockingDispatcher(ms: number): AgentDispatcher & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async dispatch(request) {
      calls.push(`${request.nodeId}#${request.iteration}`);
      if (request.nodeId === 'b' && request.iteration === 1) holder = await holdLock(ms);
      return { status: 'success', output: { [request.nodeId]: `done ${request.iteration}` } };
    },
  };
}

describe('transient store errors', () => {
  it('a lock held for 8 s while a result commits: the driver retries within its lease and the run completes, result kept', async () => {
    const dispatcher = lockingDispatcher(LOCK_MS);
    const started = Date.now();
    const result = await executePlaybook({ store, ...chain, dispatcher });
    expect(Date.now() - started).toBeGreaterThanOrEqual(LOCK_MS - 500); // it really waited for the lock
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls).toEqual(['a#1', 'b#1', 'c#1']); // b ran once: its result was not lost
    expect(result.finalContext).toMatchObject({ b: 'done 1' });
    const events = await readRunEvents(store, result.runId);
    expect(events.some((event) => event.type === 'RunFailed')).toBe(false);
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  }, 30_000);

  it('a lock held longer than the lease: the driver stops without recording, and the run is recovered afterwards', async () => {
    const dispatcher = lockingDispatcher(LOCK_MS);
    // A 3 s lease runs out while the lock is held: the driver gives up rather than write past its lease.
    const failure = await executePlaybook({ store, ...chain, dispatcher, leaseMs: 3000 }).then(() => undefined, (error: unknown) => error);
    expect(failure).toMatchObject({ code: 'E_STORE_UNAVAILABLE', details: { transient: true } });
    if (holder?.exitCode === null) await once(holder, 'exit');
    const [runId] = await store.listRunIds();
    const types = (await readRunEvents(store, runId as string)).map((event) => event.type);
    expect(types).toEqual(['RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeStarted']); // nothing false, nothing failed
    const recovered = await recoverRun({ store, runId: runId as string, dispatcher: scriptedDispatcher() });
    expect(recovered.terminalStatus).toBe('completed');
    expect((await verifyRun(store, runId as string)).ok).toBe(true);
  }, 30_000);
});
