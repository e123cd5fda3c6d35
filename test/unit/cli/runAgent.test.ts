/**
 * Which agent a command continuing a run needs (SPEC §7, ADR 0010): specs that
 * carry a credential are never remembered, and only the nodes still to run,
 * up the tree of child runs, decide whether an agent is needed at all.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentNeedOfRun, agentNeedOfTree, credentialIn, settingsFor } from '../../../src/cli/runAgent.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import type { PlaybookResolver } from '../../../src/playbook/resolvePlaybooks.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, success, tempStore } from '../../helpers/runtimeHarness.js';

describe('credentialIn: what is never remembered', () => {
  it.each([
    ['http://user:pw@agents.local/run', 'its URL carries a user name or password'],
    ['https://token@agents.local/run', 'its URL carries a user name or password'],
    ['http:agents.local/run?api_key=abc', "its URL has a query parameter 'api_key'"],
    ['https://agents.local/run?x=1&access_token=abc', "its URL has a query parameter 'access_token'"],
    ['exec:node agent.mjs --api-key=abc', "it passes the option '--api-key'"],
    ['exec:node agent.mjs --token abc', "it passes the option '--token'"],
    ['module:./agent.mjs --password=x', "it passes the option '--password'"],
    ['exec:OPENAI_API_KEY=abc node agent.mjs', 'it sets an environment variable inline'],
  ])('%s', (spec, why) => {
    expect(credentialIn(spec)).toBe(why);
    expect(settingsFor(spec)).toEqual({ refused: why });
  });

  it.each(['exec:node my-agent.mjs', 'exec:node agent.mjs --model gpt --name "my agent"', 'module:./agents/dispatch.mjs', 'http://127.0.0.1:8080/dispatch?model=fast', 'https://agents.local/run'])(
    'remembers %s as given',
    (spec) => {
      expect(credentialIn(spec)).toBeUndefined();
      expect(settingsFor(` ${spec} `)).toEqual({ settings: { agent: spec } });
    },
  );

  it('remembers nothing for a run started without --agent', () => {
    expect(settingsFor(undefined)).toEqual({});
    expect(settingsFor('  ')).toEqual({});
  });
});

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

function library(texts: Record<string, string>): PlaybookResolver {
  return (ref) => (Object.hasOwn(texts, ref) ? { id: ref, source: texts[ref] as string } : null);
}

const gatedChild = `version: "1.0"
name: gated
nodes:
  - { id: draft, type: agentic, skill: s }
  - { id: sign, type: approval, depends: [draft], prompt: "sign?" }
  - { id: stamp, type: deterministic, depends: [sign], command: "true" }
`;

describe('agentNeedOfRun: only what can still run', () => {
  it('a run paused before deterministic nodes only needs no agent; one before an agentic node does', async () => {
    const source = (after: string) => `version: "1.0"
name: p
nodes:
  - { id: fix, type: agentic, skill: s }
  - { id: gate, type: approval, depends: [fix], prompt: "go?" }
  - ${after}
`;
    const dispatcher = scriptedDispatcher();
    const quiet = await executePlaybook({ store, ...playbookFrom(source('{ id: test, type: deterministic, depends: [gate], command: "true" }')), dispatcher, runSettings: { agent: 'exec:node a.mjs' } });
    const busy = await executePlaybook({ store, ...playbookFrom(source('{ id: ship, type: agentic, skill: s, depends: [gate] }')), dispatcher });
    expect(await agentNeedOfRun(store, quiet.runId)).toEqual({ agentic: [], remembered: { agent: 'exec:node a.mjs' } });
    expect(await agentNeedOfRun(store, busy.runId)).toEqual({ agentic: [{ id: 'ship', playbook: 'p' }] });
    expect(await agentNeedOfRun(store, 'no-such-run')).toBeNull();
  });

  it('a child paused at its gate: its own remaining nodes, its parents\' later nodes, and the root\'s settings', async () => {
    const root = `version: "1.0"
name: root
nodes:
  - { id: sub, type: playbook, playbook: gated }
  - { id: report, type: deterministic, depends: [sub], command: "true" }
`;
    const dispatcher = scriptedDispatcher({ draft: [success()] });
    const result = await executePlaybook({ store, ...playbookFrom(root), resolvePlaybook: library({ gated: gatedChild }), dispatcher, runSettings: { agent: 'exec:node a.mjs' } });
    expect(result.terminalStatus).toBe('pending_approval');
    const child = `${result.runId}.sub.1.0`;
    // draft ran already: nothing agentic is left in the tree, though the child playbook has an agentic node.
    expect(await agentNeedOfRun(store, child)).toEqual({ agentic: [], remembered: { agent: 'exec:node a.mjs' } });
    expect(await agentNeedOfRun(store, result.runId)).toEqual({ agentic: [], remembered: { agent: 'exec:node a.mjs' } });
  });

  it("a map's items not yet started count by their whole playbook", async () => {
    const root = `version: "1.0"
name: fan
nodes:
  - { id: plan, type: agentic, skill: s }
  - { id: each, type: map, depends: [plan], items: "{{tasks}}", item_input: task, playbook: gated, max_concurrency: 1 }
`;
    const dispatcher = scriptedDispatcher({ plan: [success({ tasks: ['a', 'b'] })], draft: [success(), success()] });
    const gated = gatedChild.replace('nodes:', 'inputs: [{ name: task }]\nnodes:');
    const result = await executePlaybook({ store, ...playbookFrom(root), resolvePlaybook: library({ gated }), dispatcher });
    expect(result.terminalStatus).toBe('pending_approval');
    // The first child waits at its gate; the second item has not started: its draft needs an agent.
    expect(await agentNeedOfRun(store, `${result.runId}.each.1.0`)).toEqual({ agentic: [{ id: 'draft', playbook: 'gated' }] });
  });

  it('a new run needs every agentic node of its tree, parallel branches included', () => {
    const parallel = parsePlaybook(`version: "1.0"
name: par
nodes:
  - id: review
    type: parallel
    branches:
      - { id: a, nodes: [{ id: lint, type: deterministic, command: "true" }] }
      - { id: b, nodes: [{ id: judge, type: agentic, skill: s }] }
`).definition;
    expect(agentNeedOfTree([parallel, parsePlaybook(gatedChild).definition])).toEqual({ agentic: [{ id: 'judge', playbook: 'par' }, { id: 'draft', playbook: 'gated' }] });
  });
});
