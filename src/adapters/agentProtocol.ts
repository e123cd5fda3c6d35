import type { DispatchRequest, NodeOutcome } from './types.js';
import { clipText } from '../playbook/describeValue.js';

/** The request as exec and http agents receive it: a {@link DispatchRequest} without `signal`. */
export type DispatchPayload = Omit<DispatchRequest, 'signal'>;

/** What an agent answered, checked: an outcome, or why the answer is not one. */
export type ParsedAgentAnswer = { ok: true; outcome: NodeOutcome } | { ok: false; problem: string };

/**
 * The JSON-safe part of a dispatch request (everything but the abort signal).
 *
 * Pure; returns a new object.
 */
export function toDispatchPayload(request: DispatchRequest): DispatchPayload {
  const { signal: _signal, ...payload } = request;
  return payload;
}

/**
 * Checks an agent's answer against the protocol, strictly:
 * `{"status": "success", "output"?: {...}}` or
 * `{"status": "failure", "error"?: "..."}` and no other keys, so a typo such
 * as `"ouput"` fails loudly instead of silently dropping the output.
 *
 * Pure. Never throws; returns the outcome or a problem description that
 * quotes what was found.
 */
export function parseAgentAnswer(value: unknown): ParsedAgentAnswer {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: `expected a JSON object {"status": "success" | "failure", ...}, found ${describe(value)}` };
  }
  const answer = value as Record<string, unknown>;
  const status = answer.status;
  if (status !== 'success' && status !== 'failure') {
    return { ok: false, problem: `expected "status" to be "success" or "failure", found ${describe(status)}` };
  }
  const allowed = status === 'success' ? 'output' : 'error';
  const extra = Object.keys(answer).filter((key) => key !== 'status' && key !== allowed);
  if (extra.length > 0) {
    return {
      ok: false,
      problem: `unexpected key${extra.length > 1 ? 's' : ''} ${extra.map((key) => JSON.stringify(key)).join(', ')} in a "${status}" answer (allowed: "status", "${allowed}")`,
    };
  }
  if (status === 'success') {
    const output = answer.output;
    if (output === undefined) return { ok: true, outcome: { status: 'success' } };
    if (typeof output !== 'object' || output === null || Array.isArray(output)) {
      return { ok: false, problem: `expected "output" to be a JSON object, found ${describe(output)}` };
    }
    return { ok: true, outcome: { status: 'success', output: output as Record<string, unknown> } };
  }
  const error = answer.error;
  if (error === undefined) return { ok: true, outcome: { status: 'failure' } };
  if (typeof error !== 'string') return { ok: false, problem: `expected "error" to be a string, found ${describe(error)}` };
  return { ok: true, outcome: { status: 'failure', error } };
}

/**
 * Parses an agent's answer text as JSON and checks it with {@link parseAgentAnswer}.
 *
 * Pure. Never throws.
 */
export function parseAgentAnswerText(text: string): ParsedAgentAnswer {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: false, problem: 'expected a JSON answer, found nothing' };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    return { ok: false, problem: `expected a JSON answer, found ${JSON.stringify(clipText(trimmed, 200))} (${(error as Error).message})` };
  }
  return parseAgentAnswer(value);
}

export { clipText };

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${clipText(JSON.stringify(value) ?? String(value), 80)}`;
}
