/**
 * Anchors: a run's head `{runId, seq, hash}` written down somewhere the
 * database's writers cannot reach (a ticket, a log shipper, a second machine).
 * The hash chain alone proves that the stored events agree with each other;
 * someone with write access to the file can still edit an event and recompute
 * every hash after it. An anchor kept from before the edit no longer matches
 * the event at its seq, so the rewrite shows (docs/security.md).
 *
 * Text form: `<runId>:<seq>:<hash>` (hash: 64 lowercase hex characters).
 * Verification code only: the chain itself is computed in hashChain.ts.
 */

/** One run's head at some point in time. */
export interface RunAnchor {
  runId: string;
  /** The seq of the event the anchor was taken at (1..n). */
  seq: number;
  /** That event's chain hash. */
  hash: string;
}

/** Why a run does not match its anchor. */
export interface AnchorProblem {
  problem: 'anchor_mismatch';
  seq: number;
  message: string;
}

const ANCHOR = /^(.+):([1-9][0-9]{0,15}):([0-9a-f]{64})$/;

/** `<runId>:<seq>:<hash>`. Pure. */
export function formatAnchor(anchor: RunAnchor): string {
  return `${anchor.runId}:${anchor.seq}:${anchor.hash}`;
}

/**
 * Reads `<runId>:<seq>:<hash>` (surrounding whitespace ignored), or returns
 * null when the text is not an anchor. Pure.
 *
 * @example parseAnchor('7f1c…:11:3e27…') // { runId: '7f1c…', seq: 11, hash: '3e27…' }
 */
export function parseAnchor(text: string): RunAnchor | null {
  if (typeof text !== 'string') return null;
  const match = ANCHOR.exec(text.trim());
  if (match === null) return null;
  const [, runId, seq, hash] = match as unknown as [string, string, string, string];
  return { runId, seq: Number(seq), hash };
}

/**
 * The head of a run's stored events (the last one's seq and hash), or null
 * for a run without events. Pure.
 */
export function headOf(runId: string, events: readonly { seq: number; hash: string }[]): RunAnchor | null {
  const last = events.at(-1);
  return last === undefined ? null : { runId, seq: last.seq, hash: last.hash };
}

/**
 * Checks a run's events (ordered by seq, chain already verified) against an
 * anchor taken earlier: the event at the anchor's seq must still carry the
 * anchored hash. Events appended after the anchor are fine (the run went on);
 * a different hash means the history up to that point was rewritten, and a
 * missing seq that it was cut short. Pure.
 */
export function checkAnchor(events: readonly { seq: number; hash: string }[], anchor: RunAnchor): AnchorProblem[] {
  const at = events.find((event) => event.seq === anchor.seq);
  if (at === undefined) {
    const head = events.at(-1)?.seq ?? 0;
    return [{ problem: 'anchor_mismatch', seq: anchor.seq, message: `run '${anchor.runId}' was anchored at event ${anchor.seq}, but its log now ends at event ${head}: history was removed` }];
  }
  if (at.hash !== anchor.hash) {
    return [
      {
        problem: 'anchor_mismatch',
        seq: anchor.seq,
        message: `run '${anchor.runId}': event ${anchor.seq} has hash ${at.hash.slice(0, 12)}…, but the anchor recorded ${anchor.hash.slice(0, 12)}…: the history up to event ${anchor.seq} was rewritten`,
      },
    ];
  }
  return [];
}
