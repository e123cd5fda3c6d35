// Workloads run under `node --cpu-prof` by the benches (lib/cpuProfile.mjs):
//   node --cpu-prof bench/profile.mjs step [runs]    the 10-node no-op runs of bench 1 (WAL, NORMAL)
//   node --cpu-prof bench/profile.mjs replay <db>    readAll + fold of every event in <db>
// Each does only its workload (plus module loading), so the profile shows it alone.
import { join } from 'node:path';
import { linearPlaybook, loadCantbook, loadInternal, noopDispatcher, removeDir, runIdOf, scratchDir } from './lib/common.mjs';

const [target, arg] = process.argv.slice(2);
const cb = await loadCantbook();

if (target === 'step') {
  const runs = Number(arg ?? 2000);
  const source = linearPlaybook(10);
  const { definition } = cb.parsePlaybook(source);
  const dir = scratchDir('profile-step');
  const store = cb.openSqliteStore(join(dir, 'p.db'));
  for (let i = 0; i < runs; i++) {
    await cb.executePlaybook({ store, playbook: definition, source, initialContext: {}, dispatcher: noopDispatcher, runId: runIdOf('p', i) });
  }
  await store.close();
  removeDir(dir);
} else if (target === 'replay') {
  const { foldStoredEvents } = await loadInternal('runtime/loadRun.js');
  const store = cb.openSqliteStore(arg, { readonly: true });
  const snapshots = new Map();
  for (let after = 0; ; ) {
    const page = await store.readAll(after, 10_000);
    if (page.length === 0) break;
    let i = 0;
    while (i < page.length) {
      let j = i + 1;
      while (j < page.length && page[j].runId === page[i].runId) j++;
      const batch = page.slice(i, j);
      const current = snapshots.get(page[i].runId);
      if (current === undefined) {
        const { playbook, snapshot } = foldStoredEvents(page[i].runId, batch);
        snapshots.set(page[i].runId, { machine: playbook.machine, snapshot });
      } else {
        current.snapshot = cb.foldRun(current.machine, current.snapshot, batch);
      }
      i = j;
    }
    after = page[page.length - 1].globalSeq;
  }
  await store.close();
} else {
  process.stderr.write('usage: node --cpu-prof bench/profile.mjs step [runs] | replay <db>\n');
  process.exit(64);
}
