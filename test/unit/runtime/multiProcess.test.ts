import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { approveGate } from '../../../src/runtime/gates.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import { DEFAULT_LEASE_MS } from '../../../src/runtime/runSession.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, SECRET, tempStore } from '../../helpers/runtimeHarness.js';

const child = join(import.meta.dirname, 'fixtures', 'runtimeChild.ts');
/** Children a test started: killed after it, so a failed assertion never leaves one running. */
const started = new Set<ChildProcess>();
const spawnChild = (args: string[]): ChildProcess => {
  const proc = fork(child, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  started.add(proc);
  return proc;
};

let dir: string;
let spec: string;
let open: () => Promise<EventStore>;
let cleanup: () => Promise<void>;
let store: EventStore;
beforeEach(async () => ({ store, dir, spec, open, cleanup } = await tempStore()));
afterEach(async () => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  started.clear();
  await cleanup();
});

async function waitFor(file: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600 && !existsSync(file); i++) {
    if (child.exitCode !== null) throw new Error(`child exited with ${child.exitCode} early`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!existsSync(file)) throw new Error(`timed out waiting for ${file}`);
}

/** A clock past any lease a driver killed just now still holds: what a worker sees once it expired. */
const afterLease = () => new Date(Date.now() + DEFAULT_LEASE_MS + 1000);

describe('multi-process runtime', () => {
  it('a run whose process is SIGKILLed mid-node is finished by recoverRun in another process', async () => {
    const source = `version: "1.0"\nname: crash\nnodes:\n  - { id: a, type: agentic, skill: s }\n  - { id: b, type: agentic, skill: s, depends: [a] }\n  - { id: c, type: agentic, skill: s, depends: [b] }\n`;
    const file = join(dir, 'crash.cantbook');
    const marker = join(dir, 'b-started');
    writeFileSync(file, source);
    const proc = spawnChild(['hang', spec, file, marker]);
    await waitFor(marker, proc);

    // While the child lives, recovery leaves its run alone and writes nothing.
    const [liveRunId] = await store.listRunIds();
    const started = (await readRunEvents(store, liveRunId as string)).at(-1);
    expect(started?.data).toMatchObject({ nodeId: 'b', attempt: 1, owner: { host: hostname(), pid: proc.pid } });
    // Its lease is live: recovery leaves the run alone.
    await expect(recoverRun({ store, runId: liveRunId as string, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({
      code: 'E_RUN_ACTIVE',
      details: { runId: liveRunId, owner: `${hostname()}:${proc.pid}` },
    });
    expect((await readRunEvents(store, liveRunId as string)).at(-1)?.seq).toBe(started?.seq);

    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');

    const [runId] = await store.listRunIds();
    const before = await readRunEvents(store, runId as string);
    expect(before.map((e) => e.type).slice(-2)).toEqual(['NodeSucceeded', 'NodeStarted']);
    expect((await store.getRun(runId as string))?.status).toBe('running');

    // The dead driver's lease is still live for up to DEFAULT_LEASE_MS: recovery refuses until then, and takes over after.
    await expect(recoverRun({ store, runId: runId as string, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_RUN_ACTIVE' });
    const dispatcher = scriptedDispatcher();
    const result = await recoverRun({ store, runId: runId as string, dispatcher, now: afterLease });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((c) => `${c.nodeId}#${c.iteration}`)).toEqual(['b#2', 'c#1']);
    const events = await readRunEvents(store, runId as string);
    const interrupted = events.find((e) => e.type === 'NodeFailed');
    expect(interrupted?.data).toMatchObject({ nodeId: 'b', attempt: 1, interrupted: true });
    expect(await verifyRun(store, runId as string)).toMatchObject({ runId, ok: true, problems: [] });
    expect(result.finalContext).toMatchObject({ a: 'child', b: 'done', c: 'done' });
  });

  it('SIGKILL while three branch attempts are in flight: recovery records three interrupted failures and finishes the run', async () => {
    const source = [
      'version: "1.0"', 'name: fan', 'nodes:',
      '  - { id: start, type: agentic, skill: s }',
      '  - id: group', '    type: parallel', '    depends: [start]', '    branches:',
      '      - { id: A, nodes: [{ id: p1, type: agentic, skill: s }] }',
      '      - { id: B, nodes: [{ id: p2, type: agentic, skill: s }] }',
      '      - { id: C, nodes: [{ id: p3, type: agentic, skill: s }] }',
      '  - { id: end, type: agentic, skill: s, depends: [group] }', '',
    ].join('\n');
    const file = join(dir, 'fan.cantbook');
    writeFileSync(file, source);
    const proc = spawnChild(['hang-branches', spec, file, dir]);
    for (const node of ['p1', 'p2', 'p3']) await waitFor(join(dir, node), proc);
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    expect((await exited)[1]).toBe('SIGKILL');

    const [runId] = await store.listRunIds();
    expect((await store.getRun(runId as string))?.activeNodes.filter((node) => node.phase === 'running').map((node) => node.nodeId)).toEqual(['group', 'p1', 'p2', 'p3']);
    const dispatcher = scriptedDispatcher();
    const result = await recoverRun({ store, runId: runId as string, dispatcher, now: afterLease });
    expect(result.terminalStatus).toBe('completed');
    const events = await readRunEvents(store, runId as string);
    const interrupted = events.filter((e) => e.type === 'NodeFailed' && e.data.interrupted === true).map((e) => e.type === 'NodeFailed' && e.data.nodeId);
    expect(interrupted.sort()).toEqual(['p1', 'p2', 'p3']);
    expect(dispatcher.calls.map((c) => `${c.nodeId}#${c.iteration}`).sort()).toEqual(['end#1', 'p1#2', 'p2#2', 'p3#2']);
    expect(result.finalContext).toMatchObject({ start: 'child', p1: 'done', p2: 'done', p3: 'done', end: 'done' });
    expect((await verifyRun(store, runId as string)).ok).toBe(true);
  });

  it('two processes resuming one approved gate: exactly one proceeds, downstream runs once', async () => {
    const release = playbookFrom(`version: "1.0"\nname: rel\nnodes:\n  - { id: build, type: agentic, skill: s }\n  - { id: gate, type: approval, prompt: ok?, depends: [build] }\n  - { id: publish, type: agentic, skill: s, depends: [gate] }\n  - { id: announce, type: agentic, skill: s, depends: [publish] }\n`);
    const paused = await executePlaybook({ store, ...release, dispatcher: scriptedDispatcher(), approvalSecret: SECRET });
    const token = paused.approvalToken as string;
    await approveGate({ store, token, approver: 'alice', approvalSecret: SECRET });

    const log = join(dir, 'dispatches.log');
    writeFileSync(log, '');
    const children = [spawnChild(['resume', spec, token, log]), spawnChild(['resume', spec, token, log])];
    const messages = children.map((c) => {
      const all: { kind: string; ok?: boolean; code?: string; status?: string }[] = [];
      c.on('message', (m) => all.push(m as never));
      return all;
    });
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      const check = () => (messages[children.indexOf(c)]?.some((m) => m.kind === 'ready') ? resolve() : setTimeout(check, 10));
      check();
    })));
    for (const c of children) c.send({ kind: 'go' });
    await Promise.all(children.map((c) => once(c, 'exit')));

    const results = messages.map((all) => all.find((m) => m.kind === 'result'));
    expect(results.filter((r) => r?.ok)).toHaveLength(1);
    expect(results.find((r) => r?.ok)?.status).toBe('completed');
    expect(results.find((r) => !r?.ok)?.code).toBe('E_PLAYBOOK_RESUME_BLOCKED');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['publish', 'announce']);

    const check = await open();
    const events = await readRunEvents(check, paused.runId);
    expect(events.filter((e) => e.type === 'RunResumed')).toHaveLength(1);
    expect((await verifyRun(check, paused.runId)).ok).toBe(true);
  });
});
