// One child process of the workers bench (bench/workers.mjs), started with `fork` so it
// talks to the bench over the IPC channel and dies with it:
//
//   node bench/lib/workerProcess.mjs worker   drives runs with a worker (createWorker, start/stop)
//   node bench/lib/workerProcess.mjs inline   runs executePlaybook in lanes (the baseline)
//
// A long-lived process, like a deployed worker: it loads the library, warms up on a private
// file (so both sides of the bench's ratio start with a warm JIT), sends {type: 'ready'} and
// then serves samples, one after another:
//
//   bench -> {type: 'open', db, concurrency, runs, dispatchMs?, graceMs?}
//                                                      open the shared file (and create the worker)
//   child -> {type: 'opened'}
//   bench -> {type: 'go'}                              the timed phase starts
//   child -> {type: 'driven', status}                  (worker) each drive that ended
//   child -> {type: 'done'}                            (inline) its runs ended
//   bench -> {type: 'stop'}                            (worker) stop and report
//   child -> {type: 'report', ...}                     what it measured in the timed phase
//
// The report holds the child's CPU time, its store calls (count and the synchronous time
// each spent, which for this store is its SQLite work) and the time spent inside the store's
// SQLite transactions, waiting for the file's write lock included.
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { openInbox } from './childInbox.mjs';
import { inLanes, linearPlaybook, loadCantbook, nowMs, runIdOf } from './common.mjs';

const NODES = 5;
const DISPATCH_MS = 5;
const WARM_UP_RUNS = 16;

const mode = process.argv[2];
if (mode !== 'worker' && mode !== 'inline') throw new Error(`workerProcess.mjs: unknown mode '${mode}' (worker or inline)`);
if (process.send === undefined) throw new Error('workerProcess.mjs is started by bench/workers.mjs through fork (it needs the IPC channel)');
process.on('disconnect', () => process.exit(0));

const cb = await loadCantbook();
const source = linearPlaybook(NODES, 'bench-workers');
const { definition } = cb.parsePlaybook(source);
/** Awaits `ms` per node (an agent call that is all waiting), or until the runtime gives up on the attempt. */
const dispatcherOf = (ms) => ({
  async dispatch(request) {
    await sleep(ms, undefined, { signal: request.signal });
    return { status: 'success', output: { [request.nodeId]: 'done' } };
  },
});
const dispatcher = dispatcherOf(DISPATCH_MS);
// Since the process began (performance.now() counts from its time origin): Node, the imports, the library.
const startupMs = nowMs();

/**
 * The store seen through a plain object that forwards every method to it, counting the
 * calls and the synchronous time of each (this store does its SQLite work before it
 * returns the promise). The real store's transaction functions (internal) are wrapped to
 * time each transaction; better-sqlite3 waits for the file's write lock synchronously, up
 * to the busy timeout, so a wait for another process shows as a long transaction.
 */
function instrumented(store) {
  const calls = {};
  const wrapper = {};
  for (let proto = Object.getPrototypeOf(store); proto !== Object.prototype && proto !== null; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || name in wrapper || typeof store[name] !== 'function') continue;
      wrapper[name] = (...a) => {
        const c = (calls[name] ??= { count: 0, ms: 0 });
        const start = nowMs();
        try {
          return store[name](...a);
        } finally {
          c.count++;
          c.ms += nowMs() - start;
        }
      };
    }
  }
  Object.defineProperty(wrapper, 'stats', { get: () => store.stats });
  const tx = {};
  for (const name of ['batchTx', 'leaseTx', 'replaceTx', 'readTx']) {
    const original = store[name];
    if (typeof original !== 'function') continue;
    const t = (tx[name] = { count: 0, ms: 0, maxMs: 0, over5Ms: 0 });
    store[name] = (...a) => {
      const start = nowMs();
      try {
        return original(...a);
      } finally {
        const ms = nowMs() - start;
        t.count++;
        t.ms += ms;
        if (ms > t.maxMs) t.maxMs = ms;
        if (ms > 5) t.over5Ms++;
      }
    };
  }
  return { store: wrapper, calls, tx };
}

const next = openInbox(); // listening before it sends {type: 'ready'}, so no message of the bench is missed

/** `runs` runs of the playbook through executePlaybook, `lanes` at a time (each lane one run after another); how many ended in each status. */
const inlineRuns = (store, lanes, runs, prefix) => inLanes(lanes, runs, (i) => cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher, runId: runIdOf(prefix, i) }));

async function warmUp(dbPath) {
  const path = `${dbPath}.warm-${process.pid}.db`;
  const store = cb.openSqliteStore(path);
  try {
    if (mode === 'inline') await inlineRuns(store, 4, WARM_UP_RUNS, `warm${process.pid}`);
    else {
      for (let i = 0; i < WARM_UP_RUNS; i++) await cb.startRun({ store, playbook: definition, source, initialContext: {}, runId: runIdOf(`warm${process.pid}`, i) });
      await cb.createWorker({ store, dispatcher }).runUntilIdle();
    }
  } finally {
    await store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  }
}

const warmStart = nowMs();
await warmUp(process.argv[3] ?? `/tmp/cantbook-bench-${process.pid}`);
process.send({ type: 'ready', startupMs, warmUpMs: nowMs() - warmStart });

for (let sample = 0; ; sample++) {
  const { db, concurrency, runs, dispatchMs = DISPATCH_MS, graceMs = 1000 } = await next('open');
  const real = cb.openSqliteStore(db);
  const probe = instrumented(real);
  const errors = {};
  const worker = mode === 'inline' ? undefined : cb.createWorker({
    store: probe.store,
    dispatcher: dispatchMs === DISPATCH_MS ? dispatcher : dispatcherOf(dispatchMs),
    concurrency,
    onError: (error) => {
      const code = error?.code ?? error?.name ?? 'unknown';
      errors[code] = (errors[code] ?? 0) + 1;
    },
    onDriven: (_runId, outcome) => process.send({ type: 'driven', status: outcome.kind === 'result' ? outcome.result.terminalStatus : 'handed back' }),
  });
  process.send({ type: 'opened' });
  await next('go');
  const commits0 = real.stats.commits;
  const cpu0 = process.cpuUsage();
  const t0 = nowMs();
  let statuses;
  if (worker !== undefined) {
    worker.start();
    await next('stop');
  } else {
    statuses = await inlineRuns(probe.store, concurrency, runs, `i${process.pid}-${sample}`);
    process.send({ type: 'done' });
  }
  const cpu = process.cpuUsage(cpu0);
  const ms = nowMs() - t0;
  const calls = structuredClone(probe.calls);
  const tx = structuredClone(probe.tx);
  const commits = real.stats.commits - commits0;
  if (worker !== undefined) await worker.stop({ graceMs });
  await real.close();
  process.send({
    type: 'report',
    pid: process.pid,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    calls,
    tx,
    errors,
    statuses,
    worker: worker === undefined ? undefined : { ...worker.stats },
    commits,
  });
}
