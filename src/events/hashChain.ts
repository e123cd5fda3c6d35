import { canonicalJson, sha256Hex } from './canonicalJson.js';
import type { NewRunEvent, RunEvent } from './types.js';

/** The `prevHash` of a run's first event. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The hash of one event: SHA-256 over the previous event's hash and the
 * canonical JSON of `{runId, seq, type, data, at}`. `globalSeq` is left out on
 * purpose: it is a position in one store, not part of the run's history.
 *
 * Pure.
 */
export function hashEvent(prevHash: string, runId: string, seq: number, event: NewRunEvent): string {
  return sha256Hex(prevHash + '\n' + canonicalJson({ runId, seq, type: event.type, data: event.data, at: event.at }));
}

/**
 * Chains a batch of new events onto a stream whose last event has `prevHash`
 * and seq `afterSeq`: their seqs and hashes, in order. The one place the
 * chain is computed for writing; every store calls it (and `verifyChain`
 * recomputes it the same way).
 *
 * Pure.
 */
export function chainEvents(prevHash: string, runId: string, afterSeq: number, events: readonly NewRunEvent[]): { seq: number; hash: string }[] {
  const out: { seq: number; hash: string }[] = [];
  let prev = prevHash;
  events.forEach((event, index) => {
    const seq = afterSeq + index + 1;
    prev = hashEvent(prev, runId, seq, event);
    out.push({ seq, hash: prev });
  });
  return out;
}

/** One way a stored stream breaks its chain. */
export interface ChainProblem {
  seq: number;
  problem: 'seq_gap' | 'hash_mismatch' | 'wrong_run';
  message: string;
}

/**
 * Checks that `events` (one run, ordered by seq) are numbered 1..n without gaps
 * and that every hash covers its predecessor. An edited event breaks its own
 * hash; a deleted one leaves a gap (or, at the end, is caught by comparing the
 * projection's version).
 *
 * Pure.
 */
export function verifyChain(runId: string, events: readonly RunEvent[]): ChainProblem[] {
  const problems: ChainProblem[] = [];
  let prev = GENESIS_HASH;
  events.forEach((event, index) => {
    const expectedSeq = index + 1;
    if (event.runId !== runId) {
      problems.push({ seq: event.seq, problem: 'wrong_run', message: `event ${event.seq} belongs to run '${event.runId}', not '${runId}'` });
    }
    if (event.seq !== expectedSeq) {
      problems.push({ seq: event.seq, problem: 'seq_gap', message: `expected seq ${expectedSeq}, found ${event.seq} (an event is missing)` });
    }
    const expected = hashEvent(prev, runId, event.seq, event);
    if (expected !== event.hash) {
      problems.push({ seq: event.seq, problem: 'hash_mismatch', message: `event ${event.seq} (${event.type}) does not match its hash: it was changed` });
    }
    prev = event.hash;
  });
  return problems;
}
