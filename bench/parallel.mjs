// Bench 6: parallel groups (issue 9). A group of 8 branches, each a chain of 3 agentic nodes,
// with a dispatcher that awaits 5 ms per node, against one such branch alone (a linear
// playbook of the same 3 nodes) in the same process on the same store. Were branches run
// one after the other, the group would take 8x the branch; run concurrently, it takes the
// branch's time plus the CPU work of 8x the commits. Target: group / branch <= 1.5.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { emit, linearPlaybook, loadCantbook, log, median, nowMs, parseArgs, removeDir, round, runIdOf, scratchDir } from './lib/common.mjs';

const BRANCHES = 8;
const CHAIN = 3;
const DISPATCH_MS = 5;
const TARGET = 1.5;
const args = parseArgs();
const full = args.mode === 'full';
const ROUNDS = full ? 40 : 15;

function groupPlaybook() {
  const lines = ['version: "1.0"', 'name: bench-group', 'nodes:', '  - id: fan', '    type: parallel', '    branches:'];
  for (let b = 1; b <= BRANCHES; b++) {
    lines.push(`      - id: b${b}`, '        nodes:');
    for (let n = 1; n <= CHAIN; n++) lines.push(`          - { id: b${b}n${n}, type: agentic, skill: noop${n > 1 ? `, depends: [b${b}n${n - 1}]` : ''} }`);
  }
  return `${lines.join('\n')}\n`;
}

const cb = await loadCantbook();
const dispatcher = {
  async dispatch(request) {
    await sleep(DISPATCH_MS);
    return { status: 'success', output: { [request.nodeId]: 'done' } };
  },
};
const playbooks = {
  branch: linearPlaybook(CHAIN, 'bench-branch'),
  group: groupPlaybook(),
};
const parsed = Object.fromEntries(Object.entries(playbooks).map(([k, source]) => [k, { source, definition: cb.parsePlaybook(source).definition }]));
const dir = scratchDir('parallel');
const store = cb.openSqliteStore(join(dir, 'p.db'));

async function once(kind, id) {
  const { source, definition } = parsed[kind];
  const start = nowMs();
  const result = await cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher, runId: id });
  if (result.terminalStatus !== 'completed') throw new Error(`${kind} run ended ${result.terminalStatus}`);
  return nowMs() - start;
}

// Warm-up, not counted.
for (let i = 0; i < 5; i++) {
  await once('branch', runIdOf('wb', i));
  await once('group', runIdOf('wg', i));
}
const branchMs = [];
const groupMs = [];
const ratios = [];
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved, so a noisy neighbour slows both alike.
  branchMs.push(await once('branch', runIdOf('b', r)));
  groupMs.push(await once('group', runIdOf('g', r)));
  ratios.push(groupMs.at(-1) / branchMs.at(-1));
}
await store.close();
removeDir(dir);

const ratio = median(groupMs) / median(branchMs);
log(`parallel: one branch ${round(median(branchMs), 2)} ms, ${BRANCHES} branches ${round(median(groupMs), 2)} ms, ratio ${round(ratio, 2)}`);
emit(args, {
  section: 'parallel',
  branches: BRANCHES,
  chain: CHAIN,
  dispatchMs: DISPATCH_MS,
  rounds: ROUNDS,
  branch: { medianMs: round(median(branchMs), 2) },
  group: { medianMs: round(median(groupMs), 2) },
  serialisedMs: round(median(branchMs) * BRANCHES, 1),
  ratio: round(ratio, 2),
  roundRatios: { min: round(Math.min(...ratios), 2), median: round(median(ratios), 2), max: round(Math.max(...ratios), 2) },
  target: { ratioAtMost: TARGET, met: ratio <= TARGET },
});
