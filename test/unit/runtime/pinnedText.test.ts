/**
 * A run keeps its history when the format grows stricter: a run started (by an
 * earlier version) on a text that reads the context in a deterministic node's
 * cwd, which v2 refuses for new runs (I_TEMPLATE_NOT_ALLOWED), still folds,
 * verifies and resumes, and its cwd is still rendered from inputs only.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeterministicRunner, RunCommandRequest } from '../../../src/adapters/types.js';
import { sha256Hex } from '../../../src/events/canonicalJson.js';
import type { NewRunEvent, RunEvent } from '../../../src/events/types.js';
import { PlaybookParseError } from '../../../src/playbook/parseError.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { toApprovalRows, toRunRow } from '../../../src/projections/projectRun.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { foldStoredEvents } from '../../../src/runtime/loadRun.js';
import { verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { scriptedDispatcher, tempStore } from '../../helpers/runtimeHarness.js';

const legacy = `version: "1.0"
name: legacy
inputs: [{ name: dir, default: /srv/app }]
nodes:
  - { id: prepare, type: agentic, skill: s }
  - { id: build, type: deterministic, command: make, cwd: "{{workdir}}", depends: [prepare] }
`;

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

describe('a run pinned to a text the format now refuses', () => {
  it('new runs of the text are refused', async () => {
    expect(() => parsePlaybook(legacy)).toThrow(PlaybookParseError);
    await expect(executePlaybook({ store, playbook: parsePlaybook(legacy, { pinned: true }).definition, source: legacy, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RUNTIME_INVALID' });
  });

  it('an existing run still folds, verifies and finishes, with cwd from inputs only', async () => {
    const at = '2026-11-01T00:00:00.000Z';
    const drafts: NewRunEvent[] = [
      { type: 'RunStarted', at, data: { playbookName: 'legacy', sourceHash: sha256Hex(legacy), source: legacy, context: { dir: '/srv/app' }, maxIterationsDefault: 3 } },
      { type: 'NodeStarted', at, data: { nodeId: 'prepare', attempt: 1 } },
      { type: 'NodeSucceeded', at, data: { nodeId: 'prepare', attempt: 1, output: { workdir: '/tmp/attacker' } } },
    ];
    const stored = drafts.map((event, i) => ({ ...event, runId: 'r-legacy', seq: i + 1, globalSeq: 0, hash: '' }) as RunEvent);
    const { playbook, snapshot } = foldStoredEvents('r-legacy', stored);
    await store.append({ runId: 'r-legacy', expectedVersion: 0, events: drafts, run: toRunRow(playbook.model, snapshot), approvals: toApprovalRows(snapshot), playbook: { sourceHash: playbook.sourceHash, name: 'legacy', source: legacy } });
    expect((await verifyRun(store, 'r-legacy')).ok).toBe(true);

    const requests: RunCommandRequest[] = [];
    const deterministicRunner: DeterministicRunner = { run: (request) => (requests.push(request), { status: 'success', output: { built: true } }) };
    const result = await recoverRun({ store, runId: 'r-legacy', dispatcher: scriptedDispatcher(), deterministicRunner });
    expect(result.terminalStatus).toBe('completed');
    // The context template is not rendered from what an agent wrote.
    expect(requests[0]?.cwd).toBe('{{workdir}}');
  });
});
