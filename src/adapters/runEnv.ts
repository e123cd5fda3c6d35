/**
 * The environment of every process cantbook starts for a node (exec agents and
 * deterministic commands): what is inherited, what is removed, what is added.
 * docs/security.md and docs/adapters.md describe the same rule.
 */

/**
 * Inherited names are dropped when they start with this prefix: cantbook's own
 * settings (`CANTBOOK_SECRET`, `CANTBOOK_DB`, ...) are the host's, never an agent's.
 */
export const CANTBOOK_ENV_PREFIX = 'CANTBOOK_';

/**
 * The host environment a child inherits: `parent` without every `CANTBOOK_*`
 * name and without the names in `redact` (a host lists its own credentials
 * there). Everything else is passed as it is (PATH, HOME, the agent's own API
 * keys), because agents need it to run; a host that wants less passes `redact`,
 * or runs agents as another user (docs/security.md).
 *
 * Pure: `parent` is passed in.
 */
export function inheritedEnv(parent: Readonly<Record<string, string | undefined>>, redact: readonly string[] = []): Record<string, string> {
  const hidden = new Set(redact);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined || hidden.has(name) || name.toUpperCase().startsWith(CANTBOOK_ENV_PREFIX)) continue;
    env[name] = value;
  }
  return env;
}

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
