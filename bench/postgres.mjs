// Bench 8: PostgreSQL. Steps/s of 1, 2, 4 and 8 worker processes draining one PostgreSQL
// schema, and cantbook against DBOS Transact on the same server, the same 10-step workflow,
// the same durability.
//
// Server: a throwaway cluster of our own started with `scripts/pgTestCluster.sh start DIR
// --durable` (fsync and synchronous_commit on: every commit waits for its WAL flush), stopped
// and removed at the end, also on failure; or the server of CANTBOOK_BENCH_POSTGRES_URL (then
// the bench works in schemas named cantbook_bench_<pid>_* and drops them at the end).
//
// Workload: a 10-node linear playbook of agentic nodes whose dispatcher returns at once with a
// small output ({nK: 'done'}): no real work and no await, so the figures are the engine's and
// the store's cost per step (a fixed await per step would only add the same idle time to
// both sides and hide the difference; sections 5 and 7 measure waiting dispatchers).
//
// Processes: long-lived children of this bench (bench/lib/postgresProcess.mjs), started once
// and warmed up before any timing: 8 cantbook worker processes, one cantbook process running
// executePlaybook inline, one DBOS process. Their start-up is not in the figures.
//
// Scaling: N runs are recorded with startRun in a fresh schema (untimed), then K = 1, 2, 4, 8
// worker processes each open their own store (openPostgresStore, default pool of 10) on that
// schema and start createWorker({concurrency: 4}); timed from telling them to go until they
// have reported the end of all N drives. N is RUNS_PER_SLOT runs per run in flight (4K in
// flight), so every sample takes about as long. Order K ascending, then descending, round
// by round; medians; the ratio to K = 1 is of the medians.
//
// DBOS Transact peer: the same ten steps as a DBOS workflow (bench/peers/dbos/linearWorkflow.mjs:
// DBOS.registerWorkflow over ten DBOS.registerStep functions), run in-process by one DBOS
// process with L workflows in flight (L lanes, each one workflow after another), its system
// tables in a schema of the same database. DBOS runs a workflow in the process that calls it,
// so its match is cantbook's executePlaybook in one process with the same L in flight; the
// workers figure at the same L (K = 4 x 4) is reported beside it. L = 1 and L = 16; the two
// sides alternate which goes first round by round; medians.
//
// Raw durable commits, each round, every child idle: 1 and 16 connections of this bench at
// once, each committing single-row INSERTs one after another: what the server commits with
// no engine in the way (the most a commit-per-step engine could reach), and the length of one
// durable commit, which splits a step's time when nothing overlaps.
//
// Around every timed phase the bench reads, from the server, its WAL position and its next
// transaction id (write transactions handed out, cluster-wide; nothing else writes while one
// side runs) and, for a cluster of our own, the CPU time of all its processes; each child
// counts its own CPU time and every query it sends (round trips). pg_stat_database's
// xact_commit is not used: a backend flushes those counters up to 10 s late, so a delta
// around a few seconds' phase would be wrong.
//
// Checks (the section fails otherwise): every cantbook run completed with each node started
// exactly once in its log and, through workers, every run claimed exactly once; every DBOS
// workflow returned its ten outputs, recorded ten steps, and the step functions ran exactly
// ten times per workflow.
import { join } from 'node:path';
import { benchDir, emit, linearPlaybook, loadCantbook, log, median, nowMs, parseArgs, round, runIdOf } from './lib/common.mjs';
import { countDrives, forkChild, killChildren, withinStall } from './lib/children.mjs';
import { ensureDbosPeer } from './lib/peer.mjs';
import { adminClient, dropSchemas, openBenchServer, rawCommitRate, readingDelta, serverFacts, serverReading } from './lib/postgresServer.mjs';

const NODES = 10; // as bench/lib/postgresProcess.mjs
const PER_WORKER = 4; // createWorker's default concurrency
const WORKERS = [1, 2, 4, 8];
const args = parseArgs();
const full = args.mode === 'full';
const RUNS_PER_SLOT = full ? 5 : 2;
const ROUNDS = full ? 3 : 2;
const PEER_IN_FLIGHT = [1, 16];
const PEER_RUNS = full ? { 1: 24, 16: 160 } : { 1: 8, 16: 48 };
const TARGET_IN_FLIGHT = 16;
const WARM_UP_RUNS = full ? 16 : 4; // per child, before it says it is ready (then one warm-up sample of each kind)
const RAW = full ? { 1: 300, 16: 60 } : { 1: 100, 16: 20 }; // commits per connection, by connections
const STALL_MS = 30_000; // workers: no drive ended for that long
const IN_PROCESS_TIMEOUT_MS = 180_000; // inline and DBOS report only their end

const install = ensureDbosPeer();
const cb = await loadCantbook();
const source = linearPlaybook(NODES, 'bench-postgres');
const { definition } = cb.parsePlaybook(source);
const childPath = join(benchDir, 'lib', 'postgresProcess.mjs');
const prefix = `cantbook_bench_${process.pid}`;

let workerChildren = [];
const server = openBenchServer();
const admin = adminClient(server.url);
await admin.connect();

/** Forks one long-lived child; `ready` resolves once it has loaded its engine and warmed up. */
const spawnChild = (mode) => forkChild(childPath, mode, { args: [server.url, prefix, String(WARM_UP_RUNS)], execArgv: ['--no-deprecation'] });

const sum = (list, f) => list.reduce((n, x) => n + f(x), 0);
const addQueries = (reports) => ({
  queries: sum(reports, (r) => r.queries.queries),
  begin: sum(reports, (r) => r.queries.begin),
  commit: sum(reports, (r) => r.queries.commit),
  rollback: sum(reports, (r) => r.queries.rollback),
});
function failOn(report, what) {
  if (report.badCount > 0) throw new Error(`${what}: ${report.badCount} runs failed the check, e.g. ${report.bad.join('; ')}`);
}

/** One timed phase of the inline or DBOS child: `runs` runs, `lanes` in flight. */
async function inProcessSample(side, lanes, runs) {
  side.send({ type: 'open', concurrency: lanes, runs });
  const { idle } = await side.next('opened');
  const done = side.next('done');
  const before = await serverReading(admin, server);
  const start = nowMs();
  side.send({ type: 'go' });
  await withinStall(done, () => 0, `${side.mode}, ${lanes} in flight`, IN_PROCESS_TIMEOUT_MS);
  const ms = nowMs() - start;
  const after = await serverReading(admin, server);
  const report = await side.next('report');
  failOn(report, `${side.mode}, ${lanes} in flight`);
  if (report.statuses.completed !== runs) throw new Error(`${side.mode}, ${lanes} in flight: runs ended ${JSON.stringify(report.statuses)}`);
  return { ms, runs, cpuMs: report.cpuMs, queries: report.queries, server: readingDelta(before, after), idle };
}

/** K worker processes drain `runs` runs recorded in a fresh schema. */
async function workersSample(k, runs, sampleNo) {
  const schema = `${prefix}_k${k}_${sampleNo}`;
  const store = await cb.openPostgresStore(server.url, { schema });
  const recordStart = nowMs();
  const ids = Array.from({ length: runs }, (_, i) => runIdOf(`k${k}s${sampleNo}`, i));
  for (const runId of ids) await cb.startRun({ store, playbook: definition, source, initialContext: {}, runId });
  const recordMs = nowMs() - recordStart;
  const used = workerChildren.slice(0, k);
  for (const w of used) w.send({ type: 'open', schema, concurrency: PER_WORKER, runs });
  await Promise.all(used.map((w) => w.next('opened')));
  const drives = countDrives(runs);
  const reportsArriving = used.map((w) => w.next('report', drives.onDriven));
  const before = await serverReading(admin, server);
  const start = nowMs();
  for (const w of used) w.send({ type: 'go' });
  const end = await withinStall(drives.done, drives.driven, `${k} worker process${k > 1 ? 'es' : ''}`, STALL_MS);
  const ms = end - start;
  const after = await serverReading(admin, server);
  for (const w of used) w.send({ type: 'stop' });
  const reports = await Promise.all(reportsArriving);
  // The checks: every run completed, each node started once in its log, each run claimed once.
  const rows = await store.listRuns();
  const completed = rows.filter((r) => r.status === 'completed').length;
  const bad = [];
  let events = 0;
  for (const runId of ids) {
    const stored = await store.readRun(runId);
    events += stored.length;
    const started = stored.filter((e) => e.type === 'NodeStarted').length;
    if (started !== NODES || stored.at(-1)?.type !== 'RunCompleted') bad.push(`${runId}: ${started} NodeStarted, last ${stored.at(-1)?.type}`);
  }
  await store.close();
  const claimed = reports.map((r) => r.worker.claimed);
  if (rows.length !== runs || completed !== runs || bad.length > 0 || drives.statuses.completed !== runs || sum(claimed, (x) => x) !== runs) {
    throw new Error(`${k} workers: ${completed} of ${rows.length} runs completed (expected ${runs}), drives ended ${JSON.stringify(drives.statuses)}, runs claimed per process ${claimed.join(', ')}, logs: ${bad.slice(0, 3).join('; ') || 'fine'}`);
  }
  await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
  const errors = {};
  for (const r of reports) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  return { ms, runs, cpuMs: sum(reports, (r) => r.cpuMs), queries: addQueries(reports), server: readingDelta(before, after), claimedPerProcess: claimed, errors, recordMs, eventsPerRun: events / runs };
}

let result;
let failure;
try {
  const facts = await serverFacts(admin);
  log(`postgres: ${facts.version}, fsync ${facts.fsync}, synchronous_commit ${facts.synchronous_commit}${server.external ? ' (CANTBOOK_BENCH_POSTGRES_URL)' : ` (a cluster of our own in ${server.dir})`}`);
  const spawnStart = nowMs();
  const inlineChild = spawnChild('inline');
  const dbosChild = spawnChild('dbos');
  workerChildren = Array.from({ length: Math.max(...WORKERS) }, () => spawnChild('worker'));
  const readies = await Promise.all([inlineChild, dbosChild, ...workerChildren].map((c) => c.ready));
  log(`postgres: ${readies.length} child processes ready in ${round(nowMs() - spawnStart)} ms (warm-up ${readies.map((r) => round(r.warmUpMs)).join('/')} ms)`);

  // Warm-up of the server's caches and the bench's own code paths, not counted.
  await workersSample(Math.max(...WORKERS), PER_WORKER * Math.max(...WORKERS), 0);
  await inProcessSample(inlineChild, TARGET_IN_FLIGHT, TARGET_IN_FLIGHT);
  await inProcessSample(dbosChild, TARGET_IN_FLIGHT, TARGET_IN_FLIGHT);

  const scaling = Object.fromEntries(WORKERS.map((k) => [k, []]));
  const peer = Object.fromEntries(PEER_IN_FLIGHT.map((l) => [l, { cantbook: [], dbos: [] }]));
  const raw = Object.fromEntries(PEER_IN_FLIGHT.map((l) => [l, []]));
  let sampleNo = 0;
  for (let r = 0; r < ROUNDS; r++) {
    // The server's own durable commit rate, this round (every child idle).
    for (const connections of PEER_IN_FLIGHT) raw[connections].push(await rawCommitRate(server.url, `${prefix}_raw`, { connections, commitsEach: RAW[connections] }));
    log(`postgres round ${r + 1}/${ROUNDS}: raw durable commits: ${PEER_IN_FLIGHT.map((c) => `${round(raw[c].at(-1).commitsPerSec)}/s from ${c} connection${c > 1 ? 's' : ''}`).join(', ')}`);
    for (const k of r % 2 === 0 ? WORKERS : [...WORKERS].reverse()) {
      const s = await workersSample(k, RUNS_PER_SLOT * PER_WORKER * k, ++sampleNo);
      scaling[k].push(s);
      log(`postgres round ${r + 1}/${ROUNDS}: ${k} worker process${k > 1 ? 'es' : ''} x ${PER_WORKER}: ${round((s.runs * NODES * 1000) / s.ms)} steps/s (${s.runs} runs, ${round(s.ms)} ms, claimed ${s.claimedPerProcess.join('/')})`);
    }
    for (const lanes of PEER_IN_FLIGHT) {
      const runs = PEER_RUNS[lanes];
      const pair = r % 2 === 0 ? [inlineChild, dbosChild] : [dbosChild, inlineChild];
      for (const side of pair) peer[lanes][side === inlineChild ? 'cantbook' : 'dbos'].push(await inProcessSample(side, lanes, runs));
      const c = peer[lanes].cantbook.at(-1);
      const d = peer[lanes].dbos.at(-1);
      log(`postgres round ${r + 1}/${ROUNDS}: ${lanes} in flight: cantbook ${round((runs * NODES * 1000) / c.ms)} steps/s, DBOS ${round((runs * NODES * 1000) / d.ms)} steps/s (${runs} runs each)`);
    }
  }
  for (const c of [inlineChild, dbosChild, ...workerChildren]) c.stop();

  const med = (list, f) => median(list.map(f));
  /** Medians of one configuration's samples, per step. */
  const summary = (list, runs) => {
    const steps = runs * NODES;
    const per = (f) => round(med(list, f) / steps, 3);
    return {
      runs,
      stepsPerSec: round(med(list, (s) => (steps * 1000) / s.ms)),
      runsPerSec: round(med(list, (s) => (runs * 1000) / s.ms), 1),
      ms: round(med(list, (s) => s.ms), 1),
      samplesStepsPerSec: list.map((s) => round((steps * 1000) / s.ms)),
      perStep: {
        queries: per((s) => s.queries.queries),
        commits: per((s) => s.queries.commit),
        writeTransactions: per((s) => s.server.writeTransactions),
        walBytes: round(med(list, (s) => s.server.walBytes) / steps),
        clientCpuMs: per((s) => s.cpuMs),
        serverCpuMs: list.some((s) => s.server.serverCpuMs === null) ? null : per((s) => s.server.serverCpuMs),
      },
      ...(list[0].idle === undefined ? {} : { idleQueriesPerSec: round(med(list, (s) => (s.idle.queries * 1000) / s.idle.ms), 2) }),
    };
  };
  const rows = WORKERS.map((k) => {
    const list = scaling[k];
    const runs = list[0].runs;
    return {
      processes: k,
      inFlight: k * PER_WORKER,
      ...summary(list, runs),
      claimedPerProcess: list.map((s) => s.claimedPerProcess),
      eventsPerRun: list.at(-1).eventsPerRun,
      startRunPerSec: round(med(list, (s) => (s.runs * 1000) / s.recordMs)),
      errors: list.reduce((acc, s) => {
        for (const [code, n] of Object.entries(s.errors)) acc[code] = (acc[code] ?? 0) + n;
        return acc;
      }, {}),
    };
  });
  const one = rows.find((x) => x.processes === 1);
  for (const x of rows) x.vsOne = round(x.stepsPerSec / one.stepsPerSec, 2);
  const peerRows = PEER_IN_FLIGHT.map((lanes) => {
    const { cantbook, dbos } = peer[lanes];
    const runs = PEER_RUNS[lanes];
    const c = summary(cantbook, runs);
    const d = summary(dbos, runs);
    const workers = rows.find((x) => x.inFlight === lanes);
    return {
      inFlight: lanes,
      cantbook: c,
      dbos: d,
      ratio: round(c.stepsPerSec / d.stepsPerSec, 2),
      roundRatios: cantbook.map((s, i) => round(dbos[i].ms / s.ms, 2)),
      ...(workers === undefined ? {} : { workers: { processes: workers.processes, stepsPerSec: workers.stepsPerSec, ratio: round(workers.stepsPerSec / d.stepsPerSec, 2) } }),
      // What the server alone commits durably with that many connections, and what each side's steps/s asked of it.
      raw: { commitsPerSec: round(med(raw[lanes], (x) => x.commitsPerSec)), msPerCommit: round(med(raw[lanes], (x) => x.ms / (x.commits / x.connections)), 3), samplesCommitsPerSec: raw[lanes].map((x) => round(x.commitsPerSec)) },
      commitsPerSec: { cantbook: round(c.stepsPerSec * c.perStep.writeTransactions), dbos: round(d.stepsPerSec * d.perStep.writeTransactions) },
    };
  });
  const headline = peerRows.find((x) => x.inFlight === TARGET_IN_FLIGHT);
  result = {
    section: 'postgres',
    nodes: NODES,
    perWorker: PER_WORKER,
    runsPerSlot: RUNS_PER_SLOT,
    rounds: ROUNDS,
    server: { ...facts, external: server.external, serverCpuMeasured: !server.external },
    peer: { ...install, durability: 'the same server and settings' },
    rows,
    peerRows,
    startup: { medianReadyMs: round(median(readies.map((x) => x.startupMs))), medianWarmUpMs: round(median(readies.map((x) => x.warmUpMs))) },
    target: {
      scaling: { vsOne: Object.fromEntries(rows.map((x) => [x.processes, x.vsOne])) },
      dbos: { inFlight: TARGET_IN_FLIGHT, ratioAtLeast: 1, ratio: headline.ratio, met: headline.ratio >= 1 },
    },
  };
} catch (error) {
  failure = error;
} finally {
  killChildren();
  try {
    if (server.external) await dropSchemas(admin, prefix);
    await admin.end();
  } catch (error) {
    log(`postgres: cleaning up: ${error.message}`);
  }
  server.stop();
}
if (failure !== undefined) throw failure;
emit(args, result);
