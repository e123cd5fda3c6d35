/** Shared helpers for the adapter tests: request factories and process-liveness checks. */
import { readFileSync } from 'node:fs';
import type { DispatchRequest, RunCommandRequest } from '../../../src/adapters/types.js';

/** A complete dispatch request; `overrides` replace fields. */
export function dispatchRequest(overrides: Partial<DispatchRequest> = {}): DispatchRequest {
  return {
    runId: 'run-1',
    nodeId: 'n1',
    agentId: 'ct-test',
    taskId: 'T-1',
    context: { taskId: 'T-1', nested: { list: [1, 'two', null], 'odd key': 'quote " and \\ backslash' } },
    iteration: 1,
    idempotencyKey: 'run-1:n1:1',
    playbookName: 'demo',
    bindings: { taskId: 'T-1' },
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** A complete run-command request for `command args...`. */
export function commandRequest(command: string, args: string[], overrides: Partial<RunCommandRequest> = {}): RunCommandRequest {
  return {
    runId: 'run-1',
    nodeId: 'n1',
    context: {},
    iteration: 1,
    idempotencyKey: 'run-1:n1:1',
    playbookName: 'demo',
    signal: new AbortController().signal,
    command,
    args,
    ...overrides,
  };
}

/** `node -e <script> ...args`: a portable child whose behaviour the test spells out. */
export function nodeScript(script: string, args: string[] = [], overrides: Partial<RunCommandRequest> = {}): RunCommandRequest {
  return commandRequest(process.execPath, ['-e', script, ...args], overrides);
}

/** True while `pid` is a live (non-zombie) process. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A zombie is dead, only not yet reaped by whoever inherited it.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `check` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function waitUntil(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
