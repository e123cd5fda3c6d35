/**
 * Gate auto-pass (SPEC §13): which commands a gate guards, and whether its
 * `policy` lets it pass without a human.
 *
 * Pure: reads a playbook definition and a rule list, nothing else. The runtime
 * calls {@link decideGatePolicy} when a run reaches a gate and records an
 * auto-pass as `ApprovalGranted{auto: true, rule, approver: 'policy'}`.
 */
import { CantbookError, E_PLAYBOOK_RUNTIME_INVALID } from '../errors.js';
import { findNode, outgoingEdges } from '../playbook/graph.js';
import type { ApprovalPolicy, PlaybookDefinition } from '../playbook/types.js';
import { DEFAULT_POLICY_RULES, evaluatePolicy } from './evaluatePolicy.js';
import type { EvaluatePolicyResult, PolicyRule } from './evaluatePolicy.js';

/** A deterministic node a gate guards, with its command line as written. */
export interface GuardedCommand {
  nodeId: string;
  /** `command` and `args` joined with single spaces, templates unrendered. */
  commandLine: string;
}

/** One guarded command with the policy's decision for it. */
export interface GuardedCommandDecision extends GuardedCommand {
  decision: EvaluatePolicyResult;
}

/**
 * What {@link decideGatePolicy} concluded. `autoPass: true` carries `rule`, the
 * reasons of the auto-approve rules that matched (distinct, in command order,
 * joined with `", "`), for `ApprovalGranted.rule`. `autoPass: false` carries
 * `reason`: `conservative` (policy conservative or absent), `no-rules`
 * (`custom` without host rules), `no-commands` (nothing to judge), or
 * `require-human` (some command was not auto-approved; see `commands`).
 */
export type GatePolicyDecision =
  | { autoPass: true; policy: 'permissive' | 'custom'; rule: string; commands: GuardedCommandDecision[] }
  | { autoPass: false; policy: ApprovalPolicy | 'none'; reason: 'conservative' | 'no-rules' | 'no-commands' | 'require-human'; commands: GuardedCommandDecision[] };

/** Options of {@link decideGatePolicy}. */
export interface DecideGatePolicyOptions {
  /** The host's rules (the `policyRules` option), used by gates with `policy: custom`. */
  policyRules?: readonly PolicyRule[];
}

function approvalGate(definition: PlaybookDefinition, gateId: string) {
  const gate = findNode(definition, gateId);
  if (gate?.type !== 'approval') {
    throw new CantbookError(
      E_PLAYBOOK_RUNTIME_INVALID,
      `playbook "${definition.name}" has no approval node "${gateId}"${gate === undefined ? '' : ` ("${gateId}" is ${gate.type})`}`,
      { playbook: definition.name, nodeId: gateId },
    );
  }
  return gate;
}

/**
 * The deterministic commands that can run after the gate `gateId` before the
 * next gate or the end of the run.
 *
 * Pure. Walks every path from the gate's successors (explicit edges and
 * `depends`, every branch whatever its `when`) and every `on_failure.inject_into`
 * target along the way (a failure there hands control to that node, which then
 * runs without a new human decision), stopping at approval nodes: those decide
 * for themselves. Each node appears once, in breadth-first order. Command lines
 * are as written: templates are not rendered, because nodes after the gate may
 * still change the context they read.
 *
 * Throws `CantbookError` `E_PLAYBOOK_RUNTIME_INVALID` when `gateId` is not an
 * approval node of the definition.
 *
 * @example commandsAfterGate(definition, 'approve_tests') // [{ nodeId: 'unit', commandLine: 'pnpm test' }]
 */
export function commandsAfterGate(definition: PlaybookDefinition, gateId: string): GuardedCommand[] {
  approvalGate(definition, gateId);
  const seen = new Set<string>([gateId]);
  const queue = outgoingEdges(definition, gateId).map((edge) => edge.to);
  const commands: GuardedCommand[] = [];
  for (let i = 0; i < queue.length; i += 1) {
    const id = queue[i] as string;
    if (seen.has(id)) continue;
    seen.add(id);
    const node = findNode(definition, id);
    if (node === undefined || node.type === 'approval') continue;
    if (node.type === 'deterministic') commands.push({ nodeId: id, commandLine: [node.command, ...node.args].join(' ') });
    queue.push(...outgoingEdges(definition, id).map((edge) => edge.to));
    const target = node.on_failure?.inject_into;
    if (target !== undefined) queue.push(target);
  }
  return commands;
}

/**
 * Decides whether the gate `gateId` passes without a human (SPEC §13).
 *
 * Pure. `conservative` or no `policy`: never. `permissive`: when every command
 * of {@link commandsAfterGate} is auto-approved by {@link DEFAULT_POLICY_RULES};
 * `custom`: the same with the host's `policyRules` only (without them the gate
 * waits). A gate that guards no deterministic command waits too: the policy
 * judges commands, and an agent step after the gate is nothing it can judge,
 * so "every command is safe" is not taken to hold vacuously.
 *
 * Throws `CantbookError` `E_PLAYBOOK_RUNTIME_INVALID` for an unknown gate id,
 * and `TypeError` for malformed `policyRules` (see `policyRuleIssues`).
 *
 * @example
 * const decision = decideGatePolicy(definition, 'approve_tests');
 * if (decision.autoPass) record({ type: 'ApprovalGranted', auto: true, rule: decision.rule, approver: 'policy' });
 */
export function decideGatePolicy(definition: PlaybookDefinition, gateId: string, options: DecideGatePolicyOptions = {}): GatePolicyDecision {
  const gate = approvalGate(definition, gateId);
  const policy = gate.policy ?? 'none';
  if (policy === 'conservative' || policy === 'none') return { autoPass: false, policy, reason: 'conservative', commands: [] };
  const rules = policy === 'custom' ? options.policyRules : DEFAULT_POLICY_RULES;
  if (rules === undefined || rules.length === 0) return { autoPass: false, policy, reason: 'no-rules', commands: [] };
  const commands = commandsAfterGate(definition, gateId).map((command) => ({ ...command, decision: evaluatePolicy(command.commandLine, rules) }));
  if (commands.length === 0) return { autoPass: false, policy, reason: 'no-commands', commands };
  if (commands.some((command) => command.decision.action !== 'auto-approve')) return { autoPass: false, policy, reason: 'require-human', commands };
  const rule = [...new Set(commands.map((command) => command.decision.reason))].join(', ');
  return { autoPass: true, policy, rule, commands };
}
