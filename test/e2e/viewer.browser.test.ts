/**
 * The local viewer in a real browser: headless Chromium (the Debian package,
 * driven by playwright-core) against a real `cantbook ui` process over a
 * SQLite file that real `cantbook run` processes wrote. It sees a paused run,
 * steps its timeline (each step checked against an independent fold of the
 * log), refuses a wrong token and a foreign origin, approves, and sees the run
 * completed. Its screenshots are the ones docs/visualize.md shows: `npm run screenshots` writes
 * them to docs/img/viewer-*.png (an ordinary run writes them under test/.out/).
 *
 * Chromium: CANTBOOK_CHROMIUM (default /usr/bin/chromium). A missing browser
 * fails the test; only CANTBOOK_SKIP_BROWSER=1 skips it, explicitly.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { compilePlaybook, createDispatcherFromSpec, executePlaybook, foldRun, getRun, initialRunSnapshot, openSqliteStore, parsePlaybook, readRunEvents } from '../../src/index.js';
import type { EventStore, RunEvent, RunSnapshot } from '../../src/index.js';
import { DEMO_AGENT, repoRoot, runCantbookJson, startViewerProcess } from '../helpers/cantbookProcess.js';
import type { ViewerProcess } from '../helpers/cantbookProcess.js';

const CHROMIUM = process.env.CANTBOOK_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.CANTBOOK_SKIP_BROWSER === '1';
// The test always takes its screenshots; only `npm run screenshots` (CANTBOOK_UPDATE_SCREENSHOTS=1)
// writes them over docs/img, so an ordinary test run leaves the work tree clean.
const SCREENSHOTS = process.env.CANTBOOK_UPDATE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'img') : join(repoRoot, 'test', '.out', 'screenshots');
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20_000 };

let dir: string;
let db: string;
let viewer: ViewerProcess;
let browser: Browser;
let page: Page;
let runId: string;
let token: string;
let events: RunEvent[];
/** A second paused release run, rejected from the page at the end. */
let other: { runId: string; approvalToken: string };

/** Where the fold of the first `n` events stands, computed here from the starter file: what the viewer must highlight. */
function expectedPosition(snapshot: RunSnapshot): { node: string | null; phase: string | null } {
  const value = snapshot.value as string | { active: Record<string, string> };
  if (value === 'idle') return { node: null, phase: null };
  if (value === 'completed') return { node: '@completed', phase: 'completed' };
  if (typeof value === 'string') throw new Error(`this scenario never ends in '${value}'`);
  const [node, phase] = Object.entries(value.active)[0] as [string, string];
  return { node, phase };
}

/** Reads the database the viewer serves, through a connection of our own. */
async function withStore<T>(read: (store: EventStore) => Promise<T>): Promise<T> {
  const store = openSqliteStore(db);
  try {
    return await read(store);
  } finally {
    await store.close();
  }
}

const readEvents = () => withStore((store) => readRunEvents(store, runId));
const runStatus = () => withStore(async (store) => (await getRun(store, runId))?.status);

/** The node the chart highlights, with its phase. */
const activeNode = (p: Page) =>
  p.$$eval('#chart g.node[data-active="true"]', (nodes) => nodes.map((node) => ({ node: node.getAttribute('data-node'), phase: node.getAttribute('data-phase') })));

const shot = (p: Page, name: string) => p.screenshot({ path: join(SCREENSHOTS, `viewer-${name}.png`), fullPage: true });

describe.skipIf(SKIP)('the viewer in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install the Debian package (apt-get install chromium), point CANTBOOK_CHROMIUM at one, or set CANTBOOK_SKIP_BROWSER=1 to skip this test on purpose`);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'cantbook-viewer-'));
    db = join(dir, 'cantbook.db');
    // A finished run for the list, then the release run that pauses at its gate (changelog fails once first).
    const gate = await runCantbookJson<{ terminalStatus: string }>(['--db', db, 'run', 'starter/ci-gate.cantbook', '--input', 'mode=full']);
    expect(gate.terminalStatus).toBe('completed');
    const paused = await runCantbookJson<{ runId: string; terminalStatus: string; approvalToken: string }>(
      ['--db', db, 'run', 'starter/release.cantbook', '--input', 'targetVersion=2.4.0', '--agent', DEMO_AGENT],
      { DEMO_AGENT_FAIL: 'changelog:1' },
    );
    expect(paused.terminalStatus).toBe('pending_approval');
    ({ runId, approvalToken: token } = paused);
    events = await readEvents();
    other = await runCantbookJson(['--db', db, 'run', 'starter/release.cantbook', '--input', 'targetVersion=2.5.0-rc.1', '--agent', DEMO_AGENT]);

    viewer = await startViewerProcess(db, ['--agent', DEMO_AGENT]);
    expect(viewer.info).toMatchObject({ host: '127.0.0.1', url: `http://127.0.0.1:${viewer.info.port}/`, db });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (viewer) expect(await viewer.stop()).toBe(0);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists the runs and the pending approval', async () => {
    await page.goto(viewer.info.openUrl);
    await page.waitForSelector(`#approvals tr[data-run-id="${runId}"]`, WAIT);
    // The key moved from the address bar into the page's storage.
    expect(page.url()).toBe(`${viewer.info.url}#/`);
    // Newest first.
    const rows = await page.$$eval('#runs tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-run-id'), ...[...tr.querySelectorAll('td')].slice(1, 4).map((td) => td.textContent)]));
    expect(rows.slice(0, 2)).toEqual([
      [other.runId, 'release', 'paused', 'approval'],
      [runId, 'release', 'paused', 'approval'],
    ]);
    expect(rows[2]?.slice(1)).toEqual(['ci-gate', 'completed', '–']);
    expect(await page.$$eval('#approvals tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-run-id')))).toEqual([runId, other.runId]);
    expect(await page.textContent(`#approvals tr[data-run-id="${runId}"] td.prompt`)).toContain('2.4.0');
    await shot(page, 'runs');
  });

  it("shows the paused run's statechart with the gate highlighted, and steps its timeline through the fold", async () => {
    await page.click(`#approvals tr[data-run-id="${runId}"] a`);
    await page.waitForSelector('#chart g.node[data-node="approval"][data-active="true"][data-phase="paused"]', WAIT);
    expect(await page.$$eval('#timeline li', (items) => items.map((li) => li.dataset.type))).toEqual(events.map((event) => event.type));
    expect(await page.textContent('#counter')).toBe(`event ${events.length} of ${events.length}`);
    await page.waitForSelector('#gate', WAIT);
    // Failure paths are drawn: changelog retries in place (default cap 3); publish (cap 1) does not.
    expect(await page.textContent('#chart g.edge.retry[data-from="changelog"]')).toBe('retry · 3 attempt(s)');
    expect(await page.$('#chart g.edge.retry[data-from="publish"]')).toBeNull();

    const { definition } = parsePlaybook(readFileSync(join(repoRoot, 'starter', 'release.cantbook'), 'utf8'));
    const machine = compilePlaybook(definition);
    await page.click('#first');
    for (let i = 0; i < events.length; i += 1) {
      const folded = foldRun(machine, initialRunSnapshot(machine), events.slice(0, i + 1));
      expect(await page.textContent('#counter')).toBe(`event ${i + 1} of ${events.length}`);
      expect(await page.getAttribute('#timeline li.selected', 'data-seq')).toBe(String(events[i]?.seq));
      const position = expectedPosition(folded);
      expect(await activeNode(page)).toEqual([position]);
      const attempt = position.node === null ? 0 : (folded.context.attempts[position.node] ?? 0);
      expect(await page.textContent('#position')).toContain(attempt > 0 ? ` · attempt ${attempt} · ` : ' · run ');
      const shown = JSON.parse((await page.textContent('#context')) ?? '{}') as { value: unknown; context: unknown };
      expect(shown).toMatchObject({ value: folded.value, context: folded.context.context });
      if (events[i]?.type === 'NodeFailed') await shot(page, 'timeline');
      if (i < events.length - 1) await page.click('#next');
    }
    // The keyboard steps too, and never past either end.
    await page.keyboard.press('ArrowRight');
    expect(await page.textContent('#counter')).toBe(`event ${events.length} of ${events.length}`);
    await page.keyboard.press('ArrowLeft');
    expect(await page.textContent('#counter')).toBe(`event ${events.length - 1} of ${events.length}`);
    await page.click('#last');
    await shot(page, 'paused');
  });

  it('refuses a wrong token and an empty one with their codes; the run stays paused', async () => {
    await page.fill('#approver', 'mallory');
    await page.fill('#token', '');
    await page.click('#approve');
    await page.waitForSelector('#gate-message [data-code="E_USAGE"]', WAIT);
    expect(await page.textContent('#gate-message')).toContain('paste the resume token');

    await page.fill('#token', `${token.slice(0, -6)}AAAAAA`);
    await page.click('#approve');
    await page.waitForSelector('#gate-message [data-code="E_APPROVAL_TOKEN_INVALID"]', WAIT);
    await shot(page, 'wrong-token');
    expect(await runStatus()).toBe('paused');
    expect(await readEvents()).toHaveLength(events.length);
  });

  it('a browser without the session key sees no run and cannot approve', async () => {
    const stranger = await browser.newPage();
    try {
      await stranger.goto(viewer.info.url);
      await stranger.waitForSelector('[data-code="E_UI_FORBIDDEN"]', WAIT);
      expect(await stranger.$('#runs')).toBeNull();
      const status = await stranger.evaluate(
        async ({ runId: id, token: t }) => (await fetch(`/api/runs/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: t, approver: 'mallory' }) })).status,
        { runId, token },
      );
      expect(status).toBe(401);
    } finally {
      await stranger.close();
    }
    expect(await runStatus()).toBe('paused');
  });

  it('a page from another origin cannot approve, even holding the session key and the token', async () => {
    const attacker: Server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title><p>elsewhere</p>'));
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', () => resolve()));
    const elsewhere = await browser.newPage();
    try {
      await elsewhere.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      const target = `${viewer.info.url}api/runs/${runId}/approve`;
      const body = JSON.stringify({ token, approver: 'mallory' });
      // What the viewer really answered the request that did go out (the page itself only sees an opaque response).
      const answered = elsewhere.waitForResponse((response) => response.url() === target && response.request().method() === 'POST', WAIT);
      const outcomes = await elsewhere.evaluate(
        async ({ target: url, body: text, key }) => {
          const attempt = async (init: RequestInit) => {
            try {
              const response = await fetch(url, init);
              return `answered ${response.type} ${response.status}`;
            } catch (error) {
              return `blocked: ${(error as Error).message}`;
            }
          };
          return [
            // A JSON request with the key needs a CORS preflight, which the viewer refuses.
            await attempt({ method: 'POST', headers: { 'content-type': 'application/json', 'x-cantbook-key': key }, body: text }),
            // A "simple" request goes out without a preflight; the viewer refuses its Origin.
            await attempt({ method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: text }),
          ];
        },
        { target, body, key: viewer.info.openUrl.split('#key=')[1] as string },
      );
      expect(outcomes[0]).toMatch(/^blocked: /);
      expect(outcomes[1]).toBe('answered opaque 0');
      const refusal = await answered;
      // 403 is the Origin check (a missing key would be 401); the body is withheld from an opaque response.
      expect(refusal.status()).toBe(403);
    } finally {
      await elsewhere.close();
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
    expect(await runStatus()).toBe('paused');
    expect(await readEvents()).toHaveLength(events.length);
  });

  it('approves with the token, resumes the run, and shows it completed', async () => {
    await page.fill('#token', token);
    await page.fill('#approver', 'ana');
    await page.fill('#reason', 'changelog reviewed');
    await page.click('#approve');
    await page.waitForSelector('#notice', WAIT);
    expect(await page.textContent('#notice')).toBe('Approved by ana; the run is completed.');
    expect(await page.textContent('.run-head [data-status]')).toBe('completed');
    expect(await activeNode(page)).toEqual([{ node: '@completed', phase: 'completed' }]);
    expect(await page.$('#gate')).toBeNull();

    const after = await readEvents();
    expect(after.slice(events.length).map((event) => event.type)).toEqual(['ApprovalGranted', 'RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted']);
    expect(after[events.length]?.data).toMatchObject({ approver: 'ana', reason: 'changelog reviewed' });
    expect(await page.$$eval('#timeline li', (items) => items.length)).toBe(after.length);
    expect(await runStatus()).toBe('completed');
    await shot(page, 'completed');
  });

  it('rejects the other gate (a reason is required) and shows that run failed at the gate', async () => {
    await page.click('.run-head a.back');
    await page.waitForSelector(`#runs tr[data-run-id="${runId}"] [data-status="completed"]`, WAIT);
    expect(await page.$$eval('#approvals tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-run-id')))).toEqual([other.runId]);
    await page.click(`#approvals tr[data-run-id="${other.runId}"] a`);
    await page.waitForSelector('#chart g.node[data-node="approval"][data-active="true"][data-phase="paused"]', WAIT);

    await page.fill('#token', other.approvalToken);
    await page.fill('#approver', 'ana');
    await page.click('#reject');
    await page.waitForSelector('#gate-message [data-code="E_USAGE"]', WAIT);
    expect(await page.textContent('#gate-message')).toContain('a rejection needs a reason');

    await page.fill('#reason', 'release candidates go to the next channel');
    await page.click('#reject');
    await page.waitForSelector('#notice', WAIT);
    expect(await page.textContent('#notice')).toBe('Rejected by ana; the run is failed.');
    expect(await page.textContent('.run-head [data-status]')).toBe('failed');
    expect(await activeNode(page)).toEqual([{ node: 'approval', phase: 'failed' }]);
    const log = await withStore((store) => readRunEvents(store, other.runId));
    expect(log.slice(-2).map((event) => event.type)).toEqual(['ApprovalRejected', 'RunFailed']);
    expect(log.at(-1)?.data).toMatchObject({ cause: 'approval_rejected' });
    await shot(page, 'rejected');

    await page.click('.run-head a.back');
    await page.waitForSelector(`#runs tr[data-run-id="${other.runId}"] [data-status="failed"]`, WAIT);
    expect(await page.textContent('main')).toContain('No gate is waiting for a decision.');
  });

  it('draws a paused review run: the group box holds its branch lanes and their nodes, no boxes overlap, the gate paused and the rest done', async () => {
    // The review starter paused at sec_gate while bench and docs_review ran (written by the library, with the demo agent).
    const source = readFileSync(join(repoRoot, 'starter', 'review.cantbook'), 'utf8');
    const { definition } = parsePlaybook(source);
    const review = await withStore((store) =>
      executePlaybook({ store, playbook: definition, source, initialContext: { change: 'pr-42' }, dispatcher: createDispatcherFromSpec(DEMO_AGENT, { cwd: repoRoot }), approvalSecret: randomBytes(32).toString('hex') }),
    );
    expect(review.terminalStatus).toBe('pending_approval');
    const log = await withStore((store) => readRunEvents(store, review.runId));
    // The independent oracle: the machine state the fold of the log reaches, read by hand.
    const folded = foldRun(compilePlaybook(definition), initialRunSnapshot(compilePlaybook(definition)), log).value;
    expect(folded).toEqual({ active: { reviews: { running: { security: { nodes: { sec_gate: 'paused' } }, perf: 'succeeded', docs: 'succeeded' } } } });

    await page.goto(`${viewer.info.url}#/runs/${review.runId}`);
    await page.waitForSelector('#chart g.node[data-node="sec_gate"][data-active="true"][data-phase="paused"]', WAIT);
    const states = await page.$$eval('#chart g.node', (nodes) => Object.fromEntries(nodes.map((node) => [node.getAttribute('data-node'), [node.getAttribute('data-active'), node.getAttribute('data-state')]])));
    expect(states).toEqual({
      reviews: ['true', 'running'],
      build: ['false', 'done'],
      scan: ['false', 'done'],
      sec_gate: ['true', 'paused'],
      bench: ['false', 'done'],
      docs_review: ['false', 'done'],
      merge: ['false', ''],
      '@completed': ['false', ''],
      '@failed': ['false', ''],
      '@exceeded_iteration_cap': ['false', ''],
      '@cancelled': ['false', ''],
    });

    type Box = { x: number; y: number; width: number; height: number };
    const boxes = await page.$$eval('#chart g.node > rect, #chart g.lane > rect', (rects) =>
      rects.map((rect) => {
        // Runs in the page; the DOM types are not in this project's lib, so the parent is typed by what is read.
        const owner = rect.parentElement as unknown as { getAttribute(name: string): string | null };
        const { x, y, width, height } = rect.getBoundingClientRect();
        return { node: owner.getAttribute('data-node'), lane: owner.getAttribute('data-branch'), group: owner.getAttribute('data-group'), box: { x, y, width, height } };
      }),
    );
    const nodeBox = (id: string): Box => boxes.find((b) => b.node === id)?.box as Box;
    const laneBox = (id: string): Box => boxes.find((b) => b.lane === id)?.box as Box;
    const inside = (inner: Box, outer: Box) => inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
    const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    const lanes = { security: ['scan', 'sec_gate'], perf: ['bench'], docs: ['docs_review'] };
    expect(boxes.filter((b) => b.lane !== null).map((b) => [b.lane, b.group])).toEqual([['security', 'reviews'], ['perf', 'reviews'], ['docs', 'reviews']]);
    for (const [lane, nodes] of Object.entries(lanes)) {
      expect(inside(laneBox(lane), nodeBox('reviews')), `lane ${lane} inside the group box`).toBe(true);
      for (const node of nodes) expect(inside(nodeBox(node), laneBox(lane)), `${node} inside lane ${lane}`).toBe(true);
    }
    for (const [a, b] of [['security', 'perf'], ['perf', 'docs'], ['security', 'docs']] as const) expect(overlap(laneBox(a), laneBox(b)), `lanes ${a} and ${b}`).toBe(false);
    const leaves = ['build', 'scan', 'sec_gate', 'bench', 'docs_review', 'merge', '@completed'];
    for (const [i, a] of leaves.entries()) for (const b of leaves.slice(i + 1)) expect(overlap(nodeBox(a), nodeBox(b)), `${a} and ${b} overlap`).toBe(false);
    for (const outsider of ['build', 'merge', '@completed']) expect(overlap(nodeBox(outsider), nodeBox('reviews')), `${outsider} and the group`).toBe(false);

    // The edge inside a branch stays inside its lane; the join leaves the group box from its bottom towards merge.
    const path = async (from: string, to: string) => page.$eval(`#chart g.edge[data-from="${from}"][data-to="${to}"] path`, (p) => { const { x, y, width, height } = p.getBoundingClientRect(); return { x, y, width, height }; });
    expect(inside(await path('scan', 'sec_gate'), laneBox('security'))).toBe(true);
    const joinEdge = await path('reviews', 'merge');
    const group = nodeBox('reviews');
    expect(Math.abs(joinEdge.y - (group.y + group.height))).toBeLessThan(2);
    expect(joinEdge.y + joinEdge.height).toBeLessThanOrEqual(nodeBox('merge').y + 1);
    expect(await page.$('#chart g.edge[data-to="@completed"][data-from="sec_gate"]')).toBeNull();
    await shot(page, 'parallel');
  });
});
