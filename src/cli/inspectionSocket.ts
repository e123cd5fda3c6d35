/**
 * Sends inspection records to a WebSocket inspector (`cantbook inspect --ws`):
 * a Stately inspector bridge (`@statelyai/inspect/server`), a
 * `createWebSocketReceiver`, or any server that reads one JSON record per
 * text message.
 */
import { CliError, messageOf, usageError } from './cliErrors.js';

/** Code and exit code (sysexits EX_UNAVAILABLE) when the inspector cannot be reached or drops the connection. */
export const E_INSPECTOR_UNREACHABLE = 'E_INSPECTOR_UNREACHABLE';
export const INSPECTOR_EXIT_CODE = 69;

export interface SendRecordsOptions {
  /** Gives up when connecting, sending and closing take longer (default 10 s). */
  timeoutMs?: number;
}

/**
 * Checks a `--ws` value: a `ws:` or `wss:` URL. Throws E_USAGE otherwise.
 * Returns the normalised URL text.
 */
export function parseInspectorUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`--ws expects a WebSocket URL like ws://127.0.0.1:8080, got '${text}'`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw usageError(`--ws expects a ws:// or wss:// URL, got '${text}' (${url.protocol} scheme)`);
  return url.toString();
}

/**
 * Connects to `url`, sends every record as one JSON text message, in order,
 * then closes the connection cleanly. Resolves with the number of records sent
 * once the server has acknowledged the close, i.e. once it has read them all.
 *
 * Throws E_INSPECTOR_UNREACHABLE (exit 69) when the connection cannot be made,
 * breaks before every record was sent, or the whole exchange exceeds the timeout.
 */
export async function sendInspectionRecords(url: string, records: readonly unknown[], options: SendRecordsOptions = {}): Promise<number> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  // Loaded here, not at the top: every other command would pay for it at start-up.
  const { WebSocket } = await import('ws');
  return new Promise<number>((resolve, reject) => {
    let sent = 0;
    let settled = false;
    const socket = new WebSocket(url, { handshakeTimeout: timeoutMs });
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.terminate();
      reject(new CliError(E_INSPECTOR_UNREACHABLE, INSPECTOR_EXIT_CODE, `cannot stream to the inspector at ${url}: ${why} (${sent} of ${records.length} records sent)`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error) => fail(messageOf(error)));
    socket.on('open', () => {
      if (records.length === 0) {
        socket.close(1000, 'done');
        return;
      }
      for (const record of records) {
        socket.send(JSON.stringify(record), (error) => {
          if (error) return fail(messageOf(error));
          sent += 1;
          if (sent === records.length) socket.close(1000, 'replay complete');
        });
      }
    });
    socket.on('close', (code) => {
      if (settled) return;
      if (sent < records.length || (code !== 1000 && code !== 1005)) return fail(`the connection closed with code ${code}`);
      settled = true;
      clearTimeout(timer);
      resolve(sent);
    });
  });
}
