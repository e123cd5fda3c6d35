/** createHttpDispatcher against a real HTTP server on 127.0.0.1: the request it POSTs and every way an answer can go wrong. */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toDispatchPayload } from '../../../src/adapters/agentProtocol.js';
import { createDispatcherFromSpec } from '../../../src/adapters/dispatcherSpec.js';
import { createHttpDispatcher } from '../../../src/adapters/httpDispatcher.js';
import type { NodeOutcome } from '../../../src/adapters/types.js';
import { E_ADAPTER_INVALID } from '../../../src/errors.js';
import { dispatchRequest } from './helpers.js';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the server does with the next request (set per test). */
let answer: (request: IncomingMessage, response: ServerResponse) => void;
const received: Received[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ method: request.method, url: request.url, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  received.length = 0;
});

function reply(status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): void {
  answer = (_request, response) => {
    response.writeHead(status, headers);
    response.end(body);
  };
}

function failure(outcome: NodeOutcome): string {
  expect(outcome.status).toBe('failure');
  return outcome.status === 'failure' ? (outcome.error ?? '') : '';
}

describe('createHttpDispatcher', () => {
  it('POSTs the request as JSON (without signal) with an idempotency-key header and returns the answer', async () => {
    reply(200, JSON.stringify({ status: 'success', output: { plan: ['a', 'b'] } }));
    const dispatcher = createHttpDispatcher(`${base}/agents/plan?v=1`, { headers: { authorization: 'Bearer abc' } });
    const request = dispatchRequest({ signal: new AbortController().signal, model: 'gpt-x', iteration: 2, idempotencyKey: 'run-1:n1:2' });
    expect(await dispatcher.dispatch(request)).toEqual({ status: 'success', output: { plan: ['a', 'b'] } });
    expect(received).toHaveLength(1);
    const [sent] = received;
    expect(sent).toMatchObject({
      method: 'POST',
      url: '/agents/plan?v=1',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'idempotency-key': 'run-1:n1:2', authorization: 'Bearer abc' },
    });
    expect(JSON.parse(sent?.body ?? '')).toEqual(toDispatchPayload(request));
    expect(JSON.parse(sent?.body ?? '')).not.toHaveProperty('signal');
  });

  it('a failure answer is a failure outcome with its error', async () => {
    reply(200, JSON.stringify({ status: 'failure', error: 'the model refused' }));
    expect(await createHttpDispatcher(base).dispatch(dispatchRequest())).toEqual({ status: 'failure', error: 'the model refused' });
  });

  it('a non-2xx status is a failure naming the status and the clipped body', async () => {
    reply(503, 'x'.repeat(5000), { 'content-type': 'text/plain' });
    const error = failure(await createHttpDispatcher(`${base}/dispatch`).dispatch(dispatchRequest()));
    expect(error).toMatch(new RegExp(`^agent endpoint ${base}/dispatch answered HTTP 503: x{1000}… \\(4000 more characters\\)$`));
  });

  it('a redirect is not followed: it is a failure', async () => {
    reply(302, '', { location: `${base}/elsewhere` });
    expect(failure(await createHttpDispatcher(base).dispatch(dispatchRequest()))).toContain('answered HTTP 302');
    expect(received.map((request) => request.url)).toEqual(['/']);
  });

  it('an answer that breaks the protocol is a failure that says what was found', async () => {
    reply(200, 'not json');
    expect(failure(await createHttpDispatcher(base).dispatch(dispatchRequest()))).toContain('gave an invalid answer: expected a JSON answer, found "not json"');
    reply(200, JSON.stringify({ status: 'success', ouput: {} }));
    expect(failure(await createHttpDispatcher(base).dispatch(dispatchRequest()))).toContain('unexpected key "ouput"');
  });

  it('a body over maxResponseBytes is a failure, not read to the end', async () => {
    reply(200, JSON.stringify({ status: 'success', output: { big: 'y'.repeat(10_000) } }));
    const error = failure(await createHttpDispatcher(base, { maxResponseBytes: 1000 }).dispatch(dispatchRequest()));
    expect(error).toBe(`agent endpoint ${base}/ answered with a body larger than 1000 bytes (HTTP 200)`);
  });

  it('an endpoint that never answers times out as a failure', async () => {
    answer = () => {
      // Holds the request open; the dispatcher's timeout must end it.
    };
    const error = failure(await createHttpDispatcher(base, { timeoutMs: 200 }).dispatch(dispatchRequest()));
    expect(error).toBe(`agent endpoint ${base}/ timed out after 200 ms`);
  });

  it('an aborted request.signal cancels the request', async () => {
    answer = () => {
      // Never answers: only the abort ends it.
    };
    const controller = new AbortController();
    const pending = createHttpDispatcher(base, { timeoutMs: 0 }).dispatch(dispatchRequest({ signal: controller.signal }));
    // Abort once the server holds the request, so the abort is what ends it.
    await new Promise<void>((resolve) => {
      const check = (): void => (received.length > 0 ? resolve() : void setImmediate(check));
      check();
    });
    controller.abort(new Error('host shutting down'));
    expect(failure(await pending)).toBe(`the request to agent endpoint ${base}/ was cancelled: host shutting down`);
  });

  it('an endpoint nobody listens on is a failure, not an exception', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = failure(await createHttpDispatcher(`http://127.0.0.1:${port}/x`).dispatch(dispatchRequest()));
    expect(error).toMatch(new RegExp(`^agent endpoint http://127\\.0\\.0\\.1:${port}/x could not be reached: .*ECONNREFUSED`));
  });

  it('keeps the query string and credentials of the URL out of error messages; credentials go in a Basic authorization header', async () => {
    reply(500, '');
    const error = failure(await createHttpDispatcher(`${base}/hook?token=s3cr3t-query`).dispatch(dispatchRequest()));
    expect(error).toBe(`agent endpoint ${base}/hook answered HTTP 500`);

    const withCredentials = base.replace('http://', 'http://agent%20user:s3cr3t%3Apass@');
    const refused = failure(await createHttpDispatcher(`${withCredentials}/hook`).dispatch(dispatchRequest()));
    expect(refused).toBe(`agent endpoint ${base}/hook answered HTTP 500`);
    expect(received.map((request) => [request.url, request.headers.authorization])).toEqual([
      ['/hook?token=s3cr3t-query', undefined],
      ['/hook', `Basic ${Buffer.from('agent user:s3cr3t:pass').toString('base64')}`],
    ]);
    // An explicit authorization header wins over the URL's credentials.
    await createHttpDispatcher(`${withCredentials}/hook`, { headers: { Authorization: 'Bearer t' } }).dispatch(dispatchRequest());
    expect(received[2]?.headers.authorization).toBe('Bearer t');

    const unreachable = failure(await createHttpDispatcher('http://user:s3cr3t-pass@127.0.0.1:1/x?k=s3cr3t-query').dispatch(dispatchRequest()));
    expect(unreachable).toMatch(/^agent endpoint http:\/\/127\.0\.0\.1:1\/x could not be reached: /);
    expect(unreachable).not.toMatch(/s3cr3t/);
  });

  it('refuses a URL that is not absolute http(s) with E_ADAPTER_INVALID', () => {
    expect(() => createHttpDispatcher('not a url')).toThrow(expect.objectContaining({ code: E_ADAPTER_INVALID }));
    expect(() => createHttpDispatcher('ftp://127.0.0.1/x')).toThrow(expect.objectContaining({ code: E_ADAPTER_INVALID, message: "agent URL must use http: or https:, found 'ftp:'" }));
  });

  it('is what the http: agent spec builds, with or without the scheme after http:', async () => {
    reply(200, JSON.stringify({ status: 'success', output: { via: 'spec' } }));
    const hostPath = base.slice('http://'.length);
    for (const spec of [`${base}/a`, `http:${base}/b`, `http:${hostPath}/c`]) {
      expect(await createDispatcherFromSpec(spec).dispatch(dispatchRequest())).toEqual({ status: 'success', output: { via: 'spec' } });
    }
    expect(received.map((request) => request.url)).toEqual(['/a', '/b', '/c']);
  });
});
