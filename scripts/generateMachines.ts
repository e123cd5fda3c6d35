/**
 * `npm run machines`: writes `machines/<name>.machine.js` for every
 * `starter/<name>.cantbook` — the compiled XState machine as Stately Studio
 * source (`createMachine({...})`), rendered by the same formatter as
 * `cantbook export --format stately`, under a header naming the playbook and
 * its sourceHash. `npm run machines -- --check` writes nothing and exits 1
 * when a file is missing, stale or has no starter left (test/unit/machines.test.ts
 * runs the same check).
 *
 * Options: `--check`; `--root <dir>` (default: the repository this script is in).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePlaybook, formatIssue, parsePlaybook, PlaybookParseError } from '../src/index.js';
import { renderStatelyModule } from '../src/cli/exportFormats.js';

/** The command that regenerates the files; drift messages name it. */
export const REGENERATE_COMMAND = 'npm run machines';

const STARTER_DIR = 'starter';
const MACHINES_DIR = 'machines';
const PLAYBOOK_SUFFIX = '.cantbook';
const MACHINE_SUFFIX = '.machine.js';

/** One generated file: where it goes (relative to the root) and its text. */
export interface MachineFile {
  /** e.g. `machines/release.machine.js` */
  path: string;
  /** e.g. `starter/release.cantbook` */
  playbookPath: string;
  text: string;
}

/**
 * The machine files the starters of `root` call for, sorted by path. Reads
 * `starter/*.cantbook`; throws PlaybookParseError when a starter is invalid.
 */
export function renderMachineFiles(root: string): MachineFile[] {
  const starters = readdirSync(join(root, STARTER_DIR))
    .filter((name) => name.endsWith(PLAYBOOK_SUFFIX))
    .sort();
  return starters.map((name) => {
    const playbookPath = `${STARTER_DIR}/${name}`;
    const source = readFileSync(join(root, playbookPath), 'utf8');
    const { definition, sourceHash } = parsePlaybook(source, { fileName: playbookPath });
    const module = renderStatelyModule({ definition, sourceHash }, compilePlaybook(definition).config);
    const banner = `// Generated from ${playbookPath} by \`${REGENERATE_COMMAND}\`. Do not edit: change the playbook and regenerate.\n`;
    return { path: `${MACHINES_DIR}/${basename(name, PLAYBOOK_SUFFIX)}${MACHINE_SUFFIX}`, playbookPath, text: banner + module };
  });
}

/**
 * What differs between `machines/` and what the starters call for: one
 * message per missing, stale or orphaned file, each naming the command that
 * fixes it. Empty when everything is current. Reads only.
 */
export function findMachineDrift(root: string): string[] {
  const expected = renderMachineFiles(root);
  const problems: string[] = [];
  for (const file of expected) {
    const target = join(root, file.path);
    if (!existsSync(target)) problems.push(`${file.path} is missing for ${file.playbookPath}: run \`${REGENERATE_COMMAND}\``);
    else if (readFileSync(target, 'utf8') !== file.text) problems.push(`${file.path} is out of date with ${file.playbookPath}: run \`${REGENERATE_COMMAND}\``);
  }
  const wanted = new Set(expected.map((file) => file.path));
  for (const orphan of existingMachineFiles(root).filter((path) => !wanted.has(path))) {
    problems.push(`${orphan} has no starter playbook left: run \`${REGENERATE_COMMAND}\` (it deletes the file)`);
  }
  return problems;
}

/**
 * Brings `machines/` in line with the starters: writes every file whose text
 * changed and deletes machine files whose starter is gone. Returns the paths
 * written and deleted.
 */
export function writeMachineFiles(root: string): { written: string[]; deleted: string[] } {
  const expected = renderMachineFiles(root);
  mkdirSync(join(root, MACHINES_DIR), { recursive: true });
  const written: string[] = [];
  for (const file of expected) {
    const target = join(root, file.path);
    if (existsSync(target) && readFileSync(target, 'utf8') === file.text) continue;
    writeFileSync(target, file.text);
    written.push(file.path);
  }
  const wanted = new Set(expected.map((file) => file.path));
  const deleted = existingMachineFiles(root).filter((path) => !wanted.has(path));
  for (const path of deleted) rmSync(join(root, path));
  return { written, deleted };
}

function existingMachineFiles(root: string): string[] {
  const dir = join(root, MACHINES_DIR);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(MACHINE_SUFFIX))
    .sort()
    .map((name) => `${MACHINES_DIR}/${name}`);
}

function main(argv: readonly string[]): number {
  const rootAt = argv.indexOf('--root');
  const root = resolve(rootAt === -1 ? join(dirname(fileURLToPath(import.meta.url)), '..') : (argv[rootAt + 1] ?? '.'));
  if (argv.includes('--check')) {
    const problems = findMachineDrift(root);
    for (const problem of problems) process.stderr.write(`${problem}\n`);
    if (problems.length === 0) process.stdout.write(`machines/ is up to date with ${STARTER_DIR}/\n`);
    return problems.length === 0 ? 0 : 1;
  }
  const { written, deleted } = writeMachineFiles(root);
  for (const path of written) process.stdout.write(`wrote ${path}\n`);
  for (const path of deleted) process.stdout.write(`deleted ${path}\n`);
  if (written.length + deleted.length === 0) process.stdout.write(`machines/ was already up to date with ${STARTER_DIR}/\n`);
  return 0;
}

/** A failure as `error[CODE]: message` (a starter's issues one per line), never a stack trace. */
function report(error: unknown): number {
  if (error instanceof PlaybookParseError) {
    process.stderr.write(`error[${error.code}]: ${error.message}\n${error.issues.map((issue) => `  ${formatIssue(issue, error.fileName)}\n`).join('')}`);
    return 1;
  }
  const code = (error as { code?: unknown } | null)?.code;
  process.stderr.write(`error[${typeof code === 'string' ? code : 'E_INTERNAL'}]: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.exitCode = report(error);
  }
}
