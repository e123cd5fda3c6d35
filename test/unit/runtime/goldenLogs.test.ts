import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyChain } from '../../../src/events/hashChain.js';
import type { RunEvent } from '../../../src/events/types.js';
import { toApprovalRows, toRunRow } from '../../../src/projections/projectRun.js';
import { foldStoredEvents } from '../../../src/runtime/loadRun.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'logs');
const goldens = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('golden logs written by earlier versions', () => {
  it('there are golden logs to check', () => {
    expect(goldens.length).toBeGreaterThanOrEqual(6);
  });

  it.each(goldens)('%s still verifies and folds to the recorded state', (file) => {
    const { events, expected } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: RunEvent[]; expected: { value: unknown; run: unknown; approvals: unknown } };
    const runId = events[0]!.runId;
    expect(verifyChain(runId, events)).toEqual([]);
    const { snapshot } = foldStoredEvents(runId, events);
    expect(snapshot.value).toEqual(expected.value);
    expect(toRunRow(snapshot.context)).toEqual(expected.run);
    expect(toApprovalRows(snapshot.context)).toEqual(expected.approvals);
  });
});
