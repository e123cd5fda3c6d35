// Shared helpers for the benches: modes, timing, temp databases, playbook text,
// file-size accounting, machine facts. Plain ESM JavaScript on purpose: the benches
// measure the compiled library in dist/ and must run without a TypeScript loader.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoDir = resolve(benchDir, '..');
/** Scratch space (gitignored): databases, JSON results, CPU profiles. On the repo's disk, not tmpfs. */
export const outDir = join(benchDir, '.out');

/** `--full` or `--quick` (default quick), plus `--out file.json` for the orchestrator. */
export function parseArgs(argv = process.argv.slice(2)) {
  const args = { mode: 'quick', out: undefined, flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--full') args.mode = 'full';
    else if (a === '--quick') args.mode = 'quick';
    else if (a === '--out') args.out = argv[++i];
    else if (a.startsWith('--')) args.flags.add(a.slice(2));
  }
  return args;
}

/** Writes a section's result where the orchestrator asked, or prints it when run alone. */
export function emit(args, result) {
  if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 2));
  else console.log(JSON.stringify(result, null, 2));
}

export function log(...parts) {
  process.stderr.write(`${parts.join(' ')}\n`);
}

/** The compiled library. Built by `npm run build`; the benches never load src/. */
export async function loadCantbook() {
  const entry = join(repoDir, 'dist', 'index.js');
  if (!existsSync(entry)) throw new Error(`dist/index.js is missing: run \`npm run build\` first`);
  return import(entry);
}

/** Internal modules of the compiled library (replay needs the fold of a stored log). */
export async function loadInternal(path) {
  return import(join(repoDir, 'dist', path));
}

/** A fresh directory under bench/.out for one section's databases. */
export function scratchDir(name) {
  const dir = join(outDir, 'db', `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

export const nowMs = () => performance.now();

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Bytes of a SQLite file and its WAL as they are on disk now. */
export function fileBytes(path) {
  const size = (p) => (existsSync(p) ? statSync(p).size : 0);
  return { db: size(path), wal: size(`${path}-wal`) };
}

/** Bytes this process has handed to write(2) so far (Linux /proc; null elsewhere). */
export function writtenBytes() {
  try {
    const match = /wchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The text of a linear playbook n1 -> n2 -> ... -> nN of no-op agentic nodes. */
export function linearPlaybook(nodeCount, name = `bench-linear-${nodeCount}`) {
  const lines = ['version: "1.0"', `name: ${name}`, 'nodes:'];
  for (let i = 1; i <= nodeCount; i++) lines.push(`  - id: n${i}`, '    type: agentic', '    skill: noop');
  lines.push('edges:');
  if (nodeCount === 1) lines.push('  []');
  for (let i = 1; i < nodeCount; i++) lines.push(`  - { from: n${i}, to: n${i + 1} }`);
  return `${lines.join('\n')}\n`;
}

/** A playbook that pauses at an approval gate after one node, then runs one more. */
export function gatedPlaybook() {
  return [
    'version: "1.0"',
    'name: bench-gated',
    'nodes:',
    '  - id: prepare',
    '    type: agentic',
    '    skill: noop',
    '  - id: gate',
    '    type: approval',
    '    prompt: Ship it?',
    '  - id: ship',
    '    type: agentic',
    '    skill: noop',
    'edges:',
    '  - { from: prepare, to: gate }',
    '  - { from: gate, to: ship }',
    '',
  ].join('\n');
}

/** Dispatchers used by the benches. */
export const noopDispatcher = { dispatch: () => ({ status: 'success', output: {} }) };
export const markDispatcher = { dispatch: (request) => ({ status: 'success', output: { [request.nodeId]: 'done' } }) };

/** A fixed-length run id (36 chars, like a UUID) that is cheap to make and unique in the process. */
export function runIdOf(prefix, n) {
  const tail = String(n).padStart(36 - prefix.length - 1, '0');
  return `${prefix}-${tail}`;
}

/**
 * Calls `runOne(i)` for i = 0 .. runs - 1, `lanes` calls at a time (each lane one call after
 * another), and returns how many of the results ended in each `terminalStatus`
 * (executePlaybook's result has one).
 */
export async function inLanes(lanes, runs, runOne) {
  const statuses = {};
  let n = 0;
  const lane = async () => {
    while (n < runs) {
      const { terminalStatus } = await runOne(n++);
      statuses[terminalStatus] = (statuses[terminalStatus] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, runs) }, lane));
  return statuses;
}

/** Facts about this machine worth printing next to any figure. */
export async function machineFacts() {
  const cpus = os.cpus();
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(':memory:');
  const sqliteVersion = db.prepare('select sqlite_version() as v').get().v;
  db.close();
  const pkg = (name, from = repoDir) => {
    try {
      return JSON.parse(readFileSync(join(from, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  let filesystem = null;
  try {
    filesystem = execFileSync('df', ['-T', benchDir], { encoding: 'utf8' }).trim().split('\n').at(-1).split(/\s+/)[1];
  } catch {
    filesystem = null;
  }
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    sqlite: sqliteVersion,
    betterSqlite3: pkg('better-sqlite3'),
    xstate: pkg('xstate'),
    filesystem,
  };
}

export function round(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
