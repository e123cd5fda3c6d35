import { CantbookError, E_ADAPTER_INVALID } from '../errors.js';
import { createExecDispatcher } from './execDispatcher.js';
import { createHttpDispatcher } from './httpDispatcher.js';
import { createModuleDispatcher } from './moduleDispatcher.js';
import type { AgentDispatcher } from './types.js';

/** Options of {@link createDispatcherFromSpec}. */
export interface DispatcherSpecOptions {
  /**
   * Directory `exec:` commands run in and `module:` paths are resolved
   * against (default: `process.cwd()`); the CLI passes the directory of the
   * config file that named the agent.
   */
  cwd?: string;
  /** Milliseconds one dispatch may take, for exec and http agents (default 10 minutes; 0 = none). */
  timeoutMs?: number;
}

/** The accepted agent spec forms, for messages and help text. */
export const AGENT_SPEC_FORMS: readonly string[] = ['exec:<command> [args...]', 'module:<path>', 'http://<url>', 'https://<url>', 'http:<url>'];

/**
 * Builds a dispatcher from a one-line agent spec, as given to `--agent` or
 * the config file's `"agent"`:
 *
 * - `exec:<command> [args...]` → {@link createExecDispatcher}; the rest of
 *   the line is split by {@link splitCommandLine} (quotes, no shell).
 * - `module:<path>` → {@link createModuleDispatcher}.
 * - `http://...`, `https://...` → {@link createHttpDispatcher}; `http:<url>`
 *   also works, where `<url>` is a full URL or `host[:port]/path` (then
 *   plain http is assumed).
 *
 * Throws CantbookError `E_ADAPTER_INVALID` for an unknown scheme (listing
 * the accepted forms), an empty or unsplittable command line, a bad URL, or
 * a module file that does not exist.
 *
 * @example
 * const dispatcher = createDispatcherFromSpec('exec:node starter/demo-agent.mjs', { cwd: process.cwd() });
 */
export function createDispatcherFromSpec(spec: string, options: DispatcherSpecOptions = {}): AgentDispatcher {
  const text = spec.trim();
  const cwd = options.cwd === undefined ? {} : { cwd: options.cwd };
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  const lower = text.toLowerCase();
  if (lower.startsWith('exec:')) return createExecDispatcher(text.slice('exec:'.length), { ...cwd, ...timeout });
  if (lower.startsWith('module:')) return createModuleDispatcher(text.slice('module:'.length).trim(), cwd);
  if (lower.startsWith('http://') || lower.startsWith('https:')) return createHttpDispatcher(text, timeout);
  if (lower.startsWith('http:')) {
    const rest = text.slice('http:'.length).trim();
    return createHttpDispatcher(/^https?:\/\//i.test(rest) ? rest : `http://${rest}`, timeout);
  }
  throw new CantbookError(
    E_ADAPTER_INVALID,
    `unknown agent spec ${JSON.stringify(spec)}: expected one of ${AGENT_SPEC_FORMS.join(', ')}`,
    { spec, accepted: [...AGENT_SPEC_FORMS] },
  );
}
