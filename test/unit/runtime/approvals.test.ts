import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook, resumeRun, sweepExpiredApprovals } from '../../../src/runtime/gates.js';
import { getPendingApprovals, getRun, readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { hashResumeToken } from '../../../src/approvals/resumeToken.js';
import { manualClock, playbookFrom, scriptedDispatcher, SECRET, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const release = playbookFrom(`
version: "1.0"
name: release
inputs:
  - { name: targetVersion, required: true }
  - { name: channel, default: latest }
nodes:
  - { id: version_bump, type: agentic, skill: bump }
  - { id: changelog, type: agentic, skill: log, depends: [version_bump] }
  - { id: approval, type: approval, policy: conservative, timeout: 2h, prompt: "Publish {{inputs.targetVersion}} to {{inputs.channel}} ({{changelog.lines}} lines)?", depends: [changelog] }
  - { id: publish, type: agentic, skill: pub, on_failure: { max_iterations: 1 }, depends: [approval] }
`);

async function pause(clock = manualClock()) {
  const dispatcher = scriptedDispatcher({ changelog: [success({ changelog: { lines: 12 } })] });
  const result = await executePlaybook({ store, ...release, initialContext: { targetVersion: '2.0.0' }, dispatcher, approvalSecret: SECRET, now: clock.now });
  return { result, dispatcher, token: result.approvalToken as string, clock, opts: { approvalSecret: SECRET, now: clock.now } };
}

describe('approval gates', () => {
  it('pause: RunPaused with a rendered prompt and a token; nothing after the gate runs', async () => {
    const { result, dispatcher, token, clock } = await pause();
    expect(result.terminalStatus).toBe('pending_approval');
    expect(token).toMatch(/^cbk1\.[0-9a-f-]+\.[A-Za-z0-9_-]{43}$/);
    expect(dispatcher.calls.map((c) => c.nodeId)).toEqual(['version_bump', 'changelog']);
    const paused = (await readRunEvents(store, result.runId)).at(-1);
    expect(paused?.type).toBe('RunPaused');
    expect(paused?.data).toMatchObject({ nodeId: 'approval', prompt: 'Publish 2.0.0 to latest (12 lines)?', expiresAt: '2026-01-01T02:00:00.000Z' });
    // Only the token's hash is stored, never the token or the secret.
    const everything = JSON.stringify(await readRunEvents(store, result.runId)) + JSON.stringify(await store.listApprovals());
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(SECRET);
    expect(await getPendingApprovals(store, { now: clock.now })).toEqual([
      { approvalId: result.approvalId, runId: result.runId, nodeId: 'approval', prompt: 'Publish 2.0.0 to latest (12 lines)?', requestedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T02:00:00.000Z' },
    ]);
    expect((await getRun(store, result.runId))?.status).toBe('paused');
  });

  it('approve + resume completes, with __lastApproval in the context', async () => {
    const { result, token, clock } = await pause();
    const decision = await approveGate({ store, token, approver: 'alice', reason: 'ship it', approvalSecret: SECRET, now: clock.now });
    expect(decision).toMatchObject({ status: 'approved', runId: result.runId, nodeId: 'approval' });
    const after = scriptedDispatcher();
    const resumed = await resumePlaybook({ store, approvalToken: token, dispatcher: after, approvalSecret: SECRET, now: clock.now });
    expect(resumed.terminalStatus).toBe('completed');
    expect(after.calls.map((c) => c.nodeId)).toEqual(['publish']);
    expect(resumed.finalContext.__lastApproval).toEqual({ nodeId: 'approval', approvalId: result.approvalId, approver: 'alice', reason: 'ship it', approvedAt: '2026-01-01T00:00:00.000Z' });
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
    expect(await getPendingApprovals(store)).toEqual([]);
  });

  it('resume refuses a pending gate, and a second resume, with E_PLAYBOOK_RESUME_BLOCKED', async () => {
    const { token, opts } = await pause();
    const dispatcher = scriptedDispatcher();
    await expect(resumePlaybook({ store, approvalToken: token, dispatcher, ...opts })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    await approveGate({ store, token, approver: 'a', ...opts });
    await resumePlaybook({ store, approvalToken: token, dispatcher, ...opts });
    await expect(resumePlaybook({ store, approvalToken: token, dispatcher, ...opts })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    expect(dispatcher.countOf('publish')).toBe(1);
  });

  it('concurrent resumes in one process: exactly one proceeds, downstream runs once', async () => {
    const { result, token, opts } = await pause();
    await approveGate({ store, token, approver: 'a', ...opts });
    const dispatcher = scriptedDispatcher();
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => resumePlaybook({ store, approvalToken: token, dispatcher, ...opts })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    expect(dispatcher.countOf('publish')).toBe(1);
    expect((await readRunEvents(store, result.runId)).filter((e) => e.type === 'RunResumed')).toHaveLength(1);
  });

  it('resumeRun resumes by run id once the gate is approved', async () => {
    const { result, token, opts } = await pause();
    await expect(resumeRun({ store, runId: result.runId, dispatcher: scriptedDispatcher(), ...opts })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    await approveGate({ store, token, approver: 'a', ...opts });
    expect((await resumeRun({ store, runId: result.runId, dispatcher: scriptedDispatcher(), ...opts })).terminalStatus).toBe('completed');
  });

  it('reject fails the run at once; later decisions and resumes are refused', async () => {
    const { result, token, opts } = await pause();
    const decision = await rejectGate({ store, token, approver: 'bob', reason: 'not today', ...opts });
    expect(decision.result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'approval', error: { cause: 'approval_rejected' } });
    expect((await readRunEvents(store, result.runId)).slice(-2).map((e) => e.type)).toEqual(['ApprovalRejected', 'RunFailed']);
    await expect(approveGate({ store, token, approver: 'a', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
    await expect(resumePlaybook({ store, approvalToken: token, dispatcher: scriptedDispatcher(), ...opts })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    expect((await store.getApproval(result.approvalId as string))?.status).toBe('rejected');
  });

  it('deciding twice is E_APPROVAL_ALREADY_DECIDED', async () => {
    const { token, opts } = await pause();
    await approveGate({ store, token, approver: 'a', ...opts });
    await expect(approveGate({ store, token, approver: 'b', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
    await expect(rejectGate({ store, token, approver: 'b', reason: 'x', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
  });

  it('forged, altered, malformed and unknown tokens are refused with their codes', async () => {
    const { token, opts } = await pause();
    const [prefix, id, sig] = token.split('.') as [string, string, string];
    const flipped = `${prefix}.${id}.${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    await expect(approveGate({ store, token: flipped, approver: 'a', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    // A token of the right shape for this gate, with another credential, is refused like any forgery.
    const otherCredential = `${prefix}.${id}.${Buffer.alloc(32, 7).toString('base64url')}`;
    await expect(approveGate({ store, token: otherCredential, approver: 'a', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    await expect(approveGate({ store, token: 'not a token', approver: 'a', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    const unknown = `${prefix}.00000000-0000-0000-0000-000000000000.${sig}`;
    await expect(approveGate({ store, token: unknown, approver: 'a', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_NOT_FOUND' });
    await expect(resumePlaybook({ store, approvalToken: flipped, dispatcher: scriptedDispatcher(), ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    // None of that changed the gate.
    expect((await getPendingApprovals(store, opts))).toHaveLength(1);
  });

  it('an expired gate is refused, and the expiry is recorded durably (cause approval_expired)', async () => {
    const { result, token, clock } = await pause();
    clock.advance(2 * 3600_000);
    await expect(approveGate({ store, token, approver: 'a', approvalSecret: SECRET, now: clock.now })).rejects.toMatchObject({ code: 'E_APPROVAL_EXPIRED' });
    expect(await getRun(store, result.runId)).toMatchObject({ status: 'failed', error: { cause: 'approval_expired', nodeId: 'approval' } });
    expect((await store.getApproval(result.approvalId as string))?.status).toBe('expired');
    await expect(approveGate({ store, token, approver: 'a', approvalSecret: SECRET, now: clock.now })).rejects.toMatchObject({ code: 'E_APPROVAL_EXPIRED' });
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });

  it('sweepExpiredApprovals fails due gates only, once', async () => {
    const first = await pause();
    first.clock.advance(3600_000);
    const second = await pause(first.clock);
    first.clock.advance(3600_000);
    expect(await sweepExpiredApprovals({ store, now: first.clock.now })).toEqual([first.result.approvalId]);
    expect(await sweepExpiredApprovals({ store, now: first.clock.now })).toEqual([]);
    expect((await getRun(store, second.result.runId))?.status).toBe('paused');
    expect((await getRun(store, first.result.runId))?.error?.cause).toBe('approval_expired');
  });

  it('the token binds the context: a gate re-opened with another context needs its own token', async () => {
    const a = await pause();
    const b = await pause();
    expect(a.token).not.toBe(b.token);
    const [, idA] = a.token.split('.');
    const [, , sigB] = b.token.split('.');
    await expect(approveGate({ store, token: `cbk1.${idA}.${sigB}`, approver: 'x', approvalSecret: SECRET })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
  });
});

describe('tokens are random credentials checked against the log (SPEC §5.2)', () => {
  it('two gates opened with the same ids, context and clock still get unrelated tokens: nothing but randomness goes in', async () => {
    const tokens = new Set<string>();
    for (const runId of ['run-a', 'run-b']) {
      const dispatcher = scriptedDispatcher({ changelog: [success({ changelog: { lines: 12 } })] });
      const clock = manualClock();
      const result = await executePlaybook({ store, ...release, runId, initialContext: { targetVersion: '2.0.0' }, dispatcher, now: clock.now, newId: () => `gate-${runId}` });
      tokens.add((result.approvalToken as string).split('.')[2] as string);
      const paused = (await readRunEvents(store, runId)).at(-1);
      expect(paused?.type === 'RunPaused' && paused.data.tokenHash).toBe(hashResumeToken(result.approvalToken as string));
    }
    expect(tokens.size).toBe(2);
  });

  it('approvalSecret is accepted and ignored: no secret is needed to open, approve or resume, and none makes a forgery valid', async () => {
    const dispatcher = scriptedDispatcher({ changelog: [success({ changelog: { lines: 12 } })] });
    const paused = await executePlaybook({ store, ...release, initialContext: { targetVersion: '2.0.0' }, dispatcher });
    const token = paused.approvalToken as string;
    const forged = `cbk1.${paused.approvalId}.${Buffer.alloc(32, 1).toString('base64url')}`;
    await expect(approveGate({ store, token: forged, approver: 'mallory', approvalSecret: 'any-secret' })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    await approveGate({ store, token, approver: 'alice', approvalSecret: 'a-secret-the-gate-never-saw' });
    const resumed = await resumePlaybook({ store, approvalToken: token, dispatcher: scriptedDispatcher() });
    expect(resumed.terminalStatus).toBe('completed');
  });

  it('the gate is judged by the fold of the log: a projection row edited to another hash or status changes nothing', async () => {
    const { result, token, opts } = await pause();
    const row = (await store.getApproval(result.approvalId as string))!;
    const forged = `cbk1.${row.approvalId}.${Buffer.alloc(32, 9).toString('base64url')}`;
    // Someone rewrites the approvals projection (not the log): their own token's hash, and "pending" left as is.
    await store.replaceProjections(result.runId, (await store.getRun(result.runId))!, [{ ...row, tokenHash: hashResumeToken(forged) }]);
    await expect(approveGate({ store, token: forged, approver: 'mallory', ...opts })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
    // The genuine token still matches the hash RunPaused recorded.
    await expect(approveGate({ store, token, approver: 'alice', ...opts })).resolves.toMatchObject({ status: 'approved' });
  });

  it('approver and reason are bounded (200 and 4,000 characters): E_USAGE beyond, and nothing is recorded', async () => {
    const { result, token, opts } = await pause();
    await expect(approveGate({ store, token, approver: 'a'.repeat(201), ...opts })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(approveGate({ store, token, approver: '   ', ...opts })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(rejectGate({ store, token, approver: 'bob', reason: 'x'.repeat(4001), ...opts })).rejects.toMatchObject({ code: 'E_USAGE' });
    expect((await getRun(store, result.runId))?.status).toBe('paused');
    await expect(approveGate({ store, token, approver: 'a'.repeat(200), reason: 'x'.repeat(4000), ...opts })).resolves.toMatchObject({ status: 'approved' });
  });

  it('the loser of concurrent decisions in one process gets E_APPROVAL_ALREADY_DECIDED, never an uncoded error', async () => {
    const { result, token, opts } = await pause();
    const outcomes = await Promise.allSettled([
      approveGate({ store, token, approver: 'a', ...opts }),
      rejectGate({ store, token, approver: 'b', reason: 'no', ...opts }),
      approveGate({ store, token, approver: 'c', ...opts }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });
});
