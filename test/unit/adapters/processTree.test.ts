/**
 * Every process an attempt starts dies with the process that started it (SPEC §4, §14), SIGKILL
 * included: real driver processes (fixtures/treeDriver.ts) running real process trees through the
 * adapters, killed at random moments. The oracle is the kernel's process table (/proc), not cantbook.
 * Also: what runChild reports through the supervisor (exit codes, signals, environment, spawn errors)
 * and what the command sees of it (group, session, no link). Linux: the oracle reads /proc.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KILL_GRACE_MS, DEFAULT_MAX_OUTPUT_BYTES, runChild } from '../../../src/adapters/childProcess.js';
import type { ChildResult, ChildSpec } from '../../../src/adapters/childProcess.js';
import { isAlive, waitUntil } from './helpers.js';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const driverScript = join(import.meta.dirname, 'fixtures', 'treeDriver.ts');
/** Pinned when given (TREE_SEED=...), printed in every failure so a run can be replayed. */
const seed = Number(process.env.TREE_SEED ?? Date.now() % 2 ** 31);
let state = seed;
/** mulberry32: a uniform number in [0, 1) from the seed. */
function random(): number {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let root: string;
const drivers: ChildProcess[] = [];
const tokens: string[] = [];
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cantbook-tree-'));
});
afterEach(() => {
  // Belt and braces: a failing assertion must not leave the test's processes behind.
  for (const driver of drivers.splice(0)) driver.kill('SIGKILL');
  for (const token of tokens.splice(0)) for (const pid of processesWith(token)) process.kill(pid, 'SIGKILL');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Live processes whose command line or environment holds `token` (a trial's directory name). */
function processesWith(token: string, except: readonly number[] = []): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || except.includes(pid)) continue;
    try {
      const seen = readFileSync(`/proc/${pid}/cmdline`, 'utf8') + readFileSync(`/proc/${pid}/environ`, 'utf8');
      if (seen.includes(token) && isAlive(pid)) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Fields of /proc/<pid>/stat after the command name: ppid, process group, session. */
function statOf(pid: number): { ppid: number; pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const [, ppid, pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number) as number[];
  return { ppid: ppid as number, pgrp: pgrp as number, session: session as number };
}

/** The pids the tree's shells wrote (a.pid: one; b.pid: the shell and its background subshell). */
function recordedPids(dir: string): number[] {
  const pids: number[] = [];
  for (const file of ['a.pid', 'b.pid']) {
    if (existsSync(join(dir, file))) pids.push(...readFileSync(join(dir, file), 'utf8').trim().split(/\s+/).map(Number));
  }
  return pids;
}

interface Trial {
  dir: string;
  token: string;
  driver: ChildProcess;
  exited: Promise<NodeJS.Signals | null>;
}

/** Starts `treeDriver.ts <dir> <mode>` and resolves once it printed `spawning` (it starts its children next). */
async function startDriver(mode: 'tree' | 'leftover'): Promise<Trial> {
  const dir = mkdtempSync(join(root, 'trial-'));
  const token = basename(dir);
  tokens.push(token);
  const driver = spawn(process.execPath, ['--import', 'tsx', driverScript, dir, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  drivers.push(driver);
  const exited = new Promise<NodeJS.Signals | null>((resolve) => driver.once('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    driver.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString('utf8').includes('spawning')) resolve();
    });
    void exited.then(() => reject(new Error(`the driver exited before it spawned anything (seed ${seed})`)));
  });
  return { dir, token, driver, exited };
}

/**
 * Kills the driver with `signal` and checks that within one second no process of its tree is alive:
 * neither one the kernel lists with the trial's token nor one the shells recorded.
 */
async function killAndCheck(trial: Trial, signal: NodeJS.Signals, label: string): Promise<void> {
  trial.driver.kill(signal);
  expect(await trial.exited, `${label}: the driver died of ${signal} (seed ${seed})`).toBe(signal);
  const gone = await waitUntil(() => processesWith(trial.token).length === 0 && recordedPids(trial.dir).every((pid) => !isAlive(pid)), 1000);
  expect(gone, `${label}: alive a second after the driver died: ${processesWith(trial.token).join(', ')} (seed ${seed})`).toBe(true);
}

/** After every sleep of the trials' trees would have ended: none of them wrote its marker. */
async function expectNoMarkers(trials: readonly Trial[], sleptMs: number): Promise<void> {
  await sleep(sleptMs + 300);
  for (const { dir } of trials) {
    expect(['marker', 'marker2'].filter((file) => existsSync(join(dir, file))), `markers in ${dir} (seed ${seed})`).toEqual([]);
  }
}

/** Waits until the tree is up: both shells recorded their pids and the agent read its stdin. */
async function treeUp(trial: Trial): Promise<void> {
  const up = await waitUntil(() => ['a.pid', 'b.pid', 'stdin.json'].every((file) => existsSync(join(trial.dir, file))), 10_000);
  expect(up, `the tree in ${trial.dir} came up (seed ${seed})`).toBe(true);
}

describe.skipIf(process.platform !== 'linux')('a driver that dies takes its child processes with it', () => {
  it('SIGKILL while the tree runs, at random moments: within 1 s nothing of it is alive, and nothing it would have done happens', async () => {
    const trials: Trial[] = [];
    for (let i = 0; i < 5; i++) {
      const trial = await startDriver('tree');
      trials.push(trial);
      await treeUp(trial);
      const before = processesWith(trial.token, [trial.driver.pid as number]);
      // The oracle sees the tree: what the shells recorded, and the two supervisors leading their groups.
      expect(before).toEqual(expect.arrayContaining(recordedPids(trial.dir)));
      const supervisors = before.filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('cantbook-supervisor'));
      expect(supervisors.map((pid) => statOf(pid))).toEqual([
        { ppid: trial.driver.pid, pgrp: supervisors[0], session: supervisors[0] },
        { ppid: trial.driver.pid, pgrp: supervisors[1], session: supervisors[1] },
      ]);
      // The request reached the agent's stdin through its supervisor.
      expect(JSON.parse(readFileSync(join(trial.dir, 'stdin.json'), 'utf8'))).toMatchObject({ runId: 'run-1', nodeId: 'n1' });
      await sleep(random() * 300);
      await killAndCheck(trial, 'SIGKILL', `trial ${i}`);
    }
    await expectNoMarkers(trials, 1000);
  });

  it('SIGKILL while the children are being started (before or just after a supervisor watches): nothing survives', async () => {
    const trials: Trial[] = [];
    for (let i = 0; i < 5; i++) {
      const trial = await startDriver('tree');
      trials.push(trial);
      // A supervisor takes 30-60 ms to start, then starts its command: kill somewhere in or around that window.
      await sleep(random() * 100);
      await killAndCheck(trial, 'SIGKILL', `early trial ${i}`);
    }
    await expectNoMarkers(trials, 1000);
  });

  it('SIGTERM to a driver without a handler (default action): the tree dies too', async () => {
    const trials: Trial[] = [];
    for (let i = 0; i < 2; i++) {
      const trial = await startDriver('tree');
      trials.push(trial);
      await treeUp(trial);
      await sleep(random() * 200);
      await killAndCheck(trial, 'SIGTERM', `SIGTERM trial ${i}`);
    }
    await expectNoMarkers(trials, 1000);
  });

  it('SIGKILL while the driver waits out the grace period of what an exited command left behind: it dies too', async () => {
    const trial = await startDriver('leftover');
    const up = await waitUntil(() => existsSync(join(trial.dir, 'b.pid')), 10_000);
    expect(up, `the leftover tree came up (seed ${seed})`).toBe(true);
    const [shell, subshell] = recordedPids(trial.dir) as [number, number];
    // The command has exited and its subshell ignores SIGTERM: the driver is in its 20 s grace period.
    expect(await waitUntil(() => !isAlive(shell), 2000)).toBe(true);
    await sleep(100);
    expect(isAlive(subshell)).toBe(true);
    await killAndCheck(trial, 'SIGKILL', 'leftover');
    await expectNoMarkers([trial], 2000);
  });
});

describe.skipIf(process.platform !== 'linux')('runChild through the supervisor', () => {
  const node = (script: string, overrides: Partial<ChildSpec> = {}): Promise<ChildResult> =>
    runChild({
      command: process.execPath,
      args: ['-e', script],
      cwd: root,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES,
      killGraceMs: DEFAULT_KILL_GRACE_MS,
      ...overrides,
    });
  const stdoutOf = (result: ChildResult): string => (result.kind === 'exited' ? result.stdout.text : `(${result.message})`);

  it('gives the command exactly spec.env: the supervisor adds nothing and NODE_OPTIONS there does not reach the supervisor', async () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ONLY: 'this', NODE_OPTIONS: '--no-such-node-flag-for-the-supervisor' };
    // The command is not Node (Node would refuse the flag too): env prints its environment as it got it.
    const result = await runChild({ command: 'env', args: [], cwd: root, env, maxOutputBytes: DEFAULT_MAX_OUTPUT_BYTES, killGraceMs: DEFAULT_KILL_GRACE_MS });
    expect(result).toMatchObject({ kind: 'exited', exitCode: 0, exitSignal: null });
    expect(stdoutOf(result).trim().split('\n').sort()).toEqual(Object.entries(env).map(([name, value]) => `${name}=${value}`).sort());
  });

  it('reports the command exit code and the signal that killed it as they were, 143 and SIGTERM apart', async () => {
    expect(await node('process.exit(143)')).toMatchObject({ kind: 'exited', exitCode: 143, exitSignal: null, stoppedBy: null });
    expect(await node(`process.kill(process.pid, 'SIGTERM')`)).toMatchObject({ kind: 'exited', exitCode: null, exitSignal: 'SIGTERM', stoppedBy: null });
    expect(await node(`process.stdout.write('out'); process.stderr.write('err'); process.exit(0)`)).toMatchObject({
      kind: 'exited',
      exitCode: 0,
      stdout: { text: 'out' },
      stderr: { text: 'err' },
    });
  });

  it('passes stdin through', async () => {
    const result = await node(`let t = ''; process.stdin.on('data', (c) => (t += c)).on('end', () => process.stdout.write(t.toUpperCase()))`, { stdin: 'hello\n' });
    expect(stdoutOf(result)).toBe('HELLO\n');
  });

  it('runs the command in the supervisor group and session, apart from the driver, without the link to the driver', async () => {
    const script = `
      const fs = require('node:fs');
      const stat = (pid) => { const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ').slice(1, 4).map(Number); };
      const [ppid, pgrp, session] = stat('self');
      const links = fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return null; } });
      process.stdout.write(JSON.stringify({ ppid, pgrp, session, supervisorParent: stat(ppid)[0], link: fs.readlinkSync('/proc/' + ppid + '/fd/3'), links }));`;
    const seen = JSON.parse(stdoutOf(await node(script))) as { ppid: number; pgrp: number; session: number; supervisorParent: number; link: string; links: string[] };
    expect(seen.supervisorParent).toBe(process.pid);
    expect(seen.pgrp).toBe(seen.ppid);
    expect(seen.session).toBe(seen.ppid);
    expect(statOf(process.pid).pgrp).not.toBe(seen.pgrp);
    expect(seen.link).toMatch(/^socket:/);
    expect(seen.links).not.toContain(seen.link);
  });

  it('reports commands that cannot start as before: missing, not executable', async () => {
    expect(await node('', { command: 'cantbook-no-such-command-xyz' })).toEqual({
      kind: 'spawn_error',
      message: `command 'cantbook-no-such-command-xyz' was not found (is it installed and on PATH?)`,
    });
    const script = join(root, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\necho ran\n');
    chmodSync(script, 0o644);
    expect(await node('', { command: script })).toEqual({ kind: 'spawn_error', message: `command '${script}' is not executable (permission denied)` });
  });

  it('stops the command on abort through the supervisor, and the supervisor with it', async () => {
    const controller = new AbortController();
    const pidFile = join(root, 'abort.pid');
    const running = node(`require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.ppid) + ' ' + process.pid); setInterval(() => {}, 1000)`, {
      signal: controller.signal,
    });
    expect(await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').includes(' '))).toBe(true);
    const [supervisor, command] = readFileSync(pidFile, 'utf8').split(' ').map(Number) as [number, number];
    controller.abort();
    expect(await running).toMatchObject({ kind: 'exited', exitSignal: 'SIGTERM', stoppedBy: 'abort' });
    expect(await waitUntil(() => !isAlive(supervisor) && !isAlive(command))).toBe(true);
  });
});
