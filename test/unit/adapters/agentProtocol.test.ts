/** parseAgentAnswer: the strict answer shape shared by the exec, module and http dispatchers. */
import { describe, expect, it } from 'vitest';
import { parseAgentAnswer, parseAgentAnswerText, toDispatchPayload } from '../../../src/adapters/agentProtocol.js';
import { dispatchRequest } from './helpers.js';

describe('parseAgentAnswer', () => {
  it.each([
    [{ status: 'success' }, { status: 'success' }],
    [{ status: 'success', output: { a: 1 } }, { status: 'success', output: { a: 1 } }],
    [{ status: 'failure' }, { status: 'failure' }],
    [{ status: 'failure', error: 'nope' }, { status: 'failure', error: 'nope' }],
  ])('accepts %j', (value, outcome) => {
    expect(parseAgentAnswer(value)).toEqual({ ok: true, outcome });
  });

  it.each([
    [null, 'expected a JSON object {"status": "success" | "failure", ...}, found null'],
    [[1], 'found an array'],
    ['success', 'found string "success"'],
    [{}, 'expected "status" to be "success" or "failure", found nothing'],
    [{ status: 'ok' }, 'expected "status" to be "success" or "failure", found string "ok"'],
    [{ status: 'success', ouput: {} }, 'unexpected key "ouput" in a "success" answer (allowed: "status", "output")'],
    [{ status: 'failure', output: {}, why: 1 }, 'unexpected keys "output", "why" in a "failure" answer (allowed: "status", "error")'],
    [{ status: 'success', output: [1] }, 'expected "output" to be a JSON object, found an array'],
    [{ status: 'success', output: null }, 'expected "output" to be a JSON object, found null'],
    [{ status: 'failure', error: 42 }, 'expected "error" to be a string, found number 42'],
  ])('rejects %j', (value, problem) => {
    const parsed = parseAgentAnswer(value);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.problem).toContain(problem);
  });

  it('parses text, reporting empty and non-JSON answers', () => {
    expect(parseAgentAnswerText(' {"status":"success"}\n')).toEqual({ ok: true, outcome: { status: 'success' } });
    expect(parseAgentAnswerText('  \n')).toEqual({ ok: false, problem: 'expected a JSON answer, found nothing' });
    const garbage = parseAgentAnswerText('Loading model...\n{"status":"success"}');
    expect(garbage.ok ? '' : garbage.problem).toMatch(/^expected a JSON answer, found "Loading model\.\.\.\\n\{\\"status\\":\\"success\\"\}" \(/);
  });

  it('drops only the signal from the request payload', () => {
    const request = dispatchRequest({ signal: new AbortController().signal, model: 'm' });
    const payload = toDispatchPayload(request);
    const { signal: _signal, ...rest } = request;
    expect(payload).not.toHaveProperty('signal');
    expect(payload).toEqual(rest);
  });
});
