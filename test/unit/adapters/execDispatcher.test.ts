/** createExecDispatcher against a real agent process (fixtures/agent.mjs). */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toDispatchPayload } from '../../../src/adapters/agentProtocol.js';
import { createExecDispatcher } from '../../../src/adapters/execDispatcher.js';
import type { NodeOutcome } from '../../../src/adapters/types.js';
import { E_ADAPTER_INVALID } from '../../../src/errors.js';
import { dispatchRequest, isAlive, waitUntil } from './helpers.js';

const agent = join(import.meta.dirname, 'fixtures', 'agent.mjs');
const withMode = (mode: string, options: Parameters<typeof createExecDispatcher>[1] = {}) =>
  createExecDispatcher({ command: process.execPath, args: [agent] }, { killGraceMs: 300, ...options, env: { FIXTURE_MODE: mode } });

function failure(outcome: NodeOutcome): string {
  expect(outcome.status).toBe('failure');
  return outcome.status === 'failure' ? (outcome.error ?? '') : '';
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cantbook-exec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createExecDispatcher', () => {
  const saved = process.env.CANTBOOK_SECRET;
  afterEach(() => {
    if (saved === undefined) delete process.env.CANTBOOK_SECRET;
    else process.env.CANTBOOK_SECRET = saved;
    delete process.env.FIXTURE_TOKEN;
  });

  it('writes the request as JSON on stdin (without signal) and returns the parsed answer', async () => {
    process.env.CANTBOOK_SECRET = 'top-secret';
    process.env.FIXTURE_TOKEN = 'hidden-too';
    const dispatcher = createExecDispatcher({ command: process.execPath, args: [agent, 'x y', '$(id)'] }, { env: { FIXTURE_MODE: 'echo' }, redactEnv: ['FIXTURE_TOKEN'], cwd: dir });
    const request = dispatchRequest({ signal: new AbortController().signal, model: 'gpt-x', allowed_tools: ['read', 'write'], iteration: 2, idempotencyKey: 'run-1:n1:2' });
    const outcome = await dispatcher.dispatch(request);
    expect(outcome.status).toBe('success');
    const output = (outcome.status === 'success' ? outcome.output : {}) as Record<string, unknown>;
    expect(output.received).toEqual(JSON.parse(JSON.stringify(toDispatchPayload(request))));
    expect(output.received).not.toHaveProperty('signal');
    expect(output.env).toEqual({
      CANTBOOK_RUN_ID: 'run-1',
      CANTBOOK_NODE_ID: 'n1',
      CANTBOOK_ATTEMPT: '2',
      CANTBOOK_IDEMPOTENCY_KEY: 'run-1:n1:2',
      CANTBOOK_SECRET: null,
      FIXTURE_TOKEN: null,
    });
    expect(output.cwd).toBe(realpathSync(dir));
    expect(output.argv).toEqual(['x y', '$(id)']);
  });

  it('splits a string command line with quotes and no shell', async () => {
    const dispatcher = createExecDispatcher(`'${process.execPath}' "${agent}" 'two words' ';'`, { env: { FIXTURE_MODE: 'echo' } });
    const outcome = await dispatcher.dispatch(dispatchRequest());
    expect(outcome.status === 'success' && outcome.output?.argv).toEqual(['two words', ';']);
  });

  it('refuses an unsplittable or empty command line when created', () => {
    expect(() => createExecDispatcher('node "agent.mjs')).toThrow(expect.objectContaining({ code: E_ADAPTER_INVALID }));
    expect(() => createExecDispatcher({ command: ' ' })).toThrow(expect.objectContaining({ code: E_ADAPTER_INVALID }));
  });

  it('passes a failure answer through', async () => {
    expect(await withMode('fail-answer').dispatch(dispatchRequest())).toEqual({ status: 'failure', error: 'the agent gave up' });
  });

  it('turns stdout that is not JSON into a failure', async () => {
    expect(failure(await withMode('garbage').dispatch(dispatchRequest()))).toMatch(/^agent command '.+' gave an invalid answer: expected a JSON answer, found "this is not JSON"/);
    expect(failure(await withMode('nothing').dispatch(dispatchRequest()))).toMatch(/gave an invalid answer: expected a JSON answer, found nothing$/);
  });

  it('rejects answers that break the protocol shape', async () => {
    expect(failure(await withMode('typo').dispatch(dispatchRequest()))).toContain('unexpected key "ouput" in a "success" answer');
    expect(failure(await withMode('array-output').dispatch(dispatchRequest()))).toContain('expected "output" to be a JSON object, found an array');
  });

  it('a non-zero exit is a failure carrying the stderr tail', async () => {
    expect(failure(await withMode('exit3').dispatch(dispatchRequest()))).toBe(`agent command '${process.execPath}' exited with code 3: agent crashed: disk full`);
  });

  it('a non-zero exit uses the error of a failure answer when there is one, and never counts as success', async () => {
    expect(failure(await withMode('exit3-with-answer').dispatch(dispatchRequest()))).toBe(`agent command '${process.execPath}' exited with code 3: quota exceeded`);
    expect(failure(await withMode('exit1-claims-success').dispatch(dispatchRequest()))).toBe(`agent command '${process.execPath}' exited with code 1 (no stderr)`);
  });

  it("returns the agent's stderr as the attempt's log, whatever it answered (SPEC §7)", async () => {
    expect(await withMode('echo').dispatch(dispatchRequest())).toMatchObject({ status: 'success', log: 'stderr is for logs\n' });
    expect(await withMode('exit3').dispatch(dispatchRequest())).toMatchObject({ status: 'failure', log: 'agent crashed: disk full\n' });
    const timedOut = await withMode('hang', { timeoutMs: 1000 }).dispatch(dispatchRequest());
    expect(timedOut).toMatchObject({ status: 'failure', log: expect.stringMatching(/^pid \d+\n$/) });
    // Nothing written, no log.
    expect(await withMode('fail-answer').dispatch(dispatchRequest())).not.toHaveProperty('log');
  });

  it('says how much of a stderr past its capture limit was not kept', async () => {
    const dispatcher = createExecDispatcher({ command: process.execPath, args: [agent] }, { maxOutputBytes: 1000, env: { FIXTURE_MODE: 'chatty', FIXTURE_BYTES: '5000' } });
    const outcome = await dispatcher.dispatch(dispatchRequest());
    expect(outcome.status).toBe('success');
    expect(outcome.log).toBe(`${'x'.repeat(1000)}\n… [truncated: 4001 more bytes]`);
  });

  it('caps the answer size', async () => {
    expect(failure(await withMode('big', { maxOutputBytes: 10_000 }).dispatch(dispatchRequest()))).toMatch(/gave an invalid answer: it wrote \d+ bytes to stdout, more than the 10000-byte limit/);
    expect((await withMode('big').dispatch(dispatchRequest())).status).toBe('success');
  });

  it('times out, and the agent process is gone afterwards', async () => {
    const outcome = await withMode('hang', { timeoutMs: 1500 }).dispatch(dispatchRequest());
    const error = failure(outcome);
    expect(error).toMatch(new RegExp(`^agent command '.+' timed out after 1500 ms: pid \\d+$`));
    const pid = Number(/pid (\d+)/.exec(error)?.[1]);
    expect(await waitUntil(() => !isAlive(pid))).toBe(true);
  });

  it('is cancelled by request.signal', async () => {
    const controller = new AbortController();
    const running = withMode('hang').dispatch(dispatchRequest({ signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('run cancelled')), 300);
    expect(failure(await running)).toMatch(/was cancelled: run cancelled$/);
  });

  it('reports a missing agent command as a failure', async () => {
    expect(failure(await createExecDispatcher('cantbook-no-such-agent --serve').dispatch(dispatchRequest()))).toBe(
      `agent command 'cantbook-no-such-agent' was not found (is it installed and on PATH?)`,
    );
  });
});
