import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import {
  CantbookError,
  E_CONCURRENT_UPDATE,
  E_LOG_CORRUPT,
  E_RUN_ACTIVE,
  E_STORE_UNAVAILABLE,
} from '../errors.js';
import { chainEvents, GENESIS_HASH } from '../events/hashChain.js';
import type { RunEvent } from '../events/types.js';
import type { ApprovalRow, ApprovalStatus, RunChanges, RunRow, RunStatus } from '../projections/types.js';
import { appendMayWakeWorkers, callListeners } from './eventStore.js';
import { addMs, approvalParams, attemptLogRows, bindingValue, claimRequest, concurrentUpdate, groupByRun, leaseLost, leaseRequest, limitOf, runParams, storedEvent, validateAppend } from './storeRows.js';
import type { AcquireLeaseRequest, AppendRequest, AttemptLog, ClaimRunsRequest, EventStore, Lease, ListApprovalsFilter, ListRunsFilter, RunSettings } from './eventStore.js';

/** An append waiting for its commit, and what became of it. */
interface PendingAppend {
  request: AppendRequest;
  knownHead: string | undefined;
  resolve: (events: RunEvent[]) => void;
  reject: (error: unknown) => void;
  stored?: RunEvent[];
  error?: unknown;
}

/** The schema version this code writes and reads. Bumped by every schema migration. */
export const SQLITE_SCHEMA_VERSION = 6;

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * SQLite's `synchronous` pragma. Default `'NORMAL'`, which SQLite recommends with WAL:
   * a committed append survives a crash of the process, but a power loss or OS crash may
   * roll back the last few commits (the file is never corrupted). `'FULL'` fsyncs the WAL
   * on every commit, so commits also survive power loss, at the price of one fsync per append.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another connection's lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Open the file read-only: reads work, appends fail with `E_STORE_UNAVAILABLE`. The file
   * must exist and already hold a cantbook schema.
   */
  readonly?: boolean;
}

/** How many runs' last (seq, hash) the store remembers, to skip a read per append. */
const HEAD_CACHE_SIZE = 1024;

/**
 * A run's context and attempt counts, one row per key (schema 3), so that an
 * append writes only the keys its events changed. Rowid tables on purpose: the
 * rowid keeps the order in which a run first wrote each key (an upsert keeps
 * the row's rowid), which is the key order of the fold's context, and a
 * binding's value may be kilobytes (SQLite keeps large rows better in a rowid
 * table than in a WITHOUT ROWID one). UNIQUE (run_id, key) is the lookup.
 */
const RUN_KEY_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS run_bindings (
  run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  UNIQUE (run_id, key)
) STRICT;

CREATE TABLE IF NOT EXISTS run_attempts (
  run_id   TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  node_id  TEXT    NOT NULL,
  attempts INTEGER NOT NULL,
  UNIQUE (run_id, node_id)
) STRICT;
`;

/**
 * Who drives each run (SPEC §11): operational state beside the projections,
 * not history. `token` is the fencing token: it grows by one with every new
 * lease of the run and is never reused (a released lease keeps its row, with
 * an empty expiry). An append that carries a token checks it against this row
 * in its own transaction.
 */
const LEASES_SQL = `
CREATE TABLE IF NOT EXISTS leases (
  run_id     TEXT    PRIMARY KEY,
  owner      TEXT    NOT NULL,
  token      INTEGER NOT NULL CHECK (token >= 1),
  expires_at TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at);
CREATE INDEX IF NOT EXISTS runs_by_wake ON runs (wake_at) WHERE wake_at IS NOT NULL;
`;

/**
 * A run's children (schema 5, SPEC §12): `listRuns({parentRunId})` seeks this
 * index. Partial: root runs, the most, have no entry.
 */
const RUNS_BY_PARENT_SQL = `
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
`;

/**
 * What is kept beside a run's log (schema 6, SPEC §7, docs/adr/0010): how the
 * run is driven (`run_settings`, written with its first append, never changed)
 * and what each attempt wrote to stderr (`attempt_logs`, upserted by attempt).
 * Neither is history (never hashed, never folded) nor a projection (no fold can
 * write them again): only an append writes them, in its transaction, and
 * `replaceProjections` leaves them alone, a rebuild and a removal of the run's
 * rows alike. Hence no foreign key to `runs`, whose row a rebuild deletes.
 *
 * A column per setting, not one JSON column: a setting added later comes with
 * a migration that says what older runs have (NULL, as for a runs column), a
 * setting not given is NULL (`{}` reads back as `{}`), and nothing is parsed.
 */
const RUN_SIDE_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS run_settings (
  run_id TEXT PRIMARY KEY,
  agent  TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS attempt_logs (
  run_id        TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  attempt       INTEGER NOT NULL CHECK (attempt >= 1),
  text          TEXT    NOT NULL,
  dropped_bytes INTEGER NOT NULL CHECK (dropped_bytes >= 0),
  PRIMARY KEY (run_id, node_id, attempt)
) STRICT;
`;

const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS events (
  global_seq INTEGER PRIMARY KEY,
  run_id     TEXT    NOT NULL,
  seq        INTEGER NOT NULL CHECK (seq >= 1),
  type       TEXT    NOT NULL,
  data       TEXT    NOT NULL,
  at         TEXT    NOT NULL,
  hash       TEXT    NOT NULL,
  UNIQUE (run_id, seq)
) STRICT;

CREATE TABLE IF NOT EXISTS playbooks (
  source_hash   TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  source        TEXT NOT NULL,
  first_seen_at TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS runs (
  run_id           TEXT    PRIMARY KEY,
  playbook_name    TEXT    NOT NULL,
  playbook_hash    TEXT    NOT NULL,
  status           TEXT    NOT NULL,
  current_node     TEXT,
  error_context    TEXT,
  error            TEXT,
  active_nodes     TEXT    NOT NULL DEFAULT '[]',
  started_at       TEXT    NOT NULL,
  updated_at       TEXT    NOT NULL,
  completed_at     TEXT,
  version          INTEGER NOT NULL,
  epic_id          TEXT,
  session_id       TEXT,
  wake_at          TEXT,
  parent_run_id    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
${RUNS_BY_PARENT_SQL}
${RUN_KEY_TABLES_SQL}
CREATE TABLE IF NOT EXISTS approvals (
  approval_id    TEXT    PRIMARY KEY,
  run_id         TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  node_id        TEXT    NOT NULL,
  status         TEXT    NOT NULL,
  prompt         TEXT    NOT NULL,
  token_hash     TEXT    NOT NULL,
  context_digest TEXT    NOT NULL,
  expires_at     TEXT,
  requested_at   TEXT    NOT NULL,
  decided_at     TEXT,
  approver       TEXT,
  reason         TEXT,
  resumed        INTEGER NOT NULL CHECK (resumed IN (0, 1))
) STRICT;
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (status);
CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals (run_id);
${LEASES_SQL}
${RUN_SIDE_TABLES_SQL}`;

const RUN_COLUMNS =
  'run_id, playbook_name, playbook_hash, status, current_node, error_context, ' +
  'started_at, updated_at, completed_at, version, epic_id, session_id, error, active_nodes, wake_at, parent_run_id';
const APPROVAL_COLUMNS =
  'approval_id, run_id, node_id, status, prompt, token_hash, context_digest, expires_at, requested_at, ' +
  'decided_at, approver, reason, resumed';
const EVENT_COLUMNS = 'global_seq, run_id, seq, type, data, at, hash';

type SqlValue = string | number | null;
/** A runs row as SQLite returns it in raw mode, columns in RUN_COLUMNS order. */
type RunTuple = [string, string, string, string, string | null, string | null, string, string, string | null, number, string | null, string | null, string | null, string, string | null, string | null];
/** A run_bindings or run_attempts row in raw mode: run id, key, value. */
type KeyTuple<V> = [string, string, V];
/** What listRuns reads for one filter: the rows, then every key of those runs (parameters: the filter's values). */
interface RunListStatements {
  rows: Database.Statement<string[], RunTuple>;
  bindings: Database.Statement<string[], KeyTuple<string>>;
  attempts: Database.Statement<string[], KeyTuple<number>>;
}
/** An approvals row in raw mode, columns in APPROVAL_COLUMNS order. */
type ApprovalTuple = [string, string, string, string, string, string, string, string | null, string, string | null, string | null, string | null, number];
/** A leases row in raw mode: run id, owner, token, expires_at. */
type LeaseTuple = [string, string, number, string];
/** An events row in raw mode, columns in EVENT_COLUMNS order. */
type EventTuple = [number, string, number, string, string, string, string];
/** An attempt_logs row in raw mode, columns in ATTEMPT_LOG_COLUMNS order. */
type AttemptLogTuple = [string, string, number, string, number];
const ATTEMPT_LOG_COLUMNS = 'run_id, node_id, attempt, text, dropped_bytes';

/**
 * Opens (and on first use initialises) a cantbook store in one SQLite file, or in memory.
 *
 * The connection uses WAL, `foreign_keys = ON` and a busy timeout; the schema is created
 * when the file has none. The parent directory must already exist: the store never creates
 * directories. Several processes may open the same file; appends stay correct between them
 * (the UNIQUE (run_id, seq) constraint decides races).
 *
 * Synchronous: the file is open when this returns. The store's methods return Promises
 * only so that every {@link EventStore} has the same shape.
 *
 * Throws `CantbookError`:
 * - `E_LOG_CORRUPT` when the file is not a SQLite database or is damaged;
 * - `E_STORE_UNAVAILABLE` when it cannot be opened (missing directory, permissions, locked
 *   past the busy timeout), holds another application's tables, or was written by a newer
 *   cantbook (unknown schema version).
 *
 * @example
 * const store = openSqliteStore('.cantbook/cantbook.db', { synchronous: 'FULL' });
 * const events = await store.readRun(runId);
 * await store.close();
 */
export function openSqliteStore(path: string | ':memory:', options: SqliteStoreOptions = {}): EventStore {
  const readonly = options.readonly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  const synchronous = options.synchronous ?? 'NORMAL';
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new TypeError(`openSqliteStore: busyTimeoutMs must be a non-negative integer, got ${String(busyTimeoutMs)}`);
  }
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new TypeError(`openSqliteStore: synchronous must be 'NORMAL' or 'FULL', got '${String(synchronous)}'`);
  }

  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly, timeout: busyTimeoutMs });
  } catch (error) {
    throw openError(error, path);
  }
  try {
    if (!readonly) db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('foreign_keys = ON');
    ensureSchema(db, path, readonly);
    return new SqliteEventStore(db, path, busyTimeoutMs);
  } catch (error) {
    db.close();
    if (readonly && UNWRITABLE_WAL.has(sqliteCodeOf(error) ?? '')) return openSnapshot(path, busyTimeoutMs);
    throw openError(error, path);
  }
}

/** What SQLite says when a read-only WAL database sits in a directory where its -shm file cannot be created. */
const UNWRITABLE_WAL = new Set(['SQLITE_READONLY_DIRECTORY', 'SQLITE_READONLY_CANTINIT']);

/**
 * A read-only file in a directory this process cannot write: SQLite cannot
 * create the WAL index it needs to read in place. No writer can be active
 * there either (it would need the same files), so when no -wal file exists the
 * main file holds every commit, and an in-memory copy of it is an exact,
 * read-only view. Its header is switched from WAL to rollback mode, which the
 * in-memory database requires.
 */
function openSnapshot(path: string, busyTimeoutMs: number): EventStore {
  if (existsSync(`${path}-wal`)) {
    throw new CantbookError(E_STORE_UNAVAILABLE, `cannot open '${path}' read-only: it has a write-ahead log, and its directory is not writable to create the index needed to read it`, { path });
  }
  let db: Database.Database;
  try {
    const image = readFileSync(path);
    if (image.length >= 100) image.fill(1, 18, 20);
    db = new Database(image, { readonly: true });
  } catch (error) {
    throw openError(error, path);
  }
  try {
    ensureSchema(db, path, true);
    return new SqliteEventStore(db, path, busyTimeoutMs);
  } catch (error) {
    db.close();
    throw openError(error, path);
  }
}

/** Creates the schema when the file has none; refuses foreign or newer files. */
function ensureSchema(db: Database.Database, path: string, readonly: boolean): void {
  const current = readSchemaVersion(db, path);
  if (current === SQLITE_SCHEMA_VERSION) return;
  if (readonly) {
    throw new CantbookError(
      E_STORE_UNAVAILABLE,
      `cannot open '${path}' read-only: it holds no cantbook schema yet (open it once read-write to create it)`,
      { path },
    );
  }
  // Another process may be initialising or migrating the same file: decide under the write lock.
  db.transaction(() => {
    const version = readSchemaVersion(db, path);
    if (version === SQLITE_SCHEMA_VERSION) return;
    if (version === null) {
      db.exec(SCHEMA_SQL);
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SQLITE_SCHEMA_VERSION));
      return;
    }
    for (let from = version; from < SQLITE_SCHEMA_VERSION; from += 1) MIGRATIONS[from]?.(db);
    db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(SQLITE_SCHEMA_VERSION), 'schema_version');
  }).immediate();
}

/**
 * Schema migrations, by the version they start from. Each runs inside the
 * opening write transaction, so a file is migrated whole or not at all.
 */
const MIGRATIONS: Record<number, (db: Database.Database) => void> = {
  /**
   * v1 -> v2 (parallel groups): runs get `error` (structured) and `active_nodes`;
   * `error_context` becomes the last error's message. Ended runs are translated
   * exactly. For a run that was between steps when the file was last written,
   * its one active node is read from its last event the way the v1 runtime
   * committed them (NodeStarted: running; RunPaused: paused; ApprovalGranted:
   * approved, which v2 counts as runnable; anything else: ready).
   */
  1: (db) => {
    db.exec(`
      ALTER TABLE runs ADD COLUMN error TEXT;
      ALTER TABLE runs ADD COLUMN active_nodes TEXT NOT NULL DEFAULT '[]';
      UPDATE runs SET
        error = CASE WHEN status IN ('failed', 'cancelled') AND error_context IS NOT NULL THEN
          json_patch(json_object('cause', json_extract(error_context, '$.cause'), 'message', json_extract(error_context, '$.error')),
                     CASE WHEN json_extract(error_context, '$.nodeId') IS NULL THEN '{}' ELSE json_object('nodeId', json_extract(error_context, '$.nodeId')) END)
          END,
        error_context = CASE WHEN error_context IS NULL THEN NULL ELSE json_quote(json_extract(error_context, '$.error')) END;
      UPDATE runs SET active_nodes = (
        SELECT json_array(json_object('nodeId', runs.current_node, 'phase',
          CASE e.type WHEN 'NodeStarted' THEN 'running' WHEN 'RunPaused' THEN 'paused' WHEN 'ApprovalGranted' THEN 'approved' ELSE 'ready' END))
        FROM events e WHERE e.run_id = runs.run_id ORDER BY e.seq DESC LIMIT 1)
      WHERE status IN ('running', 'paused') AND current_node IS NOT NULL;
      UPDATE runs SET status = 'running' WHERE status = 'paused'
        AND json_extract(active_nodes, '$[0].phase') = 'approved';
    `);
  },
  /**
   * v2 -> v3 (projections that write only what a step changed): each run's
   * `bindings` and `iteration_counts` JSON move to `run_bindings` and
   * `run_attempts`, one row per key in the JSON's key order, and the two
   * columns are dropped. Values are re-encoded with JSON.stringify, exactly as
   * an append writes them, so a migrated row and a new one cannot differ.
   */
  2: (db) => {
    db.exec(RUN_KEY_TABLES_SQL);
    const insertBinding = db.prepare<[string, string, string]>('INSERT INTO run_bindings (run_id, key, value) VALUES (?, ?, ?)');
    const insertAttempts = db.prepare<[string, string, number]>('INSERT INTO run_attempts (run_id, node_id, attempts) VALUES (?, ?, ?)');
    const rows = db.prepare<[], [string, string, string]>('SELECT run_id, bindings, iteration_counts FROM runs ORDER BY rowid').raw().all();
    for (const [runId, bindings, iterationCounts] of rows) {
      for (const [key, value] of Object.entries(parseColumn(bindings, runId, 'bindings'))) insertBinding.run(runId, key, JSON.stringify(value));
      for (const [nodeId, attempts] of Object.entries(parseColumn(iterationCounts, runId, 'iteration_counts'))) {
        if (!Number.isInteger(attempts)) {
          throw new CantbookError(E_LOG_CORRUPT, `cannot migrate the runs row of '${runId}': iteration_counts['${nodeId}'] is ${JSON.stringify(attempts)}, not an integer`, { runId });
        }
        insertAttempts.run(runId, nodeId, attempts as number);
      }
    }
    db.exec('ALTER TABLE runs DROP COLUMN bindings; ALTER TABLE runs DROP COLUMN iteration_counts;');
  },
  /**
   * v3 -> v4 (leases and durable timers): runs get `wake_at` (RunRow.wakeAt),
   * and the `leases` table appears, empty: whoever ran these runs before is
   * gone, so every run is free to claim. A v3 file had no backoff, so a run not
   * ended wakes at its start when it has something to do (running), at its
   * earliest gate expiry when it waits for a human (paused), else never: what
   * `wakeAtOf` computes from the fold of the same log.
   */
  3: (db) => {
    db.exec(`
      ALTER TABLE runs ADD COLUMN wake_at TEXT;
      UPDATE runs SET wake_at = started_at WHERE status = 'running';
      UPDATE runs SET wake_at = (SELECT MIN(a.expires_at) FROM approvals a WHERE a.run_id = runs.run_id AND a.status = 'pending')
        WHERE status = 'paused';
      ${LEASES_SQL}
    `);
  },
  /**
   * v4 -> v5 (child runs): runs get `parent_run_id` (RunRow.parentRunId) and
   * its index. Every run in a v4 file is a root run (no child runs existed),
   * so the column stays NULL, which is what the fold of each log says.
   */
  4: (db) => {
    db.exec(`
      ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
      ${RUNS_BY_PARENT_SQL}
    `);
  },
  /**
   * v5 -> v6 (runs remember their agent, attempts keep their logs; ADR 0010):
   * the empty `run_settings` and `attempt_logs` tables. A run recorded before
   * has no settings (getRunSettings: null) and no attempt logs: v5 kept none.
   */
  5: (db) => {
    db.exec(RUN_SIDE_TABLES_SQL);
  },
};

/** A v2 JSON column that must hold an object; anything else is a corrupt file. */
function parseColumn(text: string, runId: string, column: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CantbookError(E_LOG_CORRUPT, `cannot migrate the runs row of '${runId}': its ${column} column is not JSON`, { runId }, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CantbookError(E_LOG_CORRUPT, `cannot migrate the runs row of '${runId}': its ${column} column is ${JSON.stringify(value)}, not an object`, { runId });
  }
  return value as Record<string, unknown>;
}

/**
 * The file's schema version, or null for an empty database. Throws when the file is a
 * SQLite database that cantbook did not write, or one written by a newer cantbook.
 */
function readSchemaVersion(db: Database.Database, path: string): number | null {
  const tables = db
    .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all();
  if (tables.length === 0) return null;
  if (!tables.includes('meta')) {
    throw new CantbookError(
      E_STORE_UNAVAILABLE,
      `'${path}' is a SQLite database but not a cantbook store (it has tables ${tables.map((t) => `'${t}'`).join(', ')} and no 'meta' table)`,
      { path, tables },
    );
  }
  const raw = db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get('schema_version');
  const version = raw === undefined ? Number.NaN : Number(raw);
  if (!Number.isInteger(version) || version < 1) {
    throw new CantbookError(
      E_STORE_UNAVAILABLE,
      `'${path}' is not a cantbook store: its meta table has no valid schema_version (found ${raw === undefined ? 'none' : `'${raw}'`})`,
      { path },
    );
  }
  if (version > SQLITE_SCHEMA_VERSION) {
    throw new CantbookError(
      E_STORE_UNAVAILABLE,
      `'${path}' was written by a newer cantbook (schema version ${version}; this version reads up to ${SQLITE_SCHEMA_VERSION}): upgrade cantbook`,
      { path, schemaVersion: version, supportedVersion: SQLITE_SCHEMA_VERSION },
    );
  }
  return version;
}

function sqliteCodeOf(error: unknown): string | undefined {
  if (error instanceof Database.SqliteError) return error.code;
  return undefined;
}

function isCorruption(code: string): boolean {
  return code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT');
}

/** Maps anything thrown while opening to a CantbookError naming the path. */
function openError(error: unknown, path: string): CantbookError {
  if (error instanceof CantbookError) return error;
  const code = sqliteCodeOf(error);
  const reason = error instanceof Error ? error.message : String(error);
  if (code !== undefined && isCorruption(code)) {
    return new CantbookError(
      E_LOG_CORRUPT,
      `cannot open '${path}': the file is not a SQLite database or is corrupt (${reason})`,
      { path, sqliteCode: code },
      { cause: error },
    );
  }
  return new CantbookError(
    E_STORE_UNAVAILABLE,
    `cannot open the store at '${path}': ${reason}`,
    code === undefined ? { path } : { path, sqliteCode: code },
    { cause: error },
  );
}

/** The SQLite EventStore. Built only by {@link openSqliteStore}. */
class SqliteEventStore implements EventStore {
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly busyTimeoutMs: number;
  private closed = false;
  /** runId -> the stream's last (seq, hash) as this connection last wrote it (a hint; see append). */
  private readonly heads = new Map<string, { seq: number; hash: string }>();

  private readonly lastEvent: Database.Statement<[string], [number, string]>;
  private readonly streamVersion: Database.Statement<[string], number>;
  private readonly insertEvent: Database.Statement<[string, number, string, string, string, string]>;
  private readonly insertEventFenced: Database.Statement<[string, number, string, string, string, string, string, number]>;
  private readonly insertPlaybook: Database.Statement<[string, string, string, string]>;
  private readonly upsertRun: Database.Statement<SqlValue[]>;
  private readonly upsertApproval: Database.Statement<SqlValue[]>;
  private readonly updateRunIndexed: Database.Statement<[string, string | null, string, string, string | null]>;
  private readonly selectLease: Database.Statement<[string], LeaseTuple>;
  private readonly takeLease: Database.Statement<[string, string, string], number>;
  private readonly selectLeaseToken: Database.Statement<[string], number>;
  private readonly createLease: Database.Statement<[string, string, string]>;
  private readonly extendLease: Database.Statement<[string, string, number, string]>;
  private readonly dropLease: Database.Statement<[string, number]>;
  private readonly setWakeAt: Database.Statement<[string | null, string]>;
  private readonly selectRunnable: Database.Statement<[string, string, number], string>;
  private readonly selectNextWake: Database.Statement<[string, string], string | null>;
  private readonly leaseTx: <T>(write: () => T) => T;
  private readonly upsertBinding: Database.Statement<[string, string, string]>;
  private readonly deleteBinding: Database.Statement<[string, string]>;
  private readonly deleteBindingsOfRun: Database.Statement<[string]>;
  private readonly upsertAttempts: Database.Statement<[string, string, number]>;
  private readonly deleteAttempts: Database.Statement<[string, string]>;
  private readonly deleteAttemptsOfRun: Database.Statement<[string]>;
  private readonly selectBindings: Database.Statement<[string], KeyTuple<string>>;
  private readonly selectAttempts: Database.Statement<[string], KeyTuple<number>>;
  /** listRuns' statements, by the filter's shape (its WHERE clause), prepared on first use. */
  private readonly runLists = new Map<string, RunListStatements>();
  private readonly wakeRunRow: Database.Statement<[string, string, string]>;
  private readonly deleteRun: Database.Statement<[string]>;
  private readonly deleteApprovalsOfRun: Database.Statement<[string]>;
  private readonly selectRunEvents: Database.Statement<[string, number], EventTuple>;
  private readonly selectAllEvents: Database.Statement<[number, number], EventTuple>;
  private readonly selectRun: Database.Statement<[string], RunTuple>;
  private readonly selectApproval: Database.Statement<[string], ApprovalTuple>;
  private readonly selectApprovals: Database.Statement<[], ApprovalTuple>;
  private readonly selectApprovalsByStatus: Database.Statement<[string], ApprovalTuple>;
  private readonly selectApprovalsByRun: Database.Statement<[string], ApprovalTuple>;
  private readonly selectApprovalsByRunAndStatus: Database.Statement<[string, string], ApprovalTuple>;
  private readonly selectPlaybookSource: Database.Statement<[string], string>;
  private readonly insertSettings: Database.Statement<[string, string | null]>;
  private readonly upsertAttemptLog: Database.Statement<[string, string, number, string, number]>;
  private readonly selectSettings: Database.Statement<[string], [string | null]>;
  private readonly selectAttemptLogs: Database.Statement<[string], AttemptLogTuple>;
  private readonly selectAttemptLogsOfNode: Database.Statement<[string, string], AttemptLogTuple>;
  private readonly selectRunIds: Database.Statement<[], string>;

  /** Commits a batch of appends in one transaction, each in its own savepoint (a conflict fails only its own). */
  private readonly batchTx: (items: readonly PendingAppend[]) => void;
  /** Appends waiting for the next group commit (deferred mode only). */
  private queue: PendingAppend[] = [];
  /** onRunnable's listeners: this store object's own writes only. */
  private readonly runnableListeners = new Set<() => void>();
  private flushScheduled = false;
  /**
   * Group commit is on once appends for two runs arrive in one turn of the event
   * loop (sessions in flight together); off again after a few batches of one, so
   * a lone run commits at once, with no wait for the next turn.
   */
  private deferred = false;
  private singleBatches = 0;
  private readonly turnRuns = new Set<string>();
  private turnMarked = false;
  /** Diagnostics: appends committed and the transactions they took (for tests and the bench). */
  readonly stats = { appends: 0, commits: 0 };
  private readonly replaceTx: (runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]) => void;
  /** Runs reads in one (deferred) transaction: a consistent view across statements. */
  private readonly readTx: <T>(read: () => T) => T;

  constructor(db: Database.Database, path: string, busyTimeoutMs: number) {
    this.db = db;
    this.path = path;
    this.busyTimeoutMs = busyTimeoutMs;

    this.lastEvent = db.prepare<[string], [number, string]>('SELECT seq, hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1').raw();
    this.streamVersion = db.prepare<[string], number>('SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?').pluck();
    this.insertEvent = db.prepare('INSERT INTO events (run_id, seq, type, data, at, hash) VALUES (?, ?, ?, ?, ?, ?)');
    this.insertEventFenced = db.prepare(
      'INSERT INTO events (run_id, seq, type, data, at, hash) SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM leases WHERE run_id = ? AND token = ?)',
    );
    this.insertPlaybook = db.prepare('INSERT OR IGNORE INTO playbooks (source_hash, name, source, first_seen_at) VALUES (?, ?, ?, ?)');
    this.upsertRun = db.prepare<SqlValue[]>(
      `INSERT INTO runs (${RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (run_id) DO UPDATE SET
         playbook_name = excluded.playbook_name, playbook_hash = excluded.playbook_hash,
         current_node = excluded.current_node, error_context = excluded.error_context, started_at = excluded.started_at, updated_at = excluded.updated_at,
         completed_at = excluded.completed_at, version = excluded.version, epic_id = excluded.epic_id,
         session_id = excluded.session_id, error = excluded.error, active_nodes = excluded.active_nodes`,
    );
    this.upsertApproval = db.prepare<SqlValue[]>(
      `INSERT INTO approvals (${APPROVAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (approval_id) DO UPDATE SET
         run_id = excluded.run_id, node_id = excluded.node_id, status = excluded.status, prompt = excluded.prompt,
         token_hash = excluded.token_hash, context_digest = excluded.context_digest, expires_at = excluded.expires_at,
         requested_at = excluded.requested_at, decided_at = excluded.decided_at, approver = excluded.approver,
         reason = excluded.reason, resumed = excluded.resumed`,
    );
    // Status and wake time are set apart, and only when one changes: setting an indexed column,
    // even to the same value, rewrites its index page on every append. The parent run is
    // indexed too, and only inserted: a run's first event names it, and it never changes.
    this.updateRunIndexed = db.prepare('UPDATE runs SET status = ?, wake_at = ? WHERE run_id = ? AND (status <> ? OR wake_at IS NOT ?)');
    // AppendRequest.wakeRun: never later than the run's own wake time, never an ended run.
    this.wakeRunRow = db.prepare<[string, string, string]>(
      "UPDATE runs SET wake_at = ? WHERE run_id = ? AND status IN ('running', 'paused') AND (wake_at IS NULL OR wake_at > ?)",
    );
    this.selectLease = db.prepare<[string], LeaseTuple>('SELECT run_id, owner, token, expires_at FROM leases WHERE run_id = ?').raw();
    this.takeLease = db.prepare<[string, string, string], number>(
      `INSERT INTO leases (run_id, owner, token, expires_at) VALUES (?, ?, 1, ?)
       ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, token = leases.token + 1, expires_at = excluded.expires_at
       RETURNING token`,
    ).pluck();
    this.selectLeaseToken = db.prepare<[string], number>('SELECT token FROM leases WHERE run_id = ?').pluck();
    this.createLease = db.prepare<[string, string, string]>('INSERT INTO leases (run_id, owner, token, expires_at) VALUES (?, ?, 1, ?) ON CONFLICT (run_id) DO NOTHING');
    // Only a lease still live: one that ran out is its driver's no more, even if nobody took it yet.
    this.extendLease = db.prepare<[string, string, number, string]>('UPDATE leases SET expires_at = ? WHERE run_id = ? AND token = ? AND expires_at > ?');
    this.dropLease = db.prepare<[string, number]>("UPDATE leases SET expires_at = '' WHERE run_id = ? AND token = ?");
    this.setWakeAt = db.prepare<[string | null, string]>('UPDATE runs SET wake_at = ? WHERE run_id = ?');
    // Runnable: due, and nobody holds a live lease. The partial index on wake_at orders the scan.
    this.selectRunnable = db.prepare<[string, string, number], string>(
      `SELECT r.run_id FROM runs r LEFT JOIN leases l ON l.run_id = r.run_id
       WHERE r.wake_at IS NOT NULL AND r.wake_at <= ? AND (l.run_id IS NULL OR l.expires_at <= ?)
       ORDER BY r.wake_at, r.run_id LIMIT ?`,
    ).pluck();
    // The next time something may become runnable: the next due time, or the next expiry of a live lease.
    // Two index seeks (runs_by_wake, leases_by_expiry), whatever the backlog.
    this.selectNextWake = db.prepare<[string, string], string | null>(
      `SELECT MIN(t) FROM (SELECT MIN(wake_at) AS t FROM runs WHERE wake_at > ?
                           UNION ALL SELECT MIN(expires_at) FROM leases WHERE expires_at > ?)`,
    ).pluck();
    this.deleteRun = db.prepare('DELETE FROM runs WHERE run_id = ?');
    // A key rewritten with the value it already has is not written again (no page touched).
    this.upsertBinding = db.prepare(
      'INSERT INTO run_bindings (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value',
    );
    this.deleteBinding = db.prepare('DELETE FROM run_bindings WHERE run_id = ? AND key = ?');
    this.deleteBindingsOfRun = db.prepare('DELETE FROM run_bindings WHERE run_id = ?');
    this.upsertAttempts = db.prepare(
      'INSERT INTO run_attempts (run_id, node_id, attempts) VALUES (?, ?, ?) ON CONFLICT (run_id, node_id) DO UPDATE SET attempts = excluded.attempts WHERE attempts <> excluded.attempts',
    );
    this.deleteAttempts = db.prepare('DELETE FROM run_attempts WHERE run_id = ? AND node_id = ?');
    this.deleteAttemptsOfRun = db.prepare('DELETE FROM run_attempts WHERE run_id = ?');
    // In rowid order: the order in which the run first wrote each key (see RUN_KEY_TABLES_SQL).
    this.selectBindings = db.prepare<[string], KeyTuple<string>>('SELECT run_id, key, value FROM run_bindings WHERE run_id = ? ORDER BY rowid').raw();
    this.selectAttempts = db.prepare<[string], KeyTuple<number>>('SELECT run_id, node_id, attempts FROM run_attempts WHERE run_id = ? ORDER BY rowid').raw();
    this.deleteApprovalsOfRun = db.prepare('DELETE FROM approvals WHERE run_id = ?');
    this.selectRunEvents = db.prepare<[string, number], EventTuple>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE run_id = ? AND seq > ? ORDER BY seq`,
    ).raw();
    this.selectAllEvents = db.prepare<[number, number], EventTuple>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE global_seq > ? ORDER BY global_seq LIMIT ?`,
    ).raw();
    this.selectRun = db.prepare<[string], RunTuple>(`SELECT ${RUN_COLUMNS} FROM runs WHERE run_id = ?`).raw();
    this.selectApproval = db.prepare<[string], ApprovalTuple>(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE approval_id = ?`).raw();
    this.selectApprovals = db.prepare<[], ApprovalTuple>(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals ORDER BY requested_at, approval_id`,
    ).raw();
    this.selectApprovalsByStatus = db.prepare<[string], ApprovalTuple>(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE status = ? ORDER BY requested_at, approval_id`,
    ).raw();
    this.selectApprovalsByRun = db.prepare<[string], ApprovalTuple>(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE run_id = ? ORDER BY requested_at, approval_id`,
    ).raw();
    this.selectApprovalsByRunAndStatus = db.prepare<[string, string], ApprovalTuple>(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE run_id = ? AND status = ? ORDER BY requested_at, approval_id`,
    ).raw();
    this.selectPlaybookSource = db.prepare<[string], string>('SELECT source FROM playbooks WHERE source_hash = ?').pluck();
    // Written once, by the run's first append: a later write (none should come) changes nothing.
    this.insertSettings = db.prepare('INSERT INTO run_settings (run_id, agent) VALUES (?, ?) ON CONFLICT (run_id) DO NOTHING');
    this.upsertAttemptLog = db.prepare(
      `INSERT INTO attempt_logs (${ATTEMPT_LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (run_id, node_id, attempt) DO UPDATE SET text = excluded.text, dropped_bytes = excluded.dropped_bytes`,
    );
    this.selectSettings = db.prepare<[string], [string | null]>('SELECT agent FROM run_settings WHERE run_id = ?').raw();
    // The primary key's order: node id (byte order), then attempt as a number.
    this.selectAttemptLogs = db.prepare<[string], AttemptLogTuple>(
      `SELECT ${ATTEMPT_LOG_COLUMNS} FROM attempt_logs WHERE run_id = ? ORDER BY node_id, attempt`,
    ).raw();
    this.selectAttemptLogsOfNode = db.prepare<[string, string], AttemptLogTuple>(
      `SELECT ${ATTEMPT_LOG_COLUMNS} FROM attempt_logs WHERE run_id = ? AND node_id = ? ORDER BY attempt`,
    ).raw();
    // Order of first appearance, so `verify` reports runs chronologically.
    this.selectRunIds = db.prepare<[], string>('SELECT run_id FROM events GROUP BY run_id ORDER BY MIN(global_seq)').pluck();

    // Called inside the batch's transaction, a better-sqlite3 transaction function runs as a SAVEPOINT:
    // an append that throws (a conflict) is rolled back alone and the others commit.
    const one = db.transaction((request: AppendRequest, knownHead: string | undefined) => this.writeAppend(request, knownHead));
    const batch = db.transaction((items: readonly PendingAppend[]) => {
      for (const item of items) {
        try {
          item.stored = one(item.request, item.knownHead);
        } catch (error) {
          item.error = error;
        }
      }
    });
    this.batchTx = (items) => batch.immediate(items);
    const replaceTx = db.transaction((runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]) =>
      this.writeProjections(runId, run, approvals),
    );
    this.replaceTx = (runId, run, approvals) => replaceTx.immediate(runId, run, approvals);
    const leaseTx = db.transaction((write: () => unknown) => write());
    this.leaseTx = <T>(write: () => T): T => leaseTx.immediate(write) as T;
    const readTx = db.transaction((read: () => unknown) => read());
    this.readTx = <T>(read: () => T): T => readTx.deferred(read) as T;
  }

  async append(request: AppendRequest): Promise<RunEvent[]> {
    this.assertOpen('append');
    validateAppend(request);
    this.noteTurn(request);
    return new Promise<RunEvent[]>((resolve, reject) => {
      const head = this.heads.get(request.runId);
      // A cached head is only a hint: if another connection appended since, the
      // UNIQUE (run_id, seq) constraint rejects our insert and we report the conflict.
      const knownHead = head !== undefined && head.seq === request.expectedVersion ? head.hash : undefined;
      const item: PendingAppend = { request, knownHead, resolve, reject };
      if (!this.deferred) {
        this.commitBatch([item]);
        return;
      }
      this.queue.push(item);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Which runs are appending in this turn of the event loop: two or more at once turn
   * group commit on. A run whose append ends it leaves the set, so runs driven one
   * after another (each to its end) never count as concurrent.
   */
  private noteTurn(request: AppendRequest): void {
    if (!this.turnMarked) {
      this.turnMarked = true;
      this.turnRuns.clear();
      setImmediate(() => (this.turnMarked = false));
    }
    if (request.events.some((event) => event.type === 'RunCompleted' || event.type === 'RunFailed' || event.type === 'RunCancelled')) {
      this.turnRuns.delete(request.runId);
      return;
    }
    this.turnRuns.add(request.runId);
    if (this.turnRuns.size > 1) this.deferred = true;
  }

  /** The group commit: every append queued in this turn, one transaction. */
  private flush(): void {
    this.flushScheduled = false;
    const items = this.queue;
    this.queue = [];
    if (items.length === 0) return;
    if (this.closed) {
      for (const item of items) item.reject(new CantbookError(E_STORE_UNAVAILABLE, `the store at '${this.path}' was closed before the append to run '${item.request.runId}' was committed`, { path: this.path }));
      return;
    }
    this.commitBatch(items);
    if (items.length > 1) this.singleBatches = 0;
    else if (++this.singleBatches >= 8) {
      this.deferred = false;
      this.singleBatches = 0;
    }
  }

  private commitBatch(items: readonly PendingAppend[]): void {
    try {
      this.batchTx(items);
      this.stats.commits += 1;
    } catch (error) {
      // The transaction itself failed (the lock, the disk): nothing of the batch was written.
      for (const item of items) {
        this.heads.delete(item.request.runId);
        item.reject(this.appendError(error, item.request.runId, item.request.expectedVersion));
      }
      return;
    }
    for (const item of items) {
      if (item.error !== undefined) {
        this.heads.delete(item.request.runId);
        item.reject(this.appendError(item.error, item.request.runId, item.request.expectedVersion));
      }
    }
    let wakes = false;
    for (const item of items) {
      if (item.error !== undefined || item.stored === undefined) continue;
      const last = item.stored[item.stored.length - 1];
      if (last !== undefined) this.rememberHead(item.request.runId, last.seq, last.hash);
      this.stats.appends += 1;
      wakes ||= appendMayWakeWorkers(item.request);
      item.resolve(item.stored);
    }
    if (wakes) callListeners(this.runnableListeners);
  }

  async readRun(runId: string, afterSeq = 0): Promise<RunEvent[]> {
    this.assertOpen('readRun');
    const rows = this.guard('read run events', () => this.selectRunEvents.all(runId, afterSeq));
    return rows.map((row) => this.toEvent(row));
  }

  async readAll(afterGlobalSeq: number, limit: number): Promise<RunEvent[]> {
    this.assertOpen('readAll');
    if (!Number.isInteger(limit) || limit < 0) {
      throw new TypeError(`readAll: limit must be a non-negative integer, got ${String(limit)}`);
    }
    if (limit === 0) return [];
    const rows = this.guard('read events', () => this.selectAllEvents.all(afterGlobalSeq, limit));
    return rows.map((row) => this.toEvent(row));
  }

  async getRun(runId: string): Promise<RunRow | null> {
    this.assertOpen('getRun');
    // One read transaction, so the row and its keys are from the same commit.
    const read = this.guard('read a run', () =>
      this.readTx(() => {
        const row = this.selectRun.get(runId);
        return row === undefined ? undefined : { row, bindings: this.selectBindings.all(runId), attempts: this.selectAttempts.all(runId) };
      }),
    );
    if (read === undefined) return null;
    return this.toRun(read.row, groupByRun(read.bindings, (row) => row[0]).get(runId), groupByRun(read.attempts, (row) => row[0]).get(runId));
  }

  async listRuns(filter: ListRunsFilter = {}): Promise<RunRow[]> {
    this.assertOpen('listRuns');
    const conditions: string[] = [];
    const params: string[] = [];
    if (filter.parentRunId !== undefined) {
      conditions.push('r.parent_run_id = ?');
      params.push(filter.parentRunId);
    }
    if (filter.status !== undefined) {
      conditions.push('r.status = ?');
      params.push(filter.status);
    }
    if (filter.playbookName !== undefined) {
      conditions.push('r.playbook_name = ?');
      params.push(filter.playbookName);
    }
    if (filter.startedSince !== undefined) {
      conditions.push('r.started_at >= ?');
      params.push(filter.startedSince);
    }
    const order = filter.newestFirst === true ? 'started_at DESC, run_id DESC' : 'started_at, run_id';
    const limit = limitOf(filter.limit);
    if (limit !== undefined) params.push(String(limit));
    // Three queries whatever the number of runs: rows, then every key of those runs.
    const read = this.guard('list runs', () =>
      this.readTx(() => {
        const statements = this.runListStatements(conditions, order, limit !== undefined);
        return { rows: statements.rows.all(...params), bindings: statements.bindings.all(...params), attempts: statements.attempts.all(...params) };
      }),
    );
    const bindings = groupByRun(read.bindings, (row) => row[0]);
    const attempts = groupByRun(read.attempts, (row) => row[0]);
    return read.rows.map((row) => this.toRun(row, bindings.get(row[0]), attempts.get(row[0])));
  }

  /**
   * listRuns' three statements for runs `r` meeting every condition (all runs
   * for none), in `order`, the first `?` of them when `limited`; prepared once
   * per shape.
   */
  private runListStatements(conditions: readonly string[], order: string, limited: boolean): RunListStatements {
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const shape = `${where} ${order} ${limited}`;
    let statements = this.runLists.get(shape);
    if (statements === undefined) {
      const selected = `SELECT r.run_id FROM runs r ${where} ORDER BY ${order}${limited ? ' LIMIT ?' : ''}`;
      // Without a condition or a limit the keys need no join: every key of every run.
      const keysOf = (table: string, columns: string) =>
        limited
          ? `SELECT k.run_id, ${columns} FROM ${table} k WHERE k.run_id IN (${selected}) ORDER BY k.rowid`
          : where === ''
            ? `SELECT run_id, ${columns} FROM ${table} ORDER BY rowid`
            : `SELECT k.run_id, ${columns} FROM ${table} k JOIN runs r ON r.run_id = k.run_id ${where} ORDER BY k.rowid`;
      statements = {
        rows: this.db.prepare<string[], RunTuple>(`SELECT ${RUN_COLUMNS} FROM runs r ${where} ORDER BY ${order}${limited ? ' LIMIT ?' : ''}`).raw(),
        bindings: this.db.prepare<string[], KeyTuple<string>>(keysOf('run_bindings', 'key, value')).raw(),
        attempts: this.db.prepare<string[], KeyTuple<number>>(keysOf('run_attempts', 'node_id, attempts')).raw(),
      };
      this.runLists.set(shape, statements);
    }
    return statements;
  }

  async getApproval(approvalId: string): Promise<ApprovalRow | null> {
    this.assertOpen('getApproval');
    const row = this.guard('read an approval', () => this.selectApproval.get(approvalId));
    return row === undefined ? null : toApproval(row);
  }

  async listApprovals(filter: ListApprovalsFilter = {}): Promise<ApprovalRow[]> {
    this.assertOpen('listApprovals');
    const { status, runId } = filter;
    const rows = this.guard('list approvals', () => {
      if (runId !== undefined) {
        return status === undefined
          ? this.selectApprovalsByRun.all(runId)
          : this.selectApprovalsByRunAndStatus.all(runId, status);
      }
      return status === undefined ? this.selectApprovals.all() : this.selectApprovalsByStatus.all(status);
    });
    return rows.map(toApproval);
  }

  async getPlaybookSource(sourceHash: string): Promise<string | null> {
    this.assertOpen('getPlaybookSource');
    return this.guard('read a playbook source', () => this.selectPlaybookSource.get(sourceHash)) ?? null;
  }

  async getRunSettings(runId: string): Promise<RunSettings | null> {
    this.assertOpen('getRunSettings');
    const row = this.guard('read the settings of a run', () => this.selectSettings.get(runId));
    if (row === undefined) return null;
    const [agent] = row;
    return agent === null ? {} : { agent };
  }

  async listAttemptLogs(runId: string, filter: { nodeId?: string } = {}): Promise<(AttemptLog & { runId: string })[]> {
    this.assertOpen('listAttemptLogs');
    const { nodeId } = filter;
    const rows = this.guard('list attempt logs', () =>
      nodeId === undefined ? this.selectAttemptLogs.all(runId) : this.selectAttemptLogsOfNode.all(runId, nodeId));
    return rows.map(([id, node, attempt, text, droppedBytes]) => ({ runId: id, nodeId: node, attempt, text, droppedBytes }));
  }

  async listRunIds(): Promise<string[]> {
    this.assertOpen('listRunIds');
    return this.guard('list run ids', () => this.selectRunIds.all());
  }

  async replaceProjections(runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]): Promise<void> {
    this.assertOpen('replaceProjections');
    if (run !== null && run.runId !== runId) {
      throw new TypeError(`replaceProjections: run row is for run '${run.runId}', not '${runId}'`);
    }
    if (run === null && approvals.length > 0) {
      throw new TypeError(`replaceProjections: approvals for run '${runId}' need a run row (got null)`);
    }
    for (const approval of approvals) {
      if (approval.runId !== runId) {
        throw new TypeError(`replaceProjections: approval '${approval.approvalId}' belongs to run '${approval.runId}', not '${runId}'`);
      }
    }
    try {
      this.replaceTx(runId, run, approvals);
    } catch (error) {
      if (error instanceof CantbookError) throw error;
      throw this.operationError(error, `replace the projections of run '${runId}'`);
    }
  }

  async acquireLease(request: AcquireLeaseRequest): Promise<Lease | null> {
    this.assertOpen('acquireLease');
    const { runId, owner, now, ttlMs } = leaseRequest(request);
    return this.leaseWrite(`take the lease of run '${runId}'`, () => {
      const current = this.selectLease.get(runId);
      if (current !== undefined && current[3] > now && request.force !== true) return null;
      return this.grant(runId, owner, now, ttlMs);
    });
  }

  async renewLease(lease: Lease, request: { now: string; ttlMs: number }): Promise<{ lease: Lease; version: number }> {
    this.assertOpen('renewLease');
    const { now, ttlMs } = leaseRequest({ runId: lease.runId, owner: lease.owner, ...request });
    return this.leaseWrite(`renew the lease of run '${lease.runId}'`, () => {
      const expiresAt = addMs(now, ttlMs);
      const changed = this.extendLease.run(expiresAt, lease.runId, lease.token, now).changes;
      if (changed === 0) throw leaseLost(lease.runId, lease.token, this.selectLease.get(lease.runId)?.[2]);
      return { lease: { ...lease, expiresAt }, version: this.streamVersion.get(lease.runId) ?? 0 };
    });
  }

  async releaseLease(lease: Lease, options: { wakeAt?: string | null } = {}): Promise<void> {
    this.assertOpen('releaseLease');
    const { wakeAt } = options;
    this.leaseWrite(`release the lease of run '${lease.runId}'`, () => {
      const released = this.dropLease.run(lease.runId, lease.token).changes > 0;
      if (released && wakeAt !== undefined) this.setWakeAt.run(wakeAt, lease.runId);
    });
    callListeners(this.runnableListeners);
  }

  onRunnable(listener: () => void): () => void {
    const own = () => listener();
    this.runnableListeners.add(own);
    return () => {
      this.runnableListeners.delete(own);
    };
  }

  async getLease(runId: string): Promise<Lease | null> {
    this.assertOpen('getLease');
    const row = this.guard('read a lease', () => this.selectLease.get(runId));
    return row === undefined ? null : toLease(row);
  }

  async claimRuns(request: ClaimRunsRequest): Promise<Lease[]> {
    this.assertOpen('claimRuns');
    const { owner, now, ttlMs, limit } = claimRequest(request);
    if (limit === 0) return [];
    // One write transaction: two workers claiming at once serialise here, and each run goes to one of them.
    return this.leaseWrite('claim runnable runs', () => this.selectRunnable.all(now, now, limit).map((runId) => this.grant(runId, owner, now, ttlMs)));
  }

  async nextWakeAt(now: string): Promise<string | null> {
    this.assertOpen('nextWakeAt');
    return this.guard('read the next due time', () => this.selectNextWake.get(now, now) ?? null);
  }

  /** A new lease of the run for `owner`: the fencing token moves on by one. Inside a write transaction. */
  private grant(runId: string, owner: string, now: string, ttlMs: number): Lease {
    const expiresAt = addMs(now, ttlMs);
    const token = this.takeLease.get(runId, owner, expiresAt) as number;
    return { runId, owner, token, expiresAt };
  }

  private leaseWrite<T>(action: string, write: () => T): T {
    try {
      return this.leaseTx(write);
    } catch (error) {
      if (error instanceof CantbookError || sqliteCodeOf(error) === undefined) throw error;
      throw this.operationError(error, action);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted are committed, not dropped.
    if (this.queue.length > 0) this.flush();
    this.closed = true;
    this.heads.clear();
    this.db.close();
  }

  /** The body of the append transaction; runs under BEGIN IMMEDIATE. */
  private writeAppend(request: AppendRequest, knownHead: string | undefined): RunEvent[] {
    const { runId, expectedVersion, events } = request;
    const lease = request.lease;
    if (lease?.create !== undefined) {
      if (expectedVersion !== 0 || lease.token !== 1) throw new TypeError(`append: run '${runId}': only a new run's first append creates its lease, with token 1`);
      if (this.createLease.run(runId, lease.create.owner, lease.create.expiresAt).changes === 0) {
        throw new CantbookError(E_RUN_ACTIVE, `run '${runId}' already has a lease: a run id can be started once`, { runId });
      }
    }
    // A driver's append is fenced by its first insert, which happens only while the lease's token is current.
    const fenced = lease !== undefined && lease.create === undefined ? lease.token : undefined;
    let prevHash = knownHead;
    if (prevHash === undefined) {
      const head = this.lastEvent.get(runId);
      const actualVersion = head === undefined ? 0 : head[0];
      if (actualVersion !== expectedVersion) throw concurrentUpdate(runId, expectedVersion, actualVersion);
      prevHash = head === undefined ? GENESIS_HASH : head[1];
    }
    const stored: RunEvent[] = [];
    const chained = chainEvents(prevHash, runId, expectedVersion, events);
    events.forEach((event, index) => {
      const { seq, hash } = chained[index] as { seq: number; hash: string };
      const data = JSON.stringify(event.data);
      const info = index === 0 && fenced !== undefined
        ? this.insertEventFenced.run(runId, seq, event.type, data, event.at, hash, runId, fenced)
        : this.insertEvent.run(runId, seq, event.type, data, event.at, hash);
      if (info.changes === 0) throw leaseLost(runId, fenced as number, this.selectLeaseToken.get(runId));
      stored.push(storedEvent(event, runId, seq, Number(info.lastInsertRowid), hash));
    });
    if (lease?.release === true) this.dropLease.run(runId, lease.token);
    if (request.playbook !== undefined) {
      const { sourceHash, name, source } = request.playbook;
      this.insertPlaybook.run(sourceHash, name, source, events[0]?.at ?? '');
    }
    // Beside the log, after the events: a refused append rolls them back with its savepoint.
    if (request.settings !== undefined && expectedVersion === 0) this.insertSettings.run(runId, request.settings.agent ?? null);
    if (request.attemptLogs !== undefined) {
      for (const log of attemptLogRows(request.attemptLogs)) this.upsertAttemptLog.run(runId, log.nodeId, log.attempt, log.text, log.droppedBytes);
    }
    this.writeRun(request.run);
    if (request.changed === undefined) this.replaceRunKeys(request.run);
    else this.writeRunKeys(request.run, request.changed);
    for (const approval of request.approvals) this.upsertApproval.run(...approvalParams(approval, (resumed) => (resumed ? 1 : 0)));
    if (request.wakeRun !== undefined) {
      const at = (stored.at(-1) as RunEvent).at;
      this.wakeRunRow.run(at, request.wakeRun, at);
    }
    return stored;
  }

  /**
   * The body of the replaceProjections transaction; runs under BEGIN IMMEDIATE.
   * It touches projection rows only: a run's settings and attempt logs stay
   * (see RUN_SIDE_TABLES_SQL), as do its lease and its playbook text.
   */
  private writeProjections(runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]): void {
    if (run !== null) {
      // A rebuild folded the log at some version; if the log has moved on since, the
      // rows would be stale the moment they are written.
      const actualVersion = this.streamVersion.get(runId) ?? 0;
      if (actualVersion !== run.version) {
        throw new CantbookError(
          E_CONCURRENT_UPDATE,
          `cannot replace the projections of run '${runId}': the rows are at version ${run.version} but the log is at version ${actualVersion}`,
          { runId, expectedVersion: run.version, actualVersion },
        );
      }
    }
    this.deleteApprovalsOfRun.run(runId);
    this.deleteBindingsOfRun.run(runId);
    this.deleteAttemptsOfRun.run(runId);
    this.deleteRun.run(runId);
    if (run === null) return;
    this.writeRun(run);
    this.insertRunKeys(run);
    for (const approval of approvals) this.upsertApproval.run(...approvalParams(approval, (resumed) => (resumed ? 1 : 0)));
  }

  /** Upserts a runs row (two statements; see updateRunStatus). */
  private writeRun(run: RunRow): void {
    this.upsertRun.run(...runParams(run));
    this.updateRunIndexed.run(run.status, run.wakeAt, run.runId, run.status, run.wakeAt);
  }

  /** Writes the keys an append changed, with their values in `run`; a key `run` no longer has is removed. */
  private writeRunKeys(run: RunRow, changed: RunChanges): void {
    for (const key of changed.bindings) {
      const value = bindingValue(run.bindings, key);
      if (value === undefined) this.deleteBinding.run(run.runId, key);
      else this.upsertBinding.run(run.runId, key, value);
    }
    for (const nodeId of changed.iterationCounts) {
      const attempts = Object.hasOwn(run.iterationCounts, nodeId) ? run.iterationCounts[nodeId] : undefined;
      if (attempts === undefined) this.deleteAttempts.run(run.runId, nodeId);
      else this.upsertAttempts.run(run.runId, nodeId, attempts);
    }
  }

  /** An append that does not say what changed: all of the run's keys become `run`'s. */
  private replaceRunKeys(run: RunRow): void {
    this.deleteBindingsOfRun.run(run.runId);
    this.deleteAttemptsOfRun.run(run.runId);
    this.insertRunKeys(run);
  }

  /** Inserts every key of `run` (the run has none yet), in the row's key order. */
  private insertRunKeys(run: RunRow): void {
    for (const key of Object.keys(run.bindings)) {
      const value = bindingValue(run.bindings, key);
      if (value !== undefined) this.upsertBinding.run(run.runId, key, value);
    }
    for (const [nodeId, attempts] of Object.entries(run.iterationCounts)) this.upsertAttempts.run(run.runId, nodeId, attempts);
  }

  private rememberHead(runId: string, seq: number, hash: string): void {
    // Delete first so the entry moves to the end: the Map's order is recency.
    this.heads.delete(runId);
    this.heads.set(runId, { seq, hash });
    if (this.heads.size > HEAD_CACHE_SIZE) {
      const oldest = this.heads.keys().next();
      if (oldest.done !== true) this.heads.delete(oldest.value);
    }
  }

  private appendError(error: unknown, runId: string, expectedVersion: number): Error {
    if (error instanceof CantbookError) return error;
    const code = sqliteCodeOf(error);
    if (code === undefined) return error instanceof Error ? error : new Error(String(error));
    if ((code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') && (error as Error).message.includes('events.')) {
      let actualVersion: number | undefined;
      try {
        actualVersion = this.streamVersion.get(runId) ?? 0;
      } catch {
        actualVersion = undefined;
      }
      return concurrentUpdate(runId, expectedVersion, actualVersion, error);
    }
    return this.operationError(error, `append to run '${runId}'`);
  }

  /** Wraps driver errors of a read; other errors (programmer errors) pass through. */
  private guard<T>(action: string, read: () => T): T {
    try {
      return read();
    } catch (error) {
      if (sqliteCodeOf(error) === undefined) throw error;
      throw this.operationError(error, action);
    }
  }

  private operationError(error: unknown, action: string): CantbookError | Error {
    const code = sqliteCodeOf(error);
    if (code === undefined) return error instanceof Error ? error : new Error(String(error));
    const reason = (error as Error).message;
    const details = { path: this.path, sqliteCode: code };
    if (isCorruption(code)) {
      return new CantbookError(E_LOG_CORRUPT, `cannot ${action}: the store at '${this.path}' is corrupt (${reason})`, details, { cause: error });
    }
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      // Transient: the same call may succeed once the other connection lets go (SPEC §4).
      return new CantbookError(
        E_STORE_UNAVAILABLE,
        `cannot ${action}: the store at '${this.path}' stayed locked by another connection for more than ${this.busyTimeoutMs} ms`,
        { ...details, transient: true },
        { cause: error },
      );
    }
    if (code.startsWith('SQLITE_READONLY')) {
      return new CantbookError(E_STORE_UNAVAILABLE, `cannot ${action}: the store at '${this.path}' is read-only (${reason})`, details, { cause: error });
    }
    return new CantbookError(E_STORE_UNAVAILABLE, `cannot ${action} in the store at '${this.path}': ${reason}`, details, { cause: error });
  }

  private assertOpen(method: string): void {
    if (this.closed) {
      throw new CantbookError(E_STORE_UNAVAILABLE, `${method}: the store at '${this.path}' is closed`, { path: this.path });
    }
  }

  private toEvent(row: EventTuple): RunEvent {
    const [globalSeq, runId, seq, type, data, at, hash] = row;
    return { runId, seq, globalSeq, type, data: this.parseJson(data, `event ${seq} of run '${runId}'`), at, hash } as RunEvent;
  }

  /** A runs row and its keys (in the order the run first wrote them) as a RunRow. */
  private toRun(row: RunTuple, bindingRows: readonly KeyTuple<string>[] = [], attemptRows: readonly KeyTuple<number>[] = []): RunRow {
    const [runId, playbookName, playbookHash, status, currentNode, errorContext,
      startedAt, updatedAt, completedAt, version, epicId, sessionId, error, activeNodes, wakeAt, parentRunId] = row;
    const where = `the runs row of '${runId}'`;
    // fromEntries, not assignment: a key named __proto__ must stay an own key, as JSON.parse made it.
    const bindings = Object.fromEntries(bindingRows.map(([, key, value]) => [key, this.parseJson(value, `binding '${key}' of run '${runId}'`)]));
    const iterationCounts = Object.fromEntries(attemptRows.map(([, nodeId, attempts]) => [nodeId, attempts]));
    return {
      runId,
      playbookName,
      playbookHash,
      status: status as RunStatus,
      currentNode,
      activeNodes: this.parseJson(activeNodes, where) as RunRow['activeNodes'],
      bindings,
      iterationCounts,
      errorContext: errorContext === null ? null : (this.parseJson(errorContext, where) as RunRow['errorContext']),
      error: error === null ? null : (this.parseJson(error, where) as RunRow['error']),
      startedAt,
      updatedAt,
      completedAt,
      version,
      epicId,
      sessionId,
      parentRunId,
      wakeAt,
    };
  }

  private parseJson(text: string, where: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new CantbookError(E_LOG_CORRUPT, `the store at '${this.path}' holds invalid JSON in ${where}`, { path: this.path }, { cause: error });
    }
  }
}



function toLease(row: LeaseTuple): Lease {
  const [runId, owner, token, expiresAt] = row;
  return { runId, owner, token, expiresAt };
}







/** Key rows of several runs, by run, each run's rows in the order read. */


function toApproval(row: ApprovalTuple): ApprovalRow {
  const [approvalId, runId, nodeId, status, prompt, tokenHash, contextDigest, expiresAt, requestedAt,
    decidedAt, approver, reason, resumed] = row;
  return {
    approvalId,
    runId,
    nodeId,
    status: status as ApprovalStatus,
    prompt,
    tokenHash,
    contextDigest,
    expiresAt,
    requestedAt,
    decidedAt,
    approver,
    reason,
    resumed: resumed === 1,
  };
}
