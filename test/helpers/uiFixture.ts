import { request } from 'node:http';
import { executePlaybook } from '../../src/index.js';
import type { EventStore, PlaybookResult } from '../../src/index.js';
import { startUiServer } from '../../src/cli/ui/uiServer.js';
import type { UiServer } from '../../src/cli/ui/uiServer.js';
import { manualClock, playbookFrom, scriptedDispatcher, SECRET, success } from './runtimeHarness.js';

/** A release playbook: two agentic steps, a gate, then publish. */
export const releasePlaybook = playbookFrom(`
version: "1.0"
name: release
description: Bump, changelog, a human decides, publish.
inputs:
  - { name: targetVersion, required: true }
nodes:
  - { id: version_bump, type: agentic, skill: bump }
  - { id: changelog, type: agentic, skill: log, depends: [version_bump] }
  - { id: approval, type: approval, policy: conservative, timeout: 72h, prompt: "Publish {{inputs.targetVersion}} ({{lines}} changelog lines)?", depends: [changelog] }
  - { id: publish, type: agentic, skill: pub, on_failure: { max_iterations: 1 }, depends: [approval] }
`);

/** When the fixture's runs pause (their gates expire 72 hours later). */
export const PAUSED_AT = '2026-01-05T09:00:00.000Z';
/** The viewer's clock: an hour after the runs paused, well before their gates expire. */
export const VIEWER_NOW = () => new Date('2026-01-05T10:00:00.000Z');

/** Starts a release run in `store` and leaves it paused at its gate; `minute` orders runs started by one test. */
export async function pausedRelease(store: EventStore, targetVersion = '2.0.0', minute = 0): Promise<PlaybookResult & { approvalToken: string }> {
  const clock = manualClock(PAUSED_AT);
  clock.advance(minute * 60_000);
  const dispatcher = scriptedDispatcher({ changelog: [success({ lines: 12 })] });
  const result = await executePlaybook({ store, ...releasePlaybook, initialContext: { targetVersion }, dispatcher, approvalSecret: SECRET, now: clock.now });
  if (result.terminalStatus !== 'pending_approval' || result.approvalToken === undefined) throw new Error(`expected a paused run, got ${result.terminalStatus}`);
  return result as PlaybookResult & { approvalToken: string };
}

/** The viewer over `store`, resuming with a scripted dispatcher that records its calls. */
export async function startViewer(store: EventStore): Promise<{ server: UiServer; dispatcher: ReturnType<typeof scriptedDispatcher> }> {
  const dispatcher = scriptedDispatcher({ publish: [success({ published: true })] });
  const server = await startUiServer({ store, port: 0, dispatcherFor: () => dispatcher, label: 'test database', now: VIEWER_NOW });
  return { server, dispatcher };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => unknown;
}

/** One HTTP request with full control of the headers (Host and Origin included), as a browser or an attacker could send it. */
export function rawRequest(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: { host: `127.0.0.1:${port}`, ...options.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
