// Bench 4: growth. How a run's cost grows with its number of steps: linear playbooks
// of 10, 100 and 1,000 nodes whose dispatcher returns 2 KB of output per node.
//
// Two output shapes, because they stress different things:
// - "distinct keys": node nK returns { nK: <2 KB> }, so the run context (shallow merge of
//   all outputs) grows to N x 2 KB, as it does when every step of a real playbook reports
//   its own result. The runs projection row carries that context (bindings).
// - "one key": every node returns { result: <2 KB> }, so the context stays at 2 KB and
//   only the number of steps grows.
// For each, per run: bytes the database file grew (checkpointed, so WAL excluded), bytes of
// event data, bytes of the runs row, bytes this process wrote to the OS (WAL + checkpoints),
// and time. "Linear" means bytes per step stay flat from 10 to 1,000 nodes; we also report
// the growth exponent k of x(N) ~ N^k between 10 and 1,000 nodes (1 = linear, 2 = quadratic).
import { join } from 'node:path';
import { emit, linearPlaybook, loadCantbook, log, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir, writtenBytes } from './lib/common.mjs';
import { Database, checkpointedSize } from './lib/sqliteFiles.mjs';

const args = parseArgs();
const full = args.mode === 'full';
const OUTPUT_BYTES = 2048;
// Runs per size: enough to average out page-level effects, few enough that the
// 1,000-node runs (which the figures show are the expensive ones) stay affordable.
const sizes = full
  ? [{ nodes: 10, runs: 100 }, { nodes: 100, runs: 20 }, { nodes: 1000, runs: 3 }]
  : [{ nodes: 10, runs: 20 }, { nodes: 100, runs: 4 }, { nodes: 1000, runs: 1 }];
const variants = [
  { name: 'distinct keys', key: (nodeId) => nodeId, note: 'context grows to N x 2 KB' },
  { name: 'one key', key: () => 'result', note: 'context stays 2 KB' },
];
const LINEAR_EXPONENT = 1.1;

const cb = await loadCantbook();
const dir = scratchDir('growth');
// 2 KB of printable, non-repeating-looking text per node (SQLite does not compress, but
// keep it honest anyway): a hex stream derived from the node id.
const payloadOf = (nodeId) => {
  let s = '';
  for (let i = 0; s.length < OUTPUT_BYTES; i++) s += ((i * 2654435761 + nodeId.length * 40503) >>> 0).toString(16).padStart(8, '0');
  return `${nodeId}:${s}`.slice(0, OUTPUT_BYTES);
};

async function measure(variant, nodes, runs) {
  const source = linearPlaybook(nodes, `bench-growth-${nodes}`);
  const { definition } = cb.parsePlaybook(source);
  const payloads = new Map();
  for (let i = 1; i <= nodes; i++) payloads.set(`n${i}`, payloadOf(`n${i}`));
  const dispatcher = { dispatch: (request) => ({ status: 'success', output: { [variant.key(request.nodeId)]: payloads.get(request.nodeId) } }) };
  const path = join(dir, `${variant.key('x')}-${nodes}.db`);
  const store = cb.openSqliteStore(path);
  const run = (id) => cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher, runId: id });
  // Warm-up run: compiles the playbook (cached by hash) and stores its text once in the
  // playbooks table, a one-off per playbook that does not belong to any run's cost.
  await run(runIdOf('w', 0));
  const before = checkpointedSize(path);
  const written = writtenBytes();
  const start = nowMs();
  for (let i = 0; i < runs; i++) {
    const result = await run(runIdOf('r', i));
    if (result.terminalStatus !== 'completed') throw new Error(`run ended ${result.terminalStatus}`);
  }
  const ms = nowMs() - start;
  const end = writtenBytes();
  const wrote = written === null || end === null ? null : end - written;
  await store.close();
  const after = checkpointedSize(path);
  const db = new Database(path, { readonly: true });
  const events = db.prepare("SELECT count(*) AS n, sum(length(CAST(data AS BLOB)) + length(type) + length(at) + length(hash) + length(run_id)) AS bytes FROM events WHERE run_id LIKE 'r-%'").get();
  // Schema 3 keeps the context one row per key (run_bindings): its size is the sum of the values.
  const row = db.prepare('SELECT COALESCE(sum(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0) AS bindings FROM run_bindings WHERE run_id = ?').get(runIdOf('r', 0));
  db.close();
  const storedPerRun = (after.bytes - before.bytes) / runs;
  return {
    variant: variant.name,
    nodes,
    runs,
    msPerRun: round(ms / runs, 1),
    usPerStep: round((ms * 1000) / (runs * nodes), 1),
    eventsPerRun: events.n / runs,
    storedBytesPerRun: round(storedPerRun),
    storedBytesPerStep: round(storedPerRun / nodes),
    eventBytesPerRun: round(events.bytes / runs),
    runRowBindingsBytes: row.bindings,
    writtenBytesPerRun: wrote === null ? null : round(wrote / runs),
    writtenBytesPerStep: wrote === null ? null : round(wrote / runs / nodes),
  };
}

/** k in x(N) ~ N^k between the smallest and the largest size. */
function exponent(rows, field) {
  const a = rows[0];
  const b = rows.at(-1);
  if (a[field] === null || b[field] === null || a[field] <= 0) return null;
  return round(Math.log(b[field] / a[field]) / Math.log(b.nodes / a.nodes), 2);
}

const results = [];
for (const variant of variants) {
  const rows = [];
  for (const { nodes, runs } of sizes) {
    rows.push(await measure(variant, nodes, runs));
    const r = rows.at(-1);
    log(`growth ${variant.name} ${nodes} nodes: ${r.storedBytesPerStep} B/step stored, ${r.writtenBytesPerStep} B/step written, ${r.usPerStep} us/step`);
  }
  results.push({
    variant: variant.name,
    note: variant.note,
    rows,
    exponents: {
      storedBytesPerRun: exponent(rows, 'storedBytesPerRun'),
      writtenBytesPerRun: exponent(rows, 'writtenBytesPerRun'),
      msPerRun: exponent(rows, 'msPerRun'),
    },
  });
}
removeDir(dir);

// The target is about what the database holds: linear in steps for both shapes.
const worst = Math.max(...results.map((r) => r.exponents.storedBytesPerRun));
emit(args, {
  section: 'growth',
  outputBytes: OUTPUT_BYTES,
  target: { storedExponentAtMost: LINEAR_EXPONENT, worstStoredExponent: worst, met: worst <= LINEAR_EXPONENT },
  results,
});
