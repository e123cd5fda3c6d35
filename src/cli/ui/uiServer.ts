/**
 * The local web viewer behind `cantbook ui`: a node:http server with a JSON API
 * over the store and one static page (top-level `viewer/`).
 *
 * Security model, stated plainly:
 * - It binds to 127.0.0.1 unless told otherwise.
 * - Every request must carry a Host header naming this server (127.0.0.1,
 *   localhost, [::1] or the bound host, with the port), and an Origin, when
 *   present, must be this server's: a web page elsewhere cannot reach the API,
 *   directly or through DNS rebinding.
 * - Every /api request must carry the per-process session key (header
 *   `X-Cantbook-Key`), printed in the terminal at startup as part of the URL
 *   fragment: another local user or process cannot read runs or decide gates.
 * - Deciding a gate also needs its resume token, checked by approveGate /
 *   rejectGate exactly as for the CLI; approving then resumes the run with the
 *   configured agent dispatcher.
 * - Cancelling and retrying a run go through cancelRun / retryRun, with the
 *   CLI's checks (a run that ended cannot be cancelled, only a failed root run
 *   can be retried); a retry drives the run with the configured dispatcher.
 *
 * The page stays live by polling `GET /api/changes?after=<globalSeq>` (one
 * indexed read of the events appended since) and reading a run again only
 * when its events moved (`GET /api/runs/:id/live?after=<seq>`).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { approveGate, cancelRun, getPendingApprovals, getRun, isRedrivable, listRuns, rejectGate, replayRun, resumePlaybook, retryRun } from '../../index.js';
import type { AgentDispatcher, DeterministicRunner, EventStore, PlaybookResult, RunEvent, RunRow } from '../../index.js';
import { describePlace, orderRunTree, readRunFamily } from '../childRuns.js';
import { describeError, messageOf, runNotFound, usageError } from '../cliErrors.js';
import { gateMarksOf, markGates, withGateMarks } from '../gateMarks.js';
import { buildNodeDetail } from './nodeDetail.js';
import { buildRunGraph, buildStepViews } from './runView.js';
import { layoutRunGraph } from './graphLayout.js';

/** Code of a request refused before it reaches the API (wrong Host or Origin, missing session key, bad method or media type). */
export const E_UI_FORBIDDEN = 'E_UI_FORBIDDEN';

/** Code of a request for a page or API path the viewer does not have, or a node a run's playbook does not have (HTTP 404). */
export const E_UI_NOT_FOUND = 'E_UI_NOT_FOUND';

/** Header carrying the session key. */
export const SESSION_KEY_HEADER = 'x-cantbook-key';

/** Where the page's files live: `<package>/viewer/`, the same from src/cli/ui and dist/cli/ui. */
export const VIEWER_DIR = fileURLToPath(new URL('../../../viewer/', import.meta.url));

const MAX_BODY_BYTES = 64 * 1024;

/** At most this many events are read per `GET /api/changes` call; `more: true` says there are others. */
export const CHANGES_PAGE = 500;

const ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/viewer.js': { file: 'viewer.js', type: 'text/javascript; charset=utf-8' },
  '/viewer.css': { file: 'viewer.css', type: 'text/css; charset=utf-8' },
  '/chart.js': { file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  '/chart.css': { file: 'chart.css', type: 'text/css; charset=utf-8' },
};

export interface UiServerOptions {
  /** Where runs are read from (may be read-only). */
  store: EventStore;
  /**
   * The store decisions and resumed runs write to, opened on the first
   * decision (default: `store`). `cantbook ui` reads through a read-only
   * connection and opens a writable one only when someone decides a gate.
   */
  writableStore?: () => EventStore;
  /**
   * The dispatcher a run resumes with after approval. Called before the
   * approval is recorded, so a missing agent configuration is reported without
   * stranding the run.
   */
  dispatcherFor: (runId: string) => Promise<AgentDispatcher> | AgentDispatcher;
  deterministicRunner?: DeterministicRunner;
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** The session key (default: 32 random bytes, hex). */
  sessionKey?: string;
  /** Where index.html, viewer.js and viewer.css are (default {@link VIEWER_DIR}). */
  assetsDir?: string;
  /** Label shown in the page header (e.g. the database path). */
  label?: string;
  /** The clock for decisions and resumed runs (default: the system clock). */
  now?: () => Date;
}

/** A running viewer. */
export interface UiServer {
  /** `http://host:port/` */
  url: string;
  /** The URL to open: `url` with the session key in the fragment (never sent to the server, never logged). */
  openUrl: string;
  host: string;
  port: number;
  sessionKey: string;
  /** Stops accepting connections and resolves once open ones are closed. */
  close(): Promise<void>;
}

/** A refusal with an HTTP status and a coded body `{error: {code, message}}`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts the viewer and resolves once it listens.
 *
 * @example
 * const ui = await startUiServer({ store, dispatcherFor: () => dispatcher });
 * console.log(`open ${ui.openUrl}`);
 */
export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  const sessionKey = options.sessionKey ?? randomBytes(32).toString('hex');
  const assetsDir = options.assetsDir ?? VIEWER_DIR;
  const clock = options.now === undefined ? {} : { now: options.now };
  const writable = (): EventStore => (options.writableStore === undefined ? options.store : options.writableStore());
  let allowedHosts = new Set<string>();

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => sendError(response, error));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // 1. Only this server's own origin: DNS rebinding and cross-site requests stop here.
    const hostHeader = (request.headers.host ?? '').toLowerCase();
    if (!allowedHosts.has(hostHeader)) throw new HttpError(403, E_UI_FORBIDDEN, `requests must be addressed to this viewer (Host ${[...allowedHosts][0]}), not '${hostHeader}'`);
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `http://${hostHeader}`) throw new HttpError(403, E_UI_FORBIDDEN, `cross-origin request from '${origin}' refused`);
    if (request.headers['sec-fetch-site'] === 'cross-site') throw new HttpError(403, E_UI_FORBIDDEN, 'cross-site request refused');

    const url = new URL(request.url ?? '/', `http://${hostHeader}`);
    const path = url.pathname;
    if (!path.startsWith('/api/')) {
      if (request.method !== 'GET' && request.method !== 'HEAD') throw new HttpError(405, E_UI_FORBIDDEN, `${request.method ?? '?'} is not allowed on ${path}`);
      return serveAsset(response, path);
    }

    // 2. The session key, on every API call.
    if (!keyMatches(request.headers[SESSION_KEY_HEADER], sessionKey)) {
      throw new HttpError(401, E_UI_FORBIDDEN, 'missing or wrong session key: open the link `cantbook ui` printed in its terminal');
    }

    // 3. Routes.
    const parts = path.split('/').filter((part) => part !== '').map((part) => decodePathPart(part, path));
    if (request.method === 'GET') {
      if (parts.length === 2 && parts[1] === 'changes') return sendJson(response, 200, await changesPage(seqParam(url, 'after')));
      if (parts.length === 2 && parts[1] === 'runs') return sendJson(response, 200, await runsPage());
      if (parts.length === 3 && parts[1] === 'runs') return sendJson(response, 200, await runPage(parts[2] as string));
      if (parts.length === 4 && parts[1] === 'runs' && parts[3] === 'states') return sendJson(response, 200, await statesPage(parts[2] as string, seqParam(url, 'after') ?? 0));
      if (parts.length === 4 && parts[1] === 'runs' && parts[3] === 'live') return sendJson(response, 200, await livePage(parts[2] as string, seqParam(url, 'after') ?? 0));
      if (parts.length === 5 && parts[1] === 'runs' && parts[3] === 'nodes') return sendJson(response, 200, await nodePage(parts[2] as string, parts[4] as string));
      throw new HttpError(404, E_UI_NOT_FOUND, `no API at ${path}`);
    }
    const action = parts.length === 4 && parts[1] === 'runs' ? parts[3] : undefined;
    if (request.method === 'POST' && (action === 'approve' || action === 'reject' || action === 'cancel' || action === 'retry')) {
      const body = await readJsonBody(request);
      const runId = parts[2] as string;
      const answer = action === 'approve' ? approve(runId, body) : action === 'reject' ? reject(runId, body) : action === 'cancel' ? cancel(runId, body) : retry(runId, body);
      return sendJson(response, 200, await answer);
    }
    throw new HttpError(405, E_UI_FORBIDDEN, `${request.method ?? '?'} ${path} is not an API call`);
  }

  async function serveAsset(response: ServerResponse, path: string): Promise<void> {
    if (path === '/favicon.ico') {
      response.writeHead(204, securityHeaders()).end();
      return;
    }
    const asset = ASSETS[path];
    if (!asset) throw new HttpError(404, E_UI_NOT_FOUND, `no page at ${path}`);
    const body = await readFile(`${assetsDir}/${asset.file}`);
    response.writeHead(200, { ...securityHeaders(), 'content-type': asset.type, 'content-length': body.length });
    response.end(body);
  }

  async function runsPage() {
    const [runs, pending] = await Promise.all([listRuns(options.store), getPendingApprovals(options.store, clock)]);
    // A pending escalation gate is marked as one (SPEC §13); the mark is in its run's log.
    return { label: options.label ?? '', runs: newestTreesFirst(runs), approvals: await markGates(options.store, pending) };
  }

  async function runPage(runId: string) {
    const run = await getRun(options.store, runId);
    if (run === null) throw runNotFound(runId);
    const replay = await replayRun(options.store, runId);
    const { approvals, parent, children } = await aroundRun(run, replay.events);
    const maxIterationsDefault = (replay.steps.at(-1) ?? replay.initial).context.maxIterationsDefault;
    const graph = buildRunGraph(replay.playbook, maxIterationsDefault);
    return {
      run,
      approvals,
      parent,
      children,
      graph,
      // Where the page draws the graph's boxes, lanes, edges and labels (ELK, laid out here so the page only draws).
      layout: await layoutRunGraph(graph),
      playbook: { name: replay.playbook.name, description: replay.playbook.description ?? '', sourceHash: replay.sourceHash },
    };
  }

  /** A run's gates (without token hashes, with their marks) and its place in its tree (SPEC §12), for the links to its parent and children; display only. */
  async function aroundRun(run: RunRow, events: readonly RunEvent[]) {
    const marks = gateMarksOf(events);
    const approvals = (await options.store.listApprovals({ runId: run.runId })).map(({ tokenHash: _hidden, ...rest }) => withGateMarks(rest, marks));
    const family = await readRunFamily(options.store, run);
    const parent = family.parent === null ? null : { ...family.parent, place: describePlace(family.parent, family.parentMaps) };
    const children = family.children.map((child) => ({
      ...child,
      place: child.nodeId === null ? null : describePlace({ nodeId: child.nodeId, attempt: child.attempt ?? 1, index: child.index ?? 0 }, family.maps),
    }));
    return { approvals, parent, children };
  }

  async function statesPage(runId: string, after: number) {
    const replay = await replayRun(options.store, runId);
    return { runId, steps: buildStepViews(replay.model, replay.events, replay.steps, after) };
  }

  /** The newest globalSeq this server has seen: where the search for the store's newest starts. */
  let head = 0;
  async function changesPage(after: number | undefined) {
    if (after === undefined) {
      head = await newestGlobalSeq(options.store, head);
      return { globalSeq: head, runIds: [], more: false };
    }
    // The runs whose events were appended after `after`: what a page showing them reads again.
    const events = await options.store.readAll(after, CHANGES_PAGE);
    const last = events.at(-1)?.globalSeq;
    // Only what was read moves the cache: an `after` beyond the store's end (a store rebuilt since) moves nothing.
    if (last !== undefined && last > head) head = last;
    const globalSeq = last ?? after;
    return { globalSeq, runIds: [...new Set(events.map((event) => event.runId))], more: events.length === CHANGES_PAGE };
  }

  /**
   * What changes on a run's page as the run moves: its row, gates, parent and
   * children, what may be done to it now, and the timeline after `after`.
   */
  async function livePage(runId: string, after: number) {
    const run = await getRun(options.store, runId);
    if (run === null) throw runNotFound(runId);
    const replay = await replayRun(options.store, runId);
    const { approvals, parent, children } = await aroundRun(run, replay.events);
    const version = replay.events.at(-1)?.seq ?? 0;
    return { run, approvals, parent, children, actions: actionsFor(run), version, steps: buildStepViews(replay.model, replay.events, replay.steps, after) };
  }

  /** One node's attempts (inputs as dispatched, output, error, duration, log, child runs) and gates. */
  async function nodePage(runId: string, nodeId: string) {
    const replay = await replayRun(options.store, runId);
    const logs = await options.store.listAttemptLogs(runId, { nodeId });
    const detail = buildNodeDetail({ runId, model: replay.model, events: replay.events, steps: replay.steps, nodeId, logs });
    if (detail === null) throw new HttpError(404, E_UI_NOT_FOUND, `run ${runId} (playbook '${replay.playbook.name}') has no node '${nodeId}'`);
    return detail;
  }

  async function cancel(runId: string, body: Record<string, unknown>) {
    const reason = textField(body, 'reason');
    const by = textField(body, 'by');
    if (reason === '') throw usageError('say why the run is cancelled (reason)');
    if ((await getRun(options.store, runId)) === null) throw runNotFound(runId);
    const store = writable();
    // Read before cancelling, as `cantbook cancel` does: the driver releases its lease once it stopped.
    const lease = await store.getLease(runId);
    const now = (options.now ?? (() => new Date()))();
    const driver = lease !== null && Date.parse(lease.expiresAt) > now.getTime() ? lease.owner : null;
    const result = await cancelRun({ store, runId, reason, ...(by === '' ? {} : { by }), ...clock });
    return { result, driver };
  }

  async function retry(runId: string, body: Record<string, unknown>) {
    const by = textField(body, 'by');
    const reason = textField(body, 'reason');
    const row = await getRun(options.store, runId);
    if (row === null) throw runNotFound(runId);
    // As `cantbook retry`: retryRun refuses a run it cannot redrive before it dispatches anything, so only a
    // retryable run needs its agent, resolved before anything is recorded.
    const dispatcher = actionsFor(row).retry ? await options.dispatcherFor(runId) : refuseDispatch;
    const result = await retryRun({
      store: writable(),
      runId,
      dispatcher,
      ...clock,
      ...(options.deterministicRunner === undefined ? {} : { deterministicRunner: options.deterministicRunner }),
      ...(by === '' ? {} : { by }),
      ...(reason === '' ? {} : { reason }),
    });
    return { result };
  }

  async function approve(runId: string, body: Record<string, unknown>) {
    const { token, approver, reason } = decisionFields(body, false);
    await gateOfRun(runId, token);
    // Resolve the agent before recording anything: an approval we could not act on would strand the run.
    const dispatcher = await options.dispatcherFor(runId);
    const store = writable();
    const decision = await approveGate({ store, token, approver, ...clock, ...(reason === undefined ? {} : { reason }) });
    let result: PlaybookResult;
    try {
      result = await resumePlaybook({
        store,
        approvalToken: token,
        dispatcher,
        ...clock,
        ...(options.deterministicRunner === undefined ? {} : { deterministicRunner: options.deterministicRunner }),
      });
    } catch (error) {
      const reported = describeError(error);
      throw new HttpError(statusOf(reported.code), reported.code, `the approval is recorded, but resuming failed: ${reported.message} (continue with: cantbook resume ${runId})`);
    }
    return { decision, result };
  }

  async function reject(runId: string, body: Record<string, unknown>) {
    const { token, approver, reason } = decisionFields(body, true);
    await gateOfRun(runId, token);
    const decision = await rejectGate({ store: writable(), token, approver, reason: reason ?? '', ...clock });
    return { decision, result: decision.result };
  }

  /** The token must name a gate of this run (the credential is checked by approveGate/rejectGate). */
  async function gateOfRun(runId: string, token: string): Promise<void> {
    if ((await getRun(options.store, runId)) === null) throw runNotFound(runId);
    const approvalId = token.split('.')[1];
    const gate = approvalId === undefined || approvalId === '' ? null : await options.store.getApproval(approvalId);
    if (gate !== null && gate.runId !== runId) {
      throw new HttpError(403, 'E_APPROVAL_TOKEN_INVALID', `that token decides gate '${gate.nodeId}' of run ${gate.runId}, not a gate of run ${runId}`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  allowedHosts = allowedHostsFor(host, port);
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shown}:${port}/`;
  return {
    url,
    openUrl: `${url}#key=${sessionKey}`,
    host,
    port,
    sessionKey,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The runs for the start page: newest tree first, each root followed by its
 * child runs (oldest first, as they started), each row with its `depth` in
 * the tree. Pure.
 */
export function newestTreesFirst(runs: readonly RunRow[]): (RunRow & { depth: number })[] {
  const trees: (RunRow & { depth: number })[][] = [];
  for (const { row, depth } of orderRunTree(runs)) {
    if (depth === 0) trees.push([]);
    trees.at(-1)?.push({ ...row, depth });
  }
  return trees.reverse().flat();
}

/**
 * What may be done to a run now, by the rules cancelRun and retryRun apply
 * (the buttons the page shows; the library still decides): cancel one that has
 * not ended, retry a failed root run whose failure names a node and was not a
 * human's rejection. Pure.
 */
export function actionsFor(run: RunRow): { cancel: boolean; retry: boolean } {
  return {
    cancel: run.status === 'running' || run.status === 'paused',
    retry: run.status === 'failed' && run.parentRunId === null && isRedrivable(run.error),
  };
}

/**
 * The store's newest globalSeq (at least `from`, which must not be past it):
 * whether any event comes after a position is one indexed read (`readAll(n, 1)`),
 * so doubling, then halving, finds it in O(log n) reads, whatever the store holds.
 */
export async function newestGlobalSeq(store: EventStore, from: number): Promise<number> {
  const after = async (position: number): Promise<boolean> => (await store.readAll(position, 1)).length > 0;
  if (!(await after(from))) return from;
  // Events come after `low` and none after `high`: the newest is in (low, high].
  let low = from;
  let high = from + 1;
  for (let step = 1; await after(high); step *= 2) {
    low = high;
    high = from + step * 2;
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (await after(middle)) low = middle;
    else high = middle;
  }
  return high;
}

/** A retry of a run retryRun refuses dispatches nothing. */
const refuseDispatch: AgentDispatcher = {
  dispatch(): never {
    throw new TypeError('retryRun dispatched a node of a run it should have refused');
  },
};

/** `?name=<n>`: a non-negative integer, or undefined when absent; anything else is E_USAGE. */
function seqParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null) return undefined;
  if (!/^\d{1,15}$/.test(text)) throw usageError(`?${name}= expects a non-negative integer, got '${text}'`);
  return Number(text);
}

function textField(body: Record<string, unknown>, key: string): string {
  return typeof body[key] === 'string' ? (body[key] as string).trim() : '';
}

/** Host header values that address this server: loopback names and the bound host, with the port. */
function allowedHostsFor(host: string, port: number): Set<string> {
  const names = ['127.0.0.1', 'localhost', '[::1]'];
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  if (!wildcard) names.push(host.includes(':') ? `[${host}]` : host);
  return new Set(names.map((name) => `${name.toLowerCase()}:${port}`));
}

/** One segment of an API path, %-decoded; a malformed escape is the client's mistake (400), not ours. */
function decodePathPart(part: string, path: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw usageError(`the path '${path}' has a malformed %-escape in '${part}'`);
  }
}

function keyMatches(given: string | string[] | undefined, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function decisionFields(body: Record<string, unknown>, reasonRequired: boolean): { token: string; approver: string; reason?: string } {
  const token = textField(body, 'token');
  const approver = textField(body, 'approver');
  const reason = textField(body, 'reason');
  if (token === '') throw usageError('paste the resume token that was printed when the run paused');
  if (approver === '') throw usageError('say who decides (approver name)');
  if (reasonRequired && reason === '') throw usageError('a rejection needs a reason');
  return reason === '' ? { token, approver } : { token, approver, reason };
}

async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, E_UI_FORBIDDEN, `POST bodies must be application/json, not '${type}'`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, E_UI_FORBIDDEN, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    throw usageError(`the request body is not JSON: ${messageOf(error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw usageError('the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** HTTP status for a coded error. */
function statusOf(code: string): number {
  switch (code) {
    case 'E_USAGE':
      return 400;
    case 'E_APPROVAL_TOKEN_INVALID':
      return 403;
    case 'E_RUN_NOT_FOUND':
    case 'E_APPROVAL_NOT_FOUND':
      return 404;
    case 'E_APPROVAL_ALREADY_DECIDED':
    case 'E_APPROVAL_EXPIRED':
    case 'E_PLAYBOOK_RESUME_BLOCKED':
    case 'E_CONCURRENT_UPDATE':
    case 'E_RUN_FINISHED':
    case 'E_RUN_NOT_RETRYABLE':
    case 'E_RUN_ACTIVE':
      return 409;
    case 'E_INTERNAL':
      return 500;
    default:
      return 422;
  }
}

function securityHeaders(): Record<string, string> {
  return {
    'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  response.writeHead(status, { ...securityHeaders(), 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  response.end(body);
}

/** Every failure as `{error: {code, message}}`, never a stack trace. */
function sendError(response: ServerResponse, error: unknown): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  if (error instanceof HttpError) return sendJson(response, error.status, { error: { code: error.code, message: error.message } });
  const reported = describeError(error);
  sendJson(response, statusOf(reported.code), { error: { code: reported.code, message: reported.message } });
}
