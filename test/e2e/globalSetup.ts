/**
 * Builds dist/ once before the test run, so the e2e tests spawn the real,
 * compiled CLI (`node dist/cli/main.js`). `npm test` has just built it, so the
 * build is skipped there; set CANTBOOK_SKIP_BUILD=1 to skip it elsewhere.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export default function setup(): void {
  const built = existsSync(join(root, 'dist', 'cli', 'main.js'));
  if (built && (process.env.CANTBOOK_SKIP_BUILD === '1' || process.env.npm_lifecycle_event === 'test')) return;
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    // tsc emits despite type errors; typecheck is its own CI step. Only a missing CLI is fatal here.
    const output = String((error as { stdout?: unknown }).stdout ?? '');
    if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error(`building dist/ failed:\n${output}`);
    process.stderr.write(`warning: tsc reported errors while building dist/ for the e2e tests:\n${output}\n`);
  }
}
