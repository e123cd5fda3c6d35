/**
 * `cantbook inspect <runId> --ws <url>` replays a stored run into a WebSocket
 * inspector from the log alone: a real run made by the real CLI, a real `ws`
 * receiver, and Stately's own inspector bridge (@statelyai/inspect/server).
 * The states received are compared with an independent fold of the log.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInspectorServer } from '@statelyai/inspect/server';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePlaybook, foldRun, initialRunSnapshot, openSqliteStore, parsePlaybook, readRunEvents } from '../../src/index.js';
import type { RunEvent } from '../../src/index.js';
import { DEMO_AGENT, repoRoot, runCantbook, runCantbookJson } from '../helpers/cantbookProcess.js';

let dir: string;
let db: string;
let runId: string;
let events: RunEvent[];
/** The fold after each event, computed here from the starter file: what every replay must reproduce. */
let expectedStates: { seq: number; value: unknown; status: string }[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cantbook-inspect-'));
  db = join(dir, 'cantbook.db');
  // A run with a retry (changelog fails once), a gate, an approval and a resume.
  const paused = await runCantbookJson<{ runId: string; terminalStatus: string; approvalToken: string }>(
    ['--db', db, 'run', 'starter/release.cantbook', '--input', 'targetVersion=3.1.0', '--agent', DEMO_AGENT],
    { DEMO_AGENT_FAIL: 'changelog:1' },
  );
  expect(paused.terminalStatus).toBe('pending_approval');
  runId = paused.runId;
  const done = await runCantbookJson<{ terminalStatus: string }>(['--db', db, 'approve', paused.approvalToken, '--by', 'ana', '--reason', 'ship it', '--agent', DEMO_AGENT]);
  expect(done.terminalStatus).toBe('completed');

  const store = openSqliteStore(db);
  try {
    events = await readRunEvents(store, runId);
  } finally {
    await store.close();
  }
  const { definition } = parsePlaybook(readFileSync(join(repoRoot, 'starter', 'release.cantbook'), 'utf8'));
  const machine = compilePlaybook(definition);
  expectedStates = events.map((event, i) => {
    const snapshot = foldRun(machine, initialRunSnapshot(machine), events.slice(0, i + 1));
    return { seq: event.seq, value: snapshot.value, status: snapshot.status };
  });
  expect(events.map((event) => event.type)).toEqual([
    'RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeStarted', 'NodeFailed', 'NodeStarted', 'NodeSucceeded', 'RunPaused',
    'ApprovalGranted', 'RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted',
  ]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ReceivedRecord {
  type: string;
  sessionId: string;
  _version: string;
  event?: { type: string; seq?: number };
  snapshot?: { value: unknown; status: string; context: { status: string } };
}

/** The states a receiver saw: one per `@xstate.snapshot` after a stored event (XState's init snapshot excluded). */
function statesOf(records: readonly ReceivedRecord[]) {
  return records
    .filter((record) => record.type === '@xstate.snapshot' && record.event?.type !== 'xstate.init')
    .map((record) => ({ seq: record.event?.seq, value: record.snapshot?.value, status: record.snapshot?.status }));
}

/** A `ws` server that keeps every text message of each connection, and resolves a connection's list when it closes. */
async function startReceiver() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const connections: Promise<{ messages: string[]; closeCode: number }>[] = [];
  server.on('connection', (socket) => {
    const messages: string[] = [];
    socket.on('message', (data, isBinary) => messages.push(isBinary ? '<binary>' : String(data)));
    connections.push(new Promise((resolve) => socket.once('close', (closeCode) => resolve({ messages, closeCode }))));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('cantbook inspect --ws', () => {
  it('streams the run to a WebSocket receiver: the same sequence of states as the fold, in log order', async () => {
    const receiver = await startReceiver();
    try {
      const result = await runCantbook(['--db', db, 'inspect', runId, '--ws', receiver.url, '--json']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const sent = JSON.parse(result.stdout) as { runId: string; sessionId: string; sent: number };
      expect(sent).toMatchObject({ runId, sessionId: runId, sent: 3 + 2 * events.length });

      expect(receiver.connections).toHaveLength(1);
      const { messages, closeCode } = await (receiver.connections[0] as Promise<{ messages: string[]; closeCode: number }>);
      expect(closeCode).toBe(1000);
      const records = messages.map((text) => JSON.parse(text) as ReceivedRecord);
      expect(records).toHaveLength(sent.sent);

      // The protocol: actor, init event and snapshot, then one event + snapshot per stored event.
      expect(records.slice(0, 3).map((r) => r.type)).toEqual(['@xstate.actor', '@xstate.event', '@xstate.snapshot']);
      expect(records.slice(3).map((r) => r.type)).toEqual(events.flatMap(() => ['@xstate.event', '@xstate.snapshot']));
      for (const record of records) expect(record).toMatchObject({ sessionId: runId, _version: expect.any(String) });
      // The events are the stored ones, as stored.
      expect(records.filter((r) => r.type === '@xstate.event' && r.event?.type !== 'xstate.init').map((r) => r.event)).toEqual(events);
      // And the states are the fold's.
      expect(statesOf(records)).toEqual(expectedStates);
      expect(statesOf(records).at(-1)).toMatchObject({ value: 'completed', status: 'done' });
    } finally {
      await receiver.close();
    }
  });

  it("reaches a receiver through Stately's own inspector bridge (@statelyai/inspect/server), records intact", async () => {
    const port = await freePort();
    const bridge = createInspectorServer({ port, autoOpen: false });
    // The bridge forwards every message to its other clients: this one stands in for the inspector page.
    const page = new WebSocket(`ws://127.0.0.1:${port}`);
    const received: ReceivedRecord[] = [];
    const total = 3 + 2 * events.length;
    const all = new Promise<void>((resolve, reject) => {
      page.on('message', (data) => {
        received.push(JSON.parse(String(data)) as ReceivedRecord);
        if (received.length === total) resolve();
      });
      page.once('error', reject);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        page.once('open', () => resolve());
        page.once('error', reject);
      });
      const result = await runCantbook(['--db', db, 'inspect', runId, '--ws', `ws://127.0.0.1:${port}`]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`✓ sent ${total} inspection records of run ${runId} to ws://127.0.0.1:${port}/ (session ${runId})\n`);
      await all;
      expect(statesOf(received)).toEqual(expectedStates);
      expect(received[0]).toMatchObject({ type: '@xstate.actor', name: 'release' });
    } finally {
      page.close();
      bridge.stop();
    }
  });

  it('fails with error[E_INSPECTOR_UNREACHABLE] (exit 69) when nothing listens, and E_USAGE (64) for a non-WebSocket URL', async () => {
    const port = await freePort();
    const down = await runCantbook(['--db', db, 'inspect', runId, '--ws', `ws://127.0.0.1:${port}`]);
    expect(down.code).toBe(69);
    expect(down.stderr).toMatch(new RegExp(`^error\\[E_INSPECTOR_UNREACHABLE\\]: cannot stream to the inspector at ws://127\\.0\\.0\\.1:${port}/: .*ECONNREFUSED.* \\(0 of ${3 + 2 * events.length} records sent\\)\\n$`));
    const http = await runCantbook(['--db', db, 'inspect', runId, '--ws', 'http://127.0.0.1:8080']);
    expect(http.code).toBe(64);
    expect(http.stderr).toContain("error[E_USAGE]: --ws expects a ws:// or wss:// URL, got 'http://127.0.0.1:8080' (http: scheme)");
    const unknown = await runCantbook(['--db', db, 'inspect', 'no-such-run', '--json']);
    expect(unknown.code).toBe(67);
    expect(JSON.parse(unknown.stdout)).toEqual({ error: { code: 'E_RUN_NOT_FOUND', message: "no run 'no-such-run' in this store" } });
  });

  it('without --ws prints the same stream as JSON lines, one record per line', async () => {
    const result = await runCantbook(['--db', db, 'inspect', runId]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3 + 2 * events.length);
    expect(statesOf(lines.map((line) => JSON.parse(line) as ReceivedRecord))).toEqual(expectedStates);
  });
});

/** A port nothing listens on right now (the OS picks it; closed again before use). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
