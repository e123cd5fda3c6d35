/** commandsAfterGate and decideGatePolicy (SPEC §13): which commands a gate guards, and when its policy lets it pass alone. */
import { describe, expect, it } from 'vitest';
import { E_PLAYBOOK_RUNTIME_INVALID, hasCode } from '../../../src/errors.js';
import { DEFAULT_POLICY_RULES } from '../../../src/policy/evaluatePolicy.js';
import type { PolicyRule } from '../../../src/policy/evaluatePolicy.js';
import { commandsAfterGate, decideGatePolicy } from '../../../src/policy/gatePolicy.js';
import { accepted, yaml } from '../playbook/helpers.js';

/** gate (policy given) -> one deterministic step running `command args...` -> done (agentic). */
function gateBefore(policy: string | undefined, command: string, args: string[]) {
  return accepted(yaml`
    version: "1.0"
    name: gated
    nodes:
      - { id: build, type: agentic, skill: s }
      - id: gate
        type: approval
        prompt: Go on?
        depends: [build]${policy === undefined ? '' : `\n        policy: ${policy}`}
      - { id: step, type: deterministic, command: ${command}, args: ${JSON.stringify(args)}, depends: [gate] }
      - { id: done, type: agentic, skill: s, depends: [step] }
  `).definition;
}

const branching = accepted(yaml`
  version: "1.0"
  name: branching
  nodes:
    - { id: gate, type: approval, prompt: Go?, policy: permissive }
    - { id: check, type: deterministic, command: pnpm, args: [tsc, --noEmit], depends: [gate] }
    - { id: full, type: deterministic, command: pnpm, args: [test] }
    - { id: quick, type: deterministic, command: cleo, args: [status] }
    - { id: fix, type: agentic, skill: fixer, depends: [quick] }
    - { id: second_gate, type: approval, prompt: Ship?, depends: [full, fix] }
    - { id: ship, type: deterministic, command: npm, args: [publish], depends: [second_gate] }
  edges:
    - { from: check, to: full, when: { field: mode, equals: full } }
    - { from: check, to: quick }
`).definition;

describe('commandsAfterGate', () => {
  it('joins command and args with spaces, templates as written', () => {
    const definition = gateBefore('permissive', 'pnpm', ['test', '--', '{{filter}}']);
    expect(commandsAfterGate(definition, 'gate')).toEqual([{ nodeId: 'step', commandLine: 'pnpm test -- {{filter}}' }]);
  });

  it('follows every branch and stops at the next gate', () => {
    expect(commandsAfterGate(branching, 'gate')).toEqual([
      { nodeId: 'check', commandLine: 'pnpm tsc --noEmit' },
      { nodeId: 'full', commandLine: 'pnpm test' },
      { nodeId: 'quick', commandLine: 'cleo status' },
    ]);
    expect(commandsAfterGate(branching, 'second_gate')).toEqual([{ nodeId: 'ship', commandLine: 'npm publish' }]);
  });

  it('follows inject_into targets, which run again without a new decision', () => {
    const { definition } = accepted(yaml`
      version: "1.0"
      name: loop
      nodes:
        - { id: prepare, type: deterministic, command: git, args: [push] }
        - { id: gate, type: approval, prompt: Go?, policy: permissive, depends: [prepare] }
        - { id: work, type: agentic, skill: s, depends: [gate] }
        - { id: verify, type: deterministic, command: pnpm, args: [test], depends: [work], on_failure: { inject_into: work } }
        - { id: repair, type: deterministic, command: rm, args: [-rf, dist], depends: [verify] }
        - { id: last, type: agentic, skill: s, depends: [repair], on_failure: { inject_into: prepare } }
    `);
    expect(commandsAfterGate(definition, 'gate').map((c) => c.nodeId)).toEqual(['verify', 'repair', 'prepare']);
  });

  it('is empty for a gate at the end of the run', () => {
    expect(commandsAfterGate(gateBefore(undefined, 'pnpm', ['test']), 'gate')).toHaveLength(1);
    const { definition } = accepted(yaml`
      version: "1.0"
      name: tail
      nodes:
        - { id: a, type: deterministic, command: pnpm, args: [test] }
        - { id: gate, type: approval, prompt: Done?, depends: [a] }
    `);
    expect(commandsAfterGate(definition, 'gate')).toEqual([]);
  });

  it('throws E_PLAYBOOK_RUNTIME_INVALID for an id that is not an approval node', () => {
    const definition = gateBefore('permissive', 'pnpm', ['test']);
    for (const id of ['step', 'nope']) {
      let caught: unknown;
      try { commandsAfterGate(definition, id); } catch (error) { caught = error; }
      expect(hasCode(caught, E_PLAYBOOK_RUNTIME_INVALID)).toBe(true);
    }
    expect(() => decideGatePolicy(definition, 'step')).toThrow(/no approval node "step" \("step" is deterministic\)/);
  });
});

describe('decideGatePolicy', () => {
  it('permissive: auto-passes before pnpm test', () => {
    expect(decideGatePolicy(gateBefore('permissive', 'pnpm', ['test']), 'gate')).toEqual({
      autoPass: true, policy: 'permissive', rule: 'safe-qa-tool',
      commands: [{ nodeId: 'step', commandLine: 'pnpm test', decision: { action: 'auto-approve', reason: 'safe-qa-tool', matchedPattern: DEFAULT_POLICY_RULES[8]!.pattern.source } }],
    });
  });

  it('permissive: waits before npm publish', () => {
    expect(decideGatePolicy(gateBefore('permissive', 'npm', ['publish']), 'gate')).toMatchObject({
      autoPass: false, policy: 'permissive', reason: 'require-human',
      commands: [{ nodeId: 'step', decision: { action: 'require-human', reason: 'publish' } }],
    });
  });

  it('permissive: waits for a command no rule approves', () => {
    expect(decideGatePolicy(gateBefore('permissive', 'make', ['build']), 'gate')).toMatchObject({ autoPass: false, reason: 'require-human', commands: [{ decision: { reason: 'default' } }] });
  });

  it('permissive: one unsafe command on any branch makes the gate wait; all safe ones pass it', () => {
    expect(decideGatePolicy(branching, 'gate')).toMatchObject({ autoPass: true, rule: 'safe-qa-tool, safe-cleo-read' });
    const unsafe = { ...branching, nodes: branching.nodes.map((n) => (n.id === 'quick' && n.type === 'deterministic' ? { ...n, command: 'git', args: ['push'] } : n)) };
    expect(decideGatePolicy(unsafe, 'gate')).toMatchObject({ autoPass: false, reason: 'require-human' });
  });

  it('permissive: a gate guarding no command waits (nothing to judge is not "all safe")', () => {
    const { definition } = accepted(yaml`
      version: "1.0"
      name: agents
      nodes:
        - { id: gate, type: approval, prompt: Go?, policy: permissive }
        - { id: publish, type: agentic, skill: ct-publish, depends: [gate] }
    `);
    expect(decideGatePolicy(definition, 'gate')).toEqual({ autoPass: false, policy: 'permissive', reason: 'no-commands', commands: [] });
  });

  it('conservative and no policy: always wait, even before pnpm test', () => {
    expect(decideGatePolicy(gateBefore('conservative', 'pnpm', ['test']), 'gate')).toEqual({ autoPass: false, policy: 'conservative', reason: 'conservative', commands: [] });
    expect(decideGatePolicy(gateBefore(undefined, 'pnpm', ['test']), 'gate')).toEqual({ autoPass: false, policy: 'none', reason: 'conservative', commands: [] });
  });

  it('custom: uses the host rules only, and waits without them', () => {
    const makeIsSafe: PolicyRule[] = [{ pattern: /^make\b/, action: 'auto-approve', reason: 'make' }];
    const make = gateBefore('custom', 'make', ['build']);
    expect(decideGatePolicy(make, 'gate', { policyRules: makeIsSafe })).toMatchObject({ autoPass: true, policy: 'custom', rule: 'make' });
    expect(decideGatePolicy(make, 'gate')).toEqual({ autoPass: false, policy: 'custom', reason: 'no-rules', commands: [] });
    expect(decideGatePolicy(make, 'gate', { policyRules: [] })).toMatchObject({ autoPass: false, reason: 'no-rules' });
    // The defaults do not apply to custom gates: pnpm test is not in the host's list.
    expect(decideGatePolicy(gateBefore('custom', 'pnpm', ['test']), 'gate', { policyRules: makeIsSafe })).toMatchObject({ autoPass: false, reason: 'require-human' });
    // A permissive gate ignores the host rules.
    expect(decideGatePolicy(gateBefore('permissive', 'make', ['build']), 'gate', { policyRules: makeIsSafe })).toMatchObject({ autoPass: false });
  });

  it('custom: a host require-human rule still beats a host auto-approve rule', () => {
    const rules: PolicyRule[] = [{ pattern: /.*/, action: 'auto-approve', reason: 'all' }, { pattern: /deploy/, action: 'require-human', reason: 'deploy' }];
    expect(decideGatePolicy(gateBefore('custom', 'make', ['deploy']), 'gate', { policyRules: rules })).toMatchObject({ autoPass: false, commands: [{ decision: { reason: 'deploy' } }] });
  });
});
