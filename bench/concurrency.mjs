// Bench 5: concurrency (issue 10). 1,000 runs of the 10-node linear playbook in flight at
// once in one process, sharing one store, with a dispatcher that awaits 5 ms per node (an
// agent call that is all waiting), against raw SQLite committing the same rows.
//
// Runtime side: all runs started together (Promise.all) on a fresh file; steps/s is the
// node steps of all runs divided by the wall time from start to the last run's end. The
// store groups the appends of sessions in flight together into one transaction per turn of
// the event loop; `store.stats` counts appends and the transactions (commits) they took.
//
// Raw side, the baseline of the ratio: bare better-sqlite3 on a fresh file (schema made by
// openSqliteStore) commits exactly what the store was asked to write in that runtime
// round — every append's events (data, timestamps, hashes of the same bytes), the pinned
// playbook row, the runs projection upsert and its status update — grouped into the same
// transactions the store committed (so the same batch sizes), in the same order. All its
// parameters are prepared before timing, so it times only statement execution and commits:
// no waiting, no state machine, no JSON, no hashing. Its steps/s is the same node steps
// divided by its time. Target: runtime steps/s >= 0.6 x raw steps/s.
//
// Rounds alternate the two sides (raw first in odd rounds, replaying the previous round's
// recording); medians are reported. Also recorded: the peak number of dispatches awaiting
// at the same instant (all runs must be in flight at once) and the process CPU time during
// the runtime phase (when it is close to the wall time, the CPU work per step bounds
// throughput, not the 5 ms waits).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { emit, linearPlaybook, loadCantbook, log, median, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir } from './lib/common.mjs';
import { Database, checkpointedSize } from './lib/sqliteFiles.mjs';

const NODES = 10;
const DISPATCH_MS = 5;
const RATIO_AT_LEAST = 0.6;
const args = parseArgs();
const full = args.mode === 'full';
const IN_FLIGHT = 1000;
const ROUNDS = full ? 5 : 3;

const cb = await loadCantbook();
const source = linearPlaybook(NODES);
const { definition } = cb.parsePlaybook(source);
const dir = scratchDir('concurrency');
let fileNo = 0;
const freshPath = () => join(dir, `f${++fileNo}.db`);

let inFlight = 0;
let peak = 0;
const dispatcher = {
  async dispatch(request) {
    inFlight++;
    if (inFlight > peak) peak = inFlight;
    try {
      await sleep(DISPATCH_MS);
      return { status: 'success', output: { [request.nodeId]: 'done' } };
    } finally {
      inFlight--;
    }
  },
};

/**
 * The store with `append` wrapped to record each request, the events it stored and the
 * transaction it was committed in (`stats.commits` after the append resolved: the store
 * resolves a batch's appends together, right after committing it).
 */
function recording(store) {
  const appends = [];
  const wrapped = Object.create(store);
  wrapped.append = async (request) => {
    const stored = await store.append(request);
    appends.push({ request, stored, commit: store.stats.commits });
    return stored;
  };
  return { store: wrapped, appends };
}

async function measureRuntime(prefix) {
  const path = freshPath();
  const store = cb.openSqliteStore(path);
  const rec = recording(store);
  peak = 0;
  const stats0 = { ...store.stats };
  const cpu = process.cpuUsage();
  const start = nowMs();
  const results = await Promise.all(
    Array.from({ length: IN_FLIGHT }, (_, i) => cb.executePlaybook({ store: rec.store, playbook: definition, source, initialContext: {}, dispatcher, runId: runIdOf(prefix, i) })),
  );
  const ms = nowMs() - start;
  const used = process.cpuUsage(cpu);
  const failed = results.filter((r) => r.terminalStatus !== 'completed').length;
  if (failed > 0) throw new Error(`${failed} concurrent runs did not complete`);
  const appends = store.stats.appends - stats0.appends;
  const commits = store.stats.commits - stats0.commits;
  await store.close(); // the original: the wrapper must not shadow the store's own state
  const grown = checkpointedSize(path).bytes;
  return { ms, cpuMs: (used.user + used.system) / 1000, peak, appends, commits, events: storedEvents(path), grownBytes: grown, script: scriptOf(rec.appends) };
}

function storedEvents(path) {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) AS n FROM events').get().n;
  } finally {
    db.close();
  }
}

const camel = (column) => column.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const sqlValue = (v) => (v === undefined || v === null ? null : typeof v === 'object' ? JSON.stringify(v) : typeof v === 'boolean' ? Number(v) : v);

/**
 * The recorded appends as SQL parameters, grouped by the transaction that committed them.
 * The runs row is mapped column by column from the schema (camelCase field -> snake_case
 * column), so the baseline follows the store's schema as it changes.
 */
function scriptOf(appends) {
  const transactions = [];
  let current = null;
  const status = new Map();
  for (const { request, stored, commit } of appends) {
    if (current === null || current.commit !== commit) {
      current = { commit, appends: [] };
      transactions.push(current);
    }
    const run = request.run;
    const changed = status.get(request.runId) !== undefined && status.get(request.runId) !== run.status;
    status.set(request.runId, run.status);
    current.appends.push({
      events: stored.map((e) => [e.runId, e.seq, e.type, JSON.stringify(e.data), e.at, e.hash]),
      playbook: request.playbook === undefined ? null : [request.playbook.sourceHash, request.playbook.name, request.playbook.source, stored[0]?.at ?? ''],
      run,
      statusChanged: changed ? [run.status, request.runId] : null,
    });
  }
  return transactions;
}

function measureRaw(script) {
  const path = freshPath();
  cb.openSqliteStore(path).close(); // the store creates the exact schema
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('runs');
  const kept = columns.filter((c) => c !== 'status');
  const insertEvent = db.prepare('INSERT INTO events (run_id, seq, type, data, at, hash) VALUES (?, ?, ?, ?, ?, ?)');
  const insertPlaybook = db.prepare('INSERT OR IGNORE INTO playbooks (source_hash, name, source, first_seen_at) VALUES (?, ?, ?, ?)');
  // As the store does: status is written on insert and then only when it changes.
  const upsertRun = db.prepare(
    `INSERT INTO runs (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})
     ON CONFLICT (run_id) DO UPDATE SET ${kept.filter((c) => c !== 'run_id').map((c) => `${c} = excluded.${c}`).join(', ')}`,
  );
  const updateStatus = db.prepare('UPDATE runs SET status = ? WHERE run_id = ?');
  // Parameters prepared before timing. A column with no RunRow field stays NULL.
  const prepared = script.map((tx) => tx.appends.map((a) => ({ ...a, runParams: columns.map((c) => sqlValue(a.run[camel(c)])) })));
  const commitOne = db.transaction((appends) => {
    for (const a of appends) {
      for (const e of a.events) insertEvent.run(e);
      if (a.playbook !== null) insertPlaybook.run(a.playbook);
      upsertRun.run(a.runParams);
      if (a.statusChanged !== null) updateStatus.run(a.statusChanged);
    }
  });
  const start = nowMs();
  for (const appends of prepared) commitOne.immediate(appends);
  const ms = nowMs() - start;
  db.close();
  const grown = checkpointedSize(path).bytes;
  return { ms, commits: prepared.length, appends: prepared.reduce((n, a) => n + a.length, 0), events: storedEvents(path), grownBytes: grown };
}

// Warm-up (JIT, compile cache), not counted; its recording feeds the first raw sample.
let last = await measureRuntime('w');
const runtime = [];
const raw = [];
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which side goes first; the raw side always replays the newest recording.
  if (r % 2 === 1) raw.push({ ...measureRaw(last.script), from: last });
  const sample = await measureRuntime(`c${r}`);
  runtime.push(sample);
  last = sample;
  if (r % 2 === 0) raw.push({ ...measureRaw(sample.script), from: sample });
  const rt = runtime.at(-1);
  const rw = raw.at(-1);
  log(`concurrency round ${r + 1}/${ROUNDS}: ${IN_FLIGHT} runs in flight ${round(rt.ms)} ms (${rt.appends} appends in ${rt.commits} commits, peak ${rt.peak} dispatches), raw ${round(rw.ms)} ms for the same rows in ${rw.commits} commits`);
}
removeDir(dir);

const steps = IN_FLIGHT * NODES;
for (const [i, s] of raw.entries()) {
  if (s.events !== s.from.events || s.appends !== s.from.appends || s.commits !== s.from.commits) {
    throw new Error(`raw sample ${i} wrote ${s.events} events in ${s.appends} appends / ${s.commits} commits; the runtime recording had ${s.from.events} / ${s.from.appends} / ${s.from.commits}`);
  }
}
const runtimeMs = median(runtime.map((s) => s.ms));
const rawMs = median(raw.map((s) => s.ms));
const runtimeStepsPerSec = (steps / runtimeMs) * 1000;
const rawStepsPerSec = (steps / rawMs) * 1000;
const ratio = runtimeStepsPerSec / rawStepsPerSec;
const minPeak = Math.min(...runtime.map((s) => s.peak));
const appendsPerCommit = median(runtime.map((s) => s.appends / s.commits));
// Each round's own ratio, its two sides back to back.
const roundRatios = runtime.map((s, i) => round(raw[i].ms / s.ms, 2));

emit(args, {
  section: 'concurrency',
  nodes: NODES,
  inFlight: IN_FLIGHT,
  dispatchMs: DISPATCH_MS,
  rounds: ROUNDS,
  runtime: {
    ms: round(runtimeMs, 1),
    stepsPerSec: round(runtimeStepsPerSec),
    runsPerSec: round((IN_FLIGHT / runtimeMs) * 1000, 1),
    cpuMs: round(median(runtime.map((s) => s.cpuMs)), 1),
    peakInFlight: minPeak,
    appendsPerRound: runtime.at(-1).appends,
    commitsPerRound: round(median(runtime.map((s) => s.commits))),
    appendsPerCommit: round(appendsPerCommit, 1),
    eventsPerRound: runtime.at(-1).events,
    bytesPerStep: round(median(runtime.map((s) => s.grownBytes)) / steps),
    samplesMs: runtime.map((s) => round(s.ms, 1)),
  },
  raw: {
    ms: round(rawMs, 1),
    stepsPerSec: round(rawStepsPerSec),
    bytesPerStep: round(median(raw.map((s) => s.grownBytes)) / steps),
    samplesMs: raw.map((s) => round(s.ms, 1)),
  },
  bounds: { serialisedMs: IN_FLIGHT * NODES * DISPATCH_MS, fullyOverlappedWaitMs: NODES * DISPATCH_MS },
  ratio: round(ratio, 2),
  roundRatios,
  target: { ratioAtLeast: RATIO_AT_LEAST, peakInFlight: IN_FLIGHT, met: ratio >= RATIO_AT_LEAST && minPeak === IN_FLIGHT },
});
