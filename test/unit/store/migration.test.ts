/**
 * Stores written by earlier versions open with today's code.
 *
 * A store written by cantbook 0.1.0 (schema version 1; test/fixtures/stores/v1-runs.db,
 * recorded by recordV1.mjs from that version) opens with today's code: it is migrated to
 * the current schema in one transaction, every run still verifies (chain, replay, and
 * projections equal to the fold), and its runs go on: a paused gate is approved with the
 * token v1 issued, an approved gate nobody resumed is runnable.
 *
 * A store written at schema 2 (test/fixtures/stores/v2-runs.db, recorded by recordV2.mjs at
 * the last commit that kept a run's whole context in its runs row) is migrated to per-key
 * rows: every run verifies, getRun returns the bindings and attempt counts it returned before
 * (v2-runs.json, in the same key order), and its open runs go on to completion.
 *
 * A store at schema 4 (the last before child runs; made here from a new store by
 * removing what schema 5 added) gets `runs.parent_run_id` and its index: every run in it
 * is a root run, and children recorded after the migration are found by their parent.
 *
 * A store at schema 5 (the last before run settings and attempt logs; made the same way,
 * by dropping the two tables schema 6 added) gets them, empty: its runs remember no agent
 * and have no logs, and new appends write both.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { approveGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { getRun, verifyStore } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import { openSqliteStore, SQLITE_SCHEMA_VERSION } from '../../../src/store/sqliteEventStore.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { scriptedDispatcher } from '../../helpers/runtimeHarness.js';
import { startRun, succeedNode } from '../../contract/fixtures/runRequests.js';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'stores');
const tokens = JSON.parse(readFileSync(join(fixtures, 'v1-runs.tokens.json'), 'utf8')) as Record<'paused' | 'approved', { runId: string; token: string }>;

let dir: string;
let path: string;
let store: EventStore | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cantbook-migrate-'));
  path = join(dir, 'v1.db');
  copyFileSync(join(fixtures, 'v1-runs.db'), path);
  store = undefined;
});
afterEach(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const schemaVersion = (file: string): string => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get() as string;
  } finally {
    db.close();
  }
};

const columns = (file: string, table: string): string[] => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[], string>(`SELECT name FROM pragma_table_info('${table}')`).pluck().all();
  } finally {
    db.close();
  }
};

const indexes = (file: string, table: string): string[] => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare<[string], string>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name").pluck().all(table);
  } finally {
    db.close();
  }
};

describe('opening a v1 store', () => {
  it('the fixture is a v1 file', () => {
    expect(schemaVersion(path)).toBe('1');
  });

  it('migrates it to the current schema; every run verifies and reads in the v2 shape', async () => {
    const opened = openSqliteStore(path);
    store = opened;
    expect(schemaVersion(path)).toBe(String(SQLITE_SCHEMA_VERSION));
    const results = await verifyStore(opened);
    expect(results).toHaveLength(5);
    for (const result of results) expect(result, result.runId).toMatchObject({ ok: true, problems: [] });
    expect(await getRun(opened, 'v1-2.0.0')).toMatchObject({ status: 'failed', activeNodes: [], error: { cause: 'approval_rejected', nodeId: 'approval' }, errorContext: expect.stringContaining('rejected by bob') });
    expect(await getRun(opened, 'v1-3.0.0')).toMatchObject({ status: 'failed', error: { cause: 'exceeded_iteration_cap', nodeId: 'publish' } });
    expect(await getRun(opened, tokens.paused.runId)).toMatchObject({ status: 'paused', activeNodes: [{ nodeId: 'approval', phase: 'paused' }] });
    // v1 kept an approved, unresumed gate as `paused`; v2 reads it as runnable work.
    expect(await getRun(opened, tokens.approved.runId)).toMatchObject({ status: 'running', activeNodes: [{ nodeId: 'approval', phase: 'approved' }] });
    // Schema 5: every run of a v1 file is a root run.
    expect(columns(path, 'runs')).toContain('parent_run_id');
    expect((await opened.listRuns()).map((run) => run.parentRunId)).toEqual(Array.from({ length: 5 }, () => null));
  });

  it('its runs go on: a v1 token approves its gate, an approved gate is resumed by recovery', async () => {
    const opened = openSqliteStore(path);
    store = opened;
    await approveGate({ store: opened, token: tokens.paused.token, approver: 'erin' });
    expect((await resumePlaybook({ store: opened, approvalToken: tokens.paused.token, dispatcher: scriptedDispatcher() })).terminalStatus).toBe('completed');
    expect((await recoverRun({ store: opened, runId: tokens.approved.runId, dispatcher: scriptedDispatcher() })).terminalStatus).toBe('completed');
    for (const result of await verifyStore(opened)) expect(result.ok, result.runId).toBe(true);
  });

  it('a second open finds nothing to migrate', async () => {
    await openSqliteStore(path).close();
    const opened = openSqliteStore(path);
    store = opened;
    expect((await verifyStore(opened)).every((result) => result.ok)).toBe(true);
  });
});

const v2 = JSON.parse(readFileSync(join(fixtures, 'v2-runs.json'), 'utf8')) as {
  tokens: Record<'paused' | 'approved' | 'groupPaused', { runId: string; token: string }>;
  runs: Record<string, { status: string; bindings: Record<string, unknown>; iterationCounts: Record<string, number> }>;
};

describe('opening a v2 store', () => {
  beforeEach(() => {
    path = join(dir, 'v2.db');
    copyFileSync(join(fixtures, 'v2-runs.db'), path);
  });

  it('the fixture is a v2 file with the context in the runs row', () => {
    expect(schemaVersion(path)).toBe('2');
    expect(columns(path, 'runs')).toEqual(expect.arrayContaining(['bindings', 'iteration_counts']));
  });

  it('migrates it to per-key rows: every run verifies and reads as it did before', async () => {
    const opened = openSqliteStore(path);
    store = opened;
    expect(schemaVersion(path)).toBe(String(SQLITE_SCHEMA_VERSION));
    expect(columns(path, 'runs')).not.toContain('bindings');
    expect(columns(path, 'runs')).not.toContain('iteration_counts');
    const results = await verifyStore(opened);
    expect(results.map((r) => r.runId).sort()).toEqual(Object.keys(v2.runs).sort());
    for (const result of results) expect(result, result.runId).toMatchObject({ ok: true, problems: [] });
    for (const [runId, before] of Object.entries(v2.runs)) {
      const run = await getRun(opened, runId);
      expect(run, runId).toMatchObject({ status: before.status, bindings: before.bindings, iterationCounts: before.iterationCounts });
      // The same objects, keys in the same order (integer-like keys first, as JSON.parse put them).
      expect(JSON.stringify(run?.bindings), runId).toBe(JSON.stringify(before.bindings));
      expect(JSON.stringify(run?.iterationCounts), runId).toBe(JSON.stringify(before.iterationCounts));
    }
    const listed = await opened.listRuns();
    for (const run of listed) expect(JSON.stringify(run.bindings), run.runId).toBe(JSON.stringify(v2.runs[run.runId]?.bindings));
  });

  it('its runs go on: paused gates (one inside a parallel group) resume with v2 tokens; approved and mid-node runs recover', async () => {
    const opened = openSqliteStore(path);
    store = opened;
    for (const gate of [v2.tokens.paused, v2.tokens.groupPaused]) {
      await approveGate({ store: opened, token: gate.token, approver: 'gina' });
      expect((await resumePlaybook({ store: opened, approvalToken: gate.token, dispatcher: scriptedDispatcher() })).terminalStatus, gate.runId).toBe('completed');
    }
    expect((await recoverRun({ store: opened, runId: v2.tokens.approved.runId, dispatcher: scriptedDispatcher() })).terminalStatus).toBe('completed');
    // Its NodeStarted names the recording process; that process is gone, but its pid may be reused.
    expect((await recoverRun({ store: opened, runId: 'v2-running', dispatcher: scriptedDispatcher(), force: true })).terminalStatus).toBe('completed');
    for (const result of await verifyStore(opened)) expect(result, result.runId).toMatchObject({ ok: true, problems: [] });
    const joined = await getRun(opened, v2.tokens.groupPaused.runId);
    // The join carried the branch outputs recorded under v2 into the top-level context.
    expect(Object.keys(joined?.bindings ?? {})).toEqual(expect.arrayContaining(['change', 'bench', 'benchNote', 'scan', 'scanNote', '__lastApproval']));
  });

  it('a newer schema is still refused', async () => {
    await openSqliteStore(path).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SQLITE_SCHEMA_VERSION + 1));
    db.close();
    expect(() => openSqliteStore(path)).toThrow(expect.objectContaining({ code: 'E_STORE_UNAVAILABLE' }));
  });
});

/** What schema 5 was: today's file without the run_settings and attempt_logs tables. */
const downgradeToV5 = (file: string): void => {
  const db = new Database(file);
  try {
    db.exec("DROP TABLE run_settings; DROP TABLE attempt_logs; UPDATE meta SET value = '5' WHERE key = 'schema_version'");
  } finally {
    db.close();
  }
};

/** A file's whole schema: every table and index, as SQLite keeps its definition. */
const schemaOf = (file: string): unknown[] => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all();
  } finally {
    db.close();
  }
};

describe('opening a v4 store', () => {
  /** What schema 4 was: a schema-5 file without the parent run's column and index. */
  const downgradeToV4 = (file: string): void => {
    downgradeToV5(file);
    const db = new Database(file);
    try {
      db.exec("DROP INDEX runs_by_parent; ALTER TABLE runs DROP COLUMN parent_run_id; UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    } finally {
      db.close();
    }
  };

  beforeEach(() => {
    path = join(dir, 'v4.db');
  });

  it('adds runs.parent_run_id and its index; old runs are root runs, and new children are found by their parent', async () => {
    const before = openSqliteStore(path);
    const root = startRun('run-root');
    await before.append(root);
    const done = succeedNode(root.run, { ok: true }, null);
    await before.append(done);
    await before.close();
    downgradeToV4(path);
    expect(schemaVersion(path)).toBe('4');
    expect(columns(path, 'runs')).not.toContain('parent_run_id');

    const opened = openSqliteStore(path);
    store = opened;
    expect(schemaVersion(path)).toBe(String(SQLITE_SCHEMA_VERSION));
    expect(columns(path, 'runs')).toContain('parent_run_id');
    expect(indexes(path, 'runs')).toContain('runs_by_parent');
    expect(await opened.getRun('run-root')).toEqual(done.run);
    const child = startRun('run-root.sub.1.0', { parent: { runId: 'run-root', nodeId: 'sub', attempt: 1, index: 0 } });
    await opened.append(child);
    expect(await opened.listRuns({ parentRunId: 'run-root' })).toEqual([child.run]);
    expect((await opened.getRun('run-root'))?.parentRunId).toBeNull();
  });

  it('a new store has the same runs table as a migrated one', async () => {
    await openSqliteStore(path).close();
    const fresh = join(dir, 'fresh.db');
    await openSqliteStore(fresh).close();
    downgradeToV4(path);
    await openSqliteStore(path).close();
    expect(columns(path, 'runs')).toEqual(columns(fresh, 'runs'));
    expect(indexes(path, 'runs')).toEqual(indexes(fresh, 'runs'));
  });
});

describe('opening a v5 store', () => {
  beforeEach(() => {
    path = join(dir, 'v5.db');
  });

  it('adds run_settings and attempt_logs, empty: old runs have no settings and no logs; new appends write both', async () => {
    const before = openSqliteStore(path);
    const old = startRun('run-old');
    await before.append(old);
    await before.close();
    downgradeToV5(path);
    expect(schemaVersion(path)).toBe('5');
    expect(columns(path, 'run_settings')).toEqual([]);
    expect(columns(path, 'attempt_logs')).toEqual([]);

    const opened = openSqliteStore(path);
    store = opened;
    expect(schemaVersion(path)).toBe(String(SQLITE_SCHEMA_VERSION));
    expect(columns(path, 'run_settings')).toEqual(['run_id', 'agent']);
    expect(columns(path, 'attempt_logs')).toEqual(['run_id', 'node_id', 'attempt', 'text', 'dropped_bytes']);
    expect(await opened.getRun('run-old')).toEqual(old.run);
    expect(await opened.getRunSettings('run-old')).toBeNull();
    expect(await opened.listAttemptLogs('run-old')).toEqual([]);
    // The old run goes on: its next append keeps a log (its settings stay unwritten: only a first append writes them).
    const next = succeedNode(old.run, { ok: true }, null);
    await opened.append({ ...next, settings: { agent: 'exec:late' }, attemptLogs: [{ nodeId: 'version_bump', attempt: 1, text: 'done', droppedBytes: 0 }] });
    expect(await opened.getRunSettings('run-old')).toBeNull();
    expect(await opened.listAttemptLogs('run-old')).toEqual([{ runId: 'run-old', nodeId: 'version_bump', attempt: 1, text: 'done', droppedBytes: 0 }]);
    await opened.append({ ...startRun('run-new'), settings: { agent: 'exec:node agent.mjs' } });
    expect(await opened.getRunSettings('run-new')).toEqual({ agent: 'exec:node agent.mjs' });
    expect((await opened.readRun('run-old')).map((event) => event.seq)).toEqual([1, 2, 3, 4]);
  });

  it('a migrated file has exactly the schema of a new one', async () => {
    await openSqliteStore(path).close();
    const fresh = join(dir, 'fresh.db');
    await openSqliteStore(fresh).close();
    downgradeToV5(path);
    expect(schemaOf(path)).not.toEqual(schemaOf(fresh));
    await openSqliteStore(path).close();
    expect(schemaOf(path)).toEqual(schemaOf(fresh));
  });
});
