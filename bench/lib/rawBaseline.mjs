// The "raw SQLite limit": the writes a run must make at minimum, done with bare
// better-sqlite3 and nothing else (no hashing, no JSON, no state machine).
//
// How it stays honest: we record what the real store was asked to write for one
// run (each append = one commit: its events and its runs row), and the baseline
// replays exactly those rows — same tables and indexes (the schema is created by
// openSqliteStore itself), same number of commits, same events with data of the
// same bytes, one runs upsert per commit, the status column touched only when it
// changes (as the store does), and (schema 3) one run_bindings / run_attempts
// upsert per key the request says it changed (`request.changed`; all of them when
// it says nothing, as the store then does) — under a new run id each time. Every string is
// prepared up front, so the timed loop is only statement execution and commits.
import { Database } from './sqliteFiles.mjs';

/**
 * Wraps `store.append` to record every commit the runtime makes. Returns the
 * wrapped store and the list the commits are pushed to.
 */
export function recordingStore(store) {
  const commits = [];
  const wrapped = Object.create(store);
  wrapped.append = async (request) => {
    const stored = await store.append(request);
    commits.push({ request, stored });
    return stored;
  };
  return { store: wrapped, commits };
}

/** Turns recorded commits into a script of SQL parameters (the run id is filled in per run). */
export function commitScript(commits) {
  let lastStatus = null;
  return commits.map(({ request, stored }) => {
    const run = request.run;
    const events = stored.map((event) => ({ seq: event.seq, type: event.type, data: JSON.stringify(event.data), at: event.at, hash: event.hash }));
    const playbooks = stored
      .filter((event) => event.type === 'RunStarted')
      .map((event) => [event.data.sourceHash, event.data.playbookName, event.data.source, event.at]);
    const runParams = [
      run.runId,
      run.playbookName,
      run.playbookHash,
      run.status,
      run.currentNode ?? null,
      run.errorContext == null ? null : JSON.stringify(run.errorContext),
      run.startedAt,
      run.updatedAt,
      run.completedAt ?? null,
      run.version,
      run.epicId ?? null,
      run.sessionId ?? null,
      run.error == null ? null : JSON.stringify(run.error),
      JSON.stringify(run.activeNodes),
    ];
    const changedKeys = request.changed?.bindings ?? Object.keys(run.bindings);
    const changedNodes = request.changed?.iterationCounts ?? Object.keys(run.iterationCounts);
    const bindings = changedKeys.filter((key) => Object.hasOwn(run.bindings, key)).map((key) => [key, JSON.stringify(run.bindings[key])]);
    const attempts = changedNodes.filter((nodeId) => Object.hasOwn(run.iterationCounts, nodeId)).map((nodeId) => [nodeId, run.iterationCounts[nodeId]]);
    const statusChanged = lastStatus !== null && lastStatus !== run.status;
    lastStatus = run.status;
    return { events, playbooks, runParams, bindings, attempts, statusChanged, status: run.status };
  });
}

/** Bytes of row payload a script writes per run (event data + runs rows + changed keys), for the report. */
export function scriptPayloadBytes(script) {
  let bytes = 0;
  for (const commit of script) {
    for (const e of commit.events) bytes += Buffer.byteLength(e.data) + e.type.length + e.at.length + e.hash.length + 36;
    for (const value of commit.runParams) if (typeof value === 'string') bytes += Buffer.byteLength(value);
    for (const [key, value] of commit.bindings) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
    for (const [nodeId] of commit.attempts) bytes += Buffer.byteLength(nodeId) + 8;
  }
  return bytes;
}

/**
 * Opens the baseline's connection on a file whose schema openSqliteStore created,
 * with the store's pragmas, and returns `runOnce(runId)`.
 */
export function openBaseline(path, synchronous) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('foreign_keys = ON');
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const insertEvent = db.prepare('INSERT INTO events (run_id, seq, type, data, at, hash) VALUES (?, ?, ?, ?, ?, ?)');
  const insertPlaybook = db.prepare('INSERT OR IGNORE INTO playbooks (source_hash, name, source, first_seen_at) VALUES (?, ?, ?, ?)');
  const upsertRun = db.prepare(
    `INSERT INTO runs (run_id, playbook_name, playbook_hash, status, current_node, error_context,
       started_at, updated_at, completed_at, version, epic_id, session_id, error, active_nodes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id) DO UPDATE SET
       playbook_name = excluded.playbook_name, playbook_hash = excluded.playbook_hash,
       current_node = excluded.current_node, error_context = excluded.error_context, started_at = excluded.started_at,
       updated_at = excluded.updated_at, completed_at = excluded.completed_at, version = excluded.version,
       epic_id = excluded.epic_id, session_id = excluded.session_id, error = excluded.error, active_nodes = excluded.active_nodes`,
  );
  const upsertBinding = db.prepare(
    'INSERT INTO run_bindings (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value',
  );
  const upsertAttempts = db.prepare(
    'INSERT INTO run_attempts (run_id, node_id, attempts) VALUES (?, ?, ?) ON CONFLICT (run_id, node_id) DO UPDATE SET attempts = excluded.attempts WHERE attempts <> excluded.attempts',
  );
  const updateStatus = db.prepare('UPDATE runs SET status = ? WHERE run_id = ?');
  return {
    db,
    runOnce(script, runId) {
      for (const step of script) {
        begin.run();
        for (const e of step.events) insertEvent.run(runId, e.seq, e.type, e.data, e.at, e.hash);
        for (const p of step.playbooks) insertPlaybook.run(p);
        step.runParams[0] = runId;
        upsertRun.run(step.runParams);
        if (step.statusChanged) updateStatus.run(step.status, runId);
        for (const [key, value] of step.bindings) upsertBinding.run(runId, key, value);
        for (const [nodeId, attempts] of step.attempts) upsertAttempts.run(runId, nodeId, attempts);
        commit.run();
      }
    },
    close() {
      db.close();
    },
  };
}
