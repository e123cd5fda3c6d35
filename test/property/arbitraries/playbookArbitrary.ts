/**
 * fast-check arbitraries for valid playbooks, shared by the parser properties and
 * the runtime's execution properties.
 *
 * `playbookDefinitionArbitrary` builds a {@link PlaybookDefinition} exactly as
 * `parsePlaybook` would return it (every default present, optional fields absent,
 * never `undefined`), so `parsePlaybook(playbookToYaml(d)).definition` equals `d`.
 * The graph is a random DAG: node 0 of the topological order is the only entry,
 * every other node has a parent earlier in that order (so everything is
 * reachable), a node's successors are all guarded by `when` except at most one
 * default, and some default edges are written as `depends`. File order is a
 * random permutation of the topological order.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import type {
  ApprovalNode, AgenticNode, DeterministicNode, EdgeCondition, ErrorHandlerAction, ErrorHandlerTrigger, OnFailure, PlaybookDefinition,
  PlaybookEdge, PlaybookInput, PlaybookNode,
} from '../../../src/playbook/types.js';

/** Tuning for {@link playbookDefinitionArbitrary}. */
export interface PlaybookArbitraryOptions {
  /** Fewest nodes (default 1). */
  minNodes?: number;
  /** Most nodes (default 8). */
  maxNodes?: number;
  /** Node kinds to draw from (default all three). */
  nodeTypes?: readonly Exclude<PlaybookNode['type'], 'parallel' | 'playbook' | 'map'>[];
  /** Whether `on_failure.inject_into` may be generated (default true); targets are always upstream nodes. */
  injectInto?: boolean;
}

const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,7}$/);
const text = fc.stringMatching(/^[A-Za-z][A-Za-z0-9 ,.-]{0,30}$/);
const scalar = fc.oneof(word, fc.integer({ min: -1000, max: 1000 }), fc.boolean(), fc.constant(null));
const contextField = fc.constantFrom('status', 'score', 'route', 'review.verdict', 'flags.fast');

/** Every `{on, action}` pair the format accepts: all but inject_hint on iteration_cap_exceeded (I_HANDLER_NOT_ALLOWED). */
const handlerPairs: readonly { on: ErrorHandlerTrigger; action: ErrorHandlerAction }[] = [
  { on: 'agentic_timeout', action: 'inject_hint' }, { on: 'agentic_timeout', action: 'hitl_escalate' }, { on: 'agentic_timeout', action: 'abort' },
  { on: 'iteration_cap_exceeded', action: 'hitl_escalate' }, { on: 'iteration_cap_exceeded', action: 'abort' },
  { on: 'contract_violation', action: 'inject_hint' }, { on: 'contract_violation', action: 'hitl_escalate' }, { on: 'contract_violation', action: 'abort' },
];

/** A `when` with exactly one operator. */
export const edgeConditionArbitrary: fc.Arbitrary<EdgeCondition> = fc.oneof(
  fc.record({ field: contextField, equals: scalar }, { noNullPrototype: true }),
  fc.record({ field: contextField, notEquals: scalar }, { noNullPrototype: true }),
  fc.record({ field: contextField, exists: fc.boolean() }, { noNullPrototype: true }),
  fc.record({ field: contextField, in: fc.array(scalar, { minLength: 1, maxLength: 3 }) }, { noNullPrototype: true }),
  fc.record({ field: contextField, truthy: fc.boolean() }, { noNullPrototype: true }),
);

/** A string that may embed `{{inputs.x}}` for declared inputs and `{{ctx.path}}` context references. */
function templated(inputNames: readonly string[]): fc.Arbitrary<string> {
  const placeholder = inputNames.length === 0
    ? contextField.map((f) => `{{${f}}}`)
    : fc.oneof(fc.constantFrom(...inputNames).map((n) => `{{inputs.${n}}}`), contextField.map((f) => `{{ ${f} }}`));
  return fc.array(fc.oneof(text, placeholder), { minLength: 1, maxLength: 3 }).map((parts) => parts.join(' '));
}

/** As {@link templated}, with `{{inputs.x}}` placeholders only: what a deterministic `cwd` or `env` value may hold. */
function inputsOnlyTemplated(inputNames: readonly string[]): fc.Arbitrary<string> {
  if (inputNames.length === 0) return text;
  const placeholder = fc.constantFrom(...inputNames).map((n) => `{{inputs.${n}}}`);
  return fc.array(fc.oneof(text, placeholder), { minLength: 1, maxLength: 3 }).map((parts) => parts.join(' '));
}

function inputArbitrary(name: string): fc.Arbitrary<PlaybookInput> {
  return fc.record(
    { name: fc.constant(name), required: fc.boolean(), default: scalar, description: text },
    { requiredKeys: ['name', 'required'], noNullPrototype: true },
  );
}

function onFailureArbitrary(upstream: readonly string[], injectInto: boolean): fc.Arbitrary<OnFailure> {
  const target = injectInto && upstream.length > 0 ? fc.constantFrom(...upstream) : fc.constant(undefined);
  return fc.record({ max_iterations: fc.integer({ min: 0, max: 10 }), escalate: fc.boolean(), inject_into: target }, { requiredKeys: [], noNullPrototype: true })
    .map(({ inject_into, ...rest }) => (inject_into === undefined ? rest : { ...rest, inject_into }));
}

/** Context keys a contract may name: ones outputs set (see the runtime properties' outcomes) and one nothing sets. */
const contractKeys = fc.uniqueArray(fc.constantFrom('status', 'score', 'route', 'review.verdict', 'flags.fast', 'plan'), { minLength: 1, maxLength: 2 });

/** An `ensures` with at least one check; `exitCode` is kept only on deterministic nodes (see contractsOf). */
const ensuresArbitrary = fc.record({
  outputFiles: contractKeys,
  exitCode: fc.constantFrom(0, 1),
  schema: fc.constantFrom('task_tree', 'evidence', 'no_such_schema'),
}, { requiredKeys: [], noNullPrototype: true });

/** A node's requires/ensures as the format allows them (SPEC §13): none on a gate, exitCode only on a command. */
function contractsOf(type: Exclude<PlaybookNode['type'], 'parallel'>, fields: string[] | undefined, ensures: { outputFiles?: string[]; exitCode?: number; schema?: string } | undefined): Partial<PlaybookNode> {
  if (type === 'approval') return {};
  const { exitCode, ...rest } = ensures ?? {};
  const kept = type === 'deterministic' && exitCode !== undefined ? { ...rest, exitCode } : rest;
  return {
    ...(fields === undefined ? {} : { requires: { fields } }),
    ...(Object.keys(kept).length === 0 ? {} : { ensures: kept }),
  };
}

/** The kind-specific part of a node, fields as `parsePlaybook` returns them. */
function nodeBodyArbitrary(type: Exclude<PlaybookNode['type'], 'parallel' | 'playbook' | 'map'>, inputNames: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  const t = templated(inputNames);
  switch (type) {
    case 'agentic':
      return fc.record({
        who: fc.constantFrom('skill', 'agent', 'both'), skill: word, agent: word,
        role: fc.option(fc.constantFrom('orchestrator', 'lead', 'worker'), { nil: undefined }),
        inputs: fc.option(fc.dictionary(word, t, { maxKeys: 3, noNullPrototype: true }), { nil: undefined }),
        model: fc.option(word, { nil: undefined }),
        allowed_tools: fc.option(fc.array(word, { maxLength: 3 }), { nil: undefined }),
      }).map(({ who, skill, agent, ...rest }) => ({
        ...(who === 'agent' ? {} : { skill }), ...(who === 'skill' ? {} : { agent }),
        ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
      }));
    case 'deterministic':
      return fc.record({
        command: fc.constantFrom('node', 'echo', 'true'), args: fc.array(fc.oneof(word, t), { maxLength: 3 }),
        cwd: inputsOnlyTemplated(inputNames), env: fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,6}$/), inputsOnlyTemplated(inputNames), { maxKeys: 2, noNullPrototype: true }), timeout_ms: fc.nat({ max: 600_000 }),
      }, { requiredKeys: ['command', 'args'], noNullPrototype: true });
    case 'approval':
      return fc.record({
        prompt: t, policy: fc.constantFrom('conservative', 'permissive', 'custom'), timeout: fc.constantFrom('500ms', '30m', '72h', '7d'),
      }, { requiredKeys: ['prompt'], noNullPrototype: true });
  }
}

interface Skeleton {
  ids: string[];
  inputNames: string[];
  /** successors[i]: indices (in topological order) that node i leads to, all greater than i. */
  successors: number[][];
  order: number[];
}

function skeletonArbitrary(minNodes: number, maxNodes: number): fc.Arbitrary<Skeleton> {
  return fc.integer({ min: minNodes, max: maxNodes }).chain((n) => fc.record({
    ids: fc.uniqueArray(word, { minLength: n, maxLength: n }),
    inputNames: fc.uniqueArray(fc.constantFrom('epicId', 'taskId', 'mode', 'channel', 'targetVersion', 'scope'), { maxLength: 3 }),
    parents: fc.tuple(...Array.from({ length: n - 1 }, (_, i) => fc.integer({ min: 0, max: i }))),
    extra: fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.nat({ max: n - 1 })), { maxLength: n }),
    order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
  })).map(({ ids, inputNames, parents, extra, order }) => {
    const successors: number[][] = ids.map(() => []);
    parents.forEach((parent, i) => successors[parent]!.push(i + 1));
    for (const [x, y] of extra) {
      const [from, to] = x < y ? [x, y] : [y, x];
      if (from !== to && !successors[from]!.includes(to)) successors[from]!.push(to);
    }
    return { ids, inputNames, successors, order };
  });
}

/**
 * Valid playbook definitions (see the module comment for the shape guaranteed).
 * Node `i` of the topological order is `ids[i]`; `nodes` is in a shuffled file order.
 */
export function playbookDefinitionArbitrary(options: PlaybookArbitraryOptions = {}): fc.Arbitrary<PlaybookDefinition> {
  const { minNodes = 1, maxNodes = 8, nodeTypes = ['agentic', 'deterministic', 'approval'], injectInto = true } = options;
  return skeletonArbitrary(minNodes, maxNodes).chain((sk) => {
    const perNode = sk.ids.map((_, i) => {
      const outs = sk.successors[i]!;
      return fc.record({
        type: fc.constantFrom(...nodeTypes),
        description: fc.option(text, { nil: undefined }),
        defaultIndex: fc.integer({ min: -1, max: outs.length - 1 }),
        defaultAsDepends: fc.boolean(),
        guards: fc.array(edgeConditionArbitrary, { minLength: outs.length, maxLength: outs.length }),
        onFailure: fc.option(onFailureArbitrary(sk.ids.slice(0, i), injectInto), { nil: undefined }),
        requires: fc.option(contractKeys, { nil: undefined, freq: 3 }),
        ensures: fc.option(ensuresArbitrary, { nil: undefined, freq: 3 }),
        edgeContracts: fc.array(fc.option(contractKeys, { nil: undefined, freq: 3 }), { minLength: outs.length, maxLength: outs.length }),
      }).chain((spec) => nodeBodyArbitrary(spec.type, sk.inputNames).map((body) => ({ ...spec, body })));
    });
    return fc.record({
      name: word,
      description: fc.option(text, { nil: undefined }),
      inputs: fc.tuple(...sk.inputNames.map(inputArbitrary)),
      nodes: fc.tuple(...perNode),
      errorHandlers: fc.array(fc.record({
        pair: fc.constantFrom(...handlerPairs),
        message: text,
      }, { requiredKeys: ['pair'], noNullPrototype: true }).map(({ pair, ...rest }) => ({ ...pair, ...rest })), { maxLength: 2 }),
    }).map(({ name, description, inputs, nodes, errorHandlers }): PlaybookDefinition => {
      const depends: string[][] = sk.ids.map(() => []);
      const edges: PlaybookEdge[] = [];
      nodes.forEach((spec, i) => {
        sk.successors[i]!.forEach((to, k) => {
          const isDefault = k === spec.defaultIndex;
          if (isDefault && spec.defaultAsDepends) depends[to]!.push(sk.ids[i]!);
          // A gate changes nothing but __lastApproval: edges leaving one carry no contract (I_CONTRACT_NOT_ALLOWED).
          const fields = spec.type === 'approval' ? undefined : spec.edgeContracts[k];
          const contract = fields === undefined ? {} : { contract: { requires: { fields } } };
          if (isDefault && spec.defaultAsDepends) depends[to]!.push(sk.ids[i]!);
          else if (isDefault) edges.push({ from: sk.ids[i]!, to: sk.ids[to]!, ...contract });
          else edges.push({ from: sk.ids[i]!, to: sk.ids[to]!, when: spec.guards[k]!, ...contract });
        });
      });
      const built = nodes.map((spec, i): PlaybookNode => ({
        id: sk.ids[i]!,
        type: spec.type,
        ...(spec.description === undefined ? {} : { description: spec.description }),
        depends: depends[i]!,
        ...(spec.onFailure === undefined ? {} : { on_failure: spec.onFailure }),
        ...contractsOf(spec.type, spec.requires, spec.ensures),
        ...spec.body,
      }) as AgenticNode | DeterministicNode | ApprovalNode);
      return {
        version: '1.0',
        name,
        ...(description === undefined ? {} : { description }),
        inputs,
        nodes: sk.order.map((i) => built[i]!),
        edges,
        error_handlers: errorHandlers,
      };
    });
  });
}

/** Options for {@link playbookToYaml}. */
export interface PlaybookToYamlOptions {
  /** Leave out fields equal to their default (`[]` lists, `required: false`) to exercise defaulting. */
  omitDefaults?: boolean;
}

/**
 * Serialises a definition to `.cantbook` YAML text. With `omitDefaults`, empty
 * `inputs`/`edges`/`error_handlers`/`depends`/`args` and `required: false` are
 * left out; parsing either form gives the same definition back.
 */
export function playbookToYaml(definition: PlaybookDefinition, options: PlaybookToYamlOptions = {}): string {
  if (!options.omitDefaults) return stringify(definition);
  const dropEmpty = (record: object, keys: readonly string[]): Record<string, unknown> =>
    Object.fromEntries(Object.entries(record).filter(([key, value]) => !(keys.includes(key) && Array.isArray(value) && value.length === 0)));
  return stringify({
    ...dropEmpty(definition, ['inputs', 'edges', 'error_handlers']),
    ...(definition.inputs.length === 0 ? {} : {
      inputs: definition.inputs.map(({ required, ...rest }) => (required ? { ...rest, required } : rest)),
    }),
    nodes: definition.nodes.map((node) => dropEmpty(node, ['depends', 'args'])),
  });
}

/** YAML text of valid playbooks, with and without defaults spelled out. */
export function validPlaybookSourceArbitrary(options: PlaybookArbitraryOptions = {}): fc.Arbitrary<string> {
  return fc.tuple(playbookDefinitionArbitrary(options), fc.boolean()).map(([definition, omitDefaults]) => playbookToYaml(definition, { omitDefaults }));
}
