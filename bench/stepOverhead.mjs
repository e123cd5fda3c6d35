// Bench 1: per-step cost of the runtime against the raw SQLite limit.
//
// N runs of a 10-node linear playbook with a no-op dispatcher, on a SQLite file
// (WAL; synchronous NORMAL, then FULL), against a baseline in this same process
// that makes only the writes the runtime must make (see lib/rawBaseline.mjs).
// Rounds alternate baseline and runtime on fresh files; medians are reported.
import { join } from 'node:path';
import { emit, linearPlaybook, loadCantbook, log, median, noopDispatcher, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir, writtenBytes } from './lib/common.mjs';
import { commitScript, openBaseline, recordingStore, scriptPayloadBytes } from './lib/rawBaseline.mjs';
import { checkpointedSize } from './lib/sqliteFiles.mjs';

const NODES = 10;
const args = parseArgs();
const full = args.mode === 'full';
// FULL fsyncs every commit (~3 ms here), so it gets fewer runs to keep quick mode quick.
const plans = [
  { synchronous: 'NORMAL', runs: full ? 1000 : 200, rounds: full ? 5 : 3, warmup: 50 },
  { synchronous: 'FULL', runs: full ? 200 : 40, rounds: full ? 3 : 2, warmup: 5 },
];

const cb = await loadCantbook();
const source = linearPlaybook(NODES);
const { definition } = cb.parsePlaybook(source);
const dir = scratchDir('step');
let fileNo = 0;
const freshPath = () => join(dir, `f${++fileNo}.db`);

// 1. Record what the store is asked to write for one run: the baseline's script.
const sample = cb.openSqliteStore(freshPath());
const recorder = recordingStore(sample);
await cb.executePlaybook({ store: recorder.store, playbook: definition, source, initialContext: {}, dispatcher: noopDispatcher, runId: runIdOf('s', 0) });
await sample.close();
const script = commitScript(recorder.commits);
const eventsPerRun = script.reduce((n, c) => n + c.events.length, 0);
const commitsPerRun = script.length;

async function measureRuntime(synchronous, runs, warmup) {
  const path = freshPath();
  const store = cb.openSqliteStore(path, { synchronous });
  const counted = recordingStore(store);
  const run = (id) => cb.executePlaybook({ store: counted.store, playbook: definition, source, initialContext: {}, dispatcher: noopDispatcher, runId: id });
  for (let i = 0; i < warmup; i++) await run(runIdOf('w', i));
  const before = checkpointedSize(path);
  counted.commits.length = 0;
  const written = writtenBytes();
  const start = nowMs();
  for (let i = 0; i < runs; i++) {
    const result = await run(runIdOf('r', i));
    if (result.terminalStatus !== 'completed') throw new Error(`run ended ${result.terminalStatus}`);
  }
  const ms = nowMs() - start;
  const wrote = writtenBytes() - written;
  const after = checkpointedSize(path);
  const commits = counted.commits.length;
  await store.close();
  return { ms, commits, grownBytes: after.bytes - before.bytes, writtenBytes: wrote, walPeak: after.walBytesBeforeCheckpoint };
}

function measureBaseline(synchronous, runs, warmup) {
  const path = freshPath();
  cb.openSqliteStore(path).close(); // the store creates the exact schema
  const base = openBaseline(path, synchronous);
  for (let i = 0; i < warmup; i++) base.runOnce(script, runIdOf('w', i));
  const before = checkpointedSize(path);
  const written = writtenBytes();
  const start = nowMs();
  for (let i = 0; i < runs; i++) base.runOnce(script, runIdOf('r', i));
  const ms = nowMs() - start;
  const wrote = writtenBytes() - written;
  const after = checkpointedSize(path);
  base.close();
  return { ms, commits: runs * commitsPerRun, grownBytes: after.bytes - before.bytes, writtenBytes: wrote, walPeak: after.walBytesBeforeCheckpoint };
}

function summarise(samples, runs) {
  const ms = median(samples.map((s) => s.ms));
  const steps = runs * NODES;
  const last = samples.at(-1);
  return {
    runsPerSec: round((runs / ms) * 1000, 1),
    usPerStep: round((ms * 1000) / steps, 1),
    commitsPerStep: round(last.commits / steps, 2),
    bytesPerStep: round(median(samples.map((s) => s.grownBytes)) / steps, 0),
    writtenBytesPerStep: last.writtenBytes === null ? null : round(median(samples.map((s) => s.writtenBytes)) / steps, 0),
    samplesMs: samples.map((s) => round(s.ms, 1)),
  };
}

const results = [];
for (const plan of plans) {
  const runtime = [];
  const baseline = [];
  for (let round_ = 0; round_ < plan.rounds; round_++) {
    const warm = round_ === 0 ? plan.warmup : Math.min(plan.warmup, 10);
    // Alternate the order so neither side always runs on a warmer cache.
    if (round_ % 2 === 0) {
      baseline.push(measureBaseline(plan.synchronous, plan.runs, warm));
      runtime.push(await measureRuntime(plan.synchronous, plan.runs, warm));
    } else {
      runtime.push(await measureRuntime(plan.synchronous, plan.runs, warm));
      baseline.push(measureBaseline(plan.synchronous, plan.runs, warm));
    }
    log(`step overhead ${plan.synchronous} round ${round_ + 1}/${plan.rounds}: runtime ${round(runtime.at(-1).ms)} ms, baseline ${round(baseline.at(-1).ms)} ms`);
  }
  const r = summarise(runtime, plan.runs);
  const b = summarise(baseline, plan.runs);
  results.push({ synchronous: plan.synchronous, runs: plan.runs, rounds: plan.rounds, runtime: r, baseline: b, ratio: round(r.usPerStep / b.usPerStep, 2) });
}
removeDir(dir);

emit(args, {
  section: 'stepOverhead',
  nodes: NODES,
  eventsPerRun,
  commitsPerRun,
  payloadBytesPerRun: scriptPayloadBytes(script),
  target: { ratioAtMost: 1.5, met: results.every((r) => r.ratio <= 1.5) },
  results,
});
