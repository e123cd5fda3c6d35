/**
 * `cantbook ui --help` shows examples that run as written (issue 16): each
 * line is pasted into a real bash, in a directory laid out like a checkout
 * (starter/ and a database made by the starter), and must serve the viewer.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cliPath, createCliSession, repoRoot } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

let cli: CliSession;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  cli = createCliSession();
  mkdirSync(cli.path('starter'));
  for (const file of ['release.cantbook', 'demo-agent.mjs']) copyFileSync(join(repoRoot, 'starter', file), cli.path('starter', file));
  // `cantbook` on PATH, as an installed package puts it.
  mkdirSync(cli.path('bin'));
  writeFileSync(cli.path('bin', 'cantbook'), `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' "$@"\n`);
  chmodSync(cli.path('bin', 'cantbook'), 0o755);
  env = cleanEnv({ PATH: `${cli.path('bin')}:${process.env.PATH ?? ''}` });
  const started = await cli.run(['run', 'starter/release.cantbook', '--input', 'targetVersion=1.0.0', '--agent', 'exec:node starter/demo-agent.mjs']);
  expect(started.code).toBe(0);
});
afterAll(() => cli?.remove());

/** The example lines of `cantbook ui --help`, without their `$ `. */
async function examples(): Promise<string[]> {
  const help = await cli.run(['ui', '--help']);
  expect(help.code).toBe(0);
  return (help.stdout.split('\nExamples:\n')[1] ?? '').trimEnd().split('\n').map((line) => line.replace(/^ {2}\$ /, ''));
}

/** Pastes `line` into bash; resolves once it names its URL (it keeps serving until `stop`), or once it exits. */
function paste(line: string): Promise<{ url: string | null; output: () => string; code: number | null; stop: () => Promise<void> }> {
  const child = spawn('bash', ['-c', line], { cwd: cli.dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  const stop = async (): Promise<void> => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await exited;
  };
  return new Promise((resolve) => {
    const read = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const url = /open: (http:\/\/\S+)/.exec(output)?.[1];
      if (url !== undefined) resolve({ url, output: () => output, code: null, stop });
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    void exited.then((code) => resolve({ url: null, output: () => output, code, stop }));
  });
}

describe('cantbook ui --help', () => {
  it('every example runs as written and serves the viewer of the database it names', async () => {
    const lines = await examples();
    expect(lines).toHaveLength(3);
    const before = readdirSync(cli.dir).sort();
    for (const line of lines) {
      const { url, output, code, stop } = await paste(line);
      try {
        // Port 8080 may be taken on a shared machine: that is the one refusal allowed, and it is coded.
        if (url === null && /--port 8080/.test(line) && /error\[E_UI_UNAVAILABLE\]/.test(output())) continue;
        expect({ line, url: url === null ? null : 'printed', code }, output()).toEqual({ line, url: 'printed', code: null });
        const { origin, hash } = new URL(url as string);
        const runs = await fetch(`${origin}/api/runs`, { headers: { 'x-cantbook-key': hash.replace('#key=', '') } });
        expect(runs.status).toBe(200);
        const body = (await runs.json()) as { runs: { playbookName: string; status: string }[] };
        expect(body.runs).toMatchObject([{ playbookName: 'release', status: 'paused' }]);
      } finally {
        await stop();
      }
    }
    // Nothing was made by a shell redirect or a stray database.
    expect(readdirSync(cli.dir).sort()).toEqual(before);
  });
});
