// Bench 4: growth (issue 10). How a run's cost grows with its number of steps: linear
// playbooks of N nodes (full 10, 100, 1,000; quick 10, 100, 300) whose dispatcher returns
// 2 KB of output per node.
//
// Two output shapes, because they stress different things:
// - "distinct keys" (the target's workload): node nK returns { nK: <2 KB> }, so the run
//   context (shallow merge of all outputs) grows to N x 2 KB, as it does when every step of
//   a real playbook reports its own result. The runs projection row carries that context.
// - "one key" (information): every node returns { result: <2 KB> }, so the context stays at
//   2 KB and only the number of steps grows.
// For each, per run: bytes the database file grew (checkpointed, so WAL excluded), bytes of
// event data, bytes of the runs row, bytes this process wrote to the OS (/proc/self/io: WAL
// + checkpoints), and wall time per step.
//
// Targets (distinct keys): the per-step time of the largest N is at most 1.5x that of the
// smallest (1,000 vs 10 in full mode), and bytes written per run grow no faster than
// N^1.05 (the exponent is the least-squares slope of log(bytes written per run) against
// log N over every size). Each round measures every size on a fresh file, in alternating
// order (small to large, then large to small); figures are medians over rounds.
import { join } from 'node:path';
import { emit, linearPlaybook, loadCantbook, log, median, noopDispatcher, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir, writtenBytes } from './lib/common.mjs';
import { Database, checkpointedSize } from './lib/sqliteFiles.mjs';

const args = parseArgs();
const full = args.mode === 'full';
const OUTPUT_BYTES = 2048;
// Runs per size: enough to average out page-level effects, few enough that the
// 1,000-node runs (which the figures show are the expensive ones) stay affordable.
const sizes = full
  ? [{ nodes: 10, runs: 100 }, { nodes: 100, runs: 20 }, { nodes: 1000, runs: 2 }]
  : [{ nodes: 10, runs: 20 }, { nodes: 100, runs: 4 }, { nodes: 300, runs: 1 }];
const ROUNDS = 3;
const variants = [
  { name: 'distinct keys', key: (nodeId) => nodeId, note: 'context grows to N x 2 KB' },
  { name: 'one key', key: () => 'result', note: 'context stays 2 KB' },
];
const STORED_EXPONENT_AT_MOST = 1.1; // information (the issue-8 target)
const WRITTEN_EXPONENT_AT_MOST = 1.05;
const PER_STEP_RATIO_AT_MOST = 1.5;

const cb = await loadCantbook();
const dir = scratchDir('growth');
// 2 KB of printable, non-repeating-looking text per node (SQLite does not compress, but
// keep it honest anyway): a hex stream derived from the node id.
const payloadOf = (nodeId) => {
  let s = '';
  for (let i = 0; s.length < OUTPUT_BYTES; i++) s += ((i * 2654435761 + nodeId.length * 40503) >>> 0).toString(16).padStart(8, '0');
  return `${nodeId}:${s}`.slice(0, OUTPUT_BYTES);
};

async function measure(variant, nodes, runs, round_) {
  const source = linearPlaybook(nodes, `bench-growth-${nodes}`);
  const { definition } = cb.parsePlaybook(source);
  const payloads = new Map();
  for (let i = 1; i <= nodes; i++) payloads.set(`n${i}`, payloadOf(`n${i}`));
  const dispatcher = { dispatch: (request) => ({ status: 'success', output: { [variant.key(request.nodeId)]: payloads.get(request.nodeId) } }) };
  const path = join(dir, `${variant.key('x')}-${nodes}-${round_}.db`);
  const store = cb.openSqliteStore(path);
  const run = (id, d = dispatcher) => cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher: d, runId: id });
  // Warm-up run (empty outputs, so it is cheap at any N): compiles the playbook (cached by
  // hash) and stores its text once in this file's playbooks table, a one-off per playbook
  // that does not belong to any run's cost.
  await run(runIdOf('w', 0), noopDispatcher);
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

/** k in x(N) ~ N^k: the least-squares slope of log x against log N over every size. */
function exponent(rows, field) {
  if (rows.some((r) => r[field] === null || r[field] <= 0)) return null;
  const xs = rows.map((r) => Math.log(r.nodes));
  const ys = rows.map((r) => Math.log(r[field]));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return round(num / den, 3);
}

/** The median of each numeric figure over the rounds of one size. */
function medianRow(samples) {
  const row = { ...samples[0] };
  for (const key of ['msPerRun', 'usPerStep', 'storedBytesPerRun', 'storedBytesPerStep', 'eventBytesPerRun', 'writtenBytesPerRun', 'writtenBytesPerStep']) {
    row[key] = samples.some((s) => s[key] === null) ? null : median(samples.map((s) => s[key]));
  }
  row.usPerStepSamples = samples.map((s) => s.usPerStep);
  row.writtenBytesPerRunSamples = samples.map((s) => s.writtenBytesPerRun);
  return row;
}

const samples = new Map(variants.map((v) => [v.name, sizes.map(() => [])]));
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? sizes.map((_, i) => i) : sizes.map((_, i) => sizes.length - 1 - i);
  for (const variant of variants) {
    for (const i of order) {
      const { nodes, runs } = sizes[i];
      const row = await measure(variant, nodes, runs, r);
      samples.get(variant.name)[i].push(row);
      log(`growth round ${r + 1}/${ROUNDS} ${variant.name} ${nodes} nodes: ${row.storedBytesPerStep} B/step stored, ${row.writtenBytesPerStep} B/step written, ${row.usPerStep} us/step`);
    }
  }
}
removeDir(dir);

const results = variants.map((variant) => {
  const rows = samples.get(variant.name).map(medianRow);
  const small = rows[0];
  const large = rows.at(-1);
  return {
    variant: variant.name,
    note: variant.note,
    rows,
    exponents: {
      storedBytesPerRun: exponent(rows, 'storedBytesPerRun'),
      writtenBytesPerRun: exponent(rows, 'writtenBytesPerRun'),
      msPerRun: exponent(rows, 'msPerRun'),
    },
    perStepRatio: { smallNodes: small.nodes, largeNodes: large.nodes, ratio: round(large.usPerStep / small.usPerStep, 2) },
  };
});

const distinct = results.find((r) => r.variant === 'distinct keys');
const worstStored = Math.max(...results.map((r) => r.exponents.storedBytesPerRun));
emit(args, {
  section: 'growth',
  outputBytes: OUTPUT_BYTES,
  rounds: ROUNDS,
  sizes,
  target: {
    perStep: { ratioAtMost: PER_STEP_RATIO_AT_MOST, ...distinct.perStepRatio, met: distinct.perStepRatio.ratio <= PER_STEP_RATIO_AT_MOST },
    writtenBytes: { exponentAtMost: WRITTEN_EXPONENT_AT_MOST, exponent: distinct.exponents.writtenBytesPerRun, met: distinct.exponents.writtenBytesPerRun !== null && distinct.exponents.writtenBytesPerRun <= WRITTEN_EXPONENT_AT_MOST },
    stored: { exponentAtMost: STORED_EXPONENT_AT_MOST, worstExponent: worstStored, met: worstStored <= STORED_EXPONENT_AT_MOST },
  },
  results,
});
