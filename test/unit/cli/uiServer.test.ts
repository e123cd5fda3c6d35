/**
 * The viewer's HTTP surface: who may call it (Host, Origin, session key), what
 * its JSON API returns (the fold after every event), and that deciding a gate
 * goes through approveGate/rejectGate + resume exactly like the CLI.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compilePlaybook, executePlaybook, foldRunSteps, getRun, initialRunSnapshot, readRunEvents } from '../../../src/index.js';
import type { EventStore } from '../../../src/index.js';
import { newestGlobalSeq, SESSION_KEY_HEADER } from '../../../src/cli/ui/uiServer.js';
import type { UiServer } from '../../../src/cli/ui/uiServer.js';
import { pausedRelease, rawRequest, releasePlaybook, startViewer, VIEWER_NOW } from '../../helpers/uiFixture.js';
import { playbookFrom, scriptedDispatcher, SECRET, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
let server: UiServer;
let dispatcher: Awaited<ReturnType<typeof startViewer>>['dispatcher'];

beforeEach(async () => {
  ({ store, cleanup } = await tempStore());
  ({ server, dispatcher } = await startViewer(store));
});
afterEach(async () => {
  await server.close();
  await cleanup();
});

const key = () => ({ [SESSION_KEY_HEADER]: server.sessionKey });
const api = (path: string, headers: Record<string, string> = {}) => rawRequest(server.port, { path, headers: { ...key(), ...headers } });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  rawRequest(server.port, { method: 'POST', path, headers: { ...key(), 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const errorOf = (response: { json: () => unknown }) => (response.json() as { error: { code: string; message: string } }).error;

describe('who may call the viewer', () => {
  it('listens on 127.0.0.1 and prints a link carrying the session key in its fragment', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.openUrl).toBe(`${server.url}#key=${server.sessionKey}`);
    expect(server.sessionKey).toMatch(/^[0-9a-f]{64}$/);
  });

  it('serves the page to anyone local, with a strict content security policy', async () => {
    const page = await rawRequest(server.port, { path: '/' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<script type="module" src="/viewer.js">');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    for (const asset of ['/viewer.js', '/viewer.css']) expect((await rawRequest(server.port, { path: asset })).status).toBe(200);
    const outside = await rawRequest(server.port, { path: '/../package.json' });
    expect(outside.status).toBe(404);
    expect(errorOf(outside).code).toBe('E_UI_NOT_FOUND');
  });

  it('refuses API calls without the session key, or with a wrong one (401)', async () => {
    const missing = await rawRequest(server.port, { path: '/api/runs' });
    expect(missing.status).toBe(401);
    expect(errorOf(missing).code).toBe('E_UI_FORBIDDEN');
    const wrong = await rawRequest(server.port, { path: '/api/runs', headers: { [SESSION_KEY_HEADER]: 'f'.repeat(64) } });
    expect(wrong.status).toBe(401);
  });

  it('refuses a Host that is not this server (DNS rebinding), even with the key (403)', async () => {
    const rebound = await api('/api/runs', { host: `attacker.example:${server.port}` });
    expect(rebound.status).toBe(403);
    expect(errorOf(rebound).message).toContain("not 'attacker.example");
    expect((await api('/api/runs', { host: `localhost:${server.port}` })).status).toBe(200);
    expect((await api('/api/runs', { host: '127.0.0.1:1' })).status).toBe(403);
  });

  it('refuses a POST from a non-local Origin (403) and records nothing', async () => {
    const run = await pausedRelease(store);
    const response = await post(`/api/runs/${run.runId}/approve`, { token: run.approvalToken, approver: 'mallory' }, { origin: 'https://attacker.example' });
    expect(response.status).toBe(403);
    expect(errorOf(response)).toMatchObject({ code: 'E_UI_FORBIDDEN', message: "cross-origin request from 'https://attacker.example' refused" });
    expect((await getRun(store, run.runId))?.status).toBe('paused');
    expect(dispatcher.calls).toHaveLength(0);
    // The page's own origin is fine; so is a request without Origin (curl).
    expect((await api('/api/runs', { origin: `http://127.0.0.1:${server.port}` })).status).toBe(200);
  });

  it('refuses form-encodable POST bodies (415) and cross-site fetch metadata (403)', async () => {
    const run = await pausedRelease(store);
    const form = await post(`/api/runs/${run.runId}/approve`, {}, { 'content-type': 'text/plain' });
    expect(form.status).toBe(415);
    const crossSite = await post(`/api/runs/${run.runId}/approve`, {}, { 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    expect((await getRun(store, run.runId))?.status).toBe('paused');
  });
});

describe('the JSON API', () => {
  it('lists runs (newest first) and pending gates, without tokens or token hashes', async () => {
    const first = await pausedRelease(store, '1.0.0', 0);
    const second = await pausedRelease(store, '1.1.0', 1);
    const response = await api('/api/runs');
    expect(response.status).toBe(200);
    const body = response.json() as { label: string; runs: { runId: string; status: string }[]; approvals: { runId: string; prompt: string }[] };
    expect(body.label).toBe('test database');
    expect(body.runs.map((run) => run.runId)).toEqual([second.runId, first.runId]);
    expect(body.approvals.map((gate) => gate.prompt)).toEqual(['Publish 1.0.0 (12 changelog lines)?', 'Publish 1.1.0 (12 changelog lines)?']);
    expect(response.body).not.toContain(first.approvalToken);
    expect(response.body).not.toContain('tokenHash');
  });

  it("gives a run's graph and, for every event, the fold after it", async () => {
    const run = await pausedRelease(store);
    const detail = (await api(`/api/runs/${run.runId}`)).json() as { run: { status: string }; graph: { entry: string; nodes: { id: string }[]; edges: unknown[] }; approvals: object[] };
    expect(detail.run.status).toBe('paused');
    expect(detail.graph.entry).toBe('version_bump');
    expect(detail.graph.nodes.map((node) => node.id)).toEqual(['version_bump', 'changelog', 'approval', 'publish', '@completed']);
    expect(detail.graph.edges).toContainEqual({ from: 'approval', to: 'publish', kind: 'next', label: 'approved' });
    expect(detail.graph.edges).toContainEqual({ from: 'publish', to: '@completed', kind: 'next' });
    // What a failure does: retry in place up to the cap (default 3); publish has cap 1, so no loop.
    expect(detail.graph.edges.filter((edge) => (edge as { kind: string }).kind !== 'next')).toEqual([
      { from: 'version_bump', to: 'version_bump', kind: 'retry', label: 'retry · 3 attempt(s)' },
      { from: 'changelog', to: 'changelog', kind: 'retry', label: 'retry · 3 attempt(s)' },
    ]);
    expect(JSON.stringify(detail.approvals)).not.toContain('tokenHash');

    const { steps } = (await api(`/api/runs/${run.runId}/states`)).json() as { steps: { seq: number; type: string; value: unknown; context: unknown; node: string | null; phase: string | null }[] };
    const events = await readRunEvents(store, run.runId);
    const machine = compilePlaybook(releasePlaybook.playbook);
    const folded = foldRunSteps(machine, initialRunSnapshot(machine), events);
    expect(steps.map((step) => step.seq)).toEqual(events.map((event) => event.seq));
    expect(steps.map((step) => step.value)).toEqual(folded.map((snapshot) => snapshot.value));
    expect(steps.map((step) => step.context)).toEqual(folded.map((snapshot) => snapshot.context.context));
    expect(steps.map((step) => [step.type, step.node, step.phase])).toEqual([
      ['RunStarted', 'version_bump', 'ready'],
      ['NodeStarted', 'version_bump', 'running'],
      ['NodeSucceeded', 'changelog', 'ready'],
      ['NodeStarted', 'changelog', 'running'],
      ['NodeSucceeded', 'approval', 'ready'],
      ['RunPaused', 'approval', 'paused'],
    ]);
  });

  it('never serves a token hash: not in the run page, not in any step of the states page', async () => {
    const run = await pausedRelease(store);
    const hash = (await store.getApproval(run.approvalId as string))?.tokenHash as string;
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    for (const path of ['/api/runs', `/api/runs/${run.runId}`, `/api/runs/${run.runId}/states`]) {
      const response = await api(path);
      expect(response.status, path).toBe(200);
      expect(response.body, path).not.toContain(hash);
      expect(response.body, path).not.toContain('tokenHash');
    }
    const { steps } = (await api(`/api/runs/${run.runId}/states`)).json() as { steps: { type: string; data: Record<string, unknown> }[] };
    // The rest of the gate's event is still there to see.
    expect(steps.find((step) => step.type === 'RunPaused')?.data).toMatchObject({ approvalId: run.approvalId, nodeId: 'approval', contextDigest: expect.any(String) });
  });

  it('marks escalation gates and auto-passes (SPEC §13), as the CLI does: in the pending list and on the run page', async () => {
    const escalating = await executePlaybook({
      store,
      ...playbookFrom(`version: "1.0"
name: escalate
error_handlers: [{ on: contract_violation, action: hitl_escalate }]
nodes:
  - { id: research, type: agentic, skill: s }
  - { id: plan, type: agentic, skill: s, depends: [research], requires: { fields: [topic] } }
`),
      dispatcher: scriptedDispatcher(),
      approvalSecret: SECRET,
      now: VIEWER_NOW,
    });
    const passing = await executePlaybook({
      store,
      ...playbookFrom(`version: "1.0"
name: qa
nodes:
  - { id: gate, type: approval, policy: permissive, prompt: "Test?" }
  - { id: unit, type: deterministic, command: pnpm, args: [test], depends: [gate] }
`),
      dispatcher: scriptedDispatcher(),
      deterministicRunner: { run: () => success({ tests: 'passed' }) },
      approvalSecret: SECRET,
      now: VIEWER_NOW,
    });
    const plain = await pausedRelease(store);
    expect([escalating.terminalStatus, passing.terminalStatus]).toEqual(['pending_approval', 'completed']);

    const { approvals } = (await api('/api/runs')).json() as { approvals: { runId: string; escalation?: unknown }[] };
    expect(approvals.find((gate) => gate.runId === escalating.runId)?.escalation).toEqual({ on: 'contract_violation', checkpoint: 'entry' });
    expect(approvals.find((gate) => gate.runId === plain.runId)).not.toHaveProperty('escalation');
    const gatesOf = async (runId: string) => ((await api(`/api/runs/${runId}`)).json() as { approvals: Record<string, unknown>[] }).approvals;
    expect(await gatesOf(escalating.runId)).toEqual([expect.objectContaining({ nodeId: 'plan', status: 'pending', escalation: { on: 'contract_violation', checkpoint: 'entry' } })]);
    expect(await gatesOf(passing.runId)).toEqual([expect.objectContaining({ nodeId: 'gate', status: 'approved', approver: 'policy', auto: true, rule: 'safe-qa-tool' })]);
    const [gate] = await gatesOf(plain.runId);
    expect(gate).not.toHaveProperty('auto');
    expect(gate).not.toHaveProperty('escalation');
  });

  it('a malformed %-escape in an API path is 400 E_USAGE, not a 500', async () => {
    for (const path of ['/api/runs/%E0%A4%A', '/api/runs/%zz/states', '/api/runs/%']) {
      const response = await api(path);
      expect(response.status, path).toBe(400);
      expect(errorOf(response), path).toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('malformed %-escape') });
    }
  });

  it('answers an unknown run with E_RUN_NOT_FOUND (404)', async () => {
    const response = await api('/api/runs/nope');
    expect(response.status).toBe(404);
    expect(errorOf(response).code).toBe('E_RUN_NOT_FOUND');
  });
});

describe('deciding a gate from the viewer', () => {
  it('a wrong token is refused with its code and the run stays paused', async () => {
    const run = await pausedRelease(store);
    const forged = `${run.approvalToken.slice(0, -4)}AAAA`;
    const response = await post(`/api/runs/${run.runId}/approve`, { token: forged, approver: 'eve' });
    expect(response.status).toBe(403);
    expect(errorOf(response).code).toBe('E_APPROVAL_TOKEN_INVALID');
    const garbage = await post(`/api/runs/${run.runId}/approve`, { token: 'not-a-token', approver: 'eve' });
    expect(errorOf(garbage).code).toBe('E_APPROVAL_TOKEN_INVALID');
    expect((await getRun(store, run.runId))?.status).toBe('paused');
    expect(dispatcher.calls).toHaveLength(0);
  });

  it("a token of another run's gate is refused on this run's page", async () => {
    const mine = await pausedRelease(store, '1.0.0');
    const other = await pausedRelease(store, '1.1.0');
    const response = await post(`/api/runs/${mine.runId}/approve`, { token: other.approvalToken, approver: 'ana' });
    expect(response.status).toBe(403);
    expect(errorOf(response).code).toBe('E_APPROVAL_TOKEN_INVALID');
    expect((await getRun(store, other.runId))?.status).toBe('paused');
  });

  it('needs an approver, and a reason to reject (E_USAGE, 400)', async () => {
    const run = await pausedRelease(store);
    expect(errorOf(await post(`/api/runs/${run.runId}/approve`, { token: run.approvalToken, approver: ' ' }))).toMatchObject({ code: 'E_USAGE' });
    const noReason = await post(`/api/runs/${run.runId}/reject`, { token: run.approvalToken, approver: 'ana' });
    expect(noReason.status).toBe(400);
    expect((await getRun(store, run.runId))?.status).toBe('paused');
  });

  it('approve records the decision and resumes with the configured dispatcher, once', async () => {
    const run = await pausedRelease(store);
    const response = await post(`/api/runs/${run.runId}/approve`, { token: run.approvalToken, approver: 'ana', reason: 'changelog reviewed' });
    expect(response.status).toBe(200);
    const body = response.json() as { decision: { status: string }; result: { terminalStatus: string; finalContext: Record<string, unknown> } };
    expect(body.decision.status).toBe('approved');
    expect(body.result.terminalStatus).toBe('completed');
    expect(body.result.finalContext.__lastApproval).toMatchObject({ approver: 'ana', reason: 'changelog reviewed' });
    expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['publish']);
    const again = await post(`/api/runs/${run.runId}/approve`, { token: run.approvalToken, approver: 'ana' });
    expect(again.status).toBe(409);
    expect(errorOf(again).code).toBe('E_APPROVAL_ALREADY_DECIDED');
    expect(dispatcher.calls).toHaveLength(1);
  });

  it('reject fails the run at once', async () => {
    const run = await pausedRelease(store);
    const response = await post(`/api/runs/${run.runId}/reject`, { token: run.approvalToken, approver: 'ana', reason: 'wrong version' });
    expect(response.status).toBe(200);
    expect((response.json() as { result: { terminalStatus: string } }).result.terminalStatus).toBe('failed');
    const failed = await getRun(store, run.runId);
    expect(failed?.error).toMatchObject({ cause: 'approval_rejected', nodeId: 'approval' });
    expect(failed?.errorContext).toContain('wrong version');
  });
});

describe('keeping the page live', () => {
  it('GET /api/changes gives the newest globalSeq, then the runs whose events were appended after a given one', async () => {
    const first = await pausedRelease(store, '1.0.0');
    const head = (await api('/api/changes')).json() as { globalSeq: number; runIds: string[]; more: boolean };
    const all = await store.readAll(0, 1000);
    expect(head).toEqual({ globalSeq: all.at(-1)?.globalSeq, runIds: [], more: false });
    expect((await api(`/api/changes?after=${head.globalSeq}`)).json()).toEqual({ globalSeq: head.globalSeq, runIds: [], more: false });

    const second = await pausedRelease(store, '1.1.0', 1);
    const moved = (await api(`/api/changes?after=${head.globalSeq}`)).json() as { globalSeq: number; runIds: string[] };
    expect(moved.runIds).toEqual([second.runId]);
    expect(moved.globalSeq).toBe((await store.readAll(0, 1000)).at(-1)?.globalSeq);
    expect(((await api('/api/changes?after=0')).json() as { runIds: string[] }).runIds).toEqual([first.runId, second.runId]);
    const bad = await api('/api/changes?after=-1');
    expect(bad.status).toBe(400);
    expect(errorOf(bad).code).toBe('E_USAGE');
  });

  it('GET /api/runs/:id/live gives the run, its gates, what may be done to it and only the steps after ?after=', async () => {
    const run = await pausedRelease(store);
    const events = await readRunEvents(store, run.runId);
    type Live = { run: { status: string; version: number }; approvals: { status: string }[]; actions: { cancel: boolean; retry: boolean }; version: number; steps: { seq: number; sincePreviousMs: number | null }[] };
    const live = (await api(`/api/runs/${run.runId}/live`)).json() as Live;
    expect(live.run.status).toBe('paused');
    expect(live.version).toBe(events.length);
    expect(live.actions).toEqual({ cancel: true, retry: false });
    expect(live.approvals.map((gate) => gate.status)).toEqual(['pending']);
    expect(live.steps.map((step) => step.seq)).toEqual(events.map((event) => event.seq));
    expect(live.steps[0]?.sincePreviousMs).toBeNull();
    const tail = (await api(`/api/runs/${run.runId}/live?after=4`)).json() as Live;
    expect(tail.steps.map((step) => step.seq)).toEqual(events.slice(4).map((event) => event.seq));
    const states = (await api(`/api/runs/${run.runId}/states?after=${events.length - 1}`)).json() as { steps: { seq: number }[] };
    expect(states.steps.map((step) => step.seq)).toEqual([events.length]);
    expect((await api('/api/runs/nope/live')).status).toBe(404);
  });

  it("GET /api/runs/:id/nodes/:nodeId gives a node's attempts; an unknown node is 404 E_UI_NOT_FOUND", async () => {
    const run = await pausedRelease(store);
    const changelog = (await api(`/api/runs/${run.runId}/nodes/changelog`)).json() as { nodeId: string; attempts: { attempt: number; status: string; output?: unknown }[] };
    expect(changelog.nodeId).toBe('changelog');
    expect(changelog.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 'succeeded', output: { lines: 12 } })]);
    const gate = (await api(`/api/runs/${run.runId}/nodes/approval`)).json() as { gates: { status: string }[] };
    expect(gate.gates.map((g) => g.status)).toEqual(['pending']);
    expect(JSON.stringify(gate)).not.toContain('tokenHash');
    const missing = await api(`/api/runs/${run.runId}/nodes/nope`);
    expect(missing.status).toBe(404);
    expect(errorOf(missing)).toMatchObject({ code: 'E_UI_NOT_FOUND', message: expect.stringContaining("has no node 'nope'") });
  });
});

describe('cancelling and retrying from the viewer', () => {
  it('cancel needs a reason (E_USAGE), then cancels like cancelRun; a second cancel is E_RUN_FINISHED (409)', async () => {
    const run = await pausedRelease(store);
    const noReason = await post(`/api/runs/${run.runId}/cancel`, { by: 'ana' });
    expect(noReason.status).toBe(400);
    expect(errorOf(noReason).code).toBe('E_USAGE');
    expect((await getRun(store, run.runId))?.status).toBe('paused');

    const response = await post(`/api/runs/${run.runId}/cancel`, { reason: 'superseded', by: 'ana' });
    expect(response.status).toBe(200);
    expect((response.json() as { result: { terminalStatus: string } }).result.terminalStatus).toBe('cancelled');
    const log = await readRunEvents(store, run.runId);
    expect(log.at(-1)).toMatchObject({ type: 'RunCancelled', data: { reason: 'superseded', by: 'ana' } });
    expect(((await api(`/api/runs/${run.runId}/live`)).json() as { actions: unknown }).actions).toEqual({ cancel: false, retry: false });

    const again = await post(`/api/runs/${run.runId}/cancel`, { reason: 'twice' });
    expect(again.status).toBe(409);
    expect(errorOf(again).code).toBe('E_RUN_FINISHED');
    expect(await readRunEvents(store, run.runId)).toHaveLength(log.length);
    expect((await post('/api/runs/nope/cancel', { reason: 'x' })).status).toBe(404);
  });

  it('retry refuses a run that has not failed (E_RUN_NOT_RETRYABLE, 409) without dispatching, and redrives a failed one', async () => {
    const paused = await pausedRelease(store);
    const refused = await post(`/api/runs/${paused.runId}/retry`, {});
    expect(refused.status).toBe(409);
    expect(errorOf(refused).code).toBe('E_RUN_NOT_RETRYABLE');
    expect(dispatcher.calls).toHaveLength(0);

    const failed = await executePlaybook({
      store,
      ...releasePlaybook,
      initialContext: { targetVersion: '3.0.0' },
      dispatcher: scriptedDispatcher({ changelog: [{ status: 'failure', error: 'no network' }] }),
      approvalSecret: SECRET,
      now: VIEWER_NOW,
    });
    expect(failed.terminalStatus).toBe('exceeded_iteration_cap');
    expect(((await api(`/api/runs/${failed.runId}/live`)).json() as { actions: unknown }).actions).toEqual({ cancel: false, retry: true });
    const response = await post(`/api/runs/${failed.runId}/retry`, { by: 'ana', reason: 'network is back' });
    expect(response.status).toBe(200);
    expect((response.json() as { result: { terminalStatus: string } }).result.terminalStatus).toBe('pending_approval');
    expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['changelog']);
    const log = await readRunEvents(store, failed.runId);
    expect(log.find((event) => event.type === 'RunRetried')?.data).toEqual({ fromNode: 'changelog', by: 'ana', reason: 'network is back' });
  });
});

describe('newestGlobalSeq', () => {
  it("finds the store's newest position from any earlier one, in O(log n) reads", async () => {
    expect(await newestGlobalSeq(store, 0)).toBe(0);
    const dispatcher = scriptedDispatcher();
    const small = playbookFrom(`version: "1.0"\nname: small\nnodes:\n  - { id: a, type: agentic, skill: s }\n`);
    for (let i = 0; i < 9; i += 1) await executePlaybook({ store, ...small, dispatcher });
    const all = await store.readAll(0, 10_000);
    const newest = all.at(-1)?.globalSeq as number;
    expect(all.length).toBeGreaterThan(30);
    let reads = 0;
    const counted = { ...store, readAll: (after: number, limit: number) => ((reads += 1), store.readAll(after, limit)) } as EventStore;
    for (const from of [0, 1, 7, newest - 1, newest]) expect(await newestGlobalSeq(counted, from)).toBe(newest);
    expect(reads).toBeLessThanOrEqual(5 * (2 * Math.ceil(Math.log2(newest + 1)) + 2));
  });
});
