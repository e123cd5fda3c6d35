/**
 * What a gate was, beyond its approvals row (SPEC §13: auto-passes and
 * escalations are "shown as such everywhere"): an escalation gate that an
 * `error_handlers` entry opened on a work node (`RunPaused.escalation`), and
 * a gate that its policy passed without a human
 * (`ApprovalGranted{auto: true, rule}`). The approvals projection keeps only
 * the approver and reason, and a human may call themselves `policy`, so the
 * marks are read from the run's events, the source of truth. `show`,
 * `approvals` and the viewer all use these functions; all but
 * {@link markGates} are pure.
 */
import { readRunEvents } from '../index.js';
import type { EscalationData, EventStore, RunEvent } from '../index.js';

/** What the log says about one gate that its approvals row does not. */
export interface GateMarks {
  /** Set for an escalation gate: what opened it. */
  escalation?: EscalationData;
  /** Set when the gate's policy passed it: the reasons of the auto-approve rules that matched (`safe-qa-tool`). */
  autoPassed?: { rule: string };
}

/** The marks of every gate of the given events, by approval id; gates with nothing to mark are left out. Pure. */
export function gateMarksOf(events: readonly RunEvent[]): Map<string, GateMarks> {
  const marks = new Map<string, GateMarks>();
  const mark = (approvalId: string, add: GateMarks) => marks.set(approvalId, { ...marks.get(approvalId), ...add });
  for (const event of events) {
    if (event.type === 'RunPaused' && event.data.escalation !== undefined) mark(event.data.approvalId, { escalation: event.data.escalation });
    if (event.type === 'ApprovalGranted' && event.data.auto === true) mark(event.data.approvalId, { autoPassed: { rule: event.data.rule ?? 'none' } });
  }
  return marks;
}

/** A gate as the JSON of `show`, `approvals` and the viewer's API carries it: its row, and the marks (named as in the events) that apply. */
export type MarkedGate<T> = T & { escalation?: EscalationData; auto?: true; rule?: string };

/** `gate` with the marks of `marks` that apply to it (see {@link MarkedGate}). Pure. */
export function withGateMarks<T extends { approvalId: string }>(gate: T, marks: ReadonlyMap<string, GateMarks>): MarkedGate<T> {
  const found = marks.get(gate.approvalId);
  return {
    ...gate,
    ...(found?.escalation === undefined ? {} : { escalation: found.escalation }),
    ...(found?.autoPassed === undefined ? {} : { auto: true as const, rule: found.autoPassed.rule }),
  };
}

/** What kind of gate it is, in a word or three: `approval`, or `escalation (contract_violation)`. Pure. */
export function gateKind(gate: { escalation?: EscalationData }): string {
  return gate.escalation === undefined ? 'approval' : `escalation (${gate.escalation.on})`;
}

/** The gate's status as the CLI shows it: `auto-passed` for a gate its policy passed, else its status. Pure. */
export function gateStatus(gate: { status: string; auto?: true }): string {
  return gate.auto === true ? 'auto-passed' : gate.status;
}

/** Who decided, as the CLI shows it: `policy (rule safe-qa-tool)` for an auto-pass, else the approver, or `-`. Pure. */
export function gateDecider(gate: { approver: string | null; auto?: true; rule?: string }): string {
  if (gate.auto === true) return `policy (rule ${gate.rule ?? 'none'})`;
  return gate.approver ?? '-';
}

/**
 * `gates` with their marks, reading the log of each run that has one of them
 * (once per run). Read-only; throws what the store throws.
 */
export async function markGates<T extends { approvalId: string; runId: string }>(store: EventStore, gates: readonly T[]): Promise<MarkedGate<T>[]> {
  const marks = new Map<string, GateMarks>();
  for (const runId of new Set(gates.map((gate) => gate.runId))) {
    for (const [approvalId, marked] of gateMarksOf(await readRunEvents(store, runId))) marks.set(approvalId, marked);
  }
  return gates.map((gate) => withGateMarks(gate, marks));
}
