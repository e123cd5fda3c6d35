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
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { approveGate, getPendingApprovals, getRun, listRuns, rejectGate, replayRun, resumePlaybook } from '../../index.js';
import type { AgentDispatcher, DeterministicRunner, EventStore, PlaybookResult, RunRow } from '../../index.js';
import { describePlace, orderRunTree, readRunFamily } from '../childRuns.js';
import { describeError, messageOf, runNotFound, usageError } from '../cliErrors.js';
import { gateMarksOf, markGates, withGateMarks } from '../gateMarks.js';
import { buildRunGraph, buildStepViews } from './runView.js';

/** Code of a request refused before it reaches the API (wrong Host or Origin, missing session key, bad method or media type). */
export const E_UI_FORBIDDEN = 'E_UI_FORBIDDEN';

/** Code of a request for a page or API path the viewer does not have (HTTP 404). */
export const E_UI_NOT_FOUND = 'E_UI_NOT_FOUND';

/** Header carrying the session key. */
export const SESSION_KEY_HEADER = 'x-cantbook-key';

/** Where the page's files live: `<package>/viewer/`, the same from src/cli/ui and dist/cli/ui. */
export const VIEWER_DIR = fileURLToPath(new URL('../../../viewer/', import.meta.url));

const MAX_BODY_BYTES = 64 * 1024;

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
      if (parts.length === 2 && parts[1] === 'runs') return sendJson(response, 200, await runsPage());
      if (parts.length === 3 && parts[1] === 'runs') return sendJson(response, 200, await runPage(parts[2] as string));
      if (parts.length === 4 && parts[1] === 'runs' && parts[3] === 'states') return sendJson(response, 200, await statesPage(parts[2] as string));
      throw new HttpError(404, E_UI_NOT_FOUND, `no API at ${path}`);
    }
    if (request.method === 'POST' && parts.length === 4 && parts[1] === 'runs' && (parts[3] === 'approve' || parts[3] === 'reject')) {
      const body = await readJsonBody(request);
      const runId = parts[2] as string;
      return sendJson(response, 200, parts[3] === 'approve' ? await approve(runId, body) : await reject(runId, body));
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
    const marks = gateMarksOf(replay.events);
    const approvals = (await options.store.listApprovals({ runId })).map(({ tokenHash: _hidden, ...rest }) => withGateMarks(rest, marks));
    const maxIterationsDefault = (replay.steps.at(-1) ?? replay.initial).context.maxIterationsDefault;
    // The run's place in its tree (SPEC §12), for the links to its parent and children; display only.
    const family = await readRunFamily(options.store, run);
    const parent = family.parent === null ? null : { ...family.parent, place: describePlace(family.parent, family.parentMaps) };
    const children = family.children.map((child) => ({
      ...child,
      place: child.nodeId === null ? null : describePlace({ nodeId: child.nodeId, attempt: child.attempt ?? 1, index: child.index ?? 0 }, family.maps),
    }));
    return {
      run,
      approvals,
      parent,
      children,
      graph: buildRunGraph(replay.playbook, maxIterationsDefault),
      playbook: { name: replay.playbook.name, description: replay.playbook.description ?? '', sourceHash: replay.sourceHash },
    };
  }

  async function statesPage(runId: string) {
    const replay = await replayRun(options.store, runId);
    return { runId, steps: buildStepViews(replay.model, replay.events, replay.steps) };
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
  const text = (key: string): string => (typeof body[key] === 'string' ? (body[key] as string).trim() : '');
  const token = text('token');
  const approver = text('approver');
  const reason = text('reason');
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
