/**
 * Bad input through the real CLI: every case prints `error[CODE]: message` on
 * stderr (or `{"error": {code, message}}` on stdout with --json), exits with the
 * code's documented status, and never shows a stack trace.
 */
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from '../../src/errors.js';
import { createCliSession, demoAgent, expectCodedError, expectJsonError, repoRoot } from '../helpers/cliSession.js';
import type { CallOptions, CliSession } from '../helpers/cliSession.js';

let cli: CliSession;

beforeAll(async () => {
  cli = createCliSession();
  copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), cli.path('release.cantbook'));
  // Two issues: the version is the number 1.0, and the only edge names a node that does not exist.
  writeFileSync(cli.path('invalid.cantbook'), 'version: 1.0\nname: broken\nnodes:\n  - { id: a, type: agentic, skill: s }\nedges:\n  - { from: a, to: ghost }\n');
  writeFileSync(cli.path('random.db'), Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 131 + 7) % 256)));
  mkdirSync(cli.path('a-directory.db'));
  writeFileSync(cli.path('a-file'), 'not a directory\n');

  // A real database, then every page after the first overwritten: the kind of damage a bad disk or a careless copy does.
  const made = await cli.json<{ terminalStatus: string }>(['--db', 'damaged.db', 'run', 'release.cantbook', '--input', 'targetVersion=1.0.0', '--agent', demoAgent]);
  expect(made.terminalStatus).toBe('pending_approval');
  const fd = openSync(cli.path('damaged.db'), 'r+');
  try {
    const size = fstatSync(fd).size;
    expect(size).toBeGreaterThan(8192);
    writeSync(fd, Buffer.alloc(size - 4096, 0xa5), 0, size - 4096, 4096);
  } finally {
    closeSync(fd);
  }
});
afterAll(() => cli.remove());

interface BadInput {
  name: string;
  args: string[];
  code: string;
  options?: CallOptions;
  /** Text the human-mode message must contain. */
  says?: string | RegExp;
  /** Also run it with --json (once per code is enough: one function prints every error). */
  json?: true;
}

/**
 * The cases the issue names, through the process boundary (main.ts). More
 * usage and configuration errors are checked in-process, without spawning,
 * in test/unit/cli/commandErrors.test.ts.
 */
const cases: BadInput[] = [
  { name: 'missing file', args: ['validate', 'missing.cantbook'], code: 'E_FILE_UNREADABLE', says: "cannot read playbook 'missing.cantbook': no such file", json: true },
  {
    name: 'invalid playbook: validate lists every issue with file:line:col',
    args: ['validate', 'invalid.cantbook'],
    code: 'E_PLAYBOOK_PARSE',
    says: /^ {2}invalid\.cantbook:1:10 {2}I_VERSION .*\n {2}invalid\.cantbook:6:\d+ {2}I_UNKNOWN_REF .*ghost/m,
  },
  { name: 'invalid playbook: run', args: ['run', 'invalid.cantbook', '--agent', demoAgent], code: 'E_PLAYBOOK_PARSE', says: 'I_UNKNOWN_REF', json: true },
  { name: 'missing required input', args: ['run', 'release.cantbook', '--agent', demoAgent], code: 'E_INPUT_MISSING', says: "needs input 'targetVersion'\nhint: pass --input targetVersion='<value>'", json: true },
  {
    name: 'undeclared input',
    args: ['run', 'release.cantbook', '--agent', demoAgent, '--input', 'targetVersion=1.0.0', '--input', 'bogus=1'],
    code: 'E_INPUT_UNKNOWN',
    says: "does not declare input 'bogus'; it declares 'targetVersion', 'channel'\nhint: the playbook takes --input targetVersion='<value>' --input channel='<value>'",
    json: true,
  },
  { name: 'unreadable db: the path is a directory', args: ['--db', 'a-directory.db', 'runs'], code: 'E_STORE_UNAVAILABLE', json: true },
  { name: 'unreadable db: a parent is a file', args: ['--db', 'a-file/cantbook.db', 'runs'], code: 'E_STORE_UNAVAILABLE' },
  { name: 'corrupt db: not a SQLite file', args: ['--db', 'random.db', 'runs'], code: 'E_LOG_CORRUPT', says: 'not a SQLite database or is corrupt' },
  { name: 'corrupt db: pages overwritten', args: ['--db', 'damaged.db', 'verify'], code: 'E_LOG_CORRUPT', json: true },
  { name: 'corrupt db: named by CANTBOOK_DB', args: ['approvals'], code: 'E_LOG_CORRUPT', options: { env: { CANTBOOK_DB: 'damaged.db' } } },
  { name: 'unknown command', args: ['frobnicate'], code: 'E_USAGE', says: "unknown command 'frobnicate'", json: true },
  { name: 'unknown flag', args: ['runs', '--frob'], code: 'E_USAGE', says: "unknown option '--frob'", json: true },
];

/** The exit code docs/errors.md gives each code. */
const EXIT: Record<string, number> = { ...exitCodes };

describe('bad input gets a coded message and a non-zero exit, never a stack trace', () => {
  // Independent processes on independent files: run side by side.
  it.concurrent.each(cases)('$name -> $code', async ({ args, code, options, says, json }) => {
    const exit = EXIT[code] ?? -1;
    expect(exit).toBeGreaterThan(0);
    const [human, asJson] = await Promise.all([cli.run(args, options), json ? cli.run([...args, '--json'], options) : undefined]);
    const stderr = expectCodedError(human, code, exit);
    if (typeof says === 'string') expect(stderr).toContain(says);
    else if (says) expect(stderr).toMatch(says);
    if (asJson) expectJsonError(asJson, code, exit);
  });

  it('no command prints the help, then error[E_USAGE] (exit 64)', async () => {
    const [human, json] = await Promise.all([cli.run([]), cli.run(['--json'])]);
    expect({ code: human.code, stdout: human.stdout }).toEqual({ code: 64, stdout: '' });
    expect(human.stderr).toMatch(/^Usage: cantbook \[options\] \[command\]\n/);
    expect(human.stderr).toMatch(/\nerror\[E_USAGE\]: no command given\nhint: see 'cantbook --help' or 'cantbook <command> --help'\n$/);
    expect(JSON.parse(json.stdout)).toEqual({ error: { code: 'E_USAGE', message: 'no command given' } });
    expect(json.code).toBe(64);
  });

  it('a missing required input or a missing agent writes nothing: no database, no secret file', async () => {
    mkdirSync(cli.path('fresh'));
    const options = { cwd: 'fresh' };
    const [noInput, noAgent] = await Promise.all([cli.run(['run', '../release.cantbook'], options), cli.run(['run', '../release.cantbook', '--input', 'targetVersion=1.0.0'], options)]);
    expectCodedError(noInput, 'E_INPUT_MISSING', 64);
    expectCodedError(noAgent, 'E_ADAPTER_INVALID', 78);
    expect(existsSync(cli.path('fresh', '.cantbook'))).toBe(false);
  });

  it('an invalid playbook in --json mode carries every issue with its position', async () => {
    const result = await cli.run(['validate', 'invalid.cantbook', 'release.cantbook', '--json']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 70, stderr: '' });
    const body = JSON.parse(result.stdout) as { ok: boolean; files: { file: string; ok: boolean; issues?: { code: string; line?: number; column?: number }[] }[] };
    expect(body.ok).toBe(false);
    expect(body.files.map((file) => [file.file, file.ok])).toEqual([['invalid.cantbook', false], ['release.cantbook', true]]);
    expect(body.files[0]?.issues?.map((issue) => [issue.code, issue.line])).toEqual([['I_VERSION', 1], ['I_UNKNOWN_REF', 6]]);
  });

  it('the damaged database was not rewritten by the failed commands', () => {
    const bytes = readFileSync(cli.path('damaged.db'));
    expect(bytes.subarray(4096).every((byte) => byte === 0xa5)).toBe(true);
  });
});
