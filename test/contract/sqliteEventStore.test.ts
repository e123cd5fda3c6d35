import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CantbookError,
  E_CONCURRENT_UPDATE,
  E_LOG_CORRUPT,
  E_STORE_UNAVAILABLE,
  hasCode,
} from '../../src/errors.js';
import { verifyChain } from '../../src/events/hashChain.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { SQLITE_SCHEMA_VERSION, openSqliteStore } from '../../src/store/sqliteEventStore.js';
import { describeEventStoreContract, rejectionOf } from './eventStore.contract.js';
import type { ChildResult } from './fixtures/appendChild.js';
import { pauseRun, retryNode, startRun, succeedNode } from './fixtures/runRequests.js';

const childScript = fileURLToPath(new URL('./fixtures/appendChild.ts', import.meta.url));

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cantbook-store-'));
}

describeEventStoreContract('sqlite file (WAL)', async () => {
  const dir = await tempDir();
  const path = join(dir, 'cantbook.db');
  let current = openSqliteStore(path);
  const connections: EventStore[] = [];
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = openSqliteStore(path);
      return current;
    },
    another: async () => {
      const connection = openSqliteStore(path);
      connections.push(connection);
      return connection;
    },
    cleanup: async () => {
      for (const connection of connections) await connection.close();
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}, { connections: true });

describeEventStoreContract('sqlite file (synchronous FULL)', async () => {
  const dir = await tempDir();
  const path = join(dir, 'cantbook.db');
  let current = openSqliteStore(path, { synchronous: 'FULL' });
  return {
    store: current,
    reopen: async () => {
      await current.close();
      current = openSqliteStore(path, { synchronous: 'FULL' });
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describeEventStoreContract('sqlite :memory:', async () => {
  const store = openSqliteStore(':memory:');
  return { store, cleanup: () => store.close() };
});

/** Runs `fn` and returns what it throws, failing the test when it does not throw. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('openSqliteStore (SQLite specifics)', () => {
  let dir: string;
  let path: string;
  const open: EventStore[] = [];
  const raw: Database.Database[] = [];

  const openStore = (...args: Parameters<typeof openSqliteStore>): EventStore => {
    const store = openSqliteStore(...args);
    open.push(store);
    return store;
  };
  const openRaw = (file = path): Database.Database => {
    const db = new Database(file);
    raw.push(db);
    return db;
  };

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'cantbook.db');
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    for (const db of raw.splice(0)) db.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('opening', () => {
    it('creates the schema in WAL mode and records the schema version', async () => {
      const store = openStore(path);
      await store.append(startRun('run-a'));
      const db = openRaw();
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe(String(SQLITE_SCHEMA_VERSION));
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['approvals', 'attempt_logs', 'events', 'leases', 'meta', 'playbooks', 'run_attempts', 'run_bindings', 'run_settings', 'runs']);
    });

    it('opens an existing store again without touching its data', async () => {
      const first = openStore(path);
      await first.append(startRun('run-a'));
      await first.close();
      const second = openStore(path);
      expect(await second.listRunIds()).toEqual(['run-a']);
    });

    it('reports a file of random bytes as E_LOG_CORRUPT naming the path, never a raw SqliteError', async () => {
      await writeFile(path, randomBytes(16 * 1024));
      const error = thrownBy(() => openStore(path));
      expect(error).toBeInstanceOf(CantbookError);
      expect(hasCode(error, E_LOG_CORRUPT)).toBe(true);
      expect((error as Error).message).toContain(path);
      expect((error as Error).cause).toBeInstanceOf(Database.SqliteError);
    });

    it('reports a damaged SQLite header as E_LOG_CORRUPT', async () => {
      await writeFile(path, Buffer.concat([Buffer.from('SQLite format 3\0'), randomBytes(4096)]));
      const error = thrownBy(() => openStore(path));
      expect(hasCode(error, E_LOG_CORRUPT) || hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect((error as Error).message).toContain(path);
    });

    it('refuses a store written by a newer cantbook (unknown schema version)', async () => {
      await openStore(path).close();
      const db = openRaw();
      db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SQLITE_SCHEMA_VERSION + 1));
      const error = thrownBy(() => openStore(path));
      expect(hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toContain('newer');
    });

    it("refuses another application's SQLite database instead of adding tables to it", async () => {
      const db = openRaw();
      db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
      const error = thrownBy(() => openStore(path));
      expect(hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect((error as Error).message).toContain("'customers'");
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
      expect(tables).toEqual(['customers']);
    });

    it('does not create directories', () => {
      const nested = join(dir, 'missing', 'cantbook.db');
      const error = thrownBy(() => openStore(nested));
      expect(hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect((error as Error).message).toContain(nested);
      expect(existsSync(join(dir, 'missing'))).toBe(false);
    });

    it('opens read-only: reads work, appends fail with E_STORE_UNAVAILABLE', async () => {
      const writer = openStore(path);
      const run = await writer.append(startRun('run-a')).then(() => startRun('run-a').run);
      const reader = openStore(path, { readonly: true });
      expect(await reader.getRun('run-a')).toEqual(run);
      const error = await rejectionOf(reader.append(succeedNode(run, {}, null)));
      expect(hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect((error as Error).cause).toBeInstanceOf(Database.SqliteError);
      expect(await reader.readRun('run-a')).toHaveLength(2);
    });

    it('refuses read-only opening of a missing file or an uninitialised one', async () => {
      expect(hasCode(thrownBy(() => openStore(path, { readonly: true })), E_STORE_UNAVAILABLE)).toBe(true);
      openRaw().close();
      expect(hasCode(thrownBy(() => openStore(path, { readonly: true })), E_STORE_UNAVAILABLE)).toBe(true);
    });

    it('fails calls on a closed store with E_STORE_UNAVAILABLE', async () => {
      const store = openStore(path);
      await store.close();
      await store.close(); // idempotent
      expect(hasCode(await rejectionOf(store.readRun('run-a')), E_STORE_UNAVAILABLE)).toBe(true);
      expect(hasCode(await rejectionOf(store.append(startRun('run-a'))), E_STORE_UNAVAILABLE)).toBe(true);
    });
  });

  describe('errors during operations', () => {
    it('wraps a lock held past busyTimeoutMs as E_STORE_UNAVAILABLE, keeping the SqliteError as cause', async () => {
      const store = openStore(path, { busyTimeoutMs: 20 });
      const blocker = openRaw();
      blocker.exec('BEGIN IMMEDIATE');
      const error = await rejectionOf(store.append(startRun('run-a')));
      blocker.exec('ROLLBACK');

      expect(error).toBeInstanceOf(CantbookError);
      expect(hasCode(error, E_STORE_UNAVAILABLE)).toBe(true);
      expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(false);
      expect((error as Error).cause).toBeInstanceOf(Database.SqliteError);
      expect(((error as Error).cause as { code: string }).code).toMatch(/^SQLITE_BUSY/);
      // The store is usable again once the lock is gone.
      await store.append(startRun('run-a'));
      expect(await store.readRun('run-a')).toHaveLength(2);
    });

    it('reports unparseable stored JSON as E_LOG_CORRUPT', async () => {
      const store = openStore(path);
      await store.append(startRun('run-a'));
      openRaw().prepare("UPDATE events SET data = '{not json' WHERE run_id = 'run-a' AND seq = 2").run();
      const error = await rejectionOf(store.readRun('run-a'));
      expect(hasCode(error, E_LOG_CORRUPT)).toBe(true);
      expect((error as Error).message).toContain("run 'run-a'");
    });

    it('rejects a run row whose version does not match the append (programmer error)', async () => {
      const store = openStore(path);
      const request = startRun('run-a');
      const error = await rejectionOf(store.append({ ...request, run: { ...request.run, version: 1 } }));
      expect(error).toBeInstanceOf(TypeError);
      expect(await store.readRun('run-a')).toEqual([]);
    });
  });

  describe('two connections in one process', () => {
    it('detects a stale cached head through the UNIQUE constraint, then recovers', async () => {
      const a = openStore(path);
      const b = openStore(path);
      const run = startRun('run-x').run;
      await a.append(startRun('run-x'));

      // b moves the stream on; a still believes the stream ends at seq 2.
      const moved = retryNode(run, 'b was here');
      await b.append(moved);
      const error = await rejectionOf(a.append(succeedNode(run, { from: 'a' }, null)));
      expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(true);
      expect((error as CantbookError).details).toEqual({ runId: 'run-x', expectedVersion: 2, actualVersion: 4 });

      // From the current row, a appends on top of b's event with a valid chain.
      await a.append(succeedNode(moved.run, { from: 'a' }, null));
      const events = await b.readRun('run-x');
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(verifyChain('run-x', events)).toEqual([]);
    });

    it('chains onto events written by another connection even when its cache disagrees', async () => {
      const a = openStore(path);
      const b = openStore(path);
      const start = startRun('run-y');
      await a.append(start);
      const bStep = retryNode(start.run, 'b step');
      await b.append(bStep);
      // a's cache says seq 2; the request says 4: a must read the real head.
      await a.append(retryNode(bStep.run, 'a step'));
      expect(verifyChain('run-y', await a.readRun('run-y'))).toEqual([]);
    });
  });

  describe('tampering is visible to verifyChain', () => {
    async function writeRun(): Promise<EventStore> {
      const store = openStore(path);
      let run = (await store.append(startRun('run-t')), startRun('run-t').run);
      run = (await store.append(retryNode(run, 'flaky')), retryNode(run, 'flaky').run);
      await store.append(pauseRun(run, 'approval', 'appr-t'));
      return store;
    }

    it('an edited event breaks its hash', async () => {
      const store = await writeRun();
      expect(verifyChain('run-t', await store.readRun('run-t'))).toEqual([]);
      openRaw()
        .prepare("UPDATE events SET data = json_set(data, '$.error', 'nothing to see') WHERE run_id = 'run-t' AND seq = 3")
        .run();
      const problems = verifyChain('run-t', await store.readRun('run-t'));
      expect(problems).toEqual([expect.objectContaining({ seq: 3, problem: 'hash_mismatch' })]);
    });

    it('a deleted middle event leaves a seq gap', async () => {
      const store = await writeRun();
      openRaw().prepare("DELETE FROM events WHERE run_id = 'run-t' AND seq = 3").run();
      const problems = verifyChain('run-t', await store.readRun('run-t'));
      expect(problems.map((p) => p.problem)).toContain('seq_gap');
      expect(problems[0]).toMatchObject({ seq: 4, problem: 'seq_gap' });
    });
  });

  it('stores one playbook row per distinct source', async () => {
    const store = openStore(path);
    await store.append(startRun('run-1'));
    await store.append(startRun('run-2'));
    await store.append(startRun('run-3', { playbookName: 'ivtr' }));
    expect(openRaw().prepare('SELECT COUNT(*) FROM playbooks').pluck().get()).toBe(2);
  });
});

describe('openSqliteStore across processes', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'cantbook.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A spawned child's two milestones: it is ready at the barrier, and it reported. */
  function watch(child: ChildProcess, label: string): { ready: Promise<void>; result: Promise<ChildResult> } {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const died = new Promise<never>((_, reject) => {
      child.once('exit', (code) => reject(new Error(`${label} exited with ${String(code)} before reporting: ${stderr}`)));
    });
    died.catch(() => undefined);
    const message = (kind: string): Promise<unknown> =>
      Promise.race([
        new Promise((resolve) => {
          const listener = (m: { kind: string }): void => {
            if (m.kind !== kind) return;
            child.off('message', listener);
            resolve(m);
          };
          child.on('message', listener);
        }),
        died,
      ]);
    return { ready: message('ready').then(() => undefined), result: message('result') as Promise<ChildResult> };
  }

  /**
   * Spawns one child per worker, waits until every child has opened the store
   * and read the run (the barrier), releases them together, and collects results.
   */
  async function raceChildren(args: (worker: number) => string[], workers: number): Promise<ChildResult[]> {
    const children = Array.from({ length: workers }, (_, worker) =>
      fork(childScript, args(worker), { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] }),
    );
    try {
      const watched = children.map((child, i) => watch(child, `child ${i}`));
      await Promise.all(watched.map((w) => w.ready));
      for (const child of children) child.send({ kind: 'go' });
      const results = await Promise.all(watched.map((w) => w.result));
      await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : undefined)));
      return results;
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
    }
  }

  it('lets exactly one of 4 processes appending at the same version win', async () => {
    const store = openSqliteStore(path);
    const start = startRun('run-race');
    await store.append(start);
    await store.close();

    const results = await raceChildren((worker) => ['race', path, 'run-race', String(worker)], 4);

    const wins = results.filter((r) => r.mode === 'race' && r.ok);
    const losses = results.filter((r): r is Extract<ChildResult, { ok: false }> => r.mode === 'race' && !r.ok);
    expect(wins).toHaveLength(1);
    expect(losses).toHaveLength(3);
    for (const loss of losses) expect(loss.code).toBe(E_CONCURRENT_UPDATE);

    const check = openSqliteStore(path, { readonly: true });
    const events = await check.readRun('run-race');
    await check.close();
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(events.filter((e) => e.seq === 3)).toHaveLength(1);
    expect(verifyChain('run-race', events)).toEqual([]);
  });

  it('keeps one gapless, valid chain when 4 processes keep appending with retries', async () => {
    const store = openSqliteStore(path);
    await store.append(startRun('run-busy'));
    await store.close();
    const perWorker = 50;

    const results = await raceChildren((worker) => ['contend', path, 'run-busy', String(worker), String(perWorker)], 4);

    for (const result of results) expect(result).toMatchObject({ mode: 'contend', successes: perWorker });
    const check = openSqliteStore(path, { readonly: true });
    const events = await check.readRun('run-busy');
    const row = await check.getRun('run-busy');
    await check.close();
    const total = 2 + 4 * perWorker * 2;
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(verifyChain('run-busy', events)).toEqual([]);
    expect(row?.version).toBe(total);
    for (let worker = 0; worker < 4; worker += 1) {
      const own = events.filter((e) => e.type === 'NodeFailed' && e.data.nodeId === `w${worker}`);
      expect(own).toHaveLength(perWorker);
    }
  });
});

describe('group commit (SQLite)', () => {
  let dir: string;
  let store: EventStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cantbook-group-'));
    store = openSqliteStore(join(dir, 'g.db'));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const commits = () => (store as unknown as { stats: { commits: number } }).stats.commits;

  it('appends of many runs in one turn share one transaction; a conflicting one fails alone', async () => {
    // Two runs appending in one turn turn group commit on.
    await Promise.all([store.append(startRun('warm-1')), store.append(startRun('warm-2'))]);
    const before = commits();
    const outcomes = await Promise.allSettled([
      store.append(startRun('run-a')),
      store.append(startRun('run-a')), // the same run at the same version, in the same batch
      store.append(startRun('run-b')),
      store.append(startRun('run-c')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'E_CONCURRENT_UPDATE' });
    expect(commits() - before).toBe(1);
    for (const runId of ['run-a', 'run-b', 'run-c']) {
      const events = await store.readRun(runId);
      expect(events.map((e) => e.seq)).toEqual([1, 2]);
      expect(verifyChain(runId, events)).toEqual([]);
      expect((await store.getRun(runId))?.version).toBe(2);
    }
  });

  it('two appends for one run in one batch: the second gets E_CONCURRENT_UPDATE, its keys are not written, the other runs commit', async () => {
    await Promise.all([store.append(startRun('warm-1')), store.append(startRun('warm-2'))]);
    const a = startRun('run-a');
    const b = startRun('run-b');
    await Promise.all([store.append(a), store.append(b)]);
    const before = commits();
    const winner = succeedNode(a.run, { plan: 'winner', shared: 1 }, 'approval');
    const loser = succeedNode(a.run, { other: 'loser', shared: 2 }, 'publish');
    const bStep = succeedNode(b.run, { plan: 'b' }, 'approval');
    const outcomes = await Promise.allSettled([
      store.append({ ...winner, changed: { bindings: ['plan', 'shared'], iterationCounts: ['approval'] } }),
      store.append({ ...loser, changed: { bindings: ['other', 'shared'], iterationCounts: ['publish'] } }),
      store.append({ ...bStep, changed: { bindings: ['plan'], iterationCounts: ['approval'] } }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'E_CONCURRENT_UPDATE' });
    expect(commits() - before).toBe(1);
    expect(await store.getRun('run-a')).toEqual(winner.run);
    expect(await store.getRun('run-b')).toEqual(bStep.run);
    const probe = new Database(join(dir, 'g.db'), { readonly: true });
    try {
      const keys = probe.prepare('SELECT key, value FROM run_bindings WHERE run_id = ? ORDER BY rowid').raw().all('run-a');
      expect(keys).toEqual([['targetVersion', '"1.4.0"'], ['channel', '"latest"'], ['plan', '"winner"'], ['shared', '1']]);
      const nodes = probe.prepare('SELECT node_id, attempts FROM run_attempts WHERE run_id = ? ORDER BY rowid').raw().all('run-a');
      expect(nodes).toEqual([['version_bump', 1], ['approval', 1]]);
    } finally {
      probe.close();
    }
  });

  it('a lone run commits at once: its append is durable before the next turn', async () => {
    const appended = store.append(startRun('alone'));
    // Read through another connection without yielding to the event loop.
    const probe = new Database(join(dir, 'g.db'), { readonly: true });
    expect(probe.prepare('SELECT COUNT(*) FROM events WHERE run_id = ?').pluck().get('alone')).toBe(2);
    probe.close();
    await appended;
  });

  it('runs driven one after another, each to its end, are not taken for concurrent ones', async () => {
    const probe = new Database(join(dir, 'g.db'), { readonly: true });
    const count = (runId: string) => probe.prepare('SELECT COUNT(*) FROM events WHERE run_id = ?').pluck().get(runId);
    const first = startRun('first');
    await store.append(first);
    await store.append(succeedNode(first.run, {}, null)); // ends the run
    const second = store.append(startRun('second')); // same turn of the event loop, another run
    expect(count('second')).toBe(2); // committed at once, not deferred to a group commit
    probe.close();
    await second;
  });

  it('close commits the appends it has accepted', async () => {
    await Promise.all([store.append(startRun('warm-1')), store.append(startRun('warm-2'))]);
    const pending = Promise.all([store.append(startRun('late-1')), store.append(startRun('late-2'))]);
    await store.close();
    await pending;
    store = openSqliteStore(join(dir, 'g.db'));
    expect((await store.readRun('late-2')).length).toBe(2);
  });
});
