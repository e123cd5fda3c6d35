import { CantbookError, E_ADAPTER_INVALID } from '../errors.js';
import { clipText, parseAgentAnswerText, toDispatchPayload } from './agentProtocol.js';
import { DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_TIMEOUT_MS, reasonOf } from './childProcess.js';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from './types.js';

/** Options of {@link createHttpDispatcher}. */
export interface HttpDispatcherOptions {
  /** Milliseconds one dispatch may take, response body included (default 10 minutes; 0 = no timeout). */
  timeoutMs?: number;
  /** Extra request headers, e.g. `authorization`. Never included in error messages. */
  headers?: Record<string, string>;
  /** Largest response body accepted, in bytes (default 1 MiB). */
  maxResponseBytes?: number;
}

/**
 * An {@link AgentDispatcher} that POSTs each request to an HTTP(S) endpoint
 * with the global `fetch`.
 *
 * Request: `POST <url>`, `content-type: application/json`, body = the
 * dispatch request as JSON (every field but `signal`), and an
 * `idempotency-key` header equal to `request.idempotencyKey`. Redirects are
 * not followed (a 3xx is a failure). The response must be 2xx with a JSON
 * body `{"status": "success", "output"?: {...}}` or
 * `{"status": "failure", "error"?: "..."}`.
 *
 * Credentials in the URL (`http://user:pass@host/`) are sent as a Basic
 * `authorization` header (unless `headers` has one) and never as part of the URL.
 *
 * `dispatch` never throws: a non-2xx status (with a clipped body), a network
 * error, a timeout, an abort of `request.signal`, an oversized body or an
 * answer that is not valid protocol JSON all become
 * `{status: 'failure', error}`. Credentials and the query string of the URL
 * are left out of error messages.
 *
 * Creating it throws CantbookError `E_ADAPTER_INVALID` when `url` is not an
 * absolute http: or https: URL.
 *
 * @example
 * const dispatcher = createHttpDispatcher('http://127.0.0.1:8080/dispatch', {
 *   headers: { authorization: `Bearer ${token}` },
 * });
 */
export function createHttpDispatcher(url: string | URL, options: HttpDispatcherOptions = {}): AgentDispatcher {
  const target = parseHttpUrl(String(url));
  const given = target.href;
  const basic = basicAuthorization(target);
  // fetch refuses URLs with credentials, quoting the whole URL (password included) in its error.
  target.username = '';
  target.password = '';
  const shown = displayUrl(target);
  const headers: Record<string, string> = {
    ...(basic !== undefined && !Object.keys(options.headers ?? {}).some((name) => name.toLowerCase() === 'authorization') ? { authorization: basic } : {}),
    ...options.headers,
  };
  // Whatever a network error quotes, the URL it quotes is the one safe to print.
  const scrub = (text: string): string => text.split(given).join(shown).split(target.href).join(shown);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return {
    async dispatch(request: DispatchRequest): Promise<NodeOutcome> {
      let body: string;
      try {
        body = JSON.stringify(toDispatchPayload(request));
      } catch (error) {
        return { status: 'failure', error: `the request for node '${request.nodeId}' cannot be written as JSON: ${(error as Error).message}` };
      }
      const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
      const signals = [timeout, request.signal].filter((signal): signal is AbortSignal => signal !== undefined);
      const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
      const stopped = (): string | null => {
        if (timeout?.aborted) return `agent endpoint ${shown} timed out after ${timeoutMs} ms`;
        if (request.signal?.aborted) return `the request to agent endpoint ${shown} was cancelled: ${reasonOf(request.signal)}`;
        return null;
      };
      let status: number;
      let text: string;
      try {
        const response = await fetch(target, {
          method: 'POST',
          headers: {
            ...headers,
            'content-type': 'application/json',
            accept: 'application/json',
            'idempotency-key': request.idempotencyKey,
          },
          body,
          redirect: 'manual',
          ...(signal === undefined ? {} : { signal }),
        });
        status = response.status;
        const read = await readCapped(response, maxBytes);
        if (read === null) {
          return { status: 'failure', error: `agent endpoint ${shown} answered with a body larger than ${maxBytes} bytes (HTTP ${status})` };
        }
        text = read;
      } catch (error) {
        return { status: 'failure', error: stopped() ?? `agent endpoint ${shown} could not be reached: ${scrub(networkMessage(error))}` };
      }
      if (status < 200 || status > 299) {
        const detail = text.trim() === '' ? '' : `: ${clipText(text.trim(), 1000)}`;
        return { status: 'failure', error: `agent endpoint ${shown} answered HTTP ${status}${detail}` };
      }
      const answer = parseAgentAnswerText(text);
      if (!answer.ok) return { status: 'failure', error: `agent endpoint ${shown} gave an invalid answer: ${answer.problem}` };
      return answer.outcome;
    },
  };
}

/** Parses an agent URL; throws E_ADAPTER_INVALID unless it is absolute http(s). */
function parseHttpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CantbookError(E_ADAPTER_INVALID, `agent URL ${JSON.stringify(text)} is not a valid absolute URL`, {});
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CantbookError(E_ADAPTER_INVALID, `agent URL must use http: or https:, found '${url.protocol}'`, { protocol: url.protocol });
  }
  return url;
}

/** `Basic <base64(user:password)>` from the URL's credentials, or undefined when it has none. */
function basicAuthorization(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

/** The URL without credentials, query or fragment: safe to print. */
function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** Reads the body as UTF-8, or null when it exceeds `maxBytes` (the rest is not downloaded). */
async function readCapped(response: Response, maxBytes: number): Promise<string | null> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined || cause.message.includes(code) ? cause.message : `${code}: ${cause.message}`;
  }
  return error.message;
}
