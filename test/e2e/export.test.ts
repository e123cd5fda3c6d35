/**
 * `cantbook export` through the real CLI: the Stately text evaluates, with
 * xstate's own createMachine, to a machine with the playbook's states (and the
 * same config cantbook runs); the Mermaid and JSON renderings describe the same graph.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMachine, initialTransition } from 'xstate';
import type { AnyStateMachine } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlaybook, parsePlaybook } from '../../src/index.js';
import { createCliSession, repoRoot } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

const release = join(repoRoot, 'starter', 'release.cantbook');
const ciGate = join(repoRoot, 'starter', 'ci-gate.cantbook');
let cli: CliSession;

beforeAll(() => {
  cli = createCliSession();
});
afterAll(() => cli.remove());

/** What compilePlaybook builds from the file today: the reference the exports must match. */
function compiledConfig(file: string): unknown {
  return JSON.parse(JSON.stringify(compilePlaybook(parsePlaybook(readFileSync(file, 'utf8')).definition).config)) as unknown;
}

/**
 * Evaluates the module text as Stately Studio reads it: the one `import` of
 * createMachine is supplied, the exported machine is returned.
 */
function evaluateStatelyModule(text: string): AnyStateMachine {
  const imports = text.match(/^import .*$/gm) ?? [];
  expect(imports).toEqual(["import { createMachine } from 'xstate';"]);
  const body = text.replace(/^import .*$/m, '').replace(/^export const machine = /m, 'return ');
  expect(body).not.toMatch(/^export /m);
  return new Function('createMachine', body)(createMachine) as AnyStateMachine;
}

describe('export', () => {
  it('--format stately prints createMachine({...}) text that evaluates to a machine with the expected states', async () => {
    const result = await cli.run(['export', release, '--format', 'stately']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^\/\/ Playbook "release", sourceHash [0-9a-f]{64}\n/);
    expect(result.stdout).toContain('export const machine = createMachine({');

    const machine = evaluateStatelyModule(result.stdout);
    const config = machine.config as { states: Record<string, { states?: Record<string, { states?: Record<string, unknown> }> }> };
    expect(Object.keys(config.states)).toEqual(['idle', 'active', 'completed', 'failed', 'exceeded_iteration_cap', 'cancelled']);
    const nodes = config.states.active?.states ?? {};
    expect(Object.keys(nodes)).toEqual(['version_bump', 'changelog', 'approval', 'publish']);
    // A node that retries in place (no inject_into) has no `escalating` substate.
    expect(Object.keys(nodes.version_bump?.states ?? {})).toEqual(['ready', 'running', 'done', 'unrouted', 'exhausted']);
    expect(Object.keys(nodes.approval?.states ?? {})).toEqual(['ready', 'paused', 'approved', 'rejected', 'done', 'unrouted']);
    // xstate resolved every state: the machine knows each leaf by id.
    expect(machine.getStateNodeById(`${machine.id}.active.approval.paused`).key).toBe('paused');
    expect(initialTransition(machine)[0].value).toBe('idle');
    // The same config cantbook compiles and runs.
    expect(JSON.parse(JSON.stringify(machine.config))).toEqual(compiledConfig(release));
  });

  it('--format json prints the config as JSON; --json wraps any format with name and sourceHash', async () => {
    const [plain, wrapped] = await Promise.all([cli.run(['export', ciGate, '--format', 'json']), cli.json<{ name: string; sourceHash: string; format: string; output: string }>(['export', ciGate, '--format', 'mermaid'])]);
    expect({ code: plain.code, stderr: plain.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(plain.stdout)).toEqual(compiledConfig(ciGate));
    expect(wrapped).toMatchObject({ name: 'ci-gate', format: 'mermaid', sourceHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(wrapped.output.split('\n')).toEqual(
      expect.arrayContaining([
        'stateDiagram-v2',
        '  [*] --> lint',
        "  lint --> full_suite : when mode == 'full'",
        '  lint --> smoke : otherwise',
        '  full_suite --> report',
        '  smoke --> report',
        '  report --> completed',
        '  completed --> [*]',
      ]),
    );
  });

  it('--format mermaid draws the gate with its outcomes', async () => {
    const result = await cli.run(['export', release, '--format', 'mermaid']);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('stateDiagram-v2');
    expect(lines).toEqual(expect.arrayContaining(['  approval --> publish : approved', '  approval --> failed : rejected, or expired after 72h', '  publish --> exceeded_iteration_cap : on failure']));
  });
});
