// One child process of the PostgreSQL bench (bench/postgres.mjs), started with `fork` so it
// talks to the bench over the IPC channel and dies with it:
//
//   node bench/lib/postgresProcess.mjs worker <url> <prefix> [warm-up runs]   a cantbook worker (createWorker) per sample
//   node bench/lib/postgresProcess.mjs inline <url> <prefix> [warm-up runs]   cantbook's executePlaybook in lanes
//   node bench/lib/postgresProcess.mjs dbos   <url> <prefix> [warm-up runs]   DBOS Transact's workflow in lanes (the peer)
//
// A long-lived process, like a deployed service: it loads its engine, warms up (so every side
// starts its timed phase with a warm JIT and a warm connection pool), sends {type: 'ready'}
// and then serves samples, one after another:
//
//   bench -> {type: 'open', schema?, concurrency, runs}  worker: open that schema, create the worker
//   child -> {type: 'opened', idle}                      idle: its queries since its last report
//   bench -> {type: 'go'}                                the timed phase starts
//   child -> {type: 'driven', status}                    (worker) each drive that ended
//   child -> {type: 'done'}                              (inline, dbos) its runs ended
//   bench -> {type: 'stop'}                              (worker) stop and report
//   child -> {type: 'report', ...}                       what it measured, and its checks
//
// inline and dbos keep one store (one schema) open for their whole life, as a service keeps
// its pool: cantbook's on `<prefix>_inline`, DBOS's system tables in `<prefix>_dbos`. Both
// pools have node-postgres' and each engine's defaults (10 connections). Every query either
// engine sends is counted here, by wrapping node-postgres' Client.prototype.query in the copy
// of node-postgres that engine loads: each call is one round trip to the server.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { openInbox } from './childInbox.mjs';
import { benchDir, inLanes, linearPlaybook, loadCantbook, markDispatcher, nowMs, repoDir, runIdOf } from './common.mjs';

const NODES = 10;
const WARM_UP_LANES = 4;

const [mode, url, prefix, warmUpRuns = '24'] = process.argv.slice(2);
const WARM_UP_RUNS = Number(warmUpRuns);
if (!['worker', 'inline', 'dbos'].includes(mode) || url === undefined || prefix === undefined || !(WARM_UP_RUNS > 0)) {
  throw new Error(`postgresProcess.mjs: usage: worker|inline|dbos <url> <schema prefix> [warm-up runs] (got ${process.argv.slice(2).join(' ')})`);
}
if (process.send === undefined) throw new Error('postgresProcess.mjs is started by bench/postgres.mjs through fork (it needs the IPC channel)');
process.on('disconnect', () => process.exit(0));

/** Counts the queries (round trips) of one copy of node-postgres, and the transaction statements among them. */
function countQueries(pg) {
  const counts = { queries: 0, begin: 0, commit: 0, rollback: 0 };
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function countedQuery(config, ...rest) {
    counts.queries++;
    const text = typeof config === 'string' ? config : config?.text;
    if (typeof text === 'string') {
      const head = text.trimStart().slice(0, 8).toUpperCase();
      if (head.startsWith('BEGIN') || head.startsWith('START TR')) counts.begin++;
      else if (head.startsWith('COMMIT')) counts.commit++;
      else if (head.startsWith('ROLLBACK')) counts.rollback++;
    }
    return query.call(this, config, ...rest);
  };
  return counts;
}
const snapshot = (c) => ({ ...c });
const minus = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

const peerPath = join(benchDir, 'peers', 'dbos', 'linearWorkflow.mjs');
const engine = mode === 'dbos' ? await import(peerPath) : await loadCantbook();
const counts = countQueries(mode === 'dbos' ? engine.peerPg() : createRequire(join(repoDir, 'package.json'))('pg'));
const source = linearPlaybook(NODES, 'bench-postgres');
const definition = mode === 'dbos' ? undefined : engine.parsePlaybook(source).definition;
const startupMs = nowMs();

const next = openInbox(); // listening before it sends {type: 'ready'}, so no message of the bench is missed

/** `runs` runs of the playbook through executePlaybook, `lanes` at a time (each lane one run after another); how many ended in each status. */
const inlineRuns = (store, lanes, runs, idOf) => inLanes(lanes, runs, (i) => engine.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher: markDispatcher, runId: idOf(i) }));

/** Every run's log holds each node started exactly once and ends RunCompleted (cantbook's exactly-once, from its own log). */
async function checkLogs(store, ids) {
  const bad = [];
  for (const id of ids) {
    const events = await store.readRun(id);
    const started = events.filter((e) => e.type === 'NodeStarted').length;
    if (started !== NODES || events.at(-1)?.type !== 'RunCompleted') bad.push(`${id}: ${started} NodeStarted, last ${events.at(-1)?.type}`);
  }
  return bad;
}

let persistent; // inline: its store; dbos: its launched workflow
const warmStart = nowMs();
if (mode === 'inline') {
  persistent = await engine.openPostgresStore(url, { schema: `${prefix}_inline` });
  await inlineRuns(persistent, WARM_UP_LANES, WARM_UP_RUNS, (i) => runIdOf(`warm${process.pid}`, i));
} else if (mode === 'dbos') {
  persistent = await engine.openLinearWorkflow({ url, schema: `${prefix}_dbos`, nodes: NODES });
  await engine.runLanes(persistent, { runs: WARM_UP_RUNS, lanes: WARM_UP_LANES, idOf: (i) => runIdOf(`warm${process.pid}`, i) });
} else {
  const schema = `${prefix}_warm${process.pid}`;
  const store = await engine.openPostgresStore(url, { schema });
  for (let i = 0; i < WARM_UP_RUNS; i++) await engine.startRun({ store, playbook: definition, source, initialContext: {}, runId: runIdOf(`warm${process.pid}`, i) });
  await engine.createWorker({ store, dispatcher: markDispatcher, concurrency: WARM_UP_LANES }).runUntilIdle();
  await store.close();
}
process.send({ type: 'ready', startupMs, warmUpMs: nowMs() - warmStart });

let lastReport = { at: nowMs(), counts: snapshot(counts) };
for (let sample = 0; ; sample++) {
  const { schema, concurrency, runs } = await next('open');
  const idle = { ms: nowMs() - lastReport.at, ...minus(counts, lastReport.counts) };
  const errors = {};
  let store;
  let worker;
  if (mode === 'worker') {
    store = await engine.openPostgresStore(url, { schema });
    worker = engine.createWorker({
      store,
      dispatcher: markDispatcher,
      concurrency,
      onError: (error) => {
        const code = error?.code ?? error?.name ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
      },
      onDriven: (_runId, outcome) => process.send({ type: 'driven', status: outcome.kind === 'result' ? outcome.result.terminalStatus : 'handed back' }),
    });
  }
  process.send({ type: 'opened', idle });
  await next('go');
  const idOf = (i) => runIdOf(`${mode[0]}${process.pid}-${sample}`, i);
  const counts0 = snapshot(counts);
  const steps0 = mode === 'dbos' ? persistent.stepCalls() : 0;
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  let statuses;
  if (mode === 'worker') {
    worker.start();
    await next('stop');
  } else if (mode === 'inline') {
    statuses = await inlineRuns(persistent, concurrency, runs, idOf);
    process.send({ type: 'done' });
  } else {
    await engine.runLanes(persistent, { runs, lanes: concurrency, idOf });
    statuses = { completed: runs };
    process.send({ type: 'done' });
  }
  const ms = nowMs() - t0;
  const cpu = process.cpuUsage(cpu0);
  const queries = minus(counts, counts0);
  // The checks, after the timed phase.
  let bad = [];
  let stepCalls;
  if (mode === 'inline') bad = await checkLogs(persistent, Array.from({ length: runs }, (_, i) => idOf(i)));
  if (mode === 'dbos') {
    stepCalls = persistent.stepCalls() - steps0;
    for (let i = 0; i < runs; i++) {
      const recorded = await persistent.recordedSteps(idOf(i));
      if (recorded !== NODES) bad.push(`${idOf(i)}: ${recorded} steps recorded`);
    }
    if (stepCalls !== runs * NODES) bad.push(`step functions ran ${stepCalls} times for ${runs} workflows of ${NODES} steps`);
  }
  if (worker !== undefined) {
    await worker.stop({ graceMs: 1000 });
    await store.close();
  }
  lastReport = { at: nowMs(), counts: snapshot(counts) };
  process.send({
    type: 'report',
    pid: process.pid,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    queries,
    statuses,
    errors,
    bad: bad.slice(0, 5),
    badCount: bad.length,
    stepCalls,
    worker: worker === undefined ? undefined : { ...worker.stats },
  });
}
