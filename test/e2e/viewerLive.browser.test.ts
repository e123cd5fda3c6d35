/**
 * The viewer stays live and shows each node in detail, in headless Chromium
 * against a real `cantbook ui` process: runs driven by this test process
 * (through the library, on the same SQLite file) show up on the open page
 * without a reload; a node's panel shows an attempt's inputs, output and log
 * (the exec agent's stderr); cancel and retry buttons act with the CLI's
 * checks; the run list filters by status and playbook, and the filters live
 * in the address.
 *
 * Chromium: CANTBOOK_CHROMIUM (default /usr/bin/chromium). A missing browser
 * fails the test; only CANTBOOK_SKIP_BROWSER=1 skips it, explicitly.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveGate, createDispatcherFromSpec, executePlaybook, getRun, openSqliteStore, parsePlaybook, readRunEvents, resumePlaybook } from '../../src/index.js';
import type { EventStore, PlaybookResult } from '../../src/index.js';
import { repoRoot, startViewerProcess } from '../helpers/cantbookProcess.js';
import type { ViewerProcess } from '../helpers/cantbookProcess.js';

const CHROMIUM = process.env.CANTBOOK_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.CANTBOOK_SKIP_BROWSER === '1';
const SCREENSHOTS = process.env.CANTBOOK_UPDATE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'img') : join(repoRoot, 'test', '.out', 'screenshots');
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20_000 };

/**
 * An exec agent that logs to stderr and answers from its request; it fails a
 * node while a file `fail-<nodeId>` sits beside it (so a retry can succeed).
 */
const AGENT = `
import { existsSync } from 'node:fs';
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
process.stderr.write(\`agent log: working on \${request.nodeId} attempt \${request.iteration}\\n\`);
process.stderr.write(\`agent log: topic is \${request.bindings?.topic ?? '(none)'}\\n\`);
const failing = existsSync(new URL(\`./fail-\${request.nodeId}\`, import.meta.url));
const answer = failing
  ? { status: 'failure', error: \`\${request.nodeId} cannot reach the network\` }
  : { status: 'success', output: { [request.nodeId]: \`done: \${request.bindings?.topic ?? ''}\`, words: 42 } };
process.stdout.write(JSON.stringify(answer) + '\\n');
`;

const LIVE = `version: "1.0"
name: live
inputs:
  - { name: topic, required: true }
nodes:
  - { id: draft, type: agentic, skill: writer, inputs: { topic: "{{inputs.topic}}" } }
  - { id: review, type: approval, prompt: "Ship {{inputs.topic}}?", depends: [draft] }
  - { id: publish, type: agentic, skill: publisher, depends: [review] }
`;

const OTHER = `version: "1.0"
name: other
nodes:
  - { id: only, type: agentic, skill: s }
`;

let dir: string;
let db: string;
let agentSpec: string;
let viewer: ViewerProcess;
let browser: Browser;
let page: Page;
/** A run paused at its gate (approved by the library while its page is open), one to cancel from the page, one that failed (retried from the page). */
const runs = { live: '', cancel: '', retry: '', other: '' };
let liveToken = '';

async function withStore<T>(work: (store: EventStore) => Promise<T>): Promise<T> {
  const store = openSqliteStore(db);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Starts a run of `source` in this process, with the exec agent, as `cantbook run` would. */
function startRun(source: string, initialContext: Record<string, unknown> = {}): Promise<PlaybookResult> {
  const { definition } = parsePlaybook(source);
  return withStore((store) =>
    executePlaybook({ store, playbook: definition, source, initialContext, dispatcher: createDispatcherFromSpec(agentSpec, { cwd: dir }), approvalSecret: randomBytes(32).toString('hex') }),
  );
}

const openRun = async (p: Page, runId: string) => {
  await p.goto(`${viewer.info.url}#/runs/${encodeURIComponent(runId)}`);
  await p.waitForSelector(`.run-head .ids:has-text("run ${runId} ·")`, WAIT);
  await p.waitForSelector('#timeline li', WAIT);
};
/** Set on the page's window: still there later means the page never reloaded or navigated. */
const plantMarker = (p: Page) => p.evaluate(() => ((globalThis as unknown as { cantbookMarker: number }).cantbookMarker = 41 + 1));
const marker = (p: Page) => p.evaluate(() => (globalThis as unknown as { cantbookMarker?: number }).cantbookMarker ?? null);
const statusBadge = (p: Page) => p.textContent('.run-head h2 [data-status]');
const timelineTypes = (p: Page) => p.$$eval('#timeline li', (items) => items.map((li) => li.getAttribute('data-type')));
const shot = (p: Page, name: string) => p.screenshot({ path: join(SCREENSHOTS, `viewer-${name}.png`), fullPage: true });

describe.skipIf(SKIP)('the viewer stays live and shows each node (headless Chromium)', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install the Debian package (apt-get install chromium), point CANTBOOK_CHROMIUM at one, or set CANTBOOK_SKIP_BROWSER=1 to skip this test on purpose`);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'cantbook-viewer-live-'));
    db = join(dir, 'cantbook.db');
    writeFileSync(join(dir, 'agent.mjs'), AGENT);
    agentSpec = `exec:node ${join(dir, 'agent.mjs')}`;

    const live = await startRun(LIVE, { topic: 'tides' });
    expect(live.terminalStatus).toBe('pending_approval');
    runs.live = live.runId;
    liveToken = live.approvalToken as string;
    const toCancel = await startRun(LIVE, { topic: 'moons' });
    expect(toCancel.terminalStatus).toBe('pending_approval');
    runs.cancel = toCancel.runId;
    writeFileSync(join(dir, 'fail-draft'), '');
    const failed = await startRun(LIVE, { topic: 'comets' });
    rmSync(join(dir, 'fail-draft'));
    expect(failed.terminalStatus).toBe('exceeded_iteration_cap');
    runs.retry = failed.runId;

    viewer = await startViewerProcess(db, ['--agent', agentSpec]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(viewer.info.openUrl);
    await page.waitForSelector('#runs', WAIT);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (viewer) expect(await viewer.stop()).toBe(0);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a run that moves while its page is open updates the page without a reload, keeping the selected event', async () => {
    await openRun(page, runs.live);
    const before = await withStore((store) => readRunEvents(store, runs.live));
    expect(await timelineTypes(page)).toEqual(before.map((event) => event.type));
    expect(await statusBadge(page)).toBe('paused');
    await page.waitForSelector('#gate', WAIT);
    await page.waitForSelector('#live[data-state="on"]', WAIT);
    // The user looks at the first event and has begun typing in the gate form.
    await page.click('#first');
    await page.fill('#approver', 'someone typing');
    await plantMarker(page);
    const url = page.url();

    // Another process (this test) approves and resumes the run through the library.
    await withStore(async (store) => {
      await approveGate({ store, token: liveToken, approver: 'ana', reason: 'looks right' });
      await resumePlaybook({ store, approvalToken: liveToken, dispatcher: createDispatcherFromSpec(agentSpec, { cwd: dir }) });
    });
    const after = await withStore((store) => readRunEvents(store, runs.live));
    expect(after.at(-1)?.type).toBe('RunCompleted');

    await page.waitForSelector('#timeline li[data-type="RunCompleted"]', WAIT);
    expect(await timelineTypes(page)).toEqual(after.map((event) => event.type));
    expect(await statusBadge(page)).toBe('completed');
    expect(await page.textContent('.run-head .ids')).toContain(`· ${after.length} events`);
    // The decided gate's form is gone; the chart shows the run completed; the user's selection stayed where it was.
    expect(await page.$('#gate')).toBeNull();
    expect(await page.textContent('#counter')).toBe(`event 1 of ${after.length}`);
    expect(await page.getAttribute('#timeline li.selected', 'data-seq')).toBe('1');
    await page.click('#last');
    expect(await page.getAttribute('#chart g.node[data-node="@completed"]', 'data-active')).toBe('true');
    // Durations: the attempt's on its result, the time since the previous event on every later entry.
    expect(await page.textContent('#timeline li[data-type="NodeSucceeded"] .took.attempt')).toMatch(/^took \d+(\.\d)? (ms|s)$/);
    expect(await page.$$eval('#timeline li .took.since', (spans) => spans.length)).toBe(after.length - 1);
    // No reload, no navigation.
    expect(await marker(page)).toBe(42);
    expect(page.url()).toBe(url);
  });

  it("a node's panel shows each attempt's inputs as dispatched, output, duration and log", async () => {
    await page.click('#chart g.node[data-node="draft"]');
    await page.waitForSelector('#node-panel:not([hidden]) li.attempt[data-attempt="1"]', WAIT);
    expect(await page.textContent('#node-panel-title')).toBe('draft');
    expect(page.url()).toBe(`${viewer.info.url}#/runs/${encodeURIComponent(runs.live)}?node=draft`);
    const attempt = '#node-panel li.attempt[data-attempt="1"]';
    expect(await page.getAttribute(attempt, 'data-attempt-status')).toBe('succeeded');
    expect(JSON.parse((await page.textContent(`${attempt} pre.output`)) ?? 'null')).toEqual({ draft: 'done: tides', words: 42 });
    expect(JSON.parse((await page.textContent(`${attempt} pre.inputs`)) ?? 'null')).toEqual({ topic: 'tides' });
    expect(await page.textContent(`${attempt} .attempt-head .took`)).toMatch(/took \d/);
    // The agent's stderr, kept by the runtime as the attempt's log.
    await page.waitForSelector(`${attempt} pre.log`, { timeout: 5_000 });
    expect(await page.textContent(`${attempt} pre.log`)).toBe('agent log: working on draft attempt 1\nagent log: topic is tides\n');
    await shot(page, 'node-panel');

    // The gate's node lists its gate, decided by ana; Escape closes the panel.
    await page.click('#chart g.node[data-node="review"]');
    await page.waitForSelector('#node-panel li.gate-entry[data-gate-status="approved"]', WAIT);
    expect(await page.textContent('#node-panel li.gate-entry')).toContain('by ana: looks right');
    await page.keyboard.press('Escape');
    expect(await page.isHidden('#node-panel')).toBe(true);
    expect(await marker(page)).toBe(42);
  });

  it('cancel from the page cancels the run (a reason is required), with the CLI checks', async () => {
    await openRun(page, runs.cancel);
    expect(await statusBadge(page)).toBe('paused');
    await page.waitForSelector('#cancel', WAIT);
    expect(await page.$('#retry')).toBeNull();
    await page.click('#cancel');
    await page.waitForSelector('#action-message [data-code="E_USAGE"]', WAIT);
    expect((await withStore((store) => getRun(store, runs.cancel)))?.status).toBe('paused');

    await page.fill('#cancel-reason', 'wrong topic');
    await page.fill('#cancel-by', 'ana');
    await page.click('#cancel');
    await page.waitForSelector('#action-notice', WAIT);
    expect(await page.textContent('#action-notice')).toBe('Cancelled by ana; the run is cancelled.');
    const log = await withStore((store) => readRunEvents(store, runs.cancel));
    expect(log.at(-1)).toMatchObject({ type: 'RunCancelled', data: { reason: 'wrong topic', by: 'ana' } });
    expect((await withStore((store) => getRun(store, runs.cancel)))?.status).toBe('cancelled');
    // The page shows it, and offers neither button any more; its gate is gone.
    await page.waitForSelector('#timeline li[data-type="RunCancelled"]', WAIT);
    expect(await statusBadge(page)).toBe('cancelled');
    expect(await page.$('#cancel')).toBeNull();
    expect(await page.$('#retry')).toBeNull();
    expect(await page.$('#gate')).toBeNull();
  });

  it('retry from the page redrives a failed run from where it failed; the open node panel follows it', async () => {
    await openRun(page, runs.retry);
    expect(await statusBadge(page)).toBe('failed');
    await page.waitForSelector('#retry', WAIT);
    expect(await page.$('#cancel')).toBeNull();
    await page.click('#chart g.node[data-node="draft"]');
    await page.waitForSelector('#node-panel li.attempt[data-attempt="3"][data-attempt-status="failed"]', WAIT);
    expect(await page.textContent('#node-panel li.attempt[data-attempt="3"] pre.error')).toBe('draft cannot reach the network');
    await plantMarker(page);

    await page.fill('#retry-by', 'ana');
    await page.click('#retry');
    await page.waitForSelector('#action-notice', WAIT);
    expect(await page.textContent('#action-notice')).toBe('Retried by ana; the run is pending_approval.');
    const log = await withStore((store) => readRunEvents(store, runs.retry));
    expect(log.find((event) => event.type === 'RunRetried')?.data).toMatchObject({ fromNode: 'draft', by: 'ana' });
    expect(log.at(-1)?.type).toBe('RunPaused');
    await page.waitForSelector('#gate', WAIT);
    expect(await statusBadge(page)).toBe('paused');
    // The redrive is attempt 4 of draft, in the panel that stayed open; the buttons follow the run.
    await page.waitForSelector('#node-panel li.attempt[data-attempt="4"][data-attempt-status="succeeded"]', WAIT);
    expect(await page.$('#retry')).toBeNull();
    await page.waitForSelector('#cancel', WAIT);
    expect(await marker(page)).toBe(42);
  });

  it('the run list updates live and filters by status and playbook, the filters kept in the address', async () => {
    await page.goto(`${viewer.info.url}#/`);
    await page.waitForSelector(`#runs tr[data-run-id="${runs.cancel}"]`, WAIT);
    await page.waitForSelector('#live[data-state="on"]', WAIT);
    await plantMarker(page);
    const other = await startRun(OTHER);
    expect(other.terminalStatus).toBe('completed');
    runs.other = other.runId;
    await page.waitForSelector(`#runs tr[data-run-id="${runs.other}"]`, WAIT);
    expect(await marker(page)).toBe(42);

    const listed = () => page.$$eval('#runs tbody tr[data-match="true"]', (trs) => trs.map((tr) => tr.getAttribute('data-run-id')));
    expect((await listed()).sort()).toEqual(Object.values(runs).sort());
    await page.selectOption('#filter-status', 'cancelled');
    await page.waitForURL(`${viewer.info.url}#/?status=cancelled`, WAIT);
    await page.waitForSelector(`#runs tr[data-run-id="${runs.live}"]`, { state: 'detached', ...WAIT });
    expect(await listed()).toEqual([runs.cancel]);
    expect(await page.textContent('#runs-section h2')).toBe('Runs (1 of 4)');

    await page.selectOption('#filter-status', '');
    await page.waitForURL(`${viewer.info.url}#/`, WAIT);
    await page.waitForSelector(`#runs tr[data-run-id="${runs.live}"]`, WAIT);
    await page.selectOption('#filter-playbook', 'other');
    await page.waitForURL(`${viewer.info.url}#/?playbook=other`, WAIT);
    await page.waitForSelector(`#runs tr[data-run-id="${runs.live}"]`, { state: 'detached', ...WAIT });
    expect(await listed()).toEqual([runs.other]);

    // A reload keeps the filters (they are in the address).
    await page.reload();
    await page.waitForSelector(`#runs tr[data-run-id="${runs.other}"]`, WAIT);
    expect(await listed()).toEqual([runs.other]);
    expect(await page.$eval('#filter-playbook', (select) => (select as unknown as { value: string }).value)).toBe('other');
    await page.goto(`${viewer.info.url}#/?status=paused&playbook=live`);
    await page.waitForSelector(`#runs tr[data-run-id="${runs.retry}"]`, WAIT);
    expect(await listed()).toEqual([runs.retry]);
    await page.goto(`${viewer.info.url}#/?status=running`);
    await page.waitForSelector('#no-match', WAIT);
    await shot(page, 'filters');
  });
});
