/**
 * `cantbook watch` / `log --follow` and `cantbook completion` (SPEC §7,
 * issue 16) through the real CLI: a run driven by another process is
 * followed live until it waits at its gate (and, approved, until it ends);
 * the bash completion script, sourced in a real bash, completes commands,
 * options, option choices and files.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cliPath, createCliSession, runProcess } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

let cli: CliSession;
beforeAll(() => {
  cli = createCliSession();
  // Two commands that take a while each, then a gate: the follower sees the events arrive one by one.
  writeFileSync(
    cli.path('slow.cantbook'),
    `version: "1.0"
name: slow
nodes:
  - { id: first, type: deterministic, command: "${process.execPath}", args: ["-e", "setTimeout(() => {}, 1500)"] }
  - { id: second, type: deterministic, depends: [first], command: "${process.execPath}", args: ["-e", "setTimeout(() => {}, 1500)"] }
  - { id: gate, type: approval, depends: [second], prompt: "ship it?" }
  - { id: after, type: deterministic, depends: [gate], command: "${process.execPath}", args: ["-e", "setTimeout(() => {}, 300)"] }
`,
  );
});
afterAll(() => cli.remove());

/** The id of the first run the store lists, once there is one. */
async function firstRunId(): Promise<string> {
  for (let tries = 0; tries < 200; tries++) {
    // Until the driver created the database, `runs` says it is not there (read-only commands create nothing).
    const listed = await cli.run(['runs', '--json']);
    const rows = listed.code === 0 ? (JSON.parse(listed.stdout) as { runId: string }[]) : [];
    if (rows[0] !== undefined) return rows[0].runId;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no run appeared');
}

describe('cantbook watch and log --follow', () => {
  it('follow a run another process drives, live, until it waits at its gate; then until it ends', async () => {
    const driving = cli.run(['run', 'slow.cantbook', '--json']);
    const runId = await firstRunId();
    const launched = Date.now();
    const watched = await cli.run(['watch', runId]);
    const returned = Date.now();
    expect({ code: watched.code, stderr: watched.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = watched.stdout.trimEnd().split('\n');
    // Every event of the run, in order, then where it stopped.
    expect(lines.slice(0, -1).map((line) => line.trim().split(/\s+/)[2])).toEqual(['RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeStarted', 'NodeSucceeded', 'RunPaused']);
    expect(lines.at(-1)).toBe(`⏸ run ${runId} is waiting for a human at 'gate'`);
    // It was live: launched while the run still worked (3 s of commands), it returned only once the run reached the gate.
    const pausedAt = Date.parse((await cli.json<{ type: string; at: string }[]>(['log', runId])).find((event) => event.type === 'RunPaused')?.at ?? '');
    expect(launched).toBeLessThan(pausedAt);
    expect(returned).toBeGreaterThanOrEqual(pausedAt);
    const paused = JSON.parse((await driving).stdout) as { terminalStatus: string; approvalToken: string };
    expect(paused.terminalStatus).toBe('pending_approval');

    // --json: one event per line. Approved, the run goes on (`after` takes a while) and a follower
    // started then stops at its end, not at the gate it already passed.
    const approving = cli.run(['approve', paused.approvalToken, '--by', 'alice']);
    for (let tries = 0; tries < 200; tries++) {
      const log = await cli.json<{ type: string }[]>(['log', runId]);
      if (log.some((event) => event.type === 'ApprovalGranted')) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const followed = await cli.run(['log', runId, '--follow', '--json']);
    expect((await approving).code).toBe(0);
    expect(followed.code).toBe(0);
    const events = followed.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { seq: number; type: string });
    expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)?.type).toBe('RunCompleted');
  }, 60_000);

  it('a run that does not exist is E_RUN_NOT_FOUND, and nothing is created', async () => {
    const missing = await cli.run(['watch', 'no-such-run']);
    expect(missing.code).toBe(67);
    expect(missing.stderr).toContain('E_RUN_NOT_FOUND');
  });
});

describe('run ids by a unique start (SPEC §7)', () => {
  it('show, log and watch take any start of an id that names one run; a shared start is refused with the runs it names', async () => {
    writeFileSync(cli.path('quick.cantbook'), `version: "1.0"\nname: quick\nnodes:\n  - { id: only, type: deterministic, command: "${process.execPath}", args: ["-e", ""] }\n`);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((JSON.parse((await cli.run(['--db', 'ids.db', 'run', 'quick.cantbook', '--json'])).stdout) as { runId: string }).runId);
    const [first, second] = ids as [string, string];
    let shared = 0;
    while (first[shared] === second[shared]) shared += 1;
    const unique = first.slice(0, shared + 1);
    expect((await cli.json<{ runId: string }>(['--db', 'ids.db', 'show', unique])).runId).toBe(first);
    expect((await cli.json<{ runId: string }[]>(['--db', 'ids.db', 'log', unique]))[0]?.runId).toBe(first);
    const watched = await cli.run(['--db', 'ids.db', 'watch', unique]);
    expect(watched.stdout.trimEnd().split('\n').at(-1)).toBe(`✔ run ${first} completed`);
    const ambiguous = await cli.run(['--db', 'ids.db', 'show', first.slice(0, shared)]);
    expect(ambiguous.code).toBe(64);
    expect(ambiguous.stderr).toContain(`is the start of 2 run ids (${[first, second].sort().join(', ')}); give more of the id`);
    expect((await cli.run(['--db', 'ids.db', 'show', 'zzzz'])).code).toBe(67);
  });
});

describe('cantbook completion', () => {
  /** What `_cantbook` offers for a command line (the last word is the one being completed). */
  async function complete(...words: string[]): Promise<string[]> {
    const script = `source <("${process.execPath}" "${cliPath}" completion bash)
COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _cantbook
printf '%s\\n' "\${COMPREPLY[@]}"`;
    const result = await runProcess('bash', ['-c', script], { cwd: cli.dir, env: cleanEnv() });
    expect(result.stderr).toBe('');
    return result.stdout.split('\n').filter((line) => line !== '');
  }

  it("bash: commands, a command's options, an option's choices, and files", async () => {
    expect(await complete('cantbook', 'ru')).toEqual(['run', 'runs']);
    expect(await complete('cantbook', '--db', 'x.db', 'wa')).toEqual(['watch']);
    expect(await complete('cantbook', 'runs', '--st')).toEqual(['--status']);
    expect(await complete('cantbook', 'runs', '--status', 'p')).toEqual(['paused']);
    expect(await complete('cantbook', 'log', 'abc', '--fo')).toEqual(['--follow']);
    expect(await complete('cantbook', 'run', 'slo')).toEqual(['slow.cantbook']);
  });

  it('zsh gets the same completion through bashcompinit; an unknown shell is E_USAGE', async () => {
    const zsh = await cli.run(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout.split('\n').slice(0, 3)).toEqual(['#compdef cantbook', '# cantbook completion for zsh (generated by `cantbook completion zsh`)', 'autoload -U +X bashcompinit && bashcompinit']);
    expect(zsh.stdout).toContain('complete -o default -F _cantbook cantbook');
    const fish = await cli.run(['completion', 'fish']);
    expect(fish.code).toBe(64);
    expect(fish.stderr).toContain("unknown shell 'fish'");
  });
});
