/**
 * The variables that tell a child process which node attempt it is serving.
 *
 * Pure. `CANTBOOK_IDEMPOTENCY_KEY` is `runId:nodeId:attempt`; delivery is
 * at-least-once, so a child with side effects should deduplicate on it.
 */
export function cantbookRunEnv(request: { runId: string; nodeId: string; iteration: number; idempotencyKey: string }): Record<string, string> {
  return {
    CANTBOOK_RUN_ID: request.runId,
    CANTBOOK_NODE_ID: request.nodeId,
    CANTBOOK_ATTEMPT: String(request.iteration),
    CANTBOOK_IDEMPOTENCY_KEY: request.idempotencyKey,
  };
}
