import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CantbookError, E_ADAPTER_INVALID } from '../errors.js';
import { parseAgentAnswer } from './agentProtocol.js';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from './types.js';

/** Options of {@link createModuleDispatcher}. */
export interface ModuleDispatcherOptions {
  /** Directory a relative module path is resolved against (default: `process.cwd()`). */
  cwd?: string;
}

/** A dispatcher backed by an ESM module; `load()` imports and checks it ahead of the first dispatch. */
export interface ModuleDispatcher extends AgentDispatcher {
  /**
   * Imports the module (once) and checks that it exports a dispatcher.
   * Rejects with CantbookError `E_ADAPTER_INVALID` when the import fails or
   * nothing usable is exported. Calling it is optional: `dispatch` loads too.
   */
  load(): Promise<void>;
}

type DispatchFn = (request: DispatchRequest) => Promise<NodeOutcome> | NodeOutcome;

/**
 * An {@link AgentDispatcher} implemented by an ESM module of the host's own,
 * loaded in-process with a dynamic `import()` the first time it is needed
 * (then cached).
 *
 * The module exports, as `dispatcher` or else as `default`, either an object
 * with a `dispatch(request)` method or a function `(request) => outcome`
 * (sync or async). The request is passed as is, `signal` included.
 *
 * - Creating it throws CantbookError `E_ADAPTER_INVALID` when the file does
 *   not exist.
 * - `dispatch` rejects with `E_ADAPTER_INVALID` when the module fails to
 *   import or exports no dispatcher (the runtime records that as a node
 *   failure; call `load()` first to fail fast). Whatever the module's
 *   dispatch throws propagates unchanged (the runtime treats it as a node
 *   failure); an answer that is not `{status: 'success', output?}` /
 *   `{status: 'failure', error?}` becomes a failure outcome naming the module.
 *
 * @example
 * // my-agent.mjs: export default async (request) => ({ status: 'success', output: { seen: request.nodeId } });
 * const dispatcher = createModuleDispatcher('./my-agent.mjs', { cwd: projectRoot });
 * await dispatcher.load();
 */
export function createModuleDispatcher(path: string, options: ModuleDispatcherOptions = {}): ModuleDispatcher {
  if (path.trim() === '') throw new CantbookError(E_ADAPTER_INVALID, 'the module agent has no path', {});
  const file = resolve(options.cwd ?? process.cwd(), path);
  if (!existsSync(file)) {
    throw new CantbookError(E_ADAPTER_INVALID, `agent module '${path}' does not exist (resolved to '${file}')`, { path, file });
  }
  let loading: Promise<DispatchFn> | undefined;
  const load = (): Promise<DispatchFn> => (loading ??= importDispatcher(path, file));
  return {
    async load() {
      await load();
    },
    async dispatch(request: DispatchRequest): Promise<NodeOutcome> {
      const dispatch = await load();
      const answer = parseAgentAnswer(await dispatch(request));
      if (!answer.ok) return { status: 'failure', error: `agent module '${path}' gave an invalid answer: ${answer.problem}` };
      return answer.outcome;
    },
  };
}

async function importDispatcher(path: string, file: string): Promise<DispatchFn> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new CantbookError(E_ADAPTER_INVALID, `agent module '${path}' could not be imported: ${(error as Error)?.message ?? String(error)}`, { path, file }, { cause: error });
  }
  for (const name of ['dispatcher', 'default']) {
    const candidate = namespace[name];
    if (typeof candidate === 'function') return (request) => (candidate as DispatchFn)(request);
    if (typeof candidate === 'object' && candidate !== null && typeof (candidate as { dispatch?: unknown }).dispatch === 'function') {
      const target = candidate as AgentDispatcher;
      return (request) => target.dispatch(request);
    }
  }
  const exported = Object.keys(namespace).sort();
  throw new CantbookError(
    E_ADAPTER_INVALID,
    `agent module '${path}' exports no dispatcher: expected an export named 'dispatcher' or 'default' that is an object with dispatch(request) or a function (request) => outcome; found ${exported.length === 0 ? 'no exports' : `exports ${exported.map((key) => `'${key}'`).join(', ')}`}`,
    { path, file, exports: exported },
  );
}
