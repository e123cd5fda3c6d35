// Bench 9: child runs (issue 13, SPEC §12). A root playbook whose `plan` node produces 100
// items and whose `map` node runs one child per item, `max_concurrency: 10`, over a child
// playbook of 3 sequential agentic nodes, with a dispatcher that answers each child node
// after 5 ms (setTimeout) with a small output ({sK: 'done'}); `plan` answers at once.
//
// Time. Were the runtime free, the map would run 10 waves of 10 children, each child 3 x 5 ms:
// the ideal is 10 x 3 x 5 = 150 ms. The figure is the wall time of the whole tree's
// `executePlaybook` (root and children, on a fresh store) over that ideal. Beside it, in the
// same rounds: the same 100 x 3 nodes as 100 independent root runs of the child playbook, 10
// at a time (inLanes: 10 lanes, each one run after another), whose ideal is the same 150 ms
// (what the map adds over a host that fans out itself); and both again with a dispatcher that
// answers at once (0 ms: no waiting at all, so the wall time is the runtime's and the
// store's own work for the 100 children). Each sample is on a fresh SQLite file (and, when a
// PostgreSQL server can be had as in section 8, on a fresh schema of it); the four kinds
// alternate their order round by round; medians.
//
// Storage. After each 5 ms sample on SQLite, the file is checkpointed and measured against
// the same file just after it was opened (schema only): bytes per child (everything the
// tree stored, root included, over the 100 items) and per run (over the 101 runs), against
// bytes per run of the 100 root runs; split by table (SQLite's dbstat) and by event type
// (the events' own columns, as section 4 counts them). On PostgreSQL, the growth of the
// schema's relations (tables, indexes, TOAST; dead row versions included).
//
// Where the CPU goes: the two at-once workloads (PROFILE_SAMPLES trees, and as many batches
// of 100 root runs) each run again in a child process of this file under `node --cpu-prof`
// (`--profile-workload=tree|roots`), summarised by bench/lib/cpuProfile.mjs's categories.
//
// Checks (the section fails otherwise): every tree and root run completed; the map's output
// lists 100 completed children in item order; the store holds 101 runs for a tree, 100
// children of the root; every child and root run has the same number of events; and never
// more than 10 dispatches waited at once (the most is reported: 10 on SQLite; a slower store
// may never have all 10 children of a wave in a dispatch at the same moment).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { emit, inLanes, loadCantbook, log, median, nowMs, outDir, parseArgs, removeDir, repoDir, round, runIdOf, scratchDir } from './lib/common.mjs';
import { summariseProfile } from './lib/cpuProfile.mjs';
import { Database, checkpointedSize } from './lib/sqliteFiles.mjs';

const ITEMS = 100;
const MAX_CONCURRENCY = 10;
const CHAIN = 3;
const DISPATCH_MS = 5;
const IDEAL_MS = Math.ceil(ITEMS / MAX_CONCURRENCY) * CHAIN * DISPATCH_MS;
const args = parseArgs();
const full = args.mode === 'full';
const ROUNDS = full ? 9 : 3;
const PG_ROUNDS = full ? 5 : 2;
const PROFILE_SAMPLES = full ? 30 : 10;
const CHILD = 'bench-map-item';

const childSource = [
  'version: "1.0"',
  `name: ${CHILD}`,
  'inputs: [{ name: item, required: true }]',
  'nodes:',
  ...Array.from({ length: CHAIN }, (_, i) => `  - { id: s${i + 1}, type: agentic, skill: noop${i > 0 ? `, depends: [s${i}]` : ''} }`),
  '',
].join('\n');
const rootSource = [
  'version: "1.0"',
  'name: bench-map-root',
  'nodes:',
  '  - { id: plan, type: agentic, skill: noop }',
  '  - id: each',
  '    type: map',
  '    depends: [plan]',
  '    items: "{{items}}"',
  `    playbook: ${CHILD}`,
  '    item_input: item',
  `    max_concurrency: ${MAX_CONCURRENCY}`,
  '',
].join('\n');
const items = Array.from({ length: ITEMS }, (_, i) => `item-${String(i).padStart(3, '0')}`);

const cb = await loadCantbook();
const root = cb.parsePlaybook(rootSource).definition;
const child = cb.parsePlaybook(childSource).definition;
const resolvePlaybook = (ref) => (ref === CHILD ? { id: ref, source: childSource } : null);

/** Answers `plan` at once with the items, every other node after `ms` (or at once for 0) with {nodeId: 'done'}; counts dispatches waiting at once. */
function dispatcherOf(ms) {
  let waiting = 0;
  const self = {
    peak: 0,
    dispatch(request) {
      if (request.nodeId === 'plan') return { status: 'success', output: { items } };
      const answer = { status: 'success', output: { [request.nodeId]: 'done' } };
      if (ms === 0) return answer;
      waiting += 1;
      self.peak = Math.max(self.peak, waiting);
      return sleep(ms).then(() => {
        waiting -= 1;
        return answer;
      });
    },
  };
  return self;
}

const kinds = [
  { id: 'tree', ms: DISPATCH_MS },
  { id: 'roots', ms: DISPATCH_MS },
  { id: 'tree', ms: 0 },
  { id: 'roots', ms: 0 },
];
const keyOf = (k) => `${k.id}${k.ms}`;

/** One sample of a kind on a store just opened: the timed part only. */
async function timed(kind, store, tag) {
  const dispatcher = dispatcherOf(kind.ms);
  let rootRunId = null;
  const stats0 = store.stats === undefined ? null : { ...store.stats };
  const cpu0 = process.cpuUsage();
  const start = nowMs();
  if (kind.id === 'tree') {
    const result = await cb.executePlaybook({ store, playbook: root, source: rootSource, resolvePlaybook, dispatcher, initialContext: {}, runId: runIdOf(tag, 0) });
    const ms = nowMs() - start;
    const work = spent(store, stats0, cpu0);
    if (result.terminalStatus !== 'completed') throw new Error(`tree ended ${result.terminalStatus}: ${result.errorContext ?? ''}`);
    const each = result.finalContext.each;
    if (!Array.isArray(each) || each.length !== ITEMS || each.some((entry, i) => entry.status !== 'completed' || entry.runId !== `${result.runId}.each.1.${i}`)) {
      throw new Error(`the map's output is not ${ITEMS} completed children in item order`);
    }
    rootRunId = result.runId;
    const children = await cb.listRuns(store, { parentRunId: rootRunId });
    if (children.length !== ITEMS || children.some((row) => row.status !== 'completed')) throw new Error(`the root has ${children.length} children, not ${ITEMS} completed`);
    checkPeak(kind, dispatcher);
    return { ms, rootRunId, peak: dispatcher.peak, ...work };
  }
  const statuses = await inLanes(MAX_CONCURRENCY, ITEMS, (i) => cb.executePlaybook({ store, playbook: child, source: childSource, initialContext: { item: items[i] }, dispatcher, runId: runIdOf(`${tag}r`, i) }));
  const ms = nowMs() - start;
  const work = spent(store, stats0, cpu0);
  if (statuses.completed !== ITEMS) throw new Error(`root runs ended ${JSON.stringify(statuses)}`);
  checkPeak(kind, dispatcher);
  return { ms, rootRunId, peak: dispatcher.peak, ...work };
}

/** CPU time of this process and the store's appends and commits (SQLite's `store.stats`) since the start of a sample. */
function spent(store, stats0, cpu0) {
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuMs: (cpu.user + cpu.system) / 1000,
    appends: stats0 === null ? null : store.stats.appends - stats0.appends,
    commits: stats0 === null ? null : store.stats.commits - stats0.commits,
  };
}

function checkPeak(kind, dispatcher) {
  if (dispatcher.peak > MAX_CONCURRENCY) throw new Error(`${kind.id}: ${dispatcher.peak} dispatches waited at once, more than ${MAX_CONCURRENCY}`);
}

// --- SQLite -----------------------------------------------------------------------------

const dir = scratchDir('children');

/** Bytes of each table with its indexes (SQLite's dbstat: whole pages), on a checkpointed file. */
function tableBytes(path) {
  const size = checkpointedSize(path);
  const db = new Database(path, { readonly: true });
  try {
    const owner = new Map(db.prepare("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')").all().map((r) => [r.name, r.tbl_name]));
    const byTable = {};
    for (const r of db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name').all()) {
      const table = owner.get(r.name) ?? r.name;
      byTable[table] = (byTable[table] ?? 0) + r.bytes;
    }
    return { ...size, byTable };
  } finally {
    db.close();
  }
}

/** What a tree's (or the root runs') file holds, by table (grown since `before`) and by event type, from a read-only connection. */
function sqliteStorage(path, before, rootRunId) {
  const after = tableBytes(path);
  const byTable = Object.fromEntries(Object.entries(after.byTable).map(([name, bytes]) => [name, bytes - (before.byTable[name] ?? 0)]));
  const db = new Database(path, { readonly: true });
  try {
    const bytes = 'length(CAST(data AS BLOB)) + length(type) + length(at) + length(hash) + length(run_id)';
    const runCount = db.prepare('SELECT count(*) AS n FROM runs').get().n;
    const events = (where, ...params) => db.prepare(`SELECT type, count(*) AS n, sum(${bytes}) AS bytes, count(DISTINCT run_id) AS runs FROM events WHERE ${where} GROUP BY type`).all(...params);
    const perRunCounts = (where, ...params) => db.prepare(`SELECT count(*) AS n FROM events WHERE ${where} GROUP BY run_id`).all(...params).map((r) => r.n);
    const runIdChars = (where, ...params) => db.prepare(`SELECT avg(length(run_id)) AS n FROM runs WHERE ${where}`).get(...params).n;
    const side = rootRunId === null
      ? { runs: events('1'), counts: perRunCounts('1'), runIdChars: runIdChars('1') }
      : {
        root: events('run_id = ?', rootRunId),
        runs: events("run_id LIKE ? || '.%'", rootRunId),
        counts: perRunCounts("run_id LIKE ? || '.%'", rootRunId),
        runIdChars: runIdChars("run_id LIKE ? || '.%'", rootRunId),
        // The map's output ({each: [{runId, status, output}, ...]}) as the root stores it: in the map node's NodeSucceeded and in its context row.
        mapOutput: {
          eventBytes: db.prepare(`SELECT sum(${bytes}) AS n FROM events WHERE run_id = ? AND type = 'NodeSucceeded' AND json_extract(data, '$.nodeId') = 'each'`).get(rootRunId).n,
          bindingBytes: db.prepare("SELECT sum(length(CAST(value AS BLOB))) AS n FROM run_bindings WHERE run_id = ? AND key = 'each'").get(rootRunId).n,
        },
      };
    if (new Set(side.counts).size !== 1 || side.counts.length !== ITEMS) throw new Error(`${rootRunId === null ? 'root runs' : 'children'}: events per run ${[...new Set(side.counts)].join(', ')} over ${side.counts.length} runs`);
    if (runCount !== ITEMS + (rootRunId === null ? 0 : 1)) throw new Error(`the file holds ${runCount} runs`);
    return { grownBytes: after.bytes - before.bytes, pageSize: after.pageSize, runCount, byTable, ...side, eventsPerRun: side.counts[0] };
  } finally {
    db.close();
  }
}

async function sqliteSample(kind, round_) {
  const path = join(dir, `${keyOf(kind)}-${round_}.db`);
  const store = cb.openSqliteStore(path);
  const before = tableBytes(path);
  const sample = await timed(kind, store, `${kind.id[0]}${kind.ms}x${round_}`);
  await store.close();
  const storage = kind.ms === DISPATCH_MS && round_ >= 0 ? sqliteStorage(path, before, sample.rootRunId) : null;
  for (const tail of ['', '-wal', '-shm']) removeDir(`${path}${tail}`);
  return { ...sample, storage };
}

// --- PostgreSQL (as in section 8: a throwaway durable cluster, or CANTBOOK_BENCH_POSTGRES_URL) --

async function postgresPart() {
  const { adminClient, dropSchemas, openBenchServer, serverFacts } = await import('./lib/postgresServer.mjs');
  const server = openBenchServer();
  const admin = adminClient(server.url);
  const prefix = `cantbook_bench_${process.pid}_children`;
  await admin.connect();
  try {
    const facts = await serverFacts(admin);
    const schemaBytes = async (schema) => Number((await admin.query(
      "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'", [schema])).rows[0].bytes);
    const sample = async (kind, round_) => {
      const schema = `${prefix}_${keyOf(kind)}_${round_ < 0 ? 'w' : round_}`;
      const store = await cb.openPostgresStore(server.url, { schema });
      const before = await schemaBytes(schema);
      const result = await timed(kind, store, `${kind.id[0]}${kind.ms}p${round_}`);
      await store.close();
      const grownBytes = kind.ms === DISPATCH_MS ? (await schemaBytes(schema)) - before : null;
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      return { ...result, grownBytes };
    };
    const out = await rounds(sample, PG_ROUNDS, 'postgres');
    return { server: { external: server.external, version: facts.version, fsync: facts.fsync, synchronousCommit: facts.synchronous_commit }, rounds: PG_ROUNDS, ...summarise(out, (s) => s.grownBytes) };
  } finally {
    await dropSchemas(admin, prefix).catch(() => {});
    await admin.end();
    server.stop();
  }
}

// --- rounds and figures -----------------------------------------------------------------

/** One untimed warm-up of every kind, then `count` rounds of the four kinds, order alternating. */
async function rounds(sample, count, label) {
  for (const kind of kinds) await sample(kind, -1);
  const out = Object.fromEntries(kinds.map((k) => [keyOf(k), []]));
  for (let r = 0; r < count; r++) {
    const order = r % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) out[keyOf(kind)].push(await sample(kind, r));
    log(`children ${label} round ${r + 1}/${count}: ${kinds.map((k) => `${keyOf(k)} ${round(out[keyOf(k)].at(-1).ms, 1)} ms`).join(', ')}`);
  }
  return out;
}

/**
 * Per kind (tree5, roots5, tree0, roots0): the median wall time and its ratio to the ideal,
 * the median CPU time, appends and commits, the most dispatches waiting at once; the ratios
 * of the tree to the root runs; and the storage figure `bytesOf` picks from each 5 ms sample.
 */
function summarise(out, bytesOf) {
  const figures = (samples) => {
    const ms = median(samples.map((s) => s.ms));
    const mid = (field) => (samples[0][field] === null ? null : round(median(samples.map((s) => s[field])), 1));
    return {
      medianMs: round(ms, 1),
      samplesMs: samples.map((s) => round(s.ms, 1)),
      overIdeal: round(ms / IDEAL_MS, 2),
      cpuMs: mid('cpuMs'),
      appends: mid('appends'),
      commits: mid('commits'),
      peakWaiting: Math.max(...samples.map((s) => s.peak)),
    };
  };
  const k = Object.fromEntries(Object.entries(out).map(([key, samples]) => [key, figures(samples)]));
  const treeBytes = median(out.tree5.map(bytesOf));
  const rootsBytes = median(out.roots5.map(bytesOf));
  return {
    ...k,
    treeOverRoots: round(median(out.tree5.map((s) => s.ms)) / median(out.roots5.map((s) => s.ms)), 2),
    atOnceTreeOverRoots: round(median(out.tree0.map((s) => s.ms)) / median(out.roots0.map((s) => s.ms)), 2),
    roundRatios: out.tree5.map((s) => round(s.ms / IDEAL_MS, 2)),
    storage: {
      treeBytesPerChild: round(treeBytes / ITEMS),
      treeBytesPerRun: round(treeBytes / (ITEMS + 1)),
      rootBytesPerRun: round(rootsBytes / ITEMS),
      childOverRoot: round(treeBytes / rootsBytes, 2),
    },
  };
}

/** The event figures of one sample, per child and per root run; plus per-table bytes. */
function storageDetail(tree, roots) {
  const sum = (rows, field) => rows.reduce((a, r) => a + r[field], 0);
  const typeRows = (rows, per) => Object.fromEntries(rows.map((r) => [r.type, { events: round(r.n / per, 2), bytes: round(r.bytes / per) }]));
  const childLinks = tree.root.filter((r) => r.type === 'ChildRunStarted' || r.type === 'ChildRunSettled');
  const tables = [...new Set([...Object.keys(tree.byTable), ...Object.keys(roots.byTable)])].sort();
  return {
    pageSize: tree.pageSize,
    child: { eventsPerRun: tree.eventsPerRun, eventBytesPerRun: round(sum(tree.runs, 'bytes') / ITEMS), byType: typeRows(tree.runs, ITEMS), runIdChars: round(tree.runIdChars, 1) },
    rootRun: { eventsPerRun: roots.eventsPerRun, eventBytesPerRun: round(sum(roots.runs, 'bytes') / ITEMS), byType: typeRows(roots.runs, ITEMS), runIdChars: round(roots.runIdChars, 1) },
    parent: {
      events: sum(tree.root, 'n'),
      eventBytes: sum(tree.root, 'bytes'),
      byType: typeRows(tree.root, 1),
      perChild: { events: round(sum(childLinks, 'n') / ITEMS, 2), eventBytes: round(sum(childLinks, 'bytes') / ITEMS) },
      others: { events: round((sum(tree.root, 'n') - sum(childLinks, 'n')) / ITEMS, 2), eventBytes: round((sum(tree.root, 'bytes') - sum(childLinks, 'bytes')) / ITEMS) },
      mapOutput: { eventBytesPerChild: round(tree.mapOutput.eventBytes / ITEMS), bindingBytesPerChild: round(tree.mapOutput.bindingBytes / ITEMS) },
    },
    byTable: Object.fromEntries(tables.map((name) => [name, { treeBytesPerChild: round((tree.byTable[name] ?? 0) / ITEMS), rootBytesPerRun: round((roots.byTable[name] ?? 0) / ITEMS) }])),
  };
}

// --- where the CPU goes: the at-once workloads under `node --cpu-prof` -------------------

/** `--profile-workload=tree|roots`: only that kind at 0 ms, PROFILE_SAMPLES times after one warm-up (run by `profiled`). */
async function profileWorkload(id) {
  const kind = kinds.find((k) => k.id === id && k.ms === 0);
  if (kind === undefined) throw new Error(`--profile-workload=${id}: expected tree or roots`);
  for (let r = -1; r < PROFILE_SAMPLES; r++) {
    const path = join(dir, `profile-${id}-${r}.db`);
    const store = cb.openSqliteStore(path);
    await timed(kind, store, `p${id[0]}${r + 1}`);
    await store.close();
    for (const tail of ['', '-wal', '-shm']) removeDir(`${path}${tail}`);
  }
}

/** Runs this file's `--profile-workload=<id>` in a child under `node --cpu-prof` and summarises the profile (kept under bench/.out/prof). */
function profiled(id) {
  const profDir = join(outDir, 'prof', `children-${id}`);
  removeDir(profDir);
  const child = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, fileURLToPath(import.meta.url), `--${args.mode}`, `--profile-workload=${id}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (child.status !== 0) return { error: `profiling ${id} exited with ${child.status ?? child.signal}` };
  const file = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort().at(-1);
  if (file === undefined) return { error: 'no profile written' };
  const summary = summariseProfile(join(profDir, file), { top: 8 });
  // Per child (or root run) profiled, warm-up included: PROFILE_SAMPLES + 1 trees (or batches of root runs) of ITEMS each.
  const per = (PROFILE_SAMPLES + 1) * ITEMS;
  return { file: relative(repoDir, join(profDir, file)), samples: PROFILE_SAMPLES + 1, ...summary, categories: summary.categories.map((c) => ({ ...c, msPerRun: round(c.ms / per, 3) })) };
}

const workload = [...args.flags].find((f) => f.startsWith('profile-workload='))?.slice('profile-workload='.length);
if (workload !== undefined) {
  try {
    await profileWorkload(workload);
  } finally {
    removeDir(dir);
  }
  process.exit(0);
}

let sqlite;
try {
  const out = await rounds(sqliteSample, ROUNDS, 'sqlite');
  sqlite = { rounds: ROUNDS, ...summarise(out, (s) => s.storage.grownBytes), detail: storageDetail(out.tree5[0].storage, out.roots5[0].storage) };
} finally {
  removeDir(dir);
}
const profile = { tree: profiled('tree'), roots: profiled('roots') };
let postgres;
try {
  postgres = await postgresPart();
} catch (error) {
  postgres = { error: error.message };
  log(`children: PostgreSQL not measured: ${error.message}`);
}

log(`children: sqlite tree ${sqlite.tree5.medianMs} ms = ${sqlite.tree5.overIdeal}x the ideal ${IDEAL_MS} ms (root runs ${sqlite.roots5.medianMs} ms); at once ${sqlite.tree0.medianMs} ms (root runs ${sqlite.roots0.medianMs} ms); ${sqlite.storage.treeBytesPerChild} B per child vs ${sqlite.storage.rootBytesPerRun} B per root run` +
  (postgres.error ? '' : `; postgres tree ${postgres.tree5.medianMs} ms = ${postgres.tree5.overIdeal}x (root runs ${postgres.roots5.medianMs} ms)`));
emit(args, {
  section: 'children',
  items: ITEMS,
  maxConcurrency: MAX_CONCURRENCY,
  chain: CHAIN,
  dispatchMs: DISPATCH_MS,
  idealMs: IDEAL_MS,
  sqlite,
  profile,
  postgres,
  target: { met: 'reported' },
});
