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
const review = join(repoRoot, 'starter', 'review.cantbook');
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
    // Only ends that can happen: a node that retries in place has no `escalating`, one with a successor no `done`,
    // one without guarded edges no `no_branch`/`ambiguous_branch`; the last node ends the run (`done`).
    expect(Object.keys(nodes.version_bump?.states ?? {})).toEqual(['ready', 'running', 'exhausted', 'unretryable']);
    expect(Object.keys(nodes.approval?.states ?? {})).toEqual(['ready', 'paused', 'approved', 'rejected', 'expired']);
    expect(Object.keys(nodes.publish?.states ?? {})).toEqual(['ready', 'running', 'done', 'exhausted', 'unretryable']);
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

  it("--format stately of the review starter evaluates to a machine whose group is a parallel state with one region per branch", async () => {
    const result = await cli.run(['export', review, '--format', 'stately']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const machine = evaluateStatelyModule(result.stdout);
    type StateConfig = { type?: string; initial?: string; states?: Record<string, StateConfig> };
    const active = (machine.config as { states: Record<string, StateConfig> }).states.active;
    expect(Object.keys(active?.states ?? {})).toEqual(['build', 'reviews', 'merge']);
    const group = active?.states?.reviews;
    expect(group?.initial).toBe('ready');
    const running = group?.states?.running;
    expect(running?.type).toBe('parallel');
    expect(Object.keys(running?.states ?? {})).toEqual(['security', 'perf', 'docs']);
    expect(Object.keys(running?.states?.security?.states ?? {})).toEqual(['entering', 'nodes', 'succeeded', 'failed', 'stopped']);
    expect(Object.keys(running?.states?.security?.states?.nodes?.states ?? {})).toEqual(['scan', 'sec_gate']);
    // xstate itself resolved the config: the group's running state node is parallel, the gate deep inside a branch is known by id.
    expect(machine.getStateNodeById(`${machine.id}.active.reviews.running`).type).toBe('parallel');
    expect(machine.getStateNodeById(`${machine.id}.active.reviews.running.security.nodes.sec_gate.paused`).key).toBe('paused');
    expect(initialTransition(machine)[0].value).toBe('idle');
    expect(JSON.parse(JSON.stringify(machine.config))).toEqual(compiledConfig(review));
  });

  it('--format json of the review starter is the compiled config, branches included', async () => {
    const result = await cli.json<{ format: string; output: { states: { active: { states: Record<string, { states: { running: { type: string; states: Record<string, unknown> } } }> } } } }>(['export', review, '--format', 'json']);
    expect(result.format).toBe('json');
    expect(result.output).toEqual(compiledConfig(review));
    const running = result.output.states.active.states.reviews?.states.running;
    expect(running?.type).toBe('parallel');
    expect(Object.keys(running?.states ?? {})).toEqual(['security', 'perf', 'docs']);
  });

  it('--format mermaid draws the review group as a composite state with one concurrent region per branch, each with its ends', async () => {
    const result = await cli.run(['export', review, '--format', 'mermaid']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = result.stdout.split('\n');
    // The group's block: three branch blocks separated by `--`, nothing of a branch outside its block.
    const open = lines.indexOf('  state reviews {');
    const close = lines.indexOf('  }', open);
    expect(open).toBeGreaterThan(0);
    const block = lines.slice(open + 1, close);
    expect(block.filter((line) => /^ {4}\S/.test(line))).toEqual(['    state security {', '    }', '    --', '    state perf {', '    }', '    --', '    state docs {', '    }']);
    const security = block.slice(block.indexOf('    state security {') + 1, block.indexOf('    }'));
    expect(security).toEqual([
      '      scan : scan · agentic · security-scanner',
      '      sec_gate : sec_gate · approval gate · conservative · expires after 72h',
      '      [*] --> scan',
      '      scan --> sec_gate',
      '      scan --> security_stopped : aborted: a sibling branch failed',
      "      scan --> scan : on failure, retry (2 attempt(s) in all)",
      '      scan --> security_failed : on failure after 2 attempt(s)',
      '      sec_gate --> security_succeeded : approved',
      '      sec_gate --> security_stopped : cancelled: a sibling branch failed',
      '      sec_gate --> security_failed : rejected, or expired after 72h',
      '      state "succeeded" as security_succeeded',
      '      security_succeeded --> [*]',
      '      state "failed" as security_failed',
      '      security_failed --> [*]',
      '      state "stopped" as security_stopped',
      '      security_stopped --> [*]',
    ]);
    // docs_review (cap 1) fails its branch at once; every branch has all three ends drawn.
    expect(block).toEqual(expect.arrayContaining(['      docs_review --> docs_failed : on failure', '      bench --> perf_succeeded']));
    for (const branch of ['security', 'perf', 'docs']) for (const end of ['succeeded', 'failed', 'stopped']) expect(block).toContain(`      ${branch}_${end} --> [*]`);
    // Outside the group: the join is the group's own edge, and the group follows its own on_failure (cap 1: no retry).
    const outside = [...lines.slice(0, open), ...lines.slice(close + 1)];
    expect(outside).toEqual(
      expect.arrayContaining([
        '  reviews : reviews · parallel · 3 branches · fail_fast · at most 3 at once',
        '  [*] --> build',
        '  build --> reviews',
        '  reviews --> merge',
        '  reviews --> exceeded_iteration_cap : on failure',
        '  merge --> completed',
      ]),
    );
    expect(outside.filter((line) => /scan|sec_gate|bench|docs_review/.test(line))).toEqual([]);
    expect(outside.some((line) => line.startsWith('  reviews --> reviews'))).toBe(false);
  });

  it('--format mermaid draws the gate with its outcomes', async () => {
    const result = await cli.run(['export', release, '--format', 'mermaid']);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe('stateDiagram-v2');
    expect(lines).toEqual(expect.arrayContaining(['  approval --> publish : approved', '  approval --> failed : rejected, or expired after 72h', '  publish --> exceeded_iteration_cap : on failure']));
  });
});
