/**
 * Usage, configuration and lookup errors of every kind, through runCli
 * in-process (in a temporary directory of real files): each prints
 * `error[CODE]: message` (or `{"error": ...}` with --json) and returns the
 * code's exit status. test/e2e/badInput.test.ts checks the same through the
 * built, spawned CLI for the cases the issue names.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/runCli.js';
import { expectCodedError, expectJsonError, repoRoot } from '../../helpers/cliSession.js';
import type { CliResult } from '../../helpers/cliSession.js';

let dir: string;

beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'cantbook-cli-errors-')));
  copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), join(dir, 'release.cantbook'));
  writeFileSync(join(dir, 'list.json'), '["not", "an", "object"]\n');
  const configs: [string, string][] = [
    ['not-json', '{"agent": "exec:node agent.mjs",}\n'],
    ['unknown-key', '{"agent": "exec:node agent.mjs", "agnet": "typo"}\n'],
    ['empty-agent', '{"agent": "  "}\n'],
  ];
  for (const [name, text] of configs) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'cantbook.config.json'), text);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[], cwd = dir): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, { cwd, env: {}, stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  return { code, stdout, stderr };
}

const RUN = ['run', 'release.cantbook', '--input', 'targetVersion=1.0.0'];

const cases: { name: string; args: string[]; code: string; exit: number; cwd?: string; says: string }[] = [
  { name: '--input without =', args: ['run', 'release.cantbook', '--input', 'targetVersion'], code: 'E_USAGE', exit: 64, says: "--input expects key=value, got 'targetVersion'" },
  { name: 'missing --inputs file', args: ['run', 'release.cantbook', '--inputs', 'missing.json'], code: 'E_FILE_UNREADABLE', exit: 66, says: "cannot read inputs file 'missing.json': no such file" },
  { name: '--inputs not an object', args: ['run', 'release.cantbook', '--inputs', 'list.json'], code: 'E_USAGE', exit: 64, says: 'must hold a JSON object' },
  { name: 'no agent configured', args: RUN, code: 'E_ADAPTER_INVALID', exit: 78, says: "no agent configured and playbook 'release' has agentic nodes 'version_bump', 'changelog', 'publish'" },
  { name: 'unknown agent scheme', args: [...RUN, '--agent', 'ftp://agent'], code: 'E_ADAPTER_INVALID', exit: 78, says: 'unknown agent spec "ftp://agent"' },
  { name: 'exec agent with an unclosed quote', args: [...RUN, '--agent', 'exec:node "agent.mjs'], code: 'E_ADAPTER_INVALID', exit: 78, says: 'quote' },
  { name: 'module agent that does not exist', args: [...RUN, '--agent', 'module:./nowhere.mjs'], code: 'E_ADAPTER_INVALID', exit: 78, says: "agent module './nowhere.mjs' does not exist" },
  { name: 'http agent with a bad URL', args: [...RUN, '--agent', 'http://exa mple'], code: 'E_ADAPTER_INVALID', exit: 78, says: 'is not a valid absolute URL' },
  { name: 'config file that is not JSON', args: ['run', '../release.cantbook', '--input', 'targetVersion=1.0.0'], cwd: 'not-json', code: 'E_CONFIG_INVALID', exit: 78, says: 'is not valid JSON' },
  { name: 'config file with an unknown key', args: ['runs'], cwd: 'unknown-key', code: 'E_CONFIG_INVALID', exit: 78, says: "has unknown key 'agnet' (known: agent, db)" },
  { name: 'config file with an empty agent', args: ['runs'], cwd: 'empty-agent', code: 'E_CONFIG_INVALID', exit: 78, says: "'agent' must be a non-empty string" },
  { name: 'export of a missing file', args: ['export', 'missing.cantbook', '--format', 'json'], code: 'E_FILE_UNREADABLE', exit: 66, says: "cannot read playbook 'missing.cantbook'" },
  { name: 'export format not offered', args: ['export', 'release.cantbook', '--format', 'svg'], code: 'E_USAGE', exit: 64, says: "argument 'svg' is invalid" },
  { name: 'approve by a blank name', args: ['approve', 'cbk1.x.y', '--by', '  '], code: 'E_USAGE', exit: 64, says: "option '--by <who>' argument '  ' is invalid. it must not be blank" },
  { name: 'reject with a blank reason', args: ['reject', 'cbk1.x.y', '--by', 'alice', '--reason', ''], code: 'E_USAGE', exit: 64, says: "option '--reason <text>' argument '' is invalid. it must not be blank" },
  { name: 'status not offered', args: ['runs', '--status', 'sleeping'], code: 'E_USAGE', exit: 64, says: "argument 'sleeping' is invalid" },
  { name: 'approve by an over-long name', args: ['approve', 'cbk1.x.y', '--by', 'a'.repeat(201)], code: 'E_USAGE', exit: 64, says: 'it is 201 characters long; at most 200 are allowed' },
  { name: 'reject with an over-long reason', args: ['reject', 'cbk1.x.y', '--by', 'alice', '--reason', 'r'.repeat(4001)], code: 'E_USAGE', exit: 64, says: 'it is 4001 characters long; at most 4000 are allowed' },
  { name: 'a global option whose value looks like a flag', args: ['runs', '--db', '--status', 'paused'], code: 'E_USAGE', exit: 64, says: "option '--db <path>' needs a value, but the next word is the option '--status'" },
  { name: 'a command option whose value looks like a flag', args: ['approve', 'cbk1.x.y', '--by', '--reason', 'x'], code: 'E_USAGE', exit: 64, says: "option '--by <who>' needs a value, but the next word is the option '--reason'" },
  { name: 'missing argument', args: ['show'], code: 'E_USAGE', exit: 64, says: "missing required argument 'runId'" },
  { name: 'missing required option', args: ['approve', 'cbk1.x.y'], code: 'E_USAGE', exit: 64, says: "required option '--by <who>' not specified" },
  { name: 'option missing its value', args: ['runs', '--status'], code: 'E_USAGE', exit: 64, says: "option '--status <status>' argument missing" },
  { name: 'not a token', args: ['approve', 'not-a-token', '--by', 'bob'], code: 'E_APPROVAL_TOKEN_INVALID', exit: 77, says: 'that is not a cantbook resume token (expected cbk1.<approvalId>.<credential>)' },
  { name: 'empty --db', args: ['--db', ' ', 'runs'], code: 'E_USAGE', exit: 64, says: '--db needs a path' },
  { name: 'unknown run: show', args: ['show', 'no-such-run'], code: 'E_RUN_NOT_FOUND', exit: 67, says: "no run 'no-such-run' in this store" },
  { name: 'unknown run: log', args: ['log', 'no-such-run'], code: 'E_RUN_NOT_FOUND', exit: 67, says: "no run 'no-such-run'" },
  { name: 'unknown run: resume', args: ['resume', 'no-such-run'], code: 'E_RUN_NOT_FOUND', exit: 67, says: "no run 'no-such-run'" },
  { name: 'unknown run: verify', args: ['verify', 'no-such-run'], code: 'E_RUN_NOT_FOUND', exit: 67, says: 'no-such-run' },
];

describe('command errors (in-process)', () => {
  it.each(cases)('$name -> $code', async ({ args, code, exit, cwd, says }) => {
    const where = cwd === undefined ? dir : join(dir, cwd);
    const human = await cli(args, where);
    expect(expectCodedError(human, code, exit)).toContain(says);
    expectJsonError(await cli([...args, '--json'], where), code, exit);
  });
});

describe('what a refused or read-only command leaves behind', () => {
  it('`runs --db --json` creates no file named --json; `--db=--json` is the way to mean it', async () => {
    const where = join(dir, 'flag-like');
    mkdirSync(where);
    // --json among the words makes the refusal JSON, as for every error.
    expect(expectJsonError(await cli(['runs', '--db', '--json'], where), 'E_USAGE', 64).message).toContain("option '--db <path>' needs a value, but the next word is the option '--json'");
    expect(existsSync(join(where, '--json'))).toBe(false);
    // Written with '=', the value is taken as given: a read command on a database that does not exist says so.
    const explicit = await cli(['runs', '--db=--json'], where);
    expect(expectCodedError(explicit, 'E_STORE_UNAVAILABLE', 74)).toContain(join(where, '--json'));
    expect(existsSync(join(where, '--json'))).toBe(false);
  });

  it.each([['runs'], ['show', 'r'], ['log', 'r'], ['approvals'], ['verify'], ['inspect', 'r']])('read-only `%s` on a missing database is E_STORE_UNAVAILABLE naming it, and creates nothing', async (...args) => {
    const where = join(dir, `missing-${args[0]}`);
    mkdirSync(where);
    expect(expectCodedError(await cli(['--db', 'sub/none.db', ...args], where), 'E_STORE_UNAVAILABLE', 74)).toContain(join(where, 'sub', 'none.db'));
    expect(existsSync(join(where, 'sub'))).toBe(false);
  });
});

