// Bench 7: workers. Runs/s of 1, 2 and 4 worker processes draining one SQLite file, with a
// dispatcher that awaits 5 ms per node, against one process running executePlaybook with
// the same number of runs in flight; and what a worker costs while it waits (it must not
// busy-poll).
//
// Workload: a 5-node linear playbook of agentic nodes; the dispatcher awaits 5 ms per node.
//
// Processes: five long-lived children of this bench (bench/lib/workerProcess.mjs), one
// inline and four workers, started once and warmed up on private files, then reused for
// every sample, as deployed workers are long-lived. Their start-up is measured apart.
//
// Subject: N runs are recorded with startRun on a fresh file (untimed; its rate is reported
// apart), then K worker processes (K = 1, 2, 4) each create a worker with concurrency 4 (the
// default) on that file and `start()` it. So adding a process adds four runs in flight: 4,
// 8, 16 in all (concurrency per process fixed, not the total). Timed from telling every
// process to go until the processes have reported the end of all N drives. N is the same
// number of runs per slot in flight (RUNS_PER_SLOT x 4K), so every sample takes about as long.
//
// Baseline, one per K: the inline process running executePlaybook for the same N runs with
// the same total in flight (4K lanes, each running one run after another) on a fresh file.
// Baseline and subject run back to back, which goes first alternating round by round; the
// table gives medians, each ratio is the ratio of medians, and each round's own ratio is
// kept. Also measured: a sequential executePlaybook loop (one lane).
//
// Control, for the most processes only: the same runs split into one file per process (no
// write lock shared), right after the pair.
//
// Every sample is checked and the section fails otherwise: every run completed (the store's
// runs rows and the drives the processes reported) and each run was claimed exactly once.
// The events stored per run are reported for both sides.
//
// Waiting: one worker process on an empty file for IDLE_MS (idle), then on a file of 1,000
// runnable runs with dispatches that outlast the window (saturated: its four slots busy,
// runs waiting for a slot). For each, its CPU time (process.cpuUsage in the child, and
// utime+stime from /proc/<pid>/stat seen from here) as a share of one core, and its store
// calls: it should sleep up to pollMs = 1000 ms between looks for work.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchDir, emit, linearPlaybook, loadCantbook, log, median, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir } from './lib/common.mjs';
import { countDrives, forkChild, withinStall } from './lib/children.mjs';
import { Database } from './lib/sqliteFiles.mjs';

const NODES = 5; // as bench/lib/workerProcess.mjs
const DISPATCH_MS = 5;
const PER_WORKER = 4;
const WORKERS = [1, 2, 4];
const args = parseArgs();
const full = args.mode === 'full';
const RUNS_PER_SLOT = full ? 32 : 10;
const SEQUENTIAL_RUNS = full ? 32 : 10;
const ROUNDS = full ? 4 : 2;
const IDLE_MS = full ? 5000 : 2000;
const SATURATED_BACKLOG = 1000;
const SATURATED_MS = full ? 2000 : 1000;
const STALL_MS = 20_000;
const POLL_MS = 1000; // createWorker's default
const CPU_PERCENT_AT_MOST = 1;

const cb = await loadCantbook();
const source = linearPlaybook(NODES, 'bench-workers');
const { definition } = cb.parsePlaybook(source);
const childPath = join(benchDir, 'lib', 'workerProcess.mjs');
const dir = scratchDir('workers');
let fileNo = 0;
const freshPath = () => join(dir, `f${++fileNo}.db`);

/** Forks one long-lived child; `ready` resolves once it has loaded the library and warmed up. */
const spawnChild = (mode) => forkChild(childPath, mode, { args: [join(dir, 'warm')] });

function storedEvents(path) {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) AS n FROM events').get().n;
  } finally {
    db.close();
  }
}

/** Every run of the file completed: the store's own rows say so. Returns the events stored. */
async function checkCompleted(path, runs, what) {
  const store = cb.openSqliteStore(path);
  try {
    const all = await store.listRuns();
    const byStatus = {};
    for (const run of all) byStatus[run.status] = (byStatus[run.status] ?? 0) + 1;
    if (all.length !== runs || byStatus.completed !== runs) throw new Error(`${what}: expected ${runs} completed runs in ${path}, found ${JSON.stringify(byStatus)}`);
  } finally {
    await store.close();
  }
  return storedEvents(path);
}

const sum = (list, f) => list.reduce((n, x) => n + f(x), 0);
function txOf(reports) {
  const tx = {};
  for (const r of reports) {
    for (const [name, t] of Object.entries(r.tx)) {
      const acc = (tx[name] ??= { count: 0, ms: 0, maxMs: 0, over5Ms: 0 });
      acc.count += t.count;
      acc.ms += t.ms;
      acc.maxMs = Math.max(acc.maxMs, t.maxMs);
      acc.over5Ms += t.over5Ms;
    }
  }
  return tx;
}
function callsOf(reports) {
  const calls = {};
  for (const r of reports) {
    for (const [name, c] of Object.entries(r.calls)) {
      const acc = (calls[name] ??= { count: 0, ms: 0 });
      acc.count += c.count;
      acc.ms += c.ms;
    }
  }
  return calls;
}
// The store's internal transaction functions, timed in the child; if they are renamed the
// figures would read 0, so say so loudly instead.
const writeTx = (tx) => {
  if (tx.batchTx === undefined && tx.leaseTx === undefined) throw new Error('workers: the store no longer has batchTx/leaseTx to time (bench/lib/workerProcess.mjs instrumented()); update the bench');
  return writeTxOf(tx);
};
const writeTxOf = (tx) => ({ count: (tx.batchTx?.count ?? 0) + (tx.leaseTx?.count ?? 0), ms: (tx.batchTx?.ms ?? 0) + (tx.leaseTx?.ms ?? 0), maxMs: Math.max(tx.batchTx?.maxMs ?? 0, tx.leaseTx?.maxMs ?? 0), over5Ms: (tx.batchTx?.over5Ms ?? 0) + (tx.leaseTx?.over5Ms ?? 0) });

async function inlineSample(lanes, runs) {
  const path = freshPath();
  cb.openSqliteStore(path).close(); // the schema, so the child only opens the file
  inlineChild.send({ type: 'open', db: path, concurrency: lanes, runs });
  await inlineChild.next('opened');
  const done = inlineChild.next('done');
  const start = nowMs();
  inlineChild.send({ type: 'go' });
  await withinStall(done, () => 0, `inline, ${lanes} lanes`, STALL_MS);
  const ms = nowMs() - start;
  const report = await inlineChild.next('report');
  const events = await checkCompleted(path, runs, `inline, ${lanes} lanes`);
  if (report.statuses.completed !== runs) throw new Error(`inline, ${lanes} lanes: runs ended ${JSON.stringify(report.statuses)}`);
  return { ms, runs, runsPerSec: (runs / ms) * 1000, cpuMs: report.cpuMs, events, commits: report.commits, tx: writeTx(report.tx), calls: report.calls };
}

/**
 * K worker processes drain `runs` runs from one file; with `ownFiles`, each process drains
 * its share from a file of its own instead (the control: no write lock shared).
 */
async function workersSample(k, runs, { ownFiles = false } = {}) {
  const paths = Array.from({ length: ownFiles ? k : 1 }, freshPath);
  const recordStart = nowMs();
  for (const path of paths) {
    const store = cb.openSqliteStore(path);
    for (let i = 0; i < runs / paths.length; i++) await cb.startRun({ store, playbook: definition, source, initialContext: {}, runId: runIdOf(`k${k}`, i) });
    await store.close();
  }
  const recordMs = nowMs() - recordStart;
  const used = workerChildren.slice(0, k);
  used.forEach((w, i) => w.send({ type: 'open', db: paths[i % paths.length], concurrency: PER_WORKER, runs }));
  await Promise.all(used.map((w) => w.next('opened')));
  const drives = countDrives(runs);
  const reportsArriving = used.map((w) => w.next('report', drives.onDriven));
  const start = nowMs();
  for (const w of used) w.send({ type: 'go' });
  const end = await withinStall(drives.done, drives.driven, `${k} worker process${k > 1 ? 'es' : ''}`, STALL_MS);
  const ms = end - start;
  for (const w of used) w.send({ type: 'stop' });
  const reports = await Promise.all(reportsArriving);
  let events = 0;
  for (const path of paths) events += await checkCompleted(path, runs / paths.length, `${k} workers${ownFiles ? ', own files' : ''}`);
  const claimed = reports.map((r) => r.worker.claimed);
  if (drives.statuses.completed !== runs || sum(claimed, (x) => x) !== runs) {
    throw new Error(`${k} workers: drives ended ${JSON.stringify(drives.statuses)}, runs claimed per process ${claimed.join(', ')} (expected ${runs} completed, each claimed once)`);
  }
  const errors = {};
  for (const r of reports) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  return {
    ms,
    runs,
    runsPerSec: (runs / ms) * 1000,
    cpuMs: sum(reports, (r) => r.cpuMs),
    events,
    commits: sum(reports, (r) => r.commits),
    claimedPerProcess: claimed,
    stopped: sum(reports, (r) => r.worker.stopped),
    errors,
    calls: callsOf(reports),
    tx: writeTx(txOf(reports)),
    recordMs,
  };
}

/** CPU time (utime + stime) of a process from /proc, in ms; null off Linux. */
function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5) (utime, stime), in clock ticks; the slice starts at field 3. USER_HZ is 100 on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * One worker process (already warm, as a deployed one would be) started on a file with
 * `backlog` runnable runs and left alone for `windowMs`. With no backlog it is idle; with
 * one, its dispatches outlast the window, so it is saturated (every slot busy) while runs
 * wait for a slot.
 */
async function quietSample(backlog, windowMs) {
  const path = freshPath();
  const store = cb.openSqliteStore(path);
  for (let i = 0; i < backlog; i++) await cb.startRun({ store, playbook: definition, source, initialContext: {}, runId: runIdOf('q', i) });
  await store.close();
  const w = workerChildren[0];
  // Dispatches that outlast the window; the stop aborts them (graceMs 0), which the dispatcher honours.
  w.send({ type: 'open', db: path, concurrency: PER_WORKER, runs: 0, dispatchMs: 600_000, graceMs: 0 });
  await w.next('opened');
  const report = w.next('report');
  await sleep(200); // let the last sample's garbage collection settle
  const proc0 = procCpuMs(w.child.pid);
  const start = nowMs();
  w.send({ type: 'go' });
  await sleep(windowMs);
  const proc1 = procCpuMs(w.child.pid);
  const procWindowMs = nowMs() - start;
  w.send({ type: 'stop' });
  const r = await report;
  const calls = Object.fromEntries(Object.entries(r.calls).map(([name, c]) => [name, { calls: c.count, ms: round(c.ms, 2) }]));
  return {
    backlog,
    windowMs: round(r.ms),
    cpuMs: round(r.cpuMs, 2),
    cpuPercentOfCore: round((r.cpuMs / r.ms) * 100, 3),
    procCpuMs: proc0 === null || proc1 === null ? null : proc1 - proc0,
    procCpuPercentOfCore: proc0 === null || proc1 === null ? null : round(((proc1 - proc0) / procWindowMs) * 100, 2),
    claimed: r.worker.claimed,
    calls,
    // How often it looked at the store for work: claimRuns when it has room, nextWakeAt before each sleep.
    looksPerSec: round(((r.calls.nextWakeAt?.count ?? 0) / r.ms) * 1000, 1),
    msPerLook: r.calls.nextWakeAt ? round(r.ms / r.calls.nextWakeAt.count, 2) : null,
    nextWakeAtMsPerCall: r.calls.nextWakeAt ? round(r.calls.nextWakeAt.ms / r.calls.nextWakeAt.count, 3) : null,
  };
}

const spawnStart = nowMs();
const inlineChild = spawnChild('inline');
const workerChildren = Array.from({ length: Math.max(...WORKERS) }, () => spawnChild('worker'));
const readies = await Promise.all([inlineChild, ...workerChildren].map((c) => c.ready));
log(`workers: ${readies.length} child processes ready in ${round(nowMs() - spawnStart)} ms (start-up ${readies.map((r) => round(r.startupMs)).join('/')} ms, warm-up ${readies.map((r) => round(r.warmUpMs)).join('/')} ms)`);
// Starting alone, without the others competing for the two cores.
const lone = spawnChild('worker');
const loneReady = await lone.ready;
lone.stop();

// Warm-up of the OS caches and the bench's own code paths, not counted.
await inlineSample(PER_WORKER, PER_WORKER * 2);
await workersSample(Math.max(...WORKERS), PER_WORKER * 2 * Math.max(...WORKERS));

const MOST = Math.max(...WORKERS);
const samples = Object.fromEntries(WORKERS.map((k) => [k, { inline: [], workers: [], ownFiles: [] }]));
const sequential = [];
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? WORKERS : [...WORKERS].reverse();
  for (const k of order) {
    const lanes = k * PER_WORKER;
    const runs = RUNS_PER_SLOT * lanes;
    // Baseline and subject back to back; which goes first alternates round by round.
    let inline;
    let workers;
    if (r % 2 === 0) {
      inline = await inlineSample(lanes, runs);
      workers = await workersSample(k, runs);
    } else {
      workers = await workersSample(k, runs);
      inline = await inlineSample(lanes, runs);
    }
    if (inline.events !== workers.events) log(`workers: note: ${runs} runs stored ${inline.events} events inline and ${workers.events} through workers`);
    samples[k].inline.push(inline);
    samples[k].workers.push(workers);
    log(`workers round ${r + 1}/${ROUNDS}: ${k} process${k > 1 ? 'es' : ''} x ${PER_WORKER}: ${round(workers.runsPerSec)} runs/s (${runs} runs, ${round(workers.ms)} ms, claimed ${workers.claimedPerProcess.join('/')}, longest write transaction ${round(workers.tx.maxMs, 1)} ms); inline ${lanes} lanes: ${round(inline.runsPerSec)} runs/s (${round(inline.ms)} ms)`);
    // The control for the most processes: the same work, each process on a file of its own.
    if (k === MOST) {
      const control = await workersSample(k, runs, { ownFiles: true });
      samples[k].ownFiles.push(control);
      log(`workers round ${r + 1}/${ROUNDS}: ${k} processes x ${PER_WORKER}, each on its own file: ${round(control.runsPerSec)} runs/s (longest write transaction ${round(control.tx.maxMs, 1)} ms)`);
    }
  }
  sequential.push(await inlineSample(1, SEQUENTIAL_RUNS));
  log(`workers round ${r + 1}/${ROUNDS}: sequential executePlaybook loop ${round(sequential.at(-1).runsPerSec, 1)} runs/s`);
}
const idle = await quietSample(0, IDLE_MS);
log(`workers: idle worker ${idle.cpuMs} ms CPU in ${idle.windowMs} ms (${idle.cpuPercentOfCore} % of a core), looked for work ${idle.calls.claimRuns?.calls ?? 0} times`);
const saturated = await quietSample(SATURATED_BACKLOG, SATURATED_MS);
log(`workers: saturated worker (${PER_WORKER} dispatches in flight, ${SATURATED_BACKLOG - PER_WORKER} runs waiting) ${saturated.cpuMs} ms CPU in ${saturated.windowMs} ms (${saturated.cpuPercentOfCore} % of a core), nextWakeAt ${saturated.calls.nextWakeAt?.calls ?? 0} times (${saturated.nextWakeAtMsPerCall} ms each)`);
for (const c of [inlineChild, ...workerChildren]) c.stop();
removeDir(dir);

/**
 * "It must not busy-poll", as a check: in the window it slept between looks for work
 * (one nextWakeAt per sleep) at most once per pollMs, plus the look at the start (no drive
 * ended in either window, so nothing else woke it), and used under 1 % of a core.
 */
function noBusyPoll(q) {
  const sleepsAtMost = Math.floor(q.windowMs / POLL_MS) + 1;
  const sleeps = q.calls.nextWakeAt?.calls ?? 0;
  return { sleepsAtMost, sleeps, cpuPercentAtMost: CPU_PERCENT_AT_MOST, met: sleeps <= sleepsAtMost && q.cpuPercentOfCore <= CPU_PERCENT_AT_MOST };
}

const med = (list, f) => median(list.map(f));
const perRun = (calls, runs) => Object.fromEntries(Object.entries(calls).map(([name, c]) => [name, { calls: round(c.count / runs, 2), ms: round(c.ms / runs, 3) }]));
/** Medians (and the per-sample detail worth keeping) of one configuration's worker samples. */
function workersSummary(list, runs) {
  return {
    runsPerSec: round(med(list, (s) => s.runsPerSec), 1),
    ms: round(med(list, (s) => s.ms), 1),
    samplesRunsPerSec: list.map((s) => round(s.runsPerSec, 1)),
    cpuMsPerRun: round(med(list, (s) => s.cpuMs / runs), 3),
    commitsPerRun: round(med(list, (s) => s.commits / runs), 2),
    eventsPerRun: round(list.at(-1).events / runs, 2),
    claimedPerProcess: list.map((s) => s.claimedPerProcess),
    storeCallsPerRun: perRun(list.at(-1).calls, runs),
    writeTx: {
      perRun: round(med(list, (s) => s.tx.count / runs), 2),
      msPerRun: round(med(list, (s) => s.tx.ms / runs), 3),
      maxMs: round(Math.max(...list.map((s) => s.tx.maxMs)), 1),
      over5Ms: list.map((s) => s.tx.over5Ms),
    },
    stopped: sum(list, (s) => s.stopped),
    errors: list.reduce((acc, s) => {
      for (const [code, n] of Object.entries(s.errors)) acc[code] = (acc[code] ?? 0) + n;
      return acc;
    }, {}),
    startRunPerSec: round(med(list, (s) => (runs / s.recordMs) * 1000)),
  };
}

const rows = WORKERS.map((k) => {
  const { inline, workers, ownFiles } = samples[k];
  const lanes = k * PER_WORKER;
  const runs = RUNS_PER_SLOT * lanes;
  return {
    processes: k,
    inFlight: lanes,
    runs,
    workers: workersSummary(workers, runs),
    ...(ownFiles.length === 0 ? {} : { ownFiles: { ...workersSummary(ownFiles, runs), ratio: round(med(ownFiles, (s) => s.runsPerSec) / med(inline, (s) => s.runsPerSec), 2) } }),
    inline: {
      runsPerSec: round(med(inline, (s) => s.runsPerSec), 1),
      ms: round(med(inline, (s) => s.ms), 1),
      samplesRunsPerSec: inline.map((s) => round(s.runsPerSec, 1)),
      cpuMsPerRun: round(med(inline, (s) => s.cpuMs / runs), 3),
      commitsPerRun: round(med(inline, (s) => s.commits / runs), 2),
      eventsPerRun: round(inline.at(-1).events / runs, 2),
      storeCallsPerRun: perRun(inline.at(-1).calls, runs),
      writeTx: {
        perRun: round(med(inline, (s) => s.tx.count / runs), 2),
        msPerRun: round(med(inline, (s) => s.tx.ms / runs), 3),
        maxMs: round(Math.max(...inline.map((s) => s.tx.maxMs)), 1),
      },
    },
    ratio: round(med(workers, (s) => s.runsPerSec) / med(inline, (s) => s.runsPerSec), 2),
    roundRatios: workers.map((s, i) => round(s.runsPerSec / inline[i].runsPerSec, 2)),
  };
});
const one = rows.find((x) => x.processes === 1);
const scaling = Object.fromEntries(rows.filter((x) => x.processes > 1).map((x) => [`${x.processes}vs1`, round(x.workers.runsPerSec / one.workers.runsPerSec, 2)]));
const inlineScaling = Object.fromEntries(rows.filter((x) => x.processes > 1).map((x) => [`${x.inFlight}vs${one.inFlight}`, round(x.inline.runsPerSec / one.inline.runsPerSec, 2)]));

emit(args, {
  section: 'workers',
  nodes: NODES,
  dispatchMs: DISPATCH_MS,
  perWorker: PER_WORKER,
  runsPerSlot: RUNS_PER_SLOT,
  rounds: ROUNDS,
  rows,
  scaling,
  inlineScaling,
  bounds: {
    // A run waits NODES x DISPATCH_MS at least; with L runs in flight and no other cost, runs/s is at most L / that.
    waitPerRunMs: NODES * DISPATCH_MS,
    runsPerSecAtMost: Object.fromEntries(rows.map((x) => [x.inFlight, round((x.inFlight / (NODES * DISPATCH_MS)) * 1000)])),
  },
  sequential: {
    runs: SEQUENTIAL_RUNS,
    runsPerSec: round(med(sequential, (s) => s.runsPerSec), 1),
    msPerRun: round(med(sequential, (s) => s.ms / s.runs), 2),
    samplesRunsPerSec: sequential.map((s) => round(s.runsPerSec, 1)),
  },
  startup: {
    // A worker process alone: from spawn until the library is loaded (Node + imports), and until it is warm.
    aloneMs: round(loneReady.startupMs),
    aloneWarmUpMs: round(loneReady.warmUpMs),
    // The bench's five children (one inline, four workers) started at once on this machine's cores.
    togetherMs: round(median(readies.map((x) => x.startupMs))),
  },
  pollMs: POLL_MS,
  idle,
  saturated,
  target: { idle: noBusyPoll(idle), saturated: noBusyPoll(saturated) },
});
