/** What the CLI and the viewer mark on a gate (SPEC §13): escalations and auto-passes, read from the events, never from the approver's name. */
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../../src/index.js';
import { gateDecider, gateKind, gateMarksOf, gateStatus, withGateMarks } from '../../../src/cli/gateMarks.js';

let seq = 0;
const event = (type: RunEvent['type'], data: Record<string, unknown>): RunEvent => ({ type, data, runId: 'r', seq: (seq += 1), globalSeq: seq, at: '2026-01-01T00:00:00.000Z', hash: '' }) as RunEvent;
const paused = (approvalId: string, nodeId: string, extra: Record<string, unknown> = {}) => event('RunPaused', { approvalId, nodeId, prompt: 'p', tokenHash: 'h', contextDigest: 'd', ...extra });
const granted = (approvalId: string, nodeId: string, extra: Record<string, unknown> = {}) => event('ApprovalGranted', { approvalId, nodeId, approver: 'policy', reason: '', ...extra });

describe('gateMarksOf', () => {
  const events = [
    paused('a1', 'gate'),
    granted('a1', 'gate', { auto: true, rule: 'safe-qa-tool' }),
    paused('a2', 'plan', { escalation: { on: 'contract_violation', checkpoint: 'exit' } }),
    paused('a3', 'review'),
    // A human may call themselves "policy": without `auto`, that is a human's approval.
    granted('a3', 'review'),
  ];
  const marks = gateMarksOf(events);

  it('marks auto-passes and escalations by approval id, and nothing else', () => {
    expect([...marks]).toEqual([
      ['a1', { autoPassed: { rule: 'safe-qa-tool' } }],
      ['a2', { escalation: { on: 'contract_violation', checkpoint: 'exit' } }],
    ]);
  });

  it('adds the marks to rows under the events\' own field names, and leaves unmarked rows as they are', () => {
    const row = (approvalId: string) => ({ approvalId, status: 'approved', approver: 'policy' });
    expect(withGateMarks(row('a1'), marks)).toEqual({ ...row('a1'), auto: true, rule: 'safe-qa-tool' });
    expect(withGateMarks(row('a2'), marks)).toEqual({ ...row('a2'), escalation: { on: 'contract_violation', checkpoint: 'exit' } });
    expect(withGateMarks(row('a3'), marks)).toEqual(row('a3'));
  });

  it('says kind, status and decider as the approvals table shows them', () => {
    expect([gateKind({}), gateKind({ escalation: { on: 'iteration_cap_exceeded' } })]).toEqual(['approval', 'escalation (iteration_cap_exceeded)']);
    expect([gateStatus({ status: 'approved', auto: true }), gateStatus({ status: 'approved' }), gateStatus({ status: 'pending' })]).toEqual(['auto-passed', 'approved', 'pending']);
    expect([gateDecider({ approver: 'policy', auto: true, rule: 'safe-qa-tool, safe-cleo-read' }), gateDecider({ approver: 'policy' }), gateDecider({ approver: null })]).toEqual([
      'policy (rule safe-qa-tool, safe-cleo-read)',
      'policy',
      '-',
    ]);
  });
});
