import { v7 as uuidV7 } from 'uuid';
import { initialRunSnapshot } from '../compiler/foldRun.js';
import { DEFAULT_MAX_ITERATIONS } from '../compiler/playbookModel.js';
import { canonicalJson, sha256Hex } from '../events/canonicalJson.js';
import type { RunContext } from '../events/types.js';
import { CantbookError, E_INPUT_MISSING, E_INPUT_UNKNOWN, E_PLAYBOOK_PARSE, E_PLAYBOOK_RUNTIME_INVALID, hasCode } from '../errors.js';
import { closestMatch } from '../playbook/suggest.js';
import { pinPlaybookTree } from '../playbook/resolvePlaybooks.js';
import type { PlaybookResolver } from '../playbook/resolvePlaybooks.js';
import type { PlaybookDefinition } from '../playbook/types.js';
import type { EventStore } from '../store/eventStore.js';
import { compileSource } from './playbookCache.js';
import type { CompiledPlaybook } from './playbookCache.js';
import { checkHostOptions, RunSession } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface ExecutePlaybookOptions extends HostOptions {
  store: EventStore;
  /** The parsed playbook. Ignored in favour of `source` when that is given. */
  playbook: PlaybookDefinition;
  /** The exact playbook text; the run is pinned to it. Without it, the run is pinned to the definition's canonical JSON. */
  source?: string;
  /**
   * With `source`: its SHA-256, checked. Without it (a parsed definition,
   * `parsePlaybook`'s `sourceHash`): kept as the hash the run reports
   * (`getRun().playbookHash`), as `@cleocode/playbooks` does.
   */
  playbookHash?: string;
  initialContext?: RunContext;
  /** Cap for nodes without `max_iterations` (default 3). */
  maxIterationsDefault?: number;
  epicId?: string;
  sessionId?: string;
  /** Run id to use (default: a time-ordered UUIDv7, see newRunId). Must not exist in the store. */
  runId?: string;
  /**
   * Finds the playbooks its `playbook` and `map` nodes name (SPEC §12): called
   * for every reference of the tree before any event, and never again (the
   * texts are pinned in the run). The CLI's resolves paths relative to the
   * referring file (`createFileResolver`).
   */
  resolvePlaybook?: PlaybookResolver;
  /** The root playbook's id for `resolvePlaybook` (the CLI: its file's absolute path); null when absent. */
  playbookId?: string;
}

/**
 * Starts a run and drives it until it completes, fails, exceeds a cap or
 * pauses at an approval gate (SPEC §4).
 *
 * Before any event is written it checks the inputs (missing required ->
 * E_INPUT_MISSING). A node failure is not an exception: it is in the result.
 * Delivery to dispatchers is at-least-once. A gate needs no secret: its token
 * is a fresh random credential (`approvalSecret` is accepted and ignored).
 *
 * @example
 * const { definition } = parsePlaybook(text);
 * const result = await executePlaybook({ store, playbook: definition, source: text,
 *   initialContext: { targetVersion: '1.2.0' }, dispatcher });
 * if (result.terminalStatus === 'pending_approval') console.log(result.approvalToken);
 */
export async function executePlaybook(options: ExecutePlaybookOptions): Promise<PlaybookResult> {
  // Drive it: the session leases the run before its first commit (RunStarted with the first NodeStarted).
  return (await prepareRun(options)).drive();
}

/** What `startRun` returns: the run is recorded and left to a worker. */
export interface StartedRun {
  runId: string;
}

/**
 * Records a run's `RunStarted` and leaves the run to a worker (SPEC §11): the
 * run is runnable at once, and the first `createWorker` to claim it drives it.
 * Checks everything `executePlaybook` checks, before any event.
 *
 * @example
 * const { runId } = await startRun({ store, playbook: definition, source: text, initialContext: {} });
 * await createWorker({ store, dispatcher }).runUntilIdle();
 */
export async function startRun(options: Omit<ExecutePlaybookOptions, 'dispatcher'> & { dispatcher?: ExecutePlaybookOptions['dispatcher'] }): Promise<StartedRun> {
  const session = await prepareRun({ ...options, dispatcher: options.dispatcher ?? noDispatch });
  await session.commit();
  return { runId: session.runId };
}

/** Pins (the child playbooks of the tree too), checks and records RunStarted (not yet committed) in a new session. */
async function prepareRun(options: ExecutePlaybookOptions): Promise<RunSession> {
  checkHostOptions(options);
  // 1. Pin the playbook text and compile it (memoised by hash).
  const playbook = pin(options);
  const definition = playbook.model.definition;
  // 2. Check everything that would otherwise fail mid-run.
  const context = initialContextOf(definition, options.initialContext ?? {});
  const maxIterationsDefault = options.maxIterationsDefault ?? DEFAULT_MAX_ITERATIONS;
  if (!Number.isInteger(maxIterationsDefault) || maxIterationsDefault < 0 || maxIterationsDefault > 10) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `maxIterationsDefault must be an integer 0..10, got ${String(maxIterationsDefault)}`);
  }
  // Every text the tree can start, resolved and checked now: a missing or cyclic reference is refused before any event.
  const pinned = await pinPlaybookTree({ definition, id: options.playbookId ?? null }, options.resolvePlaybook);
  // 3. Record RunStarted; the session commits it together with the first NodeStarted.
  const session = new RunSession(options.store, playbook, initialRunSnapshot(playbook.machine), options);
  session.record(
    {
      type: 'RunStarted',
      data: {
        playbookName: definition.name,
        sourceHash: playbook.sourceHash,
        source: playbook.source,
        ...(playbook.reportedHash === undefined ? {} : { playbookHash: playbook.reportedHash }),
        contracts: true,
        context,
        maxIterationsDefault,
        ...(options.epicId === undefined ? {} : { epicId: options.epicId }),
        ...(options.sessionId === undefined ? {} : { sessionId: options.sessionId }),
        ...(pinned === undefined ? {} : { pinned }),
      },
    },
    options.runId ?? newRunId(options.clock?.now ?? options.now),
  );
  return session;
}

/** startRun dispatches nothing: the worker that claims the run brings its own dispatcher. */
const noDispatch = {
  dispatch(): never {
    throw new TypeError('startRun records the run only; a worker drives it');
  },
};

/**
 * The text a run is pinned to (SPEC §3): `source` when given (a `playbookHash`
 * beside it must be its SHA-256), else the definition's canonical JSON (a host
 * that builds playbooks in code, or passes a parsed definition without its
 * YAML). The `playbookHash` of such a definition is kept as the hash the run
 * reports; replay checks the pinned JSON by its own hash.
 */
function pin(options: ExecutePlaybookOptions): CompiledPlaybook & { reportedHash?: string } {
  const { playbookHash } = options;
  if (playbookHash !== undefined && (typeof playbookHash !== 'string' || !/^[0-9a-f]{64}$/.test(playbookHash))) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `playbookHash must be a SHA-256 in lowercase hex (64 characters), got ${JSON.stringify(playbookHash)}`);
  }
  if (options.source !== undefined && playbookHash !== undefined && playbookHash !== sha256Hex(options.source)) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `playbookHash ${playbookHash} is not the SHA-256 of the given source`);
  }
  const source = options.source ?? definitionText(options.playbook);
  const compiled = compileText(source);
  return options.source === undefined && playbookHash !== undefined && playbookHash !== compiled.sourceHash ? { ...compiled, reportedHash: playbookHash } : compiled;
}

/** A definition as the text a run is pinned to: its canonical JSON (JSON is YAML, so the parser reads it back). */
function definitionText(definition: PlaybookDefinition): string {
  if (typeof definition !== 'object' || definition === null || Array.isArray(definition)) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, 'playbook must be a parsed playbook definition (an object) when no source is given');
  }
  try {
    return canonicalJson(definition);
  } catch (error) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `the playbook definition is not JSON: ${(error as Error).message}`, {}, { cause: error });
  }
}

function compileText(source: string): CompiledPlaybook {
  try {
    return compileSource(source);
  } catch (error) {
    if (hasCode(error, E_PLAYBOOK_PARSE)) {
      throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `the playbook is not valid: ${(error as Error).message}`, { issues: (error as { issues?: unknown }).issues }, { cause: error });
    }
    throw error;
  }
}

/**
 * Declared input defaults, then the caller's values; every required input must
 * be present (E_INPUT_MISSING). When the playbook declares inputs, a key it
 * does not declare is refused (E_INPUT_UNKNOWN, SPEC §4: a misspelt input is
 * never silently ignored); a playbook that declares none takes any context.
 */
export function initialContextOf(definition: PlaybookDefinition, given: RunContext): RunContext {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, 'initialContext must be an object');
  }
  let context: RunContext;
  try {
    context = JSON.parse(JSON.stringify(given)) as RunContext;
  } catch (error) {
    throw new CantbookError(E_PLAYBOOK_RUNTIME_INVALID, `initialContext must be JSON: ${(error as Error).message}`);
  }
  checkInputs(definition, context);
  for (const input of definition.inputs) {
    if (context[input.name] === undefined && input.default !== undefined) context[input.name] = input.default;
  }
  return context;
}

/**
 * The input rules of SPEC §4, checked before any event: throws E_INPUT_UNKNOWN
 * naming every key of `given` the playbook does not declare, with the
 * declared names (and the closest one for a misspelling), when the playbook
 * declares inputs; then E_INPUT_MISSING naming every required input that has
 * neither a value nor a default. The CLI calls it too, before it looks for an
 * agent. Pure.
 */
export function checkInputs(definition: PlaybookDefinition, given: RunContext): void {
  const declared = definition.inputs.map((input) => input.name);
  const unknown = declared.length === 0 ? [] : Object.keys(given).filter((key) => !declared.includes(key));
  const missing = definition.inputs.filter((input) => input.required && input.default === undefined && given[input.name] === undefined).map((input) => input.name);
  if (unknown.length === 0) {
    if (missing.length === 0) return;
    throw new CantbookError(E_INPUT_MISSING, `playbook '${definition.name}' needs input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}`, { missing });
  }
  const hints = unknown.map((key) => {
    const near = closestMatch(key, declared);
    return `'${key}'${near === undefined ? '' : ` (did you mean '${near}'?)`}`;
  });
  throw new CantbookError(
    E_INPUT_UNKNOWN,
    `playbook '${definition.name}' does not declare input${unknown.length > 1 ? 's' : ''} ${hints.join(', ')}; it declares ${declared.map((name) => `'${name}'`).join(', ')}`,
    { unknown, declared },
  );
}

/**
 * A new run id: a UUIDv7 (RFC 9562), whose first 48 bits are the creation time in
 * milliseconds from the injected clock. Ids of runs started later sort later, so
 * the store's indexes on run ids are appended to rather than written at random
 * places (random v4 ids doubled the raw insert cost, issue 10).
 */
export function newRunId(now: (() => Date) | undefined): string {
  return uuidV7({ msecs: (now?.() ?? new Date()).getTime() });
}
