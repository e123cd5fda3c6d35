// Bench 5: concurrency. 200 runs of the 10-node linear playbook in flight at once in one
// process, sharing one store, with a dispatcher that awaits 5 ms per node (an agent call
// that is all waiting). If runs were serialised (one run's steps blocking the others'),
// 200 runs would take 200 x 10 x 5 ms = 10 s; if they overlap fully, the floor is
// 10 x 5 ms = 50 ms of waiting plus the CPU work of 2,000 commits. We measure:
// - one run at a time (a sample of runs, sequentially): the serial rate;
// - all runs started together (Promise.all): the concurrent rate;
// - the peak number of dispatches awaiting at the same instant;
// - the process's CPU time during the concurrent phase: when wall time is close to CPU
//   time, what bounds throughput is the CPU work per step, not waiting on each other.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { emit, linearPlaybook, loadCantbook, log, median, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir } from './lib/common.mjs';

const NODES = 10;
const IN_FLIGHT = 200;
const DISPATCH_MS = 5;
const args = parseArgs();
const full = args.mode === 'full';
const SERIAL_RUNS = full ? 50 : 20;
const ROUNDS = full ? 5 : 3;
// Not serialised: all 200 runs must be waiting in a dispatch at the same instant at some
// point, and together they must finish at least 5x under the floor of any serialised
// execution (200 x 10 x 5 ms of waiting). Measured against that floor rather than against
// the one-at-a-time rate, because the concurrent rate is bound by the CPU work per step,
// which other processes on a shared machine eat into.
const MIN_UNDER_FLOOR = 5;

const cb = await loadCantbook();
const source = linearPlaybook(NODES);
const { definition } = cb.parsePlaybook(source);
const dir = scratchDir('concurrency');

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

async function serial(store, prefix) {
  const start = nowMs();
  for (let i = 0; i < SERIAL_RUNS; i++) {
    const result = await cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher, runId: runIdOf(prefix, i) });
    if (result.terminalStatus !== 'completed') throw new Error(`run ended ${result.terminalStatus}`);
  }
  return nowMs() - start;
}

async function concurrent(store, prefix) {
  peak = 0;
  const cpu = process.cpuUsage();
  const start = nowMs();
  const results = await Promise.all(
    Array.from({ length: IN_FLIGHT }, (_, i) => cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher, runId: runIdOf(prefix, i) })),
  );
  const ms = nowMs() - start;
  const used = process.cpuUsage(cpu);
  const failed = results.filter((r) => r.terminalStatus !== 'completed').length;
  if (failed > 0) throw new Error(`${failed} concurrent runs did not complete`);
  return { ms, cpuMs: (used.user + used.system) / 1000, peak };
}

const store = cb.openSqliteStore(join(dir, 'c.db'));
// Warm-up (JIT, compile cache, file growth), not counted.
await serial(store, 'ws');
await concurrent(store, 'wc');
const serialMs = [];
const concurrentRounds = [];
for (let r = 0; r < ROUNDS; r++) {
  serialMs.push(await serial(store, `s${r}`));
  concurrentRounds.push(await concurrent(store, `c${r}`));
  log(`concurrency round ${r + 1}/${ROUNDS}: ${SERIAL_RUNS} runs one at a time ${round(serialMs.at(-1))} ms, ${IN_FLIGHT} at once ${round(concurrentRounds.at(-1).ms)} ms (peak ${concurrentRounds.at(-1).peak} in flight)`);
}
await store.close();
removeDir(dir);

const serialRunsPerSec = (SERIAL_RUNS / median(serialMs)) * 1000;
const concurrentMs = median(concurrentRounds.map((c) => c.ms));
const concurrentRunsPerSec = (IN_FLIGHT / concurrentMs) * 1000;
const speedup = concurrentRunsPerSec / serialRunsPerSec;
const minPeak = Math.min(...concurrentRounds.map((c) => c.peak));
const serialisedMs = IN_FLIGHT * NODES * DISPATCH_MS;
emit(args, {
  section: 'concurrency',
  nodes: NODES,
  inFlight: IN_FLIGHT,
  dispatchMs: DISPATCH_MS,
  serial: { runs: SERIAL_RUNS, runsPerSec: round(serialRunsPerSec, 1), msPerRun: round(median(serialMs) / SERIAL_RUNS, 2) },
  concurrent: {
    runs: IN_FLIGHT,
    ms: round(concurrentMs, 1),
    runsPerSec: round(concurrentRunsPerSec, 1),
    cpuMs: round(median(concurrentRounds.map((c) => c.cpuMs)), 1),
    peakInFlight: minPeak,
    samplesMs: concurrentRounds.map((c) => round(c.ms, 1)),
  },
  bounds: { serialisedMs, fullyOverlappedWaitMs: NODES * DISPATCH_MS },
  speedup: round(speedup, 1),
  underSerialisedFloor: round(serialisedMs / concurrentMs, 1),
  target: { peakInFlight: IN_FLIGHT, underSerialisedFloorAtLeast: MIN_UNDER_FLOOR, met: minPeak === IN_FLIGHT && serialisedMs / concurrentMs >= MIN_UNDER_FLOOR },
});
