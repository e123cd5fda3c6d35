// Summarises a V8 .cpuprofile (from `node --cpu-prof`) into where the time goes:
// shares by category and the functions with the most self time.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { benchDir, outDir, repoDir } from './common.mjs';

/**
 * Categories, tried from the sampled frame up towards the root: the first frame
 * that matches names the sample's category. So time inside `evolve` counts as
 * evolve even though XState's assign called it, and time in XState that
 * `evolve` did not cause counts as XState.
 */
const rules = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['evolve (projection reducer)', (f) => /(projections|compiler)\/runState\.js$/.test(f.url)],
  ['JSON.parse of event data', (f) => f.functionName === 'parseJson' && /sqliteEventStore\.js$/.test(f.url)],
  ['XState transition', (f) => f.url.includes('/node_modules/xstate/')],
  ['hash chain (canonical JSON + SHA-256)', (f) => /events\/(canonicalJson|hashChain)\.js$/.test(f.url) || f.url === 'node:internal/crypto/hash'],
  ['store: SQLite statements, JSON.stringify, row mapping', (f) => /store\/sqliteEventStore\.js$/.test(f.url) || f.url.includes('/node_modules/better-sqlite3/')],
  ['runtime host loop (record, commit, dispatch)', (f) => f.url.includes('/dist/runtime/')],
  ['other cantbook code', (f) => f.url.includes('/dist/')],
  ['bench driver', (f) => f.url.includes('/bench/')],
  ['Node.js internals (modules, timers, promises)', (f) => f.url.startsWith('node:')],
  ['program / idle', (f) => f.functionName === '(program)' || f.functionName === '(idle)'],
];

export function summariseProfile(file, { top = 15 } = {}) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    totalUs += dt;
  });
  const categories = new Map();
  const functions = new Map();
  for (const [id, us] of selfUs) {
    let category = 'other';
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur).callFrame;
      const hit = rules.find(([, match]) => match(frame));
      if (hit) {
        category = hit[0];
        break;
      }
    }
    categories.set(category, (categories.get(category) ?? 0) + us);
    const f = byId.get(id).callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '(native)';
    const key = `${f.functionName || '(anonymous)'} ${where}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const pct = (us) => Math.round((us / totalUs) * 1000) / 10;
  return {
    totalMs: Math.round(totalUs / 1000),
    categories: [...categories].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: pct(us) })),
    topSelf: [...functions].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: pct(us) })),
  };
}

/**
 * Runs `bench/profile.mjs <args>` under `node --cpu-prof` and summarises the
 * profile it writes (kept under bench/.out/prof for DevTools).
 */
export function profileChild(profileArgs, name) {
  const profDir = join(outDir, 'prof', name);
  rmSync(profDir, { recursive: true, force: true });
  const child = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, join(benchDir, 'profile.mjs'), ...profileArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (child.status !== 0) return { error: `profiling exited with ${child.status}` };
  const file = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort().at(-1);
  if (file === undefined) return { error: 'no profile written' };
  return { file: relative(repoDir, join(profDir, file)), ...summariseProfile(join(profDir, file)) };
}
