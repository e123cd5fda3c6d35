import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../src/adapters/types.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';

export const SECRET = 'test-secret-0123456789abcdef';

export { tempSqliteStore, tempStore } from './testStores.js';

/** Outcome script per node: consumed in order; when exhausted the last entry repeats. */
export type Script = Record<string, (NodeOutcome | 'throw')[]>;

/** A dispatcher that follows a script and records every call. Unscripted nodes succeed with `{[nodeId]: 'done'}`. */
export function scriptedDispatcher(script: Script = {}): AgentDispatcher & { calls: DispatchRequest[]; countOf: (nodeId: string) => number } {
  const calls: DispatchRequest[] = [];
  const seen = new Map<string, number>();
  return {
    calls,
    countOf: (nodeId) => calls.filter((c) => c.nodeId === nodeId).length,
    dispatch(request) {
      // A copy taken during the call: the request's context can only be read while the dispatch runs.
      calls.push({ ...request });
      const n = seen.get(request.nodeId) ?? 0;
      seen.set(request.nodeId, n + 1);
      const steps = script[request.nodeId];
      const step = steps === undefined || steps.length === 0 ? undefined : steps[Math.min(n, steps.length - 1)];
      if (step === 'throw') throw new Error(`scripted throw in ${request.nodeId}`);
      return step ?? { status: 'success', output: { [request.nodeId]: 'done' } };
    },
  };
}

/** Parses YAML text into what executePlaybook takes. */
export function playbookFrom(source: string) {
  const { definition } = parsePlaybook(source);
  return { playbook: definition, source };
}

/** A fixed clock that can be moved. */
export function manualClock(start = '2026-01-01T00:00:00.000Z') {
  let t = Date.parse(start);
  return { now: () => new Date(t), advance: (ms: number) => { t += ms; } };
}

export const success = (output: Record<string, unknown> = {}): NodeOutcome => ({ status: 'success', output });
export const failure = (error = 'boom'): NodeOutcome => ({ status: 'failure', error });
