import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/events/hashChain.js';
import type { RunEvent } from '../../../src/events/types.js';
import { toApprovalRows, toRunRow } from '../../../src/projections/projectRun.js';
import { foldStoredEvents } from '../../../src/runtime/loadRun.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'logs');
const goldens = readdirSync(dir).filter((f) => f.endsWith('.json'));

/** A runs row as v1 (cantbook 0.1.0) recorded it: errorContext was the structured error. */
type V1Row = Record<string, unknown> & { errorContext: { error: string; cause: string; nodeId?: string } | null };

/**
 * The row v1 recorded, in the v2 shape: the same facts, with `error` structured,
 * `errorContext` its message (SPEC §6 v2) and the active nodes of the state (none
 * for an ended run, which every v1 golden log is).
 */
function fromV1Row(row: V1Row): Record<string, unknown> {
  const { errorContext, ...rest } = row;
  const error = errorContext === null ? null : { cause: errorContext.cause, message: errorContext.error, ...(errorContext.nodeId === undefined ? {} : { nodeId: errorContext.nodeId }) };
  return { ...rest, activeNodes: [], error, errorContext: error?.message ?? null };
}

describe('golden logs written by earlier versions', () => {
  it('there are golden logs to check', () => {
    expect(goldens.length).toBeGreaterThanOrEqual(6);
  });

  it.each(goldens)('%s still verifies and folds to the recorded state', (file) => {
    const { recordedWith, events, expected } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { recordedWith: string; events: RunEvent[]; expected: { value: unknown; run: unknown; approvals: unknown } };
    const runId = events[0]!.runId;
    expect(verifyChain(runId, events)).toEqual([]);
    const { playbook, snapshot } = foldStoredEvents(runId, events);
    expect(snapshot.value).toEqual(expected.value);
    // Logs recorded before runs had a wake time (every golden run has ended: it never wakes) or a parent (none is a child run).
    const recorded = { wakeAt: null, parentRunId: null, ...(recordedWith === 'cantbook 0.1.0' ? fromV1Row(expected.run as V1Row) : (expected.run as object)) };
    expect(toRunRow(playbook.model, snapshot)).toEqual(recorded);
    expect(toApprovalRows(snapshot)).toEqual(expected.approvals);
  });
});
