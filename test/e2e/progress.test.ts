/**
 * Progress per node on a real terminal: `script` (util-linux) gives the CLI a
 * pseudo-terminal. With a size, each node gets an ora spinner; a terminal that
 * reports 0 columns (script without `stty cols`, `docker exec -t`) gets the
 * plain lines pipes get, instead of ora redrawing forever. Off a terminal, the
 * plain lines are checked by approvalLifecycle.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cliPath, createCliSession, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliResult, CliSession } from '../helpers/cliSession.js';

/** util-linux `script`, which takes `-c <command>`; other systems' `script` has another syntax. */
const hasScript = ((): boolean => {
  try {
    return execFileSync('script', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('util-linux');
  } catch {
    return false;
  }
})();

const gate = join(repoRoot, 'starter', 'ci-gate.cantbook');
const NODES = ['lint', 'smoke', 'report'];
let cli: CliSession;

beforeAll(() => {
  cli = createCliSession();
});
afterAll(() => cli.remove());

/** Runs `cantbook run ci-gate` on a pseudo-terminal, after `setup` (a shell command run on that terminal). */
function runOnTerminal(setup: string, db: string): Promise<CliResult> {
  const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
  const command = `${setup} exec ${[process.execPath, cliPath, '--db', db, 'run', gate].map(quote).join(' ')}`;
  // ora spins only where it thinks a person watches: no CI variable, a real TERM.
  const env = cleanEnv({ TERM: 'xterm-256color' });
  delete env.CI;
  return runProcess('script', ['-qec', command, '/dev/null'], { cwd: cli.dir, env, timeoutMs: 30_000 });
}

/** The text a person sees, without terminal escapes (the pattern is built from a string: lint forbids control characters in regex literals). */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
const stripAnsi = (text: string): string => text.replace(ANSI, '').replace(/\r/g, '');

describe.skipIf(!hasScript)('progress on a terminal', () => {
  it('a terminal with a size gets an ora spinner per node, finished with ✔', async () => {
    const result = await runOnTerminal('stty cols 120 rows 40 &&', 'sized.db');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('\u001b[?25l'); // ora hides the cursor while it spins
    const text = stripAnsi(result.stdout);
    for (const node of NODES) {
      expect(text).toContain(`⠋ ${node} (attempt 1)`); // the spinner's first frame
      // ora redraws in place (cursor to column 1), so frames and the final ✔ share one line once escapes are stripped.
      expect(text).toMatch(new RegExp(`^⠋ ${node} \\(attempt 1\\).*✔ ${node} \\(attempt 1\\)$`, 'm'));
    }
    expect(text).toMatch(/^✔ run \S+ completed$/m);
  });

  it('a terminal that reports no size gets plain lines and the run finishes', async () => {
    const result = await runOnTerminal('stty cols 0 rows 0 &&', 'sizeless.db');
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('\u001b[?25l');
    const lines = stripAnsi(result.stdout).split('\n');
    expect(lines.slice(1, 4)).toEqual(NODES.map((node) => `✓ ${node} (attempt 1)`));
    expect(lines[4]).toMatch(/^✔ run \S+ completed$/);
  });
});
