import { createHash } from 'node:crypto';
import type { Client, Pool, PoolClient, PoolConfig, QueryConfig } from 'pg';
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

/**
 * The schema version this code writes and reads (in `cantbook_meta`). The
 * PostgreSQL schema has its own numbering: it starts at 1 with everything the
 * SQLite schema 4 has (per-key projections, leases, wake times); 2 adds the
 * append function, 3 the parent run of child runs (SQLite's 5), 4 the run
 * settings and attempt logs kept beside the log (SQLite's 6).
 */
export const POSTGRES_SCHEMA_VERSION = 4;

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * The PostgreSQL schema (namespace) that holds cantbook's tables; created
   * on open when missing. Default: none, i.e. the connection's `search_path`
   * (normally `public`). Letters, digits and `_` only.
   */
  schema?: string;
  /** Size of the pool the store creates from a connection string (default 10). Ignored with `{ pool }`. */
  maxConnections?: number;
  /**
   * How long opening a connection may take before the call fails with a transient
   * `E_STORE_UNAVAILABLE` (default 10000 ms; 0 waits as long as the OS does). Ignored with `{ pool }`.
   */
  connectTimeoutMs?: number;
  /**
   * Whether opening creates the schema and its tables when there are none
   * (default true). With false, a database (or schema) that holds no cantbook
   * store is `E_STORE_UNAVAILABLE` and nothing is created: what commands that
   * only read want, so a mistyped schema name is an error, not a new empty store.
   * An existing store of an older version is still migrated.
   */
  create?: boolean;
}

/** What {@link openPostgresStore} connects to: a connection string, or a pool the caller owns. */
export type PostgresStoreTarget = string | { pool: Pool };

/**
 * Every table's DDL. Text, not jsonb, for JSON: the store hands back exactly
 * the text it was given (jsonb would reorder keys, and the key order of a
 * context is part of the fold). Ids and ISO-8601 times are `COLLATE "C"`:
 * byte order, as in SQLite, so that time comparisons and `ORDER BY run_id`
 * do not depend on the database's locale.
 *
 * `events_head` is the one-row position counter: an append takes its global
 * positions from it in the append's transaction, so positions are handed out
 * in commit order (docs/adr/0008-postgres-readall-order.md). `run_bindings`
 * and `run_attempts` keep one row per key; `ord` (an identity) keeps the
 * order in which the run first wrote each key, which an upsert keeps.
 */
function schemaSql(q: string): string {
  return `
CREATE TABLE ${q}cantbook_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
CREATE TABLE ${q}events_head (
  id         smallint PRIMARY KEY CHECK (id = 1),
  global_seq bigint   NOT NULL
);
INSERT INTO ${q}events_head (id, global_seq) VALUES (1, 0);
CREATE TABLE ${q}events (
  global_seq bigint  PRIMARY KEY,
  run_id     text    COLLATE "C" NOT NULL,
  seq        integer NOT NULL CHECK (seq >= 1),
  type       text    NOT NULL,
  data       text    NOT NULL,
  at         text    NOT NULL,
  hash       text    NOT NULL,
  CONSTRAINT events_run_seq UNIQUE (run_id, seq)
);
CREATE TABLE ${q}playbooks (
  source_hash   text PRIMARY KEY,
  name          text NOT NULL,
  source        text NOT NULL,
  first_seen_at text NOT NULL
);
CREATE TABLE ${q}runs (
  run_id        text    COLLATE "C" PRIMARY KEY,
  playbook_name text    NOT NULL,
  playbook_hash text    NOT NULL,
  status        text    NOT NULL,
  current_node  text,
  error_context text,
  error         text,
  active_nodes  text    NOT NULL DEFAULT '[]',
  started_at    text    COLLATE "C" NOT NULL,
  updated_at    text    NOT NULL,
  completed_at  text,
  version       integer NOT NULL,
  epic_id       text,
  session_id    text,
  wake_at       text    COLLATE "C",
  parent_run_id text    COLLATE "C"
);
CREATE INDEX runs_by_status ON ${q}runs (status);
CREATE INDEX runs_by_wake ON ${q}runs (wake_at) WHERE wake_at IS NOT NULL;
${runsByParentSql(q)}
CREATE TABLE ${q}run_bindings (
  ord    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id text   COLLATE "C" NOT NULL REFERENCES ${q}runs (run_id) ON DELETE CASCADE,
  key    text   NOT NULL,
  value  text   NOT NULL,
  UNIQUE (run_id, key)
);
CREATE TABLE ${q}run_attempts (
  ord      bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id   text    COLLATE "C" NOT NULL REFERENCES ${q}runs (run_id) ON DELETE CASCADE,
  node_id  text    NOT NULL,
  attempts integer NOT NULL,
  UNIQUE (run_id, node_id)
);
CREATE TABLE ${q}approvals (
  approval_id    text    COLLATE "C" PRIMARY KEY,
  run_id         text    COLLATE "C" NOT NULL REFERENCES ${q}runs (run_id) ON DELETE CASCADE,
  node_id        text    NOT NULL,
  status         text    NOT NULL,
  prompt         text    NOT NULL,
  token_hash     text    NOT NULL,
  context_digest text    NOT NULL,
  expires_at     text,
  requested_at   text    COLLATE "C" NOT NULL,
  decided_at     text,
  approver       text,
  reason         text,
  resumed        boolean NOT NULL
);
CREATE INDEX approvals_by_status ON ${q}approvals (status);
CREATE INDEX approvals_by_run ON ${q}approvals (run_id);
CREATE TABLE ${q}leases (
  run_id     text    COLLATE "C" PRIMARY KEY,
  owner      text    NOT NULL,
  token      integer NOT NULL CHECK (token >= 1),
  expires_at text    COLLATE "C" NOT NULL
);
CREATE INDEX leases_by_expiry ON ${q}leases (expires_at);
${runSideTablesSql(q)}`;
}

/**
 * What is kept beside a run's log (schema 4, SPEC §7, docs/adr/0010): how the
 * run is driven (`run_settings`, written with its first append, never changed)
 * and what each attempt wrote to stderr (`attempt_logs`, upserted by attempt).
 * Neither is history nor a projection (no fold can write them again): only an
 * append writes them, and replaceProjections leaves them alone, so no foreign
 * key to `runs` (whose row a rebuild deletes). A column per setting, not one
 * JSON column: a later setting comes with a migration that says what older
 * runs have (NULL), and a setting not given is NULL (`{}` reads back as `{}`).
 * `dropped_bytes` is bigint: a chatty process can drop more than 2 GiB.
 */
function runSideTablesSql(q: string): string {
  return `
CREATE TABLE ${q}run_settings (
  run_id text COLLATE "C" PRIMARY KEY,
  agent  text
);
CREATE TABLE ${q}attempt_logs (
  run_id        text    COLLATE "C" NOT NULL,
  node_id       text    COLLATE "C" NOT NULL,
  attempt       integer NOT NULL CHECK (attempt >= 1),
  text          text    NOT NULL,
  dropped_bytes bigint  NOT NULL CHECK (dropped_bytes >= 0),
  PRIMARY KEY (run_id, node_id, attempt)
);
`;
}

/** The index of a run's children (schema 3, SPEC §12). Partial: root runs, the most, have no entry. */
function runsByParentSql(q: string): string {
  return `CREATE INDEX runs_by_parent ON ${q}runs (parent_run_id) WHERE parent_run_id IS NOT NULL;`;
}

/** cantbook_append's parameters, typed (pg sends every value as text). */
const APPEND_TYPES = [
  'text', 'integer', 'text', 'smallint', 'integer', 'text', 'text', 'boolean', 'text',
  'text[]', 'text[]', 'text[]', 'text[]',
  'text', 'text', 'text',
  'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text', 'text', 'text', 'text', 'text',
  'boolean', 'text[]', 'text[]', 'text[]', 'text[]', 'text[]', 'integer[]',
  'text', 'text',
  'boolean', 'text', 'text',
];
const APPEND_PARAMS = APPEND_TYPES.map((type, index) => `$${String(index + 1)}::${type}`).join(', ');

/**
 * The append, as one function the server runs in one statement (so one round
 * trip and one transaction per append), in lock order: a new run's lease, or
 * the runs row of a driver's run (the order claimRuns locks in, so the two
 * cannot deadlock); the expected version and the previous hash; the driver's
 * fencing token, locked until commit; the projection rows and what is kept
 * beside the log (the run's settings, its attempt logs); the runs row of
 * the run it wakes (`p_wake_run`, AppendRequest.wakeRun); the wake-up NOTIFY;
 * and last the position counter, held from there to the commit (ADR 0008).
 * Its refusals roll everything back and carry their own SQLSTATE: CBK01 a
 * stale version (DETAIL: the actual one), CBK02 a lost lease (DETAIL: the
 * current token), CBK03 a run id that already has a lease. Two racing appends
 * without a lease to the same run: the loser's insert violates UNIQUE (run_id, seq).
 *
 * Why the wake cannot deadlock. An append locks its own run's rows first,
 * then the runs row of the run it wakes, then the counter. The run it wakes is
 * its parent, so an append's row locks go from its run up the tree, and a tree
 * has no cycles; everyone takes the counter last, and its holder only inserts
 * and commits. So whoever holds the parent's row waits at most for the
 * counter, for rows of its own run, or (the parent's own final append, when it
 * is a child too) for the grandparent's row: never for a row of the child's.
 * claimRuns takes runs rows with SKIP LOCKED (it passes a parent row a wake
 * holds, and hears the NOTIFY at commit), then only those runs' lease rows,
 * which an append locks only after its runs row (or before the run has one);
 * a rebuild locks only its own run's rows. Taken after the counter instead,
 * the wake would deadlock with the parent's own append (which holds the
 * parent's row and waits for the counter). Two appends that wake each other's
 * runs (a misuse) can deadlock: PostgreSQL aborts one, a transient error.
 */
function appendFunctionSql(q: string): string {
  return `
CREATE OR REPLACE FUNCTION ${q}cantbook_append(
  p_run_id text, p_expected integer, p_prev_hash text, p_lease_mode smallint, p_token integer, p_lease_owner text,
  p_lease_expires text, p_release boolean, p_channel text,
  p_types text[], p_datas text[], p_ats text[], p_hashes text[],
  p_playbook_hash text, p_playbook_name text, p_playbook_source text,
  r_playbook_name text, r_playbook_hash text, r_status text, r_current_node text, r_error_context text,
  r_started_at text, r_updated_at text, r_completed_at text, r_version integer, r_epic_id text, r_session_id text,
  r_error text, r_active_nodes text, r_wake_at text, r_parent_run_id text,
  p_replace_keys boolean, p_removed_keys text[], p_removed_nodes text[], p_keys text[], p_values text[],
  p_nodes text[], p_counts integer[],
  p_approvals text, p_wake_run text,
  p_settings boolean, p_agent text, p_attempt_logs text
) RETURNS bigint LANGUAGE plpgsql AS $append$
DECLARE
  v_seq integer;
  v_hash text;
  v_token integer;
  v_last bigint;
  v_count integer := cardinality(p_types);
BEGIN
  IF p_lease_mode = 2 THEN
    INSERT INTO ${q}leases (run_id, owner, token, expires_at) VALUES (p_run_id, p_lease_owner, 1, p_lease_expires)
      ON CONFLICT (run_id) DO NOTHING;
    IF NOT FOUND THEN RAISE EXCEPTION 'run % already has a lease', p_run_id USING ERRCODE = 'CBK03'; END IF;
  ELSIF p_lease_mode = 1 THEN
    PERFORM 1 FROM ${q}runs WHERE run_id = p_run_id FOR UPDATE;
  END IF;
  SELECT seq, hash INTO v_seq, v_hash FROM ${q}events WHERE run_id = p_run_id ORDER BY seq DESC LIMIT 1;
  IF COALESCE(v_seq, 0) <> p_expected OR (v_seq IS NOT NULL AND v_hash <> p_prev_hash) THEN
    RAISE EXCEPTION 'run % is at version %', p_run_id, COALESCE(v_seq, 0) USING ERRCODE = 'CBK01', DETAIL = COALESCE(v_seq, 0)::text;
  END IF;
  IF p_lease_mode = 1 THEN
    SELECT token INTO v_token FROM ${q}leases WHERE run_id = p_run_id FOR UPDATE;
    IF v_token IS DISTINCT FROM p_token THEN
      RAISE EXCEPTION 'run % has lease token %', p_run_id, v_token USING ERRCODE = 'CBK02', DETAIL = COALESCE(v_token::text, '');
    END IF;
  END IF;
  IF p_playbook_hash IS NOT NULL THEN
    INSERT INTO ${q}playbooks (source_hash, name, source, first_seen_at) VALUES (p_playbook_hash, p_playbook_name, p_playbook_source, p_ats[1])
      ON CONFLICT (source_hash) DO NOTHING;
  END IF;
  INSERT INTO ${q}runs (${RUN_COLUMNS}) VALUES (p_run_id, r_playbook_name, r_playbook_hash, r_status, r_current_node, r_error_context,
      r_started_at, r_updated_at, r_completed_at, r_version, r_epic_id, r_session_id, r_error, r_active_nodes, r_wake_at, r_parent_run_id)
    ${RUN_UPSERT};
  IF p_replace_keys THEN
    DELETE FROM ${q}run_bindings WHERE run_id = p_run_id;
    DELETE FROM ${q}run_attempts WHERE run_id = p_run_id;
  END IF;
  IF cardinality(p_removed_keys) > 0 THEN DELETE FROM ${q}run_bindings WHERE run_id = p_run_id AND key = ANY (p_removed_keys); END IF;
  IF cardinality(p_removed_nodes) > 0 THEN DELETE FROM ${q}run_attempts WHERE run_id = p_run_id AND node_id = ANY (p_removed_nodes); END IF;
  IF cardinality(p_keys) > 0 THEN
    INSERT INTO ${q}run_bindings (run_id, key, value)
      SELECT p_run_id, k, v FROM unnest(p_keys, p_values) WITH ORDINALITY AS u (k, v, o) ORDER BY o
      ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value WHERE ${q}run_bindings.value <> excluded.value;
  END IF;
  IF cardinality(p_nodes) > 0 THEN
    INSERT INTO ${q}run_attempts (run_id, node_id, attempts)
      SELECT p_run_id, n, c FROM unnest(p_nodes, p_counts) WITH ORDINALITY AS u (n, c, o) ORDER BY o
      ON CONFLICT (run_id, node_id) DO UPDATE SET attempts = excluded.attempts WHERE ${q}run_attempts.attempts <> excluded.attempts;
  END IF;
  IF p_approvals IS NOT NULL THEN
    INSERT INTO ${q}approvals (${APPROVAL_COLUMNS})
      SELECT ${APPROVAL_COLUMNS} FROM json_to_recordset(p_approvals::json) AS a (
        approval_id text, run_id text, node_id text, status text, prompt text, token_hash text, context_digest text,
        expires_at text, requested_at text, decided_at text, approver text, reason text, resumed boolean)
      ${APPROVAL_UPSERT};
  END IF;
  IF p_settings THEN
    INSERT INTO ${q}run_settings (run_id, agent) VALUES (p_run_id, p_agent) ON CONFLICT (run_id) DO NOTHING;
  END IF;
  IF p_attempt_logs IS NOT NULL THEN
    INSERT INTO ${q}attempt_logs (${ATTEMPT_LOG_COLUMNS})
      SELECT p_run_id, node_id, attempt, text, dropped_bytes FROM json_to_recordset(p_attempt_logs::json) AS l (
        node_id text, attempt integer, text text, dropped_bytes bigint)
      ON CONFLICT (run_id, node_id, attempt) DO UPDATE SET text = excluded.text, dropped_bytes = excluded.dropped_bytes;
  END IF;
  IF p_release THEN UPDATE ${q}leases SET expires_at = '' WHERE run_id = p_run_id AND token = p_token; END IF;
  -- Another run's row, after every lock of this run's and before the counter (see above).
  IF p_wake_run IS NOT NULL THEN
    UPDATE ${q}runs SET wake_at = p_ats[v_count]
      WHERE run_id = p_wake_run AND status IN ('running', 'paused') AND (wake_at IS NULL OR wake_at > p_ats[v_count]);
  END IF;
  IF p_channel IS NOT NULL THEN PERFORM pg_notify(p_channel, p_run_id); END IF;
  UPDATE ${q}events_head SET global_seq = global_seq + v_count WHERE id = 1 RETURNING global_seq INTO v_last;
  INSERT INTO ${q}events (global_seq, run_id, seq, type, data, at, hash)
    SELECT v_last - v_count + o, p_run_id, p_expected + o::integer, t, d, a, h
    FROM unnest(p_types, p_datas, p_ats, p_hashes) WITH ORDINALITY AS u (t, d, a, h, o);
  RETURN v_last - v_count + 1;
END
$append$;
`;
}

/**
 * Migrations by the version they start from; each runs inside the opening
 * transaction (under the advisory lock), so a schema is migrated whole or not
 * at all. 1 -> 2: the append becomes one server-side function. 2 -> 3 (child
 * runs): runs get `parent_run_id` and its index (NULL for every run there is:
 * none was a child), and the append function takes the parent run and the
 * run to wake; the old signature is dropped, not kept beside it, so processes
 * of the older version append no more once one process migrated. 3 -> 4 (runs
 * remember their agent, attempts keep their logs; ADR 0010): the empty
 * `run_settings` and `attempt_logs` tables (a run recorded before has neither),
 * and the append function that writes them, replacing the old one the same way.
 * Each step creates today's append function; the next drops it by name.
 */
const MIGRATIONS: Record<number, (client: PoolClient, q: string) => Promise<void>> = {
  1: async (client, q) => {
    await client.query(appendFunctionSql(q));
  },
  2: async (client, q) => {
    await client.query(`ALTER TABLE ${q}runs ADD COLUMN parent_run_id text COLLATE "C"; ${runsByParentSql(q)}`);
    // By name: whichever signature is there (version 2's, or the one migration 1 just created).
    await client.query(`DROP FUNCTION IF EXISTS ${q}cantbook_append`);
    await client.query(appendFunctionSql(q));
  },
  3: async (client, q) => {
    await client.query(runSideTablesSql(q));
    await client.query(`DROP FUNCTION IF EXISTS ${q}cantbook_append`);
    await client.query(appendFunctionSql(q));
  },
};

/** Runs whose head a store remembers (the most recently used). */
const HEAD_CACHE_SIZE = 1024;

const RUN_COLUMNS =
  'run_id, playbook_name, playbook_hash, status, current_node, error_context, ' +
  'started_at, updated_at, completed_at, version, epic_id, session_id, error, active_nodes, wake_at, parent_run_id';
const APPROVAL_COLUMNS =
  'approval_id, run_id, node_id, status, prompt, token_hash, context_digest, expires_at, requested_at, ' +
  'decided_at, approver, reason, resumed';
const EVENT_COLUMNS = 'global_seq, run_id, seq, type, data, at, hash';
const ATTEMPT_LOG_COLUMNS = 'run_id, node_id, attempt, text, dropped_bytes';
/** Upserts of a runs and an approvals row (the append function and a rebuild): every column but the key takes the new value. */
const upsertOf = (key: string, columns: string): string =>
  `ON CONFLICT (${key}) DO UPDATE SET ${columns.split(', ').filter((column) => column !== key).map((column) => `${column} = excluded.${column}`).join(', ')}`;
const RUN_UPSERT = upsertOf('run_id', RUN_COLUMNS);
const APPROVAL_UPSERT = upsertOf('approval_id', APPROVAL_COLUMNS);

type SqlValue = string | number | boolean | null;
interface RunDbRow {
  run_id: string; playbook_name: string; playbook_hash: string; status: string; current_node: string | null;
  error_context: string | null; started_at: string; updated_at: string; completed_at: string | null; version: number;
  epic_id: string | null; session_id: string | null; error: string | null; active_nodes: string; wake_at: string | null;
  parent_run_id: string | null;
}
interface ApprovalDbRow {
  approval_id: string; run_id: string; node_id: string; status: string; prompt: string; token_hash: string;
  context_digest: string; expires_at: string | null; requested_at: string; decided_at: string | null;
  approver: string | null; reason: string | null; resumed: boolean;
}
/** bigint columns arrive as strings from node-postgres. */
interface EventDbRow { global_seq: string; run_id: string; seq: number; type: string; data: string; at: string; hash: string }
interface LeaseDbRow { run_id: string; owner: string; token: number; expires_at: string }
interface KeyDbRow<V> { run_id: string; key: string; value: V }
/** dropped_bytes is bigint: a string from node-postgres. */
interface AttemptLogDbRow { run_id: string; node_id: string; attempt: number; text: string; dropped_bytes: string }

/** Where the store connects, for messages: never the password. */
interface TargetInfo { host: string; port: number | string; database: string; user: string; password?: string }

/**
 * Opens (and on first use initialises) a cantbook store in a PostgreSQL database.
 *
 * On open, in one transaction guarded by an advisory lock (so that several
 * processes opening the same empty database at once create it once), the
 * schema's tables are created, or migrated from an older version, and
 * `cantbook_meta` records the schema version. A schema written by a newer
 * cantbook, or one holding another application's `events` table, is refused.
 *
 * The same {@link EventStore} contract as the SQLite store (the one contract
 * suite runs against both). Differences that callers may see: appends commit
 * one transaction each (no group commit yet), and every append takes the
 * global position counter, so appends to different runs serialise from their
 * last write to their commit (this is what keeps `readAll` from skipping an
 * event; docs/adr/0008-postgres-readall-order.md).
 *
 * `close()` ends the pool the store created from a connection string; a pool
 * passed in as `{ pool }` belongs to the caller and stays open.
 *
 * Throws (the Promise rejects with) `CantbookError`:
 * - `E_STORE_UNAVAILABLE` when the server cannot be reached or refuses the
 *   login (the message names host, port, database and user, never the
 *   password), the schema is foreign or newer; `details.transient` is true for
 *   failures a retry may cure (connection refused or lost, deadlock,
 *   serialization failure).
 *
 * @example
 * const store = await openPostgresStore('postgres://cantbook@db.internal/cantbook');
 * const events = await store.readRun(runId);
 * await store.close();
 */
export async function openPostgresStore(target: PostgresStoreTarget, options: PostgresStoreOptions = {}): Promise<EventStore> {
  const { schema } = options;
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(`openPostgresStore: schema must be letters, digits and '_' (at most 63, not starting with a digit), got '${String(schema)}'`);
  }
  const maxConnections = options.maxConnections ?? 10;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new TypeError(`openPostgresStore: maxConnections must be a positive integer, got ${String(maxConnections)}`);
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 0) {
    throw new TypeError(`openPostgresStore: connectTimeoutMs must be a non-negative integer, got ${String(connectTimeoutMs)}`);
  }
  // The driver is loaded by the first PostgreSQL store: a process on SQLite (every CLI command by default) never parses it.
  const { default: pg } = await import('pg');
  let pool: Pool;
  let owned: boolean;
  let info: TargetInfo;
  if (typeof target === 'string') {
    // One connection more than maxConnections: the one onRunnable listens on (held only while someone listens).
    // TCP keepalive: a connection whose peer vanished (a partition, a failed-over host) errors instead of hanging.
    const config: PoolConfig = { connectionString: target, max: maxConnections + 1, connectionTimeoutMillis: connectTimeoutMs, keepAlive: true, keepAliveInitialDelayMillis: 10_000 };
    info = describeTarget(pg.Client, config);
    try {
      pool = new pg.Pool(config);
    } catch (error) {
      throw new CantbookError(E_STORE_UNAVAILABLE, `cannot open the PostgreSQL store: the connection string is not valid (${redact(messageOf(error), info)})`, {});
    }
    // An idle client that loses its connection emits 'error' on the pool; without a listener that is an uncaught exception.
    pool.on('error', () => undefined);
    owned = true;
  } else if (typeof target === 'object' && target !== null && target.pool instanceof pg.Pool) {
    pool = target.pool;
    info = describeTarget(pg.Client, target.pool.options);
    owned = false;
  } else {
    throw new TypeError('openPostgresStore: expected a connection string or { pool } (a pg.Pool)');
  }
  const q = schema === undefined ? '' : `"${schema}".`;
  const store = new PostgresEventStore(pool, owned, info, q, schema);
  try {
    await ensureSchema(pool, info, q, schema, options.create ?? true);
  } catch (error) {
    if (owned) await pool.end().catch(() => undefined);
    if (error instanceof CantbookError) throw error;
    throw storeError(error, info, 'open the store');
  }
  return store;
}

/** Creates or migrates the schema under a transaction-scoped advisory lock; refuses foreign or newer schemas. */
async function ensureSchema(pool: Pool, info: TargetInfo, q: string, schema: string | undefined, create: boolean): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  const onError = (): void => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    // Two processes opening an empty database at once: the second waits here, then finds the schema made.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('cantbook schema ' || $1))", [schema ?? '']);
    if (schema !== undefined && create) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    const where = schema === undefined ? 'current schema' : `schema '${schema}'`;
    const found = await client.query<{ meta: string | null; events: string | null }>(
      'SELECT to_regclass($1)::text AS meta, to_regclass($2)::text AS events',
      [`${q}cantbook_meta`, `${q}events`],
    );
    const row = found.rows[0];
    if (row?.meta == null) {
      if (row?.events != null) {
        throw new CantbookError(
          E_STORE_UNAVAILABLE,
          `database '${info.database}' on ${hostText(info)} is not a cantbook store: the ${where} has an 'events' table but no 'cantbook_meta' table`,
          { host: info.host, database: info.database },
        );
      }
      if (!create) {
        throw new CantbookError(
          E_STORE_UNAVAILABLE,
          `database '${info.database}' on ${hostText(info)} has no cantbook store in the ${where} (opened without creating one: check the database and schema names, or run a playbook first)`,
          { host: info.host, database: info.database, ...(schema === undefined ? {} : { schema }) },
        );
      }
      await client.query(schemaSql(q));
      await client.query(appendFunctionSql(q));
      await client.query(named(`INSERT INTO ${q}cantbook_meta (key, value) VALUES ('schema_version', $1)`, [String(POSTGRES_SCHEMA_VERSION)]));
    } else {
      const meta = await client.query<{ value: string }>(`SELECT value FROM ${q}cantbook_meta WHERE key = 'schema_version'`);
      const raw = meta.rows[0]?.value;
      const version = raw === undefined ? Number.NaN : Number(raw);
      if (!Number.isInteger(version) || version < 1) {
        throw new CantbookError(
          E_STORE_UNAVAILABLE,
          `database '${info.database}' on ${hostText(info)} is not a cantbook store: cantbook_meta has no valid schema_version (found ${raw === undefined ? 'none' : `'${raw}'`})`,
          { host: info.host, database: info.database },
        );
      }
      if (version > POSTGRES_SCHEMA_VERSION) {
        throw new CantbookError(
          E_STORE_UNAVAILABLE,
          `database '${info.database}' on ${hostText(info)} was written by a newer cantbook (schema version ${version}; this version reads up to ${POSTGRES_SCHEMA_VERSION}): upgrade cantbook`,
          { host: info.host, database: info.database, schemaVersion: version, supportedVersion: POSTGRES_SCHEMA_VERSION },
        );
      }
      for (let from = version; from < POSTGRES_SCHEMA_VERSION; from += 1) await MIGRATIONS[from]?.(client, q);
      if (version < POSTGRES_SCHEMA_VERSION) {
        await client.query(named(`UPDATE ${q}cantbook_meta SET value = $1 WHERE key = 'schema_version'`, [String(POSTGRES_SCHEMA_VERSION)]));
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    broken = broken || isConnectionError(error);
    if (!broken) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** Host, port, database and user of a pool config, read the way node-postgres reads them (never connects). */
function describeTarget(ClientClass: typeof Client, config: PoolConfig): TargetInfo {
  try {
    const client = new ClientClass(config) as Client & { password?: unknown };
    const info: TargetInfo = { host: client.host, port: client.port, database: client.database ?? '', user: client.user ?? '' };
    if (typeof client.password === 'string' && client.password !== '') info.password = client.password;
    return info;
  } catch {
    return { host: '(unknown)', port: '', database: '(unknown)', user: '' };
  }
}

function hostText(info: TargetInfo): string {
  return `PostgreSQL host '${info.host}' port ${String(info.port)}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A message with the password (should a driver ever quote it) blanked out. */
function redact(text: string, info: TargetInfo): string {
  return info.password === undefined ? text : text.split(info.password).join('***');
}

/** SQLSTATE classes and codes a retry may cure. */
// Serialisation failure, deadlock, lock not available, shutdown/crash/cannot connect now, too many connections,
// configuration limit, and a read-only transaction (a standby during a failover, before it is promoted).
const TRANSIENT_STATES = new Set(['40001', '40P01', '55P03', '57P01', '57P02', '57P03', '53300', '53400', '25006']);
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOENT']);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The connection itself is gone (or never came): the client must not go back to the pool. */
function isConnectionError(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined && (code.startsWith('08') || CONNECTION_ERRNOS.has(code))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(messageOf(error));
}

function isTransient(error: unknown): boolean {
  const code = codeOf(error);
  return isConnectionError(error) || (code !== undefined && TRANSIENT_STATES.has(code));
}

/** Maps a driver error to E_STORE_UNAVAILABLE naming where (never the password); transient when a retry may cure it. */
function storeError(error: unknown, info: TargetInfo, action: string): CantbookError {
  const code = codeOf(error);
  const reason = redact(messageOf(error), info);
  const details: Record<string, unknown> = { host: info.host, port: info.port, database: info.database };
  if (code !== undefined) details['pgCode'] = code;
  if (isTransient(error)) details['transient'] = true;
  const where = `database '${info.database}' on ${hostText(info)} as user '${info.user}'`;
  const message = isConnectionError(error)
    ? `cannot ${action}: cannot reach ${where}: ${reason}`
    : `cannot ${action} in ${where}: ${reason}`;
  return new CantbookError(E_STORE_UNAVAILABLE, message, details, { cause: error });
}

/** The PostgreSQL EventStore. Built only by {@link openPostgresStore}. */
class PostgresEventStore implements EventStore {
  private readonly pool: Pool;
  private readonly owned: boolean;
  private readonly info: TargetInfo;
  /** The schema prefix of every table name: '' or '"name".'. */
  private readonly q: string;
  private closed = false;
  /** onRunnable: the NOTIFY channel, the listeners, and the connection that LISTENs while there are any. */
  private readonly channel: string;
  /** The head (seq, hash) of runs this store appended to or read last, so an append needs no read first; a hint the server checks. */
  private readonly heads = new Map<string, { seq: number; hash: string }>();
  private readonly runnableListeners = new Set<() => void>();
  private listener: { client?: PoolClient | undefined; connecting: boolean; retryMs: number; retry?: ReturnType<typeof setTimeout> | undefined } = { connecting: false, retryMs: 0 };

  constructor(pool: Pool, owned: boolean, info: TargetInfo, q: string, schema: string | undefined) {
    this.pool = pool;
    this.owned = owned;
    this.info = info;
    this.q = q;
    this.channel = wakeChannel(schema);
  }

  async append(request: AppendRequest): Promise<RunEvent[]> {
    this.assertOpen('append');
    validateAppend(request);
    const { runId, expectedVersion, events, lease } = request;
    if (lease?.create !== undefined && (expectedVersion !== 0 || lease.token !== 1)) {
      throw new TypeError(`append: run '${runId}': only a new run's first append creates its lease, with token 1`);
    }
    try {
      const prevHash = await this.headHash(runId, expectedVersion);
      const chained = chainEvents(prevHash, runId, expectedVersion, events);
      const result = await this.pool.query<{ first: string }>(named(`SELECT ${this.q}cantbook_append(${APPEND_PARAMS}) AS first`, this.appendParams(request, prevHash, chained)));
      const first = Number(result.rows[0]?.first);
      const stored = events.map((event, index) => {
        const { seq, hash } = chained[index] as { seq: number; hash: string };
        return storedEvent(event, runId, seq, first + index, hash);
      });
      const last = stored[stored.length - 1] as RunEvent;
      this.rememberHead(runId, last.seq, last.hash);
      return stored;
    } catch (error) {
      this.heads.delete(runId);
      throw await this.appendError(error, request);
    }
  }

  /** The hash an append at `expectedVersion` chains to: remembered from this store's last append or read of the run, else read. */
  private async headHash(runId: string, expectedVersion: number): Promise<string> {
    if (expectedVersion === 0) return GENESIS_HASH;
    const known = this.heads.get(runId);
    if (known?.seq === expectedVersion) return known.hash;
    const head = await this.pool.query<{ seq: number; hash: string }>(named(`SELECT seq, hash FROM ${this.q}events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1`, [runId]));
    const row = head.rows[0];
    if (row === undefined || row.seq !== expectedVersion) throw concurrentUpdate(runId, expectedVersion, row?.seq ?? 0);
    return row.hash;
  }

  private rememberHead(runId: string, seq: number, hash: string): void {
    this.heads.delete(runId);
    this.heads.set(runId, { seq, hash });
    if (this.heads.size > HEAD_CACHE_SIZE) this.heads.delete(this.heads.keys().next().value as string);
  }

  /** cantbook_append's arguments, in APPEND_PARAMS order. */
  private appendParams(request: AppendRequest, prevHash: string, chained: readonly { seq: number; hash: string }[]): unknown[] {
    const { runId, expectedVersion, events, lease, run, changed, playbook, settings, attemptLogs } = request;
    const keys = changed === undefined ? allKeys(run) : changedKeys(run, changed);
    const leaseMode = lease === undefined ? 0 : lease.create === undefined ? 1 : 2;
    return [
      runId,
      expectedVersion,
      prevHash,
      leaseMode,
      lease?.token ?? 0,
      lease?.create?.owner ?? null,
      lease?.create?.expiresAt ?? null,
      lease?.release === true,
      // Delivered to every listener at commit, and only then (a refused append wakes nobody).
      appendMayWakeWorkers(request) ? this.channel : null,
      events.map((event) => event.type),
      events.map((event) => JSON.stringify(event.data)),
      events.map((event) => event.at),
      chained.map((link) => link.hash),
      playbook?.sourceHash ?? null,
      playbook?.name ?? null,
      playbook?.source ?? null,
      ...runParams(run).slice(1),
      changed === undefined,
      keys.removedKeys,
      keys.removedNodes,
      keys.keys,
      keys.values,
      keys.nodes,
      keys.counts,
      request.approvals.length === 0 ? null : JSON.stringify(request.approvals.map(approvalRecord)),
      request.wakeRun ?? null,
      // Settings only with a run's first append: a later one's are ignored (AppendRequest.settings).
      settings !== undefined && expectedVersion === 0,
      settings?.agent ?? null,
      attemptLogs === undefined || attemptLogs.length === 0 ? null : JSON.stringify(attemptLogRows(attemptLogs).map(attemptLogRecord)),
    ];
  }

  /** What a refused or failed append reports: the function's own refusals by their SQLSTATE, a lost race, or the driver's error. */
  private async appendError(error: unknown, request: AppendRequest): Promise<unknown> {
    const { runId, expectedVersion, lease } = request;
    if (error instanceof CantbookError || error instanceof TypeError) return error;
    const code = codeOf(error);
    const detail = (error as { detail?: unknown }).detail;
    if (code === 'CBK01') return concurrentUpdate(runId, expectedVersion, Number(detail), error);
    if (code === 'CBK02') return leaseLost(runId, lease?.token ?? 0, typeof detail === 'string' && detail !== '' ? Number(detail) : undefined);
    if (code === 'CBK03') return new CantbookError(E_RUN_ACTIVE, `run '${runId}' already has a lease: a run id can be started once`, { runId });
    if (code === '23505' && (error as { constraint?: unknown }).constraint === 'events_run_seq') {
      let actualVersion: number | undefined;
      try {
        actualVersion = await this.streamVersion(this.pool, runId);
      } catch {
        actualVersion = undefined;
      }
      return concurrentUpdate(runId, expectedVersion, actualVersion, error);
    }
    return storeError(error, this.info, `append to run '${runId}'`);
  }

  private async writeRun(client: PoolClient, run: RunRow): Promise<void> {
    await client.query(named(
      `INSERT INTO ${this.q}runs (${RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ${RUN_UPSERT}`,
      runParams(run),
    ));
  }

  private async upsertApproval(client: PoolClient, approval: ApprovalRow): Promise<void> {
    await client.query(named(
      `INSERT INTO ${this.q}approvals (${APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ${APPROVAL_UPSERT}`,
      approvalParams(approval, (resumed) => resumed),
    ));
  }

  /** Writes every key of `run` in place of the run's keys (a rebuild). */
  private async replaceRunKeys(client: PoolClient, run: RunRow): Promise<void> {
    await client.query(named(`DELETE FROM ${this.q}run_bindings WHERE run_id = $1`, [run.runId]));
    await client.query(named(`DELETE FROM ${this.q}run_attempts WHERE run_id = $1`, [run.runId]));
    const { keys, values, nodes, counts } = allKeys(run);
    await this.upsertKeys(client, run.runId, keys, values, nodes, counts);
  }

  /**
   * Upserts keys in the given order (a new key's identity follows it, which is
   * the fold's key order). A key rewritten with the value it has is not written.
   */
  private async upsertKeys(client: PoolClient, runId: string, keys: readonly string[], values: readonly string[], nodes: readonly string[], counts: readonly number[]): Promise<void> {
    if (keys.length > 0) {
      await client.query(named(
        `INSERT INTO ${this.q}run_bindings (run_id, key, value)
         SELECT $1, k, v FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (k, v, o) ORDER BY o
         ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value WHERE run_bindings.value <> excluded.value`,
        [runId, keys, values],
      ));
    }
    if (nodes.length > 0) {
      await client.query(named(
        `INSERT INTO ${this.q}run_attempts (run_id, node_id, attempts)
         SELECT $1, n, c FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY AS u (n, c, o) ORDER BY o
         ON CONFLICT (run_id, node_id) DO UPDATE SET attempts = excluded.attempts WHERE run_attempts.attempts <> excluded.attempts`,
        [runId, nodes, counts],
      ));
    }
  }

  async readRun(runId: string, afterSeq = 0): Promise<RunEvent[]> {
    this.assertOpen('readRun');
    const rows = await this.read('read run events', (c) =>
      c.query<EventDbRow>(named(`SELECT ${EVENT_COLUMNS} FROM ${this.q}events WHERE run_id = $1 AND seq > $2 ORDER BY seq`, [runId, afterSeq])));
    const events = rows.rows.map((row) => this.toEvent(row));
    const last = events[events.length - 1];
    if (last !== undefined) this.rememberHead(runId, last.seq, last.hash);
    return events;
  }

  async readAll(afterGlobalSeq: number, limit: number): Promise<RunEvent[]> {
    this.assertOpen('readAll');
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`readAll: limit must be a non-negative integer, got ${String(limit)}`);
    if (limit === 0) return [];
    // Positions are handed out in commit order (ADR 0008): everything below the highest one visible is visible too.
    const rows = await this.read('read events', (c) =>
      c.query<EventDbRow>(named(`SELECT ${EVENT_COLUMNS} FROM ${this.q}events WHERE global_seq > $1 ORDER BY global_seq LIMIT $2`, [afterGlobalSeq, limit])));
    return rows.rows.map((row) => this.toEvent(row));
  }

  async getRun(runId: string): Promise<RunRow | null> {
    this.assertOpen('getRun');
    // One snapshot, so that the row and its keys are from the same commit.
    const read = await this.snapshot('read a run', async (c) => {
      const row = (await c.query<RunDbRow>(named(`SELECT ${RUN_COLUMNS} FROM ${this.q}runs WHERE run_id = $1`, [runId]))).rows[0];
      if (row === undefined) return undefined;
      const bindings = await c.query<KeyDbRow<string>>(named(`SELECT run_id, key, value FROM ${this.q}run_bindings WHERE run_id = $1 ORDER BY ord`, [runId]));
      const attempts = await c.query<KeyDbRow<number>>(named(`SELECT run_id, node_id AS key, attempts AS value FROM ${this.q}run_attempts WHERE run_id = $1 ORDER BY ord`, [runId]));
      return { row, bindings: bindings.rows, attempts: attempts.rows };
    });
    return read === undefined ? null : this.toRun(read.row, read.bindings, read.attempts);
  }

  async listRuns(filter: ListRunsFilter = {}): Promise<RunRow[]> {
    this.assertOpen('listRuns');
    const conditions: string[] = [];
    const params: string[] = [];
    if (filter.parentRunId !== undefined) {
      params.push(filter.parentRunId);
      conditions.push(`r.parent_run_id = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      conditions.push(`r.status = $${params.length}`);
    }
    if (filter.playbookName !== undefined) {
      params.push(filter.playbookName);
      conditions.push(`r.playbook_name = $${params.length}`);
    }
    if (filter.startedSince !== undefined) {
      params.push(filter.startedSince);
      conditions.push(`r.started_at >= $${params.length}`);
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const order = filter.newestFirst === true ? 'r.started_at DESC, r.run_id DESC' : 'r.started_at, r.run_id';
    const limit = limitOf(filter.limit);
    if (limit !== undefined) params.push(String(limit));
    const bounded = limit === undefined ? '' : ` LIMIT $${params.length}`;
    // The runs listed, as a relation the keys are joined to (a limit picks them first).
    const runs = limit === undefined ? `${this.q}runs r` : `(SELECT r.run_id FROM ${this.q}runs r ${where} ORDER BY ${order}${bounded}) r`;
    const keyWhere = limit === undefined ? where : '';
    // Three queries whatever the number of runs, in one snapshot.
    const read = await this.snapshot('list runs', async (c) => ({
      rows: (await c.query<RunDbRow>(named(`SELECT ${RUN_COLUMNS} FROM ${this.q}runs r ${where} ORDER BY ${order}${bounded}`, params))).rows,
      bindings: (await c.query<KeyDbRow<string>>(
        `SELECT b.run_id, b.key, b.value FROM ${this.q}run_bindings b JOIN ${runs} ON r.run_id = b.run_id ${keyWhere} ORDER BY b.ord`, params)).rows,
      attempts: (await c.query<KeyDbRow<number>>(
        `SELECT a.run_id, a.node_id AS key, a.attempts AS value FROM ${this.q}run_attempts a JOIN ${runs} ON r.run_id = a.run_id ${keyWhere} ORDER BY a.ord`, params)).rows,
    }));
    const bindings = groupByRun(read.bindings, (row) => row.run_id);
    const attempts = groupByRun(read.attempts, (row) => row.run_id);
    return read.rows.map((row) => this.toRun(row, bindings.get(row.run_id), attempts.get(row.run_id)));
  }

  async getApproval(approvalId: string): Promise<ApprovalRow | null> {
    this.assertOpen('getApproval');
    const rows = await this.read('read an approval', (c) =>
      c.query<ApprovalDbRow>(named(`SELECT ${APPROVAL_COLUMNS} FROM ${this.q}approvals WHERE approval_id = $1`, [approvalId])));
    const row = rows.rows[0];
    return row === undefined ? null : toApproval(row);
  }

  async listApprovals(filter: ListApprovalsFilter = {}): Promise<ApprovalRow[]> {
    this.assertOpen('listApprovals');
    const conditions: string[] = [];
    const params: string[] = [];
    if (filter.runId !== undefined) {
      params.push(filter.runId);
      conditions.push(`run_id = $${params.length}`);
    }
    if (filter.status !== undefined) {
      params.push(filter.status);
      conditions.push(`status = $${params.length}`);
    }
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const rows = await this.read('list approvals', (c) =>
      c.query<ApprovalDbRow>(named(`SELECT ${APPROVAL_COLUMNS} FROM ${this.q}approvals ${where} ORDER BY requested_at, approval_id`, params)));
    return rows.rows.map(toApproval);
  }

  async getPlaybookSource(sourceHash: string): Promise<string | null> {
    this.assertOpen('getPlaybookSource');
    const rows = await this.read('read a playbook source', (c) =>
      c.query<{ source: string }>(named(`SELECT source FROM ${this.q}playbooks WHERE source_hash = $1`, [sourceHash])));
    return rows.rows[0]?.source ?? null;
  }

  async getRunSettings(runId: string): Promise<RunSettings | null> {
    this.assertOpen('getRunSettings');
    const rows = await this.read('read the settings of a run', (c) =>
      c.query<{ agent: string | null }>(named(`SELECT agent FROM ${this.q}run_settings WHERE run_id = $1`, [runId])));
    const row = rows.rows[0];
    if (row === undefined) return null;
    return row.agent === null ? {} : { agent: row.agent };
  }

  async listAttemptLogs(runId: string, filter: { nodeId?: string } = {}): Promise<(AttemptLog & { runId: string })[]> {
    this.assertOpen('listAttemptLogs');
    const { nodeId } = filter;
    const rows = await this.read('list attempt logs', (c) =>
      nodeId === undefined
        ? c.query<AttemptLogDbRow>(named(`SELECT ${ATTEMPT_LOG_COLUMNS} FROM ${this.q}attempt_logs WHERE run_id = $1 ORDER BY node_id, attempt`, [runId]))
        : c.query<AttemptLogDbRow>(named(`SELECT ${ATTEMPT_LOG_COLUMNS} FROM ${this.q}attempt_logs WHERE run_id = $1 AND node_id = $2 ORDER BY attempt`, [runId, nodeId])));
    return rows.rows.map((row) => ({ runId: row.run_id, nodeId: row.node_id, attempt: row.attempt, text: row.text, droppedBytes: Number(row.dropped_bytes) }));
  }

  async listRunIds(): Promise<string[]> {
    this.assertOpen('listRunIds');
    // Order of first appearance, so `verify` reports runs chronologically.
    const rows = await this.read('list run ids', (c) =>
      c.query<{ run_id: string }>(`SELECT run_id FROM ${this.q}events GROUP BY run_id ORDER BY MIN(global_seq)`));
    return rows.rows.map((row) => row.run_id);
  }

  async replaceProjections(runId: string, run: RunRow | null, approvals: readonly ApprovalRow[]): Promise<void> {
    this.assertOpen('replaceProjections');
    if (run !== null && run.runId !== runId) throw new TypeError(`replaceProjections: run row is for run '${run.runId}', not '${runId}'`);
    if (run === null && approvals.length > 0) throw new TypeError(`replaceProjections: approvals for run '${runId}' need a run row (got null)`);
    for (const approval of approvals) {
      if (approval.runId !== runId) {
        throw new TypeError(`replaceProjections: approval '${approval.approvalId}' belongs to run '${approval.runId}', not '${runId}'`);
      }
    }
    try {
      await this.transaction(async (client) => {
        const q = this.q;
        // Projection rows only: the run's settings and attempt logs stay (see runSideTablesSql).
        // The runs row first, the order every append locks in, so a rebuild racing an append cannot deadlock.
        await client.query(named(`SELECT 1 FROM ${q}runs WHERE run_id = $1 FOR UPDATE`, [runId]));
        await client.query(named(`DELETE FROM ${q}approvals WHERE run_id = $1`, [runId]));
        await client.query(named(`DELETE FROM ${q}runs WHERE run_id = $1`, [runId]));
        if (run === null) return;
        await this.writeRun(client, run);
        await this.replaceRunKeys(client, run);
        for (const approval of approvals) await this.upsertApproval(client, approval);
        // Checked after the writes: this transaction now holds the runs row, and every append
        // writes that row before its events, so an append not visible here commits after us.
        const actualVersion = await this.streamVersion(client, runId);
        if (actualVersion !== run.version) {
          throw new CantbookError(
            E_CONCURRENT_UPDATE,
            `cannot replace the projections of run '${runId}': the rows are at version ${run.version} but the log is at version ${actualVersion}`,
            { runId, expectedVersion: run.version, actualVersion },
          );
        }
      });
    } catch (error) {
      if (error instanceof CantbookError || error instanceof TypeError) throw error;
      throw storeError(error, this.info, `replace the projections of run '${runId}'`);
    }
  }

  async acquireLease(request: AcquireLeaseRequest): Promise<Lease | null> {
    this.assertOpen('acquireLease');
    const { runId, owner, now, ttlMs } = leaseRequest(request);
    const expiresAt = addMs(now, ttlMs);
    // One statement: the upsert's condition is evaluated on the latest row version, so two
    // acquirers racing for a run (with or without a row yet) cannot both win.
    const rows = await this.read(`take the lease of run '${runId}'`, (c) =>
      c.query<{ token: number }>(named(
        `INSERT INTO ${this.q}leases (run_id, owner, token, expires_at) VALUES ($1, $2, 1, $3)
         ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, token = leases.token + 1, expires_at = excluded.expires_at
           WHERE leases.expires_at <= $4 OR $5
         RETURNING token`,
        [runId, owner, expiresAt, now, request.force === true],
      )));
    const token = rows.rows[0]?.token;
    return token === undefined ? null : { runId, owner, token, expiresAt };
  }

  async renewLease(lease: Lease, request: { now: string; ttlMs: number }): Promise<{ lease: Lease; version: number }> {
    this.assertOpen('renewLease');
    const { now, ttlMs } = leaseRequest({ runId: lease.runId, owner: lease.owner, ...request });
    const expiresAt = addMs(now, ttlMs);
    const action = `renew the lease of run '${lease.runId}'`;
    const rows = await this.read(action, (c) =>
      c.query<{ version: number }>(named(
        `UPDATE ${this.q}leases SET expires_at = $1 WHERE run_id = $2 AND token = $3 AND expires_at > $4
         RETURNING (SELECT COALESCE(MAX(seq), 0) FROM ${this.q}events WHERE run_id = $2) AS version`,
        [expiresAt, lease.runId, lease.token, now],
      )));
    const row = rows.rows[0];
    if (row === undefined) {
      const current = await this.read(action, (c) => c.query<{ token: number }>(named(`SELECT token FROM ${this.q}leases WHERE run_id = $1`, [lease.runId])));
      throw leaseLost(lease.runId, lease.token, current.rows[0]?.token);
    }
    return { lease: { ...lease, expiresAt }, version: row.version };
  }

  async releaseLease(lease: Lease, options: { wakeAt?: string | null } = {}): Promise<void> {
    this.assertOpen('releaseLease');
    if (options.wakeAt !== undefined) return this.releaseAndSetWake(lease, options.wakeAt);
    await this.read(`release the lease of run '${lease.runId}'`, (c) =>
      c.query(named(
        `WITH released AS (UPDATE ${this.q}leases SET expires_at = '' WHERE run_id = $1 AND token = $2 RETURNING run_id)
         SELECT pg_notify($3, run_id) FROM released`,
        [lease.runId, lease.token, this.channel],
      )));
  }

  /**
   * releaseLease with a new wake time. The runs row is locked first, the
   * order appends and claims lock in, so this cannot deadlock with them; it
   * changes only while the lease is current.
   */
  private async releaseAndSetWake(lease: Lease, wakeAt: string | null): Promise<void> {
    const q = this.q;
    try {
      await this.transaction(async (client) => {
        await client.query(named(`SELECT 1 FROM ${q}runs WHERE run_id = $1 FOR UPDATE`, [lease.runId]));
        const released = await client.query(named(`UPDATE ${q}leases SET expires_at = '' WHERE run_id = $1 AND token = $2 AND expires_at <> ''`, [lease.runId, lease.token]));
        if (released.rowCount === 0) return;
        await client.query(named(`UPDATE ${q}runs SET wake_at = $2 WHERE run_id = $1`, [lease.runId, wakeAt]));
        await client.query(named('SELECT pg_notify($1, $2)', [this.channel, lease.runId]));
      });
    } catch (error) {
      if (error instanceof CantbookError || error instanceof TypeError) throw error;
      throw storeError(error, this.info, `release the lease of run '${lease.runId}'`);
    }
  }

  async getLease(runId: string): Promise<Lease | null> {
    this.assertOpen('getLease');
    const rows = await this.read('read a lease', (c) =>
      c.query<LeaseDbRow>(named(`SELECT run_id, owner, token, expires_at FROM ${this.q}leases WHERE run_id = $1`, [runId])));
    const row = rows.rows[0];
    return row === undefined ? null : toLease(row);
  }

  async claimRuns(request: ClaimRunsRequest): Promise<Lease[]> {
    this.assertOpen('claimRuns');
    const { owner, now, ttlMs, limit } = claimRequest(request);
    if (limit === 0) return [];
    const expiresAt = addMs(now, ttlMs);
    // SKIP LOCKED lets claimers pass each other's candidates by. It alone does not stop a
    // claimer whose snapshot predates another's committed claim from picking the same run
    // (the runs row was only locked, not changed): the upsert's condition, evaluated on the
    // latest lease row, does. A run lost that way is simply not returned.
    const rows = await this.read('claim runnable runs', (c) =>
      c.query<{ run_id: string; token: number; wake_at: string }>(named(
        `WITH due AS (
           SELECT r.run_id, r.wake_at FROM ${this.q}runs r LEFT JOIN ${this.q}leases l ON l.run_id = r.run_id
           WHERE r.wake_at IS NOT NULL AND r.wake_at <= $1 AND (l.run_id IS NULL OR l.expires_at <= $1)
           ORDER BY r.wake_at, r.run_id LIMIT $2
           FOR UPDATE OF r SKIP LOCKED
         ), granted AS (
           INSERT INTO ${this.q}leases (run_id, owner, token, expires_at)
           SELECT run_id, $3, 1, $4 FROM due
           ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, token = leases.token + 1, expires_at = excluded.expires_at
             WHERE leases.expires_at <= $1
           RETURNING run_id, token
         )
         SELECT g.run_id, g.token, d.wake_at FROM granted g JOIN due d ON d.run_id = g.run_id ORDER BY d.wake_at, g.run_id`,
        [now, limit, owner, expiresAt],
      )));
    return rows.rows.map((row) => ({ runId: row.run_id, owner, token: row.token, expiresAt }));
  }

  async nextWakeAt(now: string): Promise<string | null> {
    this.assertOpen('nextWakeAt');
    const rows = await this.read('read the next due time', (c) =>
      c.query<{ t: string | null }>(named(
        `SELECT LEAST((SELECT MIN(wake_at) FROM ${this.q}runs WHERE wake_at > $1),
                      (SELECT MIN(expires_at) FROM ${this.q}leases WHERE expires_at > $1)) AS t`,
        [now],
      )));
    return rows.rows[0]?.t ?? null;
  }

  onRunnable(listener: () => void): () => void {
    this.assertOpen('onRunnable');
    const own = () => listener();
    this.runnableListeners.add(own);
    void this.listen();
    return () => {
      this.runnableListeners.delete(own);
      if (this.runnableListeners.size === 0) this.unlisten();
    };
  }

  /** Opens the listening connection (once); when it cannot, tries again later, backing off to 5 s. */
  private async listen(): Promise<void> {
    const state = this.listener;
    if (this.closed || this.runnableListeners.size === 0 || state.client !== undefined || state.connecting || state.retry !== undefined) return;
    state.connecting = true;
    let client: PoolClient | undefined;
    try {
      client = await this.pool.connect();
      const current = client;
      const lost = (): void => this.lostListener(current);
      current.on('error', lost);
      current.on('end', lost);
      current.on('notification', () => callListeners(this.runnableListeners));
      await current.query(`LISTEN "${this.channel}"`);
      state.client = current;
    } catch {
      client?.release(true);
      state.connecting = false;
      this.retryListen();
      return;
    }
    state.connecting = false;
    if (this.closed || this.runnableListeners.size === 0) {
      this.unlisten();
      return;
    }
    // After a lost connection: whatever was committed while nobody listened.
    if (state.retryMs > 0) callListeners(this.runnableListeners);
    state.retryMs = 0;
  }

  private lostListener(client: PoolClient): void {
    const state = this.listener;
    if (state.client !== client) return;
    state.client = undefined;
    client.release(true);
    this.retryListen();
  }

  private retryListen(): void {
    const state = this.listener;
    if (this.closed || this.runnableListeners.size === 0 || state.retry !== undefined) return;
    state.retryMs = Math.min(5_000, Math.max(100, state.retryMs * 2));
    state.retry = setTimeout(() => {
      state.retry = undefined;
      void this.listen();
    }, state.retryMs);
    state.retry.unref();
  }

  /** Stops listening: the connection is closed, not returned (it would go on hearing the channel). */
  private unlisten(): void {
    const state = this.listener;
    if (state.retry !== undefined) clearTimeout(state.retry);
    state.retry = undefined;
    state.retryMs = 0;
    const client = state.client;
    state.client = undefined;
    client?.release(true);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.runnableListeners.clear();
    this.unlisten();
    if (this.owned) await this.pool.end();
  }

  private async streamVersion(db: Pool | PoolClient, runId: string): Promise<number> {
    const rows = await db.query<{ version: number }>(named(`SELECT COALESCE(MAX(seq), 0) AS version FROM ${this.q}events WHERE run_id = $1`, [runId]));
    return rows.rows[0]?.version ?? 0;
  }

  /** One statement on the pool (autocommit); driver errors become E_STORE_UNAVAILABLE. */
  private async read<T>(action: string, run: (db: Pool) => Promise<T>): Promise<T> {
    try {
      return await run(this.pool);
    } catch (error) {
      if (error instanceof CantbookError || error instanceof TypeError) throw error;
      throw storeError(error, this.info, action);
    }
  }

  /** Several reads in one REPEATABLE READ snapshot. */
  private async snapshot<T>(action: string, run: (client: PoolClient) => Promise<T>): Promise<T> {
    try {
      return await this.transaction(run, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    } catch (error) {
      if (error instanceof CantbookError || error instanceof TypeError) throw error;
      throw storeError(error, this.info, action);
    }
  }

  /** Runs `work` in a transaction on one pooled connection; rolls back on any throw. Errors pass through unmapped. */
  private async transaction<T>(work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    // A checked-out client whose connection dies emits 'error' (the pool listens only while it is
    // idle); without a listener that is an uncaught exception. The query in flight rejects as well.
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      broken = broken || isConnectionError(error);
      if (!broken) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true;
        }
      }
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  private assertOpen(method: string): void {
    if (this.closed) {
      throw new CantbookError(E_STORE_UNAVAILABLE, `${method}: the store on database '${this.info.database}' (${hostText(this.info)}) is closed`, { host: this.info.host, database: this.info.database });
    }
  }

  private toEvent(row: EventDbRow): RunEvent {
    return {
      runId: row.run_id,
      seq: row.seq,
      globalSeq: Number(row.global_seq),
      type: row.type,
      data: this.parseJson(row.data, `event ${row.seq} of run '${row.run_id}'`),
      at: row.at,
      hash: row.hash,
    } as RunEvent;
  }

  /** A runs row and its keys (in the order the run first wrote them) as a RunRow. */
  private toRun(row: RunDbRow, bindingRows: readonly KeyDbRow<string>[] = [], attemptRows: readonly KeyDbRow<number>[] = []): RunRow {
    const runId = row.run_id;
    const where = `the runs row of '${runId}'`;
    // fromEntries, not assignment: a key named __proto__ must stay an own key, as JSON.parse made it.
    const bindings = Object.fromEntries(bindingRows.map((b) => [b.key, this.parseJson(b.value, `binding '${b.key}' of run '${runId}'`)]));
    const iterationCounts = Object.fromEntries(attemptRows.map((a) => [a.key, a.value]));
    return {
      runId,
      playbookName: row.playbook_name,
      playbookHash: row.playbook_hash,
      status: row.status as RunStatus,
      currentNode: row.current_node,
      activeNodes: this.parseJson(row.active_nodes, where) as RunRow['activeNodes'],
      bindings,
      iterationCounts,
      errorContext: row.error_context === null ? null : (this.parseJson(row.error_context, where) as RunRow['errorContext']),
      error: row.error === null ? null : (this.parseJson(row.error, where) as RunRow['error']),
      startedAt: row.started_at,
      updatedAt: row.updated_at,
      completedAt: row.completed_at,
      version: row.version,
      epicId: row.epic_id,
      sessionId: row.session_id,
      parentRunId: row.parent_run_id,
      wakeAt: row.wake_at,
    };
  }

  private parseJson(text: string, where: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new CantbookError(E_LOG_CORRUPT, `database '${this.info.database}' on ${hostText(this.info)} holds invalid JSON in ${where}`, { host: this.info.host, database: this.info.database }, { cause: error });
    }
  }
}

const statementNames = new Map<string, string>();

/**
 * A query as a named prepared statement: each connection parses and plans its
 * text once, then only binds and runs it (the name is a digest of the text,
 * so one name never stands for two texts). The hot path's queries are the
 * same few texts over and over.
 */
function named(text: string, values: unknown[]): QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `cantbook_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/** The NOTIFY channel of a schema's store (a channel name is at most 63 bytes). */
function wakeChannel(schema: string | undefined): string {
  if (schema === undefined) return 'cantbook_wake';
  const name = `cantbook_wake_${schema}`;
  return name.length <= 63 ? name : `cantbook_wake_${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}



function toLease(row: LeaseDbRow): Lease {
  return { runId: row.run_id, owner: row.owner, token: row.token, expiresAt: row.expires_at };
}







/** Key rows of several runs, by run, each run's rows in the order read. */


/** An approval row as cantbook_append's json_to_recordset reads it (column names). */
function approvalRecord(approval: ApprovalRow): Record<string, SqlValue> {
  const values = approvalParams(approval, (resumed) => resumed);
  return Object.fromEntries(APPROVAL_COLUMNS.split(', ').map((column, index) => [column, values[index] as SqlValue]));
}

/** An attempt log as cantbook_append's json_to_recordset reads it (column names). */
function attemptLogRecord(log: AttemptLog): Record<string, SqlValue> {
  return { node_id: log.nodeId, attempt: log.attempt, text: log.text, dropped_bytes: log.droppedBytes };
}

/** A run's keys to write, by kind. */
interface KeyWrites {
  keys: string[];
  values: string[];
  nodes: string[];
  counts: number[];
  removedKeys: string[];
  removedNodes: string[];
}

/** Every key of `run`, in the run's order (an append that does not say what changed, or a rebuild). */
function allKeys(run: RunRow): KeyWrites {
  const writes: KeyWrites = { keys: [], values: [], nodes: Object.keys(run.iterationCounts), counts: [], removedKeys: [], removedNodes: [] };
  for (const key of Object.keys(run.bindings)) {
    const value = bindingValue(run.bindings, key);
    if (value === undefined) continue;
    writes.keys.push(key);
    writes.values.push(value);
  }
  writes.counts = writes.nodes.map((node) => run.iterationCounts[node] as number);
  return writes;
}

/** The keys an append changed, with their values in `run`; a key `run` no longer has is removed. */
function changedKeys(run: RunRow, changed: RunChanges): KeyWrites {
  const writes: KeyWrites = { keys: [], values: [], nodes: [], counts: [], removedKeys: [], removedNodes: [] };
  for (const key of changed.bindings) {
    const value = bindingValue(run.bindings, key);
    if (value === undefined) writes.removedKeys.push(key);
    else {
      writes.keys.push(key);
      writes.values.push(value);
    }
  }
  for (const node of changed.iterationCounts) {
    const attempts = Object.hasOwn(run.iterationCounts, node) ? run.iterationCounts[node] : undefined;
    if (attempts === undefined) writes.removedNodes.push(node);
    else {
      writes.nodes.push(node);
      writes.counts.push(attempts);
    }
  }
  return writes;
}

function toApproval(row: ApprovalDbRow): ApprovalRow {
  return {
    approvalId: row.approval_id,
    runId: row.run_id,
    nodeId: row.node_id,
    status: row.status as ApprovalStatus,
    prompt: row.prompt,
    tokenHash: row.token_hash,
    contextDigest: row.context_digest,
    expiresAt: row.expires_at,
    requestedAt: row.requested_at,
    decidedAt: row.decided_at,
    approver: row.approver,
    reason: row.reason,
    resumed: row.resumed,
  };
}
