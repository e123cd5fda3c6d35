/**
 * Every command's `--help` ends with examples of that command, and names the
 * global --db and --json options; `cantbook --help` lists every command.
 * In-process through runCli (the e2e tests spawn the built CLI).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/runCli.js';

/** The commands of issue 4; `inspect` and `ui` are documented with the viewer (docs/visualize.md). */
const COMMANDS = ['validate', 'run', 'approve', 'reject', 'resume', 'runs', 'approvals', 'show', 'log', 'verify', 'recover', 'export', 'cancel', 'retry', 'worker'];

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    cwd: process.cwd(),
    env: {},
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

describe('--help', () => {
  it('cantbook --help lists every command and the global options, with examples', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    const listed = stdout.split('Commands:')[1]?.split('\n').map((line) => /^ {2}(\w+)/.exec(line)?.[1]).filter(Boolean) ?? [];
    expect(listed).toEqual(expect.arrayContaining(COMMANDS));
    expect(stdout).toContain('--db <path>');
    expect(stdout).toContain('--json');
    expect(stdout).toMatch(/\nExamples:\n {2}\$ cantbook /);
  });

  it.each(COMMANDS)('cantbook %s --help shows its usage and examples of it', async (name) => {
    const { code, stdout, stderr } = await cli([name, '--help']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(new RegExp(`^Usage: cantbook ${name} `));
    expect(stdout).toMatch(/\nGlobal Options:\n(.*\n)* {2}--db <path> (.*\n)* {2}--json /);
    const examples = stdout.split('\nExamples:\n')[1]?.trimEnd().split('\n') ?? [];
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) expect(example).toMatch(new RegExp(`^ {2}\\$ cantbook (--db \\S+ )?${name}\\b`));
  });
});
