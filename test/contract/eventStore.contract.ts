/**
 * The EventStore contract (src/store/eventStore.ts), as one suite that every
 * store implementation runs: `describeEventStoreContract('sqlite file', open)`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { E_CONCURRENT_UPDATE, E_LEASE_LOST, E_RUN_ACTIVE, hasCode } from '../../src/errors.js';
import { GENESIS_HASH, hashEvent, verifyChain } from '../../src/events/hashChain.js';
import type { RunEvent } from '../../src/events/types.js';
import type { ApprovalRow, RunRow } from '../../src/projections/types.js';
import type { AppendRequest, AttemptLog, EventStore } from '../../src/store/eventStore.js';
import { addMs } from '../../src/store/storeRows.js';
import {
  decideApproval,
  failRun,
  pauseRun,
  playbookSource,
  resumeRun,
  retryNode,
  startRun,
  succeedNode,
} from './fixtures/runRequests.js';

/**
 * What a store factory hands the suite, fresh for every test.
 * - `store`: an open, empty store.
 * - `reopen` (stores that persist): closes the store handed out last and opens the
 *   same data again. Omit it for stores that keep nothing (in-memory).
 * - `cleanup`: closes whatever is still open and removes the data.
 */
export interface ContractStoreHandle {
  store: EventStore;
  reopen?: () => Promise<EventStore>;
  /** Another connection to the same store, as another process has (closed by cleanup). Stores with one connection have none. */
  another?: () => Promise<EventStore>;
  cleanup: () => Promise<void>;
}

/** Appends and returns the request's run row: the state for the next builder. */
async function commit(store: EventStore, request: AppendRequest): Promise<RunRow> {
  await store.append(request);
  return request.run;
}

/** The rejection of `promise`, failing the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Everything a store holds about one run, for "nothing changed" assertions. */
async function snapshotRun(store: EventStore, runId: string): Promise<unknown> {
  return {
    events: await store.readRun(runId),
    run: await store.getRun(runId),
    approvals: await store.listApprovals({ runId }),
  };
}

/**
 * Registers the contract suite for one store implementation. `open` is called
 * before every test and must return an empty store.
 */
export function describeEventStoreContract(name: string, open: () => Promise<ContractStoreHandle>, features: { connections?: boolean } = {}): void {
  describe(`EventStore contract: ${name}`, () => {
    let handle: ContractStoreHandle;
    let store: EventStore;

    beforeEach(async () => {
      handle = await open();
      store = handle.store;
    });

    afterEach(async () => {
      await handle.cleanup();
    });

    describe('append and read', () => {
      it('returns the stored events and reads them back identically', async () => {
        const request = startRun('run-a', { epicId: 'EPIC-7', sessionId: 'sess-1' });
        const stored = await store.append(request);

        expect(stored).toHaveLength(2);
        expect(stored.map((e) => [e.runId, e.seq, e.type, e.at])).toEqual([
          ['run-a', 1, 'RunStarted', request.events[0]?.at],
          ['run-a', 2, 'NodeStarted', request.events[1]?.at],
        ]);
        expect(stored.map((e) => e.data)).toEqual(request.events.map((e) => e.data));
        expect(await store.readRun('run-a')).toEqual(stored);
      });

      it('numbers a run 1..n without gaps over many appends, and reads a tail after a seq', async () => {
        let run = await commit(store, startRun('run-a'));
        run = await commit(store, retryNode(run, 'lint failed'));
        run = await commit(store, succeedNode(run, { bumped: '1.4.0' }, 'approval'));
        run = await commit(store, pauseRun(run, 'approval', 'appr-1'));

        const events = await store.readRun('run-a');
        expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(run.version).toBe(7);
        expect(await store.readRun('run-a', 4)).toEqual(events.slice(4));
        expect(await store.readRun('run-a', 7)).toEqual([]);
      });

      it('chains each event hash to the previous one; verifyChain finds nothing', async () => {
        let run = await commit(store, startRun('run-a'));
        run = await commit(store, succeedNode(run, { bumped: true }, 'approval'));
        await commit(store, pauseRun(run, 'approval', 'appr-1'));

        const events = await store.readRun('run-a');
        expect(verifyChain('run-a', events)).toEqual([]);
        let prev = GENESIS_HASH;
        for (const event of events) {
          expect(event.hash).toBe(hashEvent(prev, 'run-a', event.seq, event));
          prev = event.hash;
        }
      });

      it('round-trips event data exactly: nested values, unicode, numbers, empty objects', async () => {
        const context = {
          targetVersion: '2.0.0-β',
          notes: 'naïve café ✓ 🚀 "quoted" \\ back\nslash',
          flags: [true, false, null],
          nested: { depth: { deeper: [1, 2.5, -3e-7, { x: 'y' }] } },
          empty: {},
          zero: 0,
        };
        let run = await commit(store, startRun('run-u', { context }));
        run = await commit(store, succeedNode(run, { result: { lines: ['a', 'b'], count: 2 } }, null));

        const events = await store.readRun('run-u');
        const started = events[0];
        expect(started?.type === 'RunStarted' ? started.data.context : undefined).toEqual(context);
        expect(events.at(-1)).toMatchObject({ type: 'RunCompleted', data: {} });
        expect((await store.getRun('run-u'))?.bindings).toEqual(run.bindings);
      });

      it('returns [] and null for runs it does not know', async () => {
        expect(await store.readRun('nope')).toEqual([]);
        expect(await store.getRun('nope')).toBeNull();
        expect(await store.getApproval('nope')).toBeNull();
        expect(await store.getPlaybookSource('0'.repeat(64))).toBeNull();
        expect(await store.listRuns()).toEqual([]);
        expect(await store.listApprovals()).toEqual([]);
        expect(await store.listRunIds()).toEqual([]);
        expect(await store.readAll(0, 10)).toEqual([]);
      });

      it('rejects an append with no events as a programmer error, writing nothing', async () => {
        const request = startRun('run-a');
        const error = await rejectionOf(store.append({ ...request, events: [], run: { ...request.run, version: 0 } }));
        expect(error).toBeInstanceOf(TypeError);
        expect(await snapshotRun(store, 'run-a')).toEqual({ events: [], run: null, approvals: [] });
      });
    });

    describe('global order', () => {
      it('gives increasing globalSeq across interleaved runs', async () => {
        let a = await commit(store, startRun('run-a'));
        let b = await commit(store, startRun('run-b'));
        a = await commit(store, succeedNode(a, { step: 1 }, 'approval'));
        b = await commit(store, failRun(b, 'boom'));
        await commit(store, pauseRun(a, 'approval', 'appr-a'));

        const all = await store.readAll(0, 100);
        expect(all).toHaveLength(9);
        const globals = all.map((e) => e.globalSeq);
        expect(globals).toEqual([...globals].sort((x, y) => x - y));
        expect(new Set(globals).size).toBe(globals.length);
        expect(all.map((e) => `${e.runId}:${e.seq}`)).toEqual([
          'run-a:1', 'run-a:2', 'run-b:1', 'run-b:2', 'run-a:3', 'run-a:4', 'run-b:3', 'run-b:4', 'run-a:5',
        ]);
        expect(b.status).toBe('failed');
      });

      it('pages through readAll without loss or repetition', async () => {
        let a = await commit(store, startRun('run-a'));
        let b = await commit(store, startRun('run-b'));
        a = await commit(store, retryNode(a, 'flaky'));
        b = await commit(store, succeedNode(b, { ok: 1 }, null));
        await commit(store, succeedNode(a, { ok: 2 }, null));

        const everything = await store.readAll(0, 1000);
        expect(everything).toHaveLength(10);
        const paged: RunEvent[] = [];
        let after = 0;
        for (;;) {
          const page = await store.readAll(after, 3);
          expect(page.length).toBeLessThanOrEqual(3);
          if (page.length === 0) break;
          paged.push(...page);
          after = page[page.length - 1]?.globalSeq ?? after;
        }
        expect(paged).toEqual(everything);
        expect(await store.readAll(after, 3)).toEqual([]);
        expect(await store.readAll(0, 0)).toEqual([]);
        // readAll and readRun agree on every event.
        expect(everything.filter((e) => e.runId === 'run-a')).toEqual(await store.readRun('run-a'));
        expect(b.version).toBe(4);
      });

      it('lists every run that has events, once each', async () => {
        const a = await commit(store, startRun('run-a'));
        await commit(store, startRun('run-b'));
        await commit(store, succeedNode(a, {}, null));
        await commit(store, startRun('run-c'));

        const ids = await store.listRunIds();
        expect([...ids].sort()).toEqual(['run-a', 'run-b', 'run-c']);
      });
    });

    describe('optimistic concurrency', () => {
      it('rejects a stale expected version with E_CONCURRENT_UPDATE and writes nothing', async () => {
        const run = await commit(store, startRun('run-a'));
        const winner = succeedNode(run, { by: 'writer-1' }, 'approval');
        await store.append(winner);
        const before = await snapshotRun(store, 'run-a');

        // Built from the same stale row: it pauses at a gate, so it would also write an approval.
        const stale = pauseRun(run, 'approval', 'appr-stale');
        const error = await rejectionOf(store.append(stale));

        expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(true);
        expect((error as { details?: unknown }).details).toEqual({ runId: 'run-a', expectedVersion: 2, actualVersion: 4 });
        expect((error as Error).message).toContain('run-a');
        expect(await snapshotRun(store, 'run-a')).toEqual(before);
        expect(await store.getApproval('appr-stale')).toBeNull();
        expect((await store.readAll(0, 100)).length).toBe(4);
      });

      it('rejects an expected version ahead of the stream (it would leave a gap)', async () => {
        const run = await commit(store, startRun('run-a'));
        const ahead = succeedNode({ ...run, version: 5 }, {}, null);
        const error = await rejectionOf(store.append(ahead));
        expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(true);
        expect((error as { details?: unknown }).details).toEqual({ runId: 'run-a', expectedVersion: 5, actualVersion: 2 });
        expect((await store.readRun('run-a')).map((e) => e.seq)).toEqual([1, 2]);
      });

      it('refuses to start the same run id twice (both at version 0)', async () => {
        await store.append(startRun('run-a', { playbookName: 'first' }));
        const before = await snapshotRun(store, 'run-a');
        const second = startRun('run-a', { playbookName: 'second', at: '2025-03-02T00:00:00.000Z' });
        const error = await rejectionOf(store.append(second));
        expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(true);
        expect(await snapshotRun(store, 'run-a')).toEqual(before);
        // The loser's playbook text was not stored either.
        expect(await store.getPlaybookSource(second.run.playbookHash)).toBeNull();
      });

      it('lets exactly one of many concurrent appends at one version win', async () => {
        const run = await commit(store, startRun('run-a'));
        const rivals = Array.from({ length: 8 }, (_, i) => succeedNode(run, { writer: i }, `next-${i}`));
        const results = await Promise.allSettled(rivals.map((request) => store.append(request)));

        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(winners).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') expect(hasCode(result.reason, E_CONCURRENT_UPDATE)).toBe(true);
        }
        const winner = rivals[winners[0] ?? -1];
        const events = await store.readRun('run-a');
        expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(events.slice(2).map((e) => e.data)).toEqual(winner?.events.map((e) => e.data));
        expect(await store.getRun('run-a')).toEqual(winner?.run);
        expect(verifyChain('run-a', events)).toEqual([]);
      });

      it('keeps runs independent: a conflict on one leaves the other appendable', async () => {
        const a = await commit(store, startRun('run-a'));
        const b = await commit(store, startRun('run-b'));
        await store.append(succeedNode(a, {}, 'approval'));

        expect(hasCode(await rejectionOf(store.append(succeedNode(a, {}, null))), E_CONCURRENT_UPDATE)).toBe(true);
        // run-b is at version 2 too, and is untouched by run-a's history.
        const b2 = await commit(store, succeedNode(b, { done: true }, null));
        expect(b2.version).toBe(4);
        expect((await store.readRun('run-b')).map((e) => e.seq)).toEqual([1, 2, 3, 4]);
        expect(verifyChain('run-b', await store.readRun('run-b'))).toEqual([]);
      });

      it('accepts the next append after a conflict when it uses the current version', async () => {
        const run = await commit(store, startRun('run-a'));
        const current = await commit(store, retryNode(run, 'first try failed'));
        await rejectionOf(store.append(succeedNode(run, {}, null)));
        await store.append(succeedNode(current, { ok: true }, null));
        const events = await store.readRun('run-a');
        expect(events).toHaveLength(6);
        expect(verifyChain('run-a', events)).toEqual([]);
      });
    });

    describe('projections', () => {
      it('stores the run row of each append and returns it exactly (nulls stay null)', async () => {
        const start = startRun('run-a');
        await store.append(start);
        expect(await store.getRun('run-a')).toEqual(start.run);
        expect(start.run).toMatchObject({ epicId: null, sessionId: null, errorContext: null, completedAt: null });

        const done = succeedNode(start.run, { artifact: { path: 'dist/x.tgz', size: 1024 } }, null);
        await store.append(done);
        expect(await store.getRun('run-a')).toEqual(done.run);
        expect(done.run.currentNode).toBeNull();
      });

      it('with `changed`, writes only the listed keys and nodes, and returns the whole row in the order keys were first written', async () => {
        const start = startRun('run-k', { context: { zeta: 1, alpha: { deep: [1, 'ü'] } } });
        await store.append({ ...start, changed: { bindings: ['zeta', 'alpha'], iterationCounts: ['version_bump'] } });
        expect(await store.getRun('run-k')).toEqual(start.run);

        const step = succeedNode(start.run, { mid: 'x'.repeat(3000), alpha: 'replaced' }, 'approval');
        await store.append({ ...step, changed: { bindings: ['mid', 'alpha'], iterationCounts: ['approval'] } });
        const row = await store.getRun('run-k');
        expect(row).toEqual(step.run);
        expect(Object.keys(row?.bindings ?? {})).toEqual(['zeta', 'alpha', 'mid']);
        expect(Object.keys(row?.iterationCounts ?? {})).toEqual(['version_bump', 'approval']);
        expect((await store.listRuns()).find((r) => r.runId === 'run-k')).toEqual(step.run);
      });

      it('with `changed`, leaves unlisted keys as they were and removes a listed key the row no longer has', async () => {
        const start = startRun('run-s', { context: { kept: 1, dropped: 2 } });
        await store.append(start);
        const step = succeedNode(start.run, {}, 'approval');
        const { dropped: _dropped, ...without } = step.run.bindings;
        // `kept` differs in the row but is not listed: a store that keeps keys apart writes only what is listed.
        const run: RunRow = { ...step.run, bindings: { ...without, kept: 'ignored' } };
        await store.append({ ...step, run, changed: { bindings: ['dropped'], iterationCounts: ['approval'] } });
        const row = await store.getRun('run-s');
        expect(Object.hasOwn(row?.bindings ?? {}, 'dropped')).toBe(false);
        expect([1, 'ignored']).toContain(row?.bindings['kept']);
      });

      it('without `changed`, replaces all of the run\'s keys with the row\'s', async () => {
        const start = startRun('run-r', { context: { a: 1, b: 2 } });
        await store.append(start);
        const step = succeedNode(start.run, { c: 3 }, 'approval');
        const { a: _a, ...rest } = step.run.bindings;
        const run: RunRow = { ...step.run, bindings: rest };
        await store.append({ ...step, run });
        expect(await store.getRun('run-r')).toEqual(run);
      });

      it('keeps a context key named __proto__ as an own key', async () => {
        const context = JSON.parse('{"__proto__": {"polluted": true}, "plain": 1}') as Record<string, unknown>;
        const start = startRun('run-p', { context });
        await store.append({ ...start, changed: { bindings: Object.keys(context), iterationCounts: ['version_bump'] } });
        const row = await store.getRun('run-p');
        expect(Object.hasOwn(row?.bindings ?? {}, '__proto__')).toBe(true);
        expect(Object.getPrototypeOf(row?.bindings)).toBe(Object.prototype);
        expect(JSON.stringify(row?.bindings)).toBe(JSON.stringify(context));
      });

      it('round-trips epicId, sessionId and an error context', async () => {
        const start = startRun('run-e', { epicId: 'EPIC-42', sessionId: 'session-9' });
        await store.append(start);
        const failed = failRun(start.run, 'exit code 2: tests failed');
        await store.append(failed);
        const row = await store.getRun('run-e');
        expect(row).toEqual(failed.run);
        expect(row?.error).toEqual({ nodeId: 'version_bump', message: 'exit code 2: tests failed', cause: 'exceeded_iteration_cap' });
        expect(row?.errorContext).toBe('exit code 2: tests failed');
        expect(row).toMatchObject({ epicId: 'EPIC-42', sessionId: 'session-9' });
      });

      it('lists runs by status, ordered by start time then run id', async () => {
        await commit(store, startRun('run-3', { at: '2025-03-01T12:00:00.000Z' }));
        const r1 = await commit(store, startRun('run-1', { at: '2025-03-01T08:00:00.000Z' }));
        await commit(store, startRun('run-2b', { at: '2025-03-01T10:00:00.000Z' }));
        await commit(store, startRun('run-2a', { at: '2025-03-01T10:00:00.000Z' }));
        await commit(store, succeedNode(r1, {}, null));

        expect((await store.listRuns()).map((r) => r.runId)).toEqual(['run-1', 'run-2a', 'run-2b', 'run-3']);
        expect((await store.listRuns({})).map((r) => r.runId)).toEqual(['run-1', 'run-2a', 'run-2b', 'run-3']);
        expect((await store.listRuns({ status: 'running' })).map((r) => r.runId)).toEqual(['run-2a', 'run-2b', 'run-3']);
        expect((await store.listRuns({ status: 'completed' })).map((r) => r.runId)).toEqual(['run-1']);
        expect(await store.listRuns({ status: 'cancelled' })).toEqual([]);
      });

      it('upserts approvals through their life cycle and filters them by status and run', async () => {
        let a = await commit(store, startRun('run-a', { at: '2025-03-01T08:00:00.000Z' }));
        let b = await commit(store, startRun('run-b', { at: '2025-03-01T09:00:00.000Z' }));
        a = await commit(store, succeedNode(a, {}, 'approval'));
        b = await commit(store, succeedNode(b, {}, 'approval'));

        const pauseA = pauseRun(a, 'approval', 'appr-a', { expiresAt: '2025-03-04T08:00:00.000Z' });
        const pauseB = pauseRun(b, 'approval', 'appr-b');
        a = await commit(store, pauseA);
        b = await commit(store, pauseB);
        const pendingA = pauseA.approvals[0] as ApprovalRow;
        const pendingB = pauseB.approvals[0] as ApprovalRow;

        expect(await store.getApproval('appr-a')).toEqual(pendingA);
        expect(await store.getApproval('appr-b')).toEqual(pendingB);
        expect(pendingB).toMatchObject({ expiresAt: null, decidedAt: null, approver: null, reason: null, resumed: false });
        expect((await store.listApprovals({ status: 'pending' })).map((x) => x.approvalId)).toEqual(['appr-a', 'appr-b']);

        const grant = decideApproval(a, pendingA, 'approved', 'alice', 'looks good');
        a = await commit(store, grant);
        const approvedA = grant.approvals[0] as ApprovalRow;
        const reject = decideApproval(b, pendingB, 'rejected', 'bob', 'wrong channel');
        b = await commit(store, reject);
        const resume = resumeRun(a, approvedA, 'publish');
        a = await commit(store, resume);

        expect(await store.getApproval('appr-a')).toEqual(resume.approvals[0]);
        expect((await store.getApproval('appr-a'))?.resumed).toBe(true);
        expect(await store.getApproval('appr-b')).toEqual(reject.approvals[0]);
        expect(await store.listApprovals({ status: 'pending' })).toEqual([]);
        expect((await store.listApprovals({ status: 'approved' })).map((x) => x.approvalId)).toEqual(['appr-a']);
        expect((await store.listApprovals({ status: 'rejected', runId: 'run-b' })).map((x) => x.approvalId)).toEqual(['appr-b']);
        expect(await store.listApprovals({ status: 'rejected', runId: 'run-a' })).toEqual([]);
        expect((await store.listApprovals({ runId: 'run-a' })).map((x) => x.approvalId)).toEqual(['appr-a']);
        expect((await store.listApprovals()).map((x) => x.approvalId)).toEqual(['appr-a', 'appr-b']);
        expect(await store.getRun('run-a')).toEqual(a);
        expect(await store.getRun('run-b')).toEqual(b);
        expect(b.status).toBe('failed');
      });

      it('orders approvals by request time', async () => {
        // Run "z" pauses first, run "a" later: the order is by time, not by id.
        let z = await commit(store, startRun('run-z', { at: '2025-03-01T08:00:00.000Z' }));
        let a = await commit(store, startRun('run-a', { at: '2025-03-01T09:00:00.000Z' }));
        z = await commit(store, pauseRun(z, 'approval', 'appr-z'));
        a = await commit(store, pauseRun(a, 'approval', 'appr-a'));
        expect((await store.listApprovals()).map((x) => x.approvalId)).toEqual(['appr-z', 'appr-a']);
        expect(z.version + a.version).toBe(6);
      });
    });

    describe('playbook sources', () => {
      it('stores the playbook text the request pins, by its hash, once for many runs', async () => {
        const first = startRun('run-1');
        const second = startRun('run-2');
        const other = startRun('run-3', { playbookName: 'ivtr' });
        await store.append(first);
        await store.append(second);
        await store.append(other);

        expect(first.run.playbookHash).toBe(second.run.playbookHash);
        expect(await store.getPlaybookSource(first.run.playbookHash)).toBe(playbookSource('release'));
        expect(await store.getPlaybookSource(other.run.playbookHash)).toBe(playbookSource('ivtr'));
        expect(other.run.playbookHash).not.toBe(first.run.playbookHash);
      });
    });

    describe('replaceProjections', () => {
      it('replaces the run row and its approvals, leaving events and other runs alone', async () => {
        let a = await commit(store, startRun('run-a'));
        const b = await commit(store, startRun('run-b'));
        a = await commit(store, succeedNode(a, {}, 'approval'));
        const pause = pauseRun(a, 'approval', 'appr-a');
        a = await commit(store, pause);
        const eventsBefore = await store.readAll(0, 100);

        // A rebuild found the gate expired and the bindings different.
        const rebuilt: RunRow = { ...a, bindings: { ...a.bindings, rebuilt: true } };
        const expired: ApprovalRow = { ...(pause.approvals[0] as ApprovalRow), status: 'expired' };
        await store.replaceProjections('run-a', rebuilt, [expired]);

        expect(await store.getRun('run-a')).toEqual(rebuilt);
        expect(await store.listApprovals({ runId: 'run-a' })).toEqual([expired]);
        expect(await store.getRun('run-b')).toEqual(b);
        expect(await store.readAll(0, 100)).toEqual(eventsBefore);

        // Approvals missing from the replacement are removed.
        await store.replaceProjections('run-a', rebuilt, []);
        expect(await store.listApprovals({ runId: 'run-a' })).toEqual([]);
        expect(await store.getApproval('appr-a')).toBeNull();
      });

      it('deletes the projection rows when given a null run, keeping the events', async () => {
        let a = await commit(store, startRun('run-a'));
        a = await commit(store, pauseRun(a, 'approval', 'appr-a'));
        await store.replaceProjections('run-a', null, []);

        expect(await store.getRun('run-a')).toBeNull();
        expect(await store.getApproval('appr-a')).toBeNull();
        expect(await store.readRun('run-a')).toHaveLength(3);
        expect(await store.listRunIds()).toEqual(['run-a']);

        // A rebuild restores them.
        await store.replaceProjections('run-a', a, []);
        expect(await store.getRun('run-a')).toEqual(a);
      });

      it('refuses rows folded at a version the log is no longer at', async () => {
        const a = await commit(store, startRun('run-a'));
        const current = await commit(store, retryNode(a, 'flaky'));
        const error = await rejectionOf(store.replaceProjections('run-a', a, []));
        expect(hasCode(error, E_CONCURRENT_UPDATE)).toBe(true);
        expect(await store.getRun('run-a')).toEqual(current);
      });
    });

    describe('run settings and attempt logs, beside the log (SPEC §7, ADR 0010)', () => {
      const t0 = '2025-08-01T10:00:00.000Z';
      const at = (ms: number) => new Date(Date.parse(t0) + ms).toISOString();
      const log = (nodeId: string, attempt: number, text: string, droppedBytes = 0): AttemptLog => ({ nodeId, attempt, text, droppedBytes });
      const listed = (runId: string, ...logs: AttemptLog[]) => logs.map((l) => ({ runId, ...l }));

      it('writes settings with a run\'s first append and reads them back; {} stays {}; a run without has null', async () => {
        await commit(store, { ...startRun('run-a'), settings: { agent: 'exec:node agent.mjs --fast' } });
        await commit(store, { ...startRun('run-b'), settings: {} });
        await commit(store, startRun('run-c'));

        expect(await store.getRunSettings('run-a')).toEqual({ agent: 'exec:node agent.mjs --fast' });
        expect(await store.getRunSettings('run-b')).toStrictEqual({});
        expect(await store.getRunSettings('run-c')).toBeNull();
        expect(await store.getRunSettings('run-nobody')).toBeNull();
      });

      it('never overwrites settings: a later append\'s are ignored, also for a run started without', async () => {
        const a = await commit(store, { ...startRun('run-a'), settings: { agent: 'exec:first' } });
        await commit(store, { ...retryNode(a, 'flaky'), settings: { agent: 'exec:second' } });
        const c = await commit(store, startRun('run-c'));
        await commit(store, { ...retryNode(c, 'flaky'), settings: { agent: 'exec:late' } });

        expect(await store.getRunSettings('run-a')).toEqual({ agent: 'exec:first' });
        expect(await store.getRunSettings('run-c')).toBeNull();
      });

      it('writes no settings when the first append is refused (a second start of a run id, a run id with a lease, a lost lease)', async () => {
        await commit(store, startRun('run-a'));
        const twice = await rejectionOf(store.append({ ...startRun('run-a', { at: at(0) }), settings: { agent: 'exec:again' } }));
        expect(hasCode(twice, E_CONCURRENT_UPDATE)).toBe(true);
        expect(await store.getRunSettings('run-a')).toBeNull();

        await store.acquireLease({ runId: 'run-b', owner: 'w9', now: t0, ttlMs: 1000 });
        const active = await rejectionOf(store.append({ ...startRun('run-b'), settings: { agent: 'exec:b' }, lease: { token: 1, create: { owner: 'w1', expiresAt: at(1000) } } }));
        expect(hasCode(active, E_RUN_ACTIVE)).toBe(true);
        expect(await store.getRunSettings('run-b')).toBeNull();

        const lease = await store.acquireLease({ runId: 'run-c', owner: 'w1', now: t0, ttlMs: 1000 });
        await store.acquireLease({ runId: 'run-c', owner: 'w2', now: t0, ttlMs: 1000, force: true });
        const lost = await rejectionOf(store.append({ ...startRun('run-c'), settings: { agent: 'exec:c' }, lease: { token: lease?.token as number } }));
        expect(hasCode(lost, E_LEASE_LOST)).toBe(true);
        expect(await store.getRunSettings('run-c')).toBeNull();
        expect(await store.readRun('run-c')).toEqual([]);
      });

      it('writes attempt logs with the append, upserted by (nodeId, attempt), listed by node id then attempt, per run', async () => {
        let a = await commit(store, startRun('run-a'));
        a = await commit(store, { ...retryNode(a, 'flaky'), attemptLogs: [log('version_bump', 1, 'first try\n'), log('version_bump', 10, 'tenth')] });
        a = await commit(store, { ...retryNode(a, 'flaky'), attemptLogs: [log('alpha', 2, 'a2'), log('Zeta', 1, 'z1', 4096), log('alpha', 1, 'a1')] });
        // The same attempt written again (a re-recorded result) replaces the first write.
        await commit(store, { ...retryNode(a, 'flaky'), attemptLogs: [log('version_bump', 1, 'first try, again', 12)] });
        const b = await commit(store, startRun('run-b'));
        await commit(store, { ...retryNode(b, 'flaky'), attemptLogs: [log('version_bump', 1, 'run b')] });

        // Node ids in byte order ('Z' before 'a'), attempts as numbers (2 before 10).
        expect(await store.listAttemptLogs('run-a')).toEqual(listed('run-a',
          log('Zeta', 1, 'z1', 4096), log('alpha', 1, 'a1'), log('alpha', 2, 'a2'), log('version_bump', 1, 'first try, again', 12), log('version_bump', 10, 'tenth')));
        expect(await store.listAttemptLogs('run-a', { nodeId: 'alpha' })).toEqual(listed('run-a', log('alpha', 1, 'a1'), log('alpha', 2, 'a2')));
        expect(await store.listAttemptLogs('run-a', { nodeId: 'nobody' })).toEqual([]);
        expect(await store.listAttemptLogs('run-b')).toEqual(listed('run-b', log('version_bump', 1, 'run b')));
        expect(await store.listAttemptLogs('run-nobody')).toEqual([]);
      });

      it('keeps a log\'s text exactly (unicode, newlines, 256 KiB), the last of one attempt\'s writes in one append, a NUL as U+FFFD', async () => {
        const big = 'x'.repeat(256 * 1024);
        const unicode = 'naïve café ✓ 🚀 "quoted" \\ back\r\nslash\ttab';
        const a = await commit(store, startRun('run-a'));
        await commit(store, {
          ...retryNode(a, 'flaky'),
          attemptLogs: [log('big', 1, big, 3_000_000_000), log('unicode', 1, unicode), log('dup', 1, 'first'), log('dup', 1, 'last', 7), log('nul', 1, 'a\u0000b'), log('empty', 1, '')],
        });
        expect(await store.listAttemptLogs('run-a')).toEqual(listed('run-a',
          log('big', 1, big, 3_000_000_000), log('dup', 1, 'last', 7), log('empty', 1, ''), log('nul', 1, 'a\uFFFDb'), log('unicode', 1, unicode)));
      });

      it('writes no attempt logs when the append is refused (E_CONCURRENT_UPDATE, E_LEASE_LOST)', async () => {
        const lease = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        const a = await commit(store, { ...startRun('run-a'), lease: { token: lease?.token as number }, attemptLogs: [log('version_bump', 1, 'kept')] });
        const moved = await commit(store, { ...retryNode(a, 'flaky'), lease: { token: lease?.token as number } });

        const stale = await rejectionOf(store.append({ ...retryNode(a, 'stale'), lease: { token: lease?.token as number }, attemptLogs: [log('version_bump', 1, 'stale'), log('stale', 1, 'stale')] }));
        expect(hasCode(stale, E_CONCURRENT_UPDATE)).toBe(true);
        await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(2000), ttlMs: 1000 });
        const lost = await rejectionOf(store.append({ ...retryNode(moved, 'late'), lease: { token: lease?.token as number }, attemptLogs: [log('version_bump', 1, 'late'), log('late', 1, 'late')] }));
        expect(hasCode(lost, E_LEASE_LOST)).toBe(true);

        expect(await store.listAttemptLogs('run-a')).toEqual(listed('run-a', log('version_bump', 1, 'kept')));
      });

      it('a rebuild keeps them, and so does removing the run\'s rows: they are not projections', async () => {
        let a = await commit(store, { ...startRun('run-a'), settings: { agent: 'module:./agent.mjs' } });
        a = await commit(store, { ...retryNode(a, 'flaky'), attemptLogs: [log('version_bump', 1, 'boom')] });
        const logs = await store.listAttemptLogs('run-a');

        await store.replaceProjections('run-a', a, []);
        expect(await store.getRunSettings('run-a')).toEqual({ agent: 'module:./agent.mjs' });
        expect(await store.listAttemptLogs('run-a')).toEqual(logs);

        // No fold could write them again, so a removal and a rebuild after it must not lose them.
        await store.replaceProjections('run-a', null, []);
        expect(await store.getRun('run-a')).toBeNull();
        expect(await store.getRunSettings('run-a')).toEqual({ agent: 'module:./agent.mjs' });
        expect(await store.listAttemptLogs('run-a')).toEqual(logs);
        await store.replaceProjections('run-a', a, []);
        expect(await store.getRun('run-a')).toEqual(a);
        expect(await store.listAttemptLogs('run-a')).toEqual(logs);
      });

      it('refuses malformed settings and attempt logs as programmer errors (TypeError), writing nothing', async () => {
        const start = startRun('run-a');
        await expect(store.append({ ...start, settings: { agent: 42 as unknown as string } })).rejects.toThrow(TypeError);
        await expect(store.append({ ...start, attemptLogs: [log('n', 0, 'attempts start at 1')] })).rejects.toThrow(TypeError);
        await expect(store.append({ ...start, attemptLogs: [log('n', 1, 'x', -1)] })).rejects.toThrow(TypeError);
        await expect(store.append({ ...start, attemptLogs: [log('', 1, 'x')] })).rejects.toThrow(TypeError);
        await expect(store.append({ ...start, attemptLogs: [{ ...log('n', 1, 'x'), text: null as unknown as string }] })).rejects.toThrow(TypeError);
        expect(await store.readRun('run-a')).toEqual([]);
        expect(await store.getRunSettings('run-a')).toBeNull();
        expect(await store.listAttemptLogs('run-a')).toEqual([]);
      });
    });

    describe('leases and claims (SPEC §11)', () => {
      const t0 = '2025-06-01T12:00:00.000Z';
      const at = (ms: number) => new Date(Date.parse(t0) + ms).toISOString();

      it('grants one live lease per run; fencing tokens only grow, also across release and expiry', async () => {
        const first = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        expect(first).toEqual({ runId: 'run-a', owner: 'w1', token: 1, expiresAt: at(1000) });
        expect(await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(999), ttlMs: 1000 })).toBeNull();
        const second = await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(1000), ttlMs: 1000 });
        expect(second?.token).toBe(2);
        await store.releaseLease(second as NonNullable<typeof second>);
        const third = await store.acquireLease({ runId: 'run-a', owner: 'w3', now: at(1001), ttlMs: 1000 });
        expect(third?.token).toBe(3);
        const forced = await store.acquireLease({ runId: 'run-a', owner: 'w4', now: at(1002), ttlMs: 1000, force: true });
        expect(forced?.token).toBe(4);
        expect(await store.getLease('run-a')).toEqual(forced);
        expect(await store.getLease('run-b')).toBeNull();
      });

      it('renews a live lease, and refuses (E_LEASE_LOST) one that ran out or was released, even with nobody holding the run', async () => {
        const lease = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        const renewed = await store.renewLease(lease as NonNullable<typeof lease>, { now: at(999), ttlMs: 1000 });
        expect(renewed.lease.expiresAt).toBe(at(1999));
        expect(hasCode(await rejectionOf(store.renewLease(renewed.lease, { now: at(1999), ttlMs: 1000 })), E_LEASE_LOST)).toBe(true);
        const again = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: at(2000), ttlMs: 1000 });
        await store.releaseLease(again as NonNullable<typeof again>);
        expect(hasCode(await rejectionOf(store.renewLease(again as NonNullable<typeof again>, { now: at(2001), ttlMs: 1000 })), E_LEASE_LOST)).toBe(true);
      });

      it('refuses an append carrying a token that is no longer current (E_LEASE_LOST), writing nothing', async () => {
        const lease = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        const run = await commit(store, { ...startRun('run-a'), lease: { token: lease?.token as number } });
        const before = await snapshotRun(store, 'run-a');
        const taken = await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(2000), ttlMs: 1000 });
        const error = await rejectionOf(store.append({ ...retryNode(run, 'late'), lease: { token: lease?.token as number } }));
        expect(hasCode(error, E_LEASE_LOST)).toBe(true);
        expect(await snapshotRun(store, 'run-a')).toEqual(before);
        // The new holder appends; a decision from outside (no lease) is ordered by the version alone.
        const next = await commit(store, { ...retryNode(run, 'flaky'), lease: { token: taken?.token as number } });
        await commit(store, succeedNode(next, { ok: true }, null));
      });

      it('onRunnable hears an append that leaves a run claimable and a released lease, not a driver\'s append under its lease', async () => {
        let heard = 0;
        const stop = store.onRunnable(() => {
          heard += 1;
        });
        const waitHeard = async (count: number): Promise<void> => {
          // PostgreSQL delivers NOTIFY over its own connection: wait (bounded) for it.
          for (let i = 0; i < 500 && heard < count; i++) await new Promise((resolve) => setTimeout(resolve, 10));
          expect(heard).toBe(count);
        };
        // A listener that throws never breaks a write.
        const stopThrowing = store.onRunnable(() => {
          throw new Error('listener failure');
        });
        const run = await commit(store, startRun('run-a'));
        await waitHeard(1);
        const lease = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        const next = await commit(store, { ...retryNode(run, 'flaky'), lease: { token: lease?.token as number } });
        await commit(store, { ...succeedNode(next, { ok: true }, 'approval'), lease: { token: lease?.token as number, release: true } });
        await waitHeard(2);
        await store.releaseLease(lease as NonNullable<typeof lease>);
        await waitHeard(3);
        stop();
        stopThrowing();
        await commit(store, startRun('run-b'));
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(heard).toBe(3);
      });

      it('a new run takes its first lease in its first append, and a last append can release it, each in the same transaction', async () => {
        const first = startRun('run-a');
        const run = await commit(store, { ...first, lease: { token: 1, create: { owner: 'w1', expiresAt: at(1000) } } });
        expect(await store.getLease('run-a')).toEqual({ runId: 'run-a', owner: 'w1', token: 1, expiresAt: at(1000) });
        // A run id that has a lease cannot be started again, and nothing of that attempt is written.
        await store.acquireLease({ runId: 'run-b', owner: 'w9', now: t0, ttlMs: 1000 });
        const again = await rejectionOf(store.append({ ...startRun('run-b'), lease: { token: 1, create: { owner: 'w1', expiresAt: at(1000) } } }));
        expect(hasCode(again, E_RUN_ACTIVE)).toBe(true);
        expect(await store.readRun('run-b')).toEqual([]);
        // The driver's last append releases: the next driver gets the run at once, with the next token.
        await commit(store, { ...retryNode(run, 'done for now'), lease: { token: 1, release: true } });
        expect((await store.getLease('run-a'))?.expiresAt).toBe('');
        expect((await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(1), ttlMs: 1000 }))?.token).toBe(2);
      });

      it('renews only a current lease and reports the stream version', async () => {
        const lease = await store.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 1000 });
        await commit(store, startRun('run-a'));
        const renewed = await store.renewLease(lease as NonNullable<typeof lease>, { now: at(500), ttlMs: 1000 });
        expect(renewed).toEqual({ lease: { ...lease, expiresAt: at(1500) }, version: 2 });
        await store.acquireLease({ runId: 'run-a', owner: 'w2', now: at(1600), ttlMs: 1000 });
        expect(hasCode(await rejectionOf(store.renewLease(renewed.lease, { now: at(1700), ttlMs: 1000 })), E_LEASE_LOST)).toBe(true);
      });

      it('claims due runs without a live lease, earliest first, each run by one claimer', async () => {
        await commit(store, { ...startRun('run-1', { at: at(0) }) });
        await commit(store, { ...startRun('run-2', { at: at(10) }) });
        const later = startRun('run-3', { at: at(20) });
        await commit(store, { ...later, run: { ...later.run, wakeAt: at(60_000) } });
        const paused = startRun('run-4', { at: at(30) });
        await commit(store, { ...paused, run: { ...paused.run, wakeAt: null } });
        const held = await store.acquireLease({ runId: 'run-2', owner: 'driver', now: at(100), ttlMs: 5000 });

        const [a, b] = await Promise.all([
          store.claimRuns({ owner: 'w1', now: at(200), ttlMs: 1000, limit: 1 }),
          store.claimRuns({ owner: 'w2', now: at(200), ttlMs: 1000, limit: 10 }),
        ]);
        const claimed = [...a, ...b].map((lease) => lease.runId).sort();
        expect(claimed).toEqual(['run-1']); // run-2 is held, run-3 not due, run-4 never wakes
        expect(await store.claimRuns({ owner: 'w3', now: at(200), ttlMs: 1000, limit: 10 })).toEqual([]);
        // The next wake: run-1's claim or run-2's lease expires first, then run-3 is due.
        expect(await store.nextWakeAt(at(200))).toBe(at(1200));
        const expired = await store.claimRuns({ owner: 'w3', now: at(5100), ttlMs: 1000, limit: 10 });
        expect(expired.map((lease) => lease.runId).sort()).toEqual(['run-1', 'run-2']);
        expect(expired.find((lease) => lease.runId === 'run-2')?.token).toBe((held?.token as number) + 1);
        // Once due, run-3 comes too; runs whose leases lapsed are claimable again, earliest wake first.
        expect((await store.claimRuns({ owner: 'w4', now: at(60_000), ttlMs: 1000, limit: 10 })).map((l) => l.runId)).toEqual(['run-1', 'run-2', 'run-3']);
      });
    });

    describe('child runs (SPEC §12)', () => {
      const t0 = '2025-07-01T08:00:00.000Z';
      const at = (ms: number) => new Date(Date.parse(t0) + ms).toISOString();
      const hour = 3_600_000;
      const childOf = (runId: string, index: number) => ({ runId, nodeId: 'implement_all', attempt: 1, index });
      /** A run whose only steps wait for its children: no driver, and no wake time (what toRunRow computes). */
      const waiting = (request: AppendRequest): AppendRequest => ({ ...request, run: { ...request.run, wakeAt: null } });
      /** The at of a request's last event: what a wakeRun sets. */
      const lastAt = (request: AppendRequest): string => request.events.at(-1)?.at as string;

      it('records each run\'s parent, and lists a run\'s children by parentRunId (with status), by start time then run id', async () => {
        const root = await commit(store, startRun('run-p', { at: at(0) }));
        const late = await commit(store, startRun('run-p.implement_all.1.2', { at: at(2 * hour), parent: childOf('run-p', 2) }));
        const b = await commit(store, startRun('run-p.implement_all.1.1', { at: at(hour), parent: childOf('run-p', 1), context: { taskId: 'T-2' } }));
        const a = await commit(store, startRun('run-p.implement_all.1.0', { at: at(hour), parent: childOf('run-p', 0), context: { taskId: 'T-1' } }));
        // A grandchild and another run's child are not run-p's children.
        await commit(store, startRun('run-p.implement_all.1.0.sub.1.0', { at: at(hour), parent: childOf('run-p.implement_all.1.0', 0) }));
        await commit(store, startRun('run-q.implement_all.1.0', { at: at(0), parent: childOf('run-q', 0) }));
        const done = await commit(store, succeedNode(b, { summary: 'T-2 done' }, null));

        expect(root.parentRunId).toBeNull();
        expect(await store.getRun('run-p')).toEqual(root);
        expect(await store.getRun('run-p.implement_all.1.0')).toEqual(a);
        expect(a.parentRunId).toBe('run-p');
        // Whole rows, keys included: the children's keys are read with them.
        expect(await store.listRuns({ parentRunId: 'run-p' })).toEqual([a, done, late]);
        expect(await store.listRuns({ parentRunId: 'run-p', status: 'running' })).toEqual([a, late]);
        expect(await store.listRuns({ parentRunId: 'run-p', status: 'completed' })).toEqual([done]);
        expect(await store.listRuns({ parentRunId: 'run-p', status: 'paused' })).toEqual([]);
        expect((await store.listRuns({ parentRunId: 'run-p.implement_all.1.0' })).map((r) => r.runId)).toEqual(['run-p.implement_all.1.0.sub.1.0']);
        expect(await store.listRuns({ parentRunId: 'run-nobody' })).toEqual([]);
        expect((await store.listRuns()).map((r) => r.runId)).toEqual([
          'run-p', 'run-q.implement_all.1.0', 'run-p.implement_all.1.0', 'run-p.implement_all.1.0.sub.1.0', 'run-p.implement_all.1.1', 'run-p.implement_all.1.2',
        ]);
        expect((await store.listRuns({ status: 'completed' })).map((r) => r.runId)).toEqual(['run-p.implement_all.1.1']);
      });

      it('lists by playbook and start time, newest first, and at most a limit of runs, keys included', async () => {
        const first = await commit(store, startRun('run-a', { at: at(0), context: { n: 1 } }));
        const second = await commit(store, startRun('run-b', { at: at(hour), context: { n: 2 } }));
        const third = await commit(store, startRun('run-c', { at: at(2 * hour), context: { n: 3 } }));
        expect(await store.listRuns({ newestFirst: true })).toEqual([third, second, first]);
        expect(await store.listRuns({ newestFirst: true, limit: 2 })).toEqual([third, second]);
        expect(await store.listRuns({ limit: 1 })).toEqual([first]);
        expect(await store.listRuns({ startedSince: at(hour) })).toEqual([second, third]);
        expect(await store.listRuns({ startedSince: at(hour), newestFirst: true, limit: 1 })).toEqual([third]);
        expect(await store.listRuns({ playbookName: first.playbookName, status: 'running', limit: 5 })).toEqual([first, second, third]);
        expect(await store.listRuns({ playbookName: 'no-such-playbook' })).toEqual([]);
        await expect(store.listRuns({ limit: 0 })).rejects.toThrow(TypeError);
      });

      it('a rebuild keeps a child\'s parent; a child whose rows are removed is no longer listed', async () => {
        await commit(store, startRun('run-p', { at: at(0) }));
        const child = await commit(store, startRun('run-c', { at: at(1000), parent: childOf('run-p', 0) }));
        await store.replaceProjections('run-c', child, []);
        expect(await store.getRun('run-c')).toEqual(child);
        expect(await store.listRuns({ parentRunId: 'run-p' })).toEqual([child]);
        await store.replaceProjections('run-c', null, []);
        expect(await store.listRuns({ parentRunId: 'run-p' })).toEqual([]);
        await store.replaceProjections('run-c', child, []);
        expect(await store.listRuns({ parentRunId: 'run-p', status: 'running' })).toEqual([child]);
      });

      it('wakeRun: a child\'s final commit makes its waiting parent claimable at the time of its last event', async () => {
        const parent = await commit(store, waiting(startRun('run-p', { at: at(0) })));
        const child = await commit(store, startRun('run-c', { at: at(1000), parent: childOf('run-p', 0) }));
        expect(await store.claimRuns({ owner: 'w1', now: at(hour), ttlMs: 1000, limit: 10 })).toEqual([{ runId: 'run-c', owner: 'w1', token: 1, expiresAt: at(hour + 1000) }]);
        const end = succeedNode(child, { summary: 'done' }, null);
        await store.append({ ...end, run: { ...end.run, wakeAt: null }, lease: { token: 1, release: true }, wakeRun: 'run-p' });

        // Only the wake time moved; the parent's next append writes its own again.
        expect(await store.getRun('run-p')).toEqual({ ...parent, wakeAt: lastAt(end) });
        expect(await store.claimRuns({ owner: 'w2', now: lastAt(end), ttlMs: 1000, limit: 10 })).toEqual([{ runId: 'run-p', owner: 'w2', token: 1, expiresAt: addMs(lastAt(end), 1000) }]);
        const next = await commit(store, waiting(retryNode(parent, 'settled the child')));
        expect((await store.getRun('run-p'))?.wakeAt).toBeNull();
        expect(next.version).toBe(4);
      });

      it('wakeRun wakes a paused parent too, and never makes a wake time later', async () => {
        let paused = await commit(store, startRun('run-paused', { at: at(0) }));
        paused = await commit(store, waiting(pauseRun(paused, 'approval', 'appr-1')));
        const soon = startRun('run-soon', { at: at(0) });
        const due = await commit(store, { ...soon, run: { ...soon.run, wakeAt: at(10) } });
        const later = startRun('run-later', { at: at(0) });
        const backoff = await commit(store, { ...later, run: { ...later.run, wakeAt: at(10 * hour) } });
        /** Starts a child of `runId` and fails it, waking `runId`; returns the time it woke it at. */
        const wakes = async (runId: string, index: number): Promise<string> => {
          const child = await commit(store, startRun(`${runId}.c`, { at: at(hour), parent: childOf(runId, index) }));
          const end = waiting(failRun(child, 'child failed'));
          await store.append({ ...end, wakeRun: runId });
          return lastAt(end);
        };

        const pausedWoken = await wakes('run-paused', 0);
        expect(await store.getRun('run-paused')).toEqual({ ...paused, wakeAt: pausedWoken });
        await wakes('run-soon', 1);
        expect(await store.getRun('run-soon')).toEqual(due);
        const laterWoken = await wakes('run-later', 2);
        expect(laterWoken < at(10 * hour)).toBe(true);
        expect(await store.getRun('run-later')).toEqual({ ...backoff, wakeAt: laterWoken });
      });

      it('wakeRun leaves an ended run alone, and is no error for a run the store has no row of', async () => {
        const started = await commit(store, startRun('run-p', { at: at(0) }));
        const ended = await commit(store, waiting(succeedNode(started, {}, null)));
        const child = await commit(store, startRun('run-c', { at: at(1000), parent: childOf('run-p', 0) }));
        const end = await commit(store, { ...waiting(succeedNode(child, {}, null)), wakeRun: 'run-p' });
        expect(await store.getRun('run-p')).toEqual(ended);
        expect(await store.getRun('run-c')).toEqual(end);

        const orphan = await commit(store, startRun('run-o', { at: at(1000), parent: childOf('run-gone', 0) }));
        await commit(store, { ...waiting(failRun(orphan, 'no parent')), wakeRun: 'run-gone' });
        expect(await store.getRun('run-gone')).toBeNull();
        expect(await store.listRunIds()).toEqual(['run-p', 'run-c', 'run-o']);
        expect(await store.claimRuns({ owner: 'w1', now: at(hour), ttlMs: 1000, limit: 10 })).toEqual([]);
      });

      it('a refused append wakes nothing: the wake is in its transaction', async () => {
        const parent = await commit(store, waiting(startRun('run-p', { at: at(0) })));
        const child = await commit(store, startRun('run-c', { at: at(1000), parent: childOf('run-p', 0) }));
        await commit(store, retryNode(child, 'flaky'));
        const stale = { ...succeedNode(child, {}, null), wakeRun: 'run-p' };
        expect(hasCode(await rejectionOf(store.append(stale)), E_CONCURRENT_UPDATE)).toBe(true);
        expect(await store.getRun('run-p')).toEqual(parent);
      });

      it('onRunnable hears an append that wakes another run, even one that keeps its own lease', async () => {
        await commit(store, waiting(startRun('run-p', { at: at(0) })));
        const child = await commit(store, waiting({ ...startRun('run-c', { at: at(1000), parent: childOf('run-p', 0) }), lease: { token: 1, create: { owner: 'w1', expiresAt: at(hour) } } }));
        let heard = 0;
        const stop = store.onRunnable(() => {
          heard += 1;
        });
        // A driver's append under its lease, with no wake: nobody to wake.
        const next = await commit(store, { ...waiting(retryNode(child, 'flaky')), lease: { token: 1 } });
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(heard).toBe(0);
        await commit(store, { ...waiting(succeedNode(next, {}, null)), lease: { token: 1 }, wakeRun: 'run-p' });
        // PostgreSQL delivers NOTIFY over its own connection: wait (bounded) for it.
        for (let i = 0; i < 500 && heard < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(heard).toBe(1);
        stop();
      });
    });

    describe('durability', () => {
      it('keeps events, rows and sources across close and reopen, and continues the chain', async (context) => {
        if (handle.reopen === undefined) {
          context.skip();
          return;
        }
        let a = await commit(store, startRun('run-a', { epicId: 'E-1' }));
        a = await commit(store, succeedNode(a, { bumped: '1.4.0' }, 'approval'));
        const pause = pauseRun(a, 'approval', 'appr-a');
        a = await commit(store, pause);
        const events = await store.readRun('run-a');

        store = await handle.reopen();
        expect(await store.readRun('run-a')).toEqual(events);
        expect(await store.getRun('run-a')).toEqual(a);
        expect(await store.getApproval('appr-a')).toEqual(pause.approvals[0]);
        expect(await store.getPlaybookSource(a.playbookHash)).toBe(playbookSource('release'));

        // The reopened store knows where the chain ends without having written it.
        const grant = decideApproval(a, pause.approvals[0] as ApprovalRow, 'approved', 'alice', 'ship it');
        await store.append(grant);
        expect(hasCode(await rejectionOf(store.append(grant)), E_CONCURRENT_UPDATE)).toBe(true);
        const after = await store.readRun('run-a');
        expect(after).toHaveLength(6);
        expect(verifyChain('run-a', after)).toEqual([]);
        expect((await store.readAll(0, 100)).map((e) => e.globalSeq)).toEqual(after.map((e) => e.globalSeq));
      });

      it('keeps run settings and attempt logs across close and reopen', async (context) => {
        if (handle.reopen === undefined) {
          context.skip();
          return;
        }
        const a = await commit(store, { ...startRun('run-a'), settings: { agent: 'http://agents.internal/run' } });
        await commit(store, { ...retryNode(a, 'flaky'), attemptLogs: [{ nodeId: 'version_bump', attempt: 1, text: 'stderr\n', droppedBytes: 5 }] });

        store = await handle.reopen();
        expect(await store.getRunSettings('run-a')).toEqual({ agent: 'http://agents.internal/run' });
        expect(await store.listAttemptLogs('run-a', { nodeId: 'version_bump' })).toEqual([{ runId: 'run-a', nodeId: 'version_bump', attempt: 1, text: 'stderr\n', droppedBytes: 5 }]);
      });
    });
    describe.skipIf(features.connections !== true)('several connections (as several processes)', () => {
      const others = async (n: number): Promise<EventStore[]> => Promise.all(Array.from({ length: n }, () => (handle.another as () => Promise<EventStore>)()));

      it('a reader polling readAll while 8 writers commit on their own connections never misses an event', async () => {
        const writers = await others(8);
        const reader = (await others(1))[0] as EventStore;
        const seen: number[] = [];
        let after = 0;
        let done = false;
        const writing = Promise.all(writers.map(async (writer, w) => {
          for (let r = 0; r < 4; r++) {
            const runId = `run-${w}-${r}`;
            const run = await commit(writer, startRun(runId));
            await commit(writer, retryNode(run, 'again'));
          }
        })).finally(() => (done = true));
        while (!done) {
          const page = await reader.readAll(after, 25);
          for (const event of page) seen.push(event.globalSeq);
          after = page.at(-1)?.globalSeq ?? after;
          await new Promise((resolve) => setImmediate(resolve));
        }
        await writing;
        for (const event of await reader.readAll(after, 10_000)) seen.push(event.globalSeq);
        const all = (await reader.readAll(0, 10_000)).map((event) => event.globalSeq);
        expect(all.length).toBe(8 * 4 * (startRun('x').events.length + retryNode(startRun('x').run, 'again').events.length));
        expect(seen).toEqual(all);
      });

      it('of concurrent appends at one version from several connections, exactly one wins', async () => {
        const run = await commit(store, startRun('run-a'));
        const connections = await others(6);
        const results = await Promise.allSettled(connections.map((connection, i) => connection.append(retryNode(run, `attempt ${i}`))));
        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        for (const result of results) if (result.status === 'rejected') expect(hasCode(result.reason, E_CONCURRENT_UPDATE)).toBe(true);
        expect(await store.readRun('run-a')).toHaveLength(run.version + retryNode(run, 'x').events.length);
      });

      it('a driver whose lease another connection took over cannot append (E_LEASE_LOST), writing nothing', async () => {
        const [driver, taker] = (await others(2)) as [EventStore, EventStore];
        const t0 = '2025-06-01T12:00:00.000Z';
        const lease = await driver.acquireLease({ runId: 'run-a', owner: 'w1', now: t0, ttlMs: 60_000 });
        const run = await commit(driver, { ...startRun('run-a'), lease: { token: lease?.token as number } });
        const taken = await taker.acquireLease({ runId: 'run-a', owner: 'w2', now: t0, ttlMs: 60_000, force: true });
        expect(taken?.token).toBe((lease?.token as number) + 1);
        const before = await snapshotRun(store, 'run-a');
        const error = await rejectionOf(driver.append({ ...retryNode(run, 'late'), lease: { token: lease?.token as number } }));
        expect(hasCode(error, E_LEASE_LOST)).toBe(true);
        expect(await snapshotRun(store, 'run-a')).toEqual(before);
        await commit(taker, { ...retryNode(run, 'the new driver'), lease: { token: taken?.token as number } });
      });
    });
  });
}
