/**
 * The viewer shows a tree of child runs (SPEC §12), in headless Chromium
 * against a real `cantbook ui` over the tree a real `cantbook run
 * starter/epic.cantbook` wrote (the demo agent, from the directory's
 * cantbook.config.json, as test/e2e/epicStarter.test.ts runs it): the epic
 * with its rcasd child, five ivtr children and the release child paused at its
 * gate. The run list indents the children under the epic and links each one;
 * the epic's page lists them with their statuses and draws its `playbook` and
 * `map` nodes as subroutines; a child's page links back to its parent. The
 * gate is then approved on the release child's page, which finishes the release
 * and then the epic, and every page says so. The epic's page is the screenshot
 * docs/visualize.md shows: CANTBOOK_UPDATE_SCREENSHOTS=1 writes it to
 * docs/img/viewer-epic.png (an ordinary run writes it under test/.out/).
 *
 * Chromium: CANTBOOK_CHROMIUM (default /usr/bin/chromium). A missing browser
 * fails the test; only CANTBOOK_SKIP_BROWSER=1 skips it, explicitly.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliSession, repoRoot } from '../helpers/cliSession.js';
import type { CliChild, CliSession } from '../helpers/cliSession.js';
import type { ViewerInfo } from '../helpers/cantbookProcess.js';

const CHROMIUM = process.env.CANTBOOK_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.CANTBOOK_SKIP_BROWSER === '1';
// As in viewer.browser.test.ts: only CANTBOOK_UPDATE_SCREENSHOTS=1 writes over docs/img, so an ordinary run leaves the work tree clean.
const SCREENSHOTS = process.env.CANTBOOK_UPDATE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'img') : join(repoRoot, 'test', '.out', 'screenshots');
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20_000 };
const AGENT = 'exec:node starter/demo-agent.mjs';
const TASKS = 5;

let cli: CliSession;
let ui: CliChild | undefined;
let viewer: ViewerInfo;
let browser: Browser;
let page: Page;
/** The epic's run id, and the release child's resume token as `run` printed it. */
let root = '';
let token = '';

const childId = (nodeId: string, index: number, attempt = 1) => `${root}.${nodeId}.${attempt}.${index}`;
/** Every child of the epic, in the order the epic started them. */
const childIds = () => [childId('plan', 0), ...Array.from({ length: TASKS }, (_, index) => childId('implement_all', index)), childId('release', 0)];
/** What a child's id adds to the epic's: how the pages show it. */
const suffix = (id: string) => `…${id.slice(root.length)}`;
const runHref = (id: string) => `#/runs/${encodeURIComponent(id)}`;

/** Waits until `runId`'s page, not the previous one, is drawn. */
async function waitForRunPage(runId: string): Promise<void> {
  await page.waitForSelector(`.run-head .ids:has-text("run ${runId} ·")`, WAIT);
  await page.waitForSelector('#timeline li', WAIT);
}

async function openRun(runId: string): Promise<void> {
  await page.goto(`${viewer.url}${runHref(runId)}`);
  await waitForRunPage(runId);
}

/** The run list's rows as the page draws them. */
const runRows = () =>
  page.$$eval('#runs tbody tr', (trs) =>
    trs.map((tr) => {
      const link = tr.querySelector('td a');
      const cells = [...tr.querySelectorAll('td')].map((td) => td.textContent);
      return {
        runId: tr.getAttribute('data-run-id'),
        depth: tr.getAttribute('data-depth'),
        child: tr.classList.contains('child-run'),
        tree: tr.querySelector('td .tree')?.textContent ?? null,
        link: link?.textContent ?? null,
        href: link?.getAttribute('href') ?? null,
        title: link?.getAttribute('title') ?? null,
        playbook: cells[1],
        status: cells[2],
        node: cells[3],
      };
    }),
  );

/** The epic page's "Child runs" table: link text, href, playbook, status, where it was started, its node. */
const childRows = () =>
  page.$$eval('#children tbody tr', (trs) =>
    trs.map((tr) => {
      const link = tr.querySelector('td a');
      return [tr.getAttribute('data-run-id'), link?.textContent, link?.getAttribute('href'), ...[...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent)];
    }),
  );

describe.skipIf(SKIP)('the viewer shows child runs', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install the Debian package (apt-get install chromium), point CANTBOOK_CHROMIUM at one, or set CANTBOOK_SKIP_BROWSER=1 to skip this test on purpose`);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    // A directory with a copy of starter/ and the agent in its config, the store its default ./.cantbook/cantbook.db.
    cli = createCliSession('cantbook-viewer-children-');
    mkdirSync(cli.path('starter'));
    for (const file of readdirSync(join(repoRoot, 'starter'))) copyFileSync(join(repoRoot, 'starter', file), cli.path('starter', file));
    writeFileSync(cli.path('cantbook.config.json'), JSON.stringify({ agent: AGENT }));
    const result = await cli.run(['run', 'starter/epic.cantbook', '--input', 'epicId=EPIC-1', '--input', 'targetVersion=1.0.0']);
    expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: '' });
    root = /^run (\S+) · playbook epic$/m.exec(result.stdout)?.[1] ?? '';
    token = /^ {2}approve: cantbook approve (cbk1\.\S+) --by /m.exec(result.stdout)?.[1] ?? '';
    expect(root).not.toBe('');
    expect(token).not.toBe('');

    // The viewer finds the agent in the same config, so approving from the page resumes the tree.
    ui = cli.start(['ui', '--port', '0', '--json']);
    await ui.printed(/^\{[^{}]*\}\s*$/);
    viewer = JSON.parse(ui.stdout) as ViewerInfo;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(viewer.openUrl);
    await page.waitForSelector('#runs', WAIT);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (ui) {
      ui.kill('SIGTERM');
      expect((await ui.exited).code).toBe(0);
    }
    cli?.remove();
  });

  it('the run list shows the epic with its seven children indented beneath it, each linking to its page', async () => {
    const rows = await runRows();
    expect(rows).toHaveLength(8);
    // The epic is not at a gate of its own: it runs its release node, which waits for the child (SPEC §12).
    expect(rows[0]).toEqual({ runId: root, depth: '0', child: false, tree: null, link: `${root.slice(0, 8)}…`, href: runHref(root), title: root, playbook: 'epic', status: 'running', node: 'release' });
    const children = rows.slice(1);
    // Oldest first under the parent: the plan, the five tasks (the map starts up to three at once), the release.
    expect(children.map((row) => row.runId)).toEqual([childId('plan', 0), ...children.slice(1, 6).map((row) => row.runId), childId('release', 0)]);
    expect(children.slice(1, 6).map((row) => row.runId).sort()).toEqual(childIds().slice(1, 6).sort());
    for (const row of children) {
      const id = row.runId as string;
      const release = id === childId('release', 0);
      expect(row).toEqual({
        runId: id,
        depth: '1',
        child: true,
        tree: '↳ ',
        link: suffix(id),
        href: runHref(id),
        title: id,
        playbook: id.includes('.plan.') ? 'rcasd' : release ? 'release' : 'ivtr',
        status: release ? 'paused' : 'completed',
        node: release ? 'approval' : '–',
      });
    }
    // Indented: each child's link starts to the right of the epic's.
    const left = (id: string) => page.$eval(`#runs tr[data-run-id="${id}"] td a`, (a) => a.getBoundingClientRect().left);
    const rootLeft = await left(root);
    for (const id of childIds()) expect(await left(id)).toBeGreaterThan(rootLeft + 8);
    // The pending gate is the release child's.
    expect(await page.$$eval('#approvals tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-run-id')))).toEqual([childId('release', 0)]);

    // A child's link opens its page.
    await page.click(`#runs tr[data-run-id="${childId('plan', 0)}"] a`);
    await waitForRunPage(childId('plan', 0));
    expect(page.url()).toBe(`${viewer.url}${runHref(childId('plan', 0))}`);
    expect(await page.textContent('.run-head h2')).toBe('rcasd completed');
    expect(await page.textContent('#parent-run')).toBe('child run of epic (node plan) · running');
  });

  it("the epic's page lists its children with their statuses, and a child's link opens that child's page", async () => {
    await openRun(root);
    expect(await page.textContent('.run-head h2')).toBe('epic running');
    expect(await page.$('#parent-run')).toBeNull();
    expect(await page.textContent('#children h3')).toBe('Child runs (7)');
    expect(await page.$$eval('#children thead th', (ths) => ths.map((th) => th.textContent))).toEqual(['Run', 'Playbook', 'Status', 'Started by', 'Node']);
    expect(await childRows()).toEqual([
      [childId('plan', 0), suffix(childId('plan', 0)), runHref(childId('plan', 0)), 'rcasd', 'completed', 'node plan', '–'],
      ...Array.from({ length: TASKS }, (_, index) => {
        const id = childId('implement_all', index);
        return [id, suffix(id), runHref(id), 'ivtr', 'completed', `node implement_all, item ${index}`, '–'];
      }),
      [childId('release', 0), suffix(childId('release', 0)), runHref(childId('release', 0)), 'release', 'paused', 'node release', 'approval'],
    ]);
    expect(await page.$$eval('#children tbody [data-status]', (badges) => badges.map((b) => b.getAttribute('data-status')))).toEqual([...Array(6).fill('completed'), 'paused']);
    // The timeline has the epic's side of each child: seven started, six settled, the release still out.
    expect(await page.$$eval('#timeline li[data-type="ChildRunStarted"]', (items) => items.length)).toBe(7);
    expect(await page.$$eval('#timeline li[data-type="ChildRunSettled"]', (items) => items.length)).toBe(6);
    const summaries = await page.$$eval('#timeline li .summary', (spans) => spans.map((span) => span.textContent));
    expect(summaries).toContain(`implement_all started child ${suffix(childId('implement_all', 2))} for item 2 (attempt 1)`);
    expect(summaries).toContain(`plan started child ${suffix(childId('plan', 0))} (attempt 1)`);
    expect(summaries).toContain(`child ${suffix(childId('plan', 0))} of plan completed`);
    await page.screenshot({ path: join(SCREENSHOTS, 'viewer-epic.png'), fullPage: true });

    const item = childId('implement_all', 2);
    await page.click(`#children tr[data-run-id="${item}"] a`);
    await waitForRunPage(item);
    expect(page.url()).toBe(`${viewer.url}${runHref(item)}`);
    expect(await page.textContent('.run-head h2')).toBe('ivtr completed');
    expect(await page.textContent('.run-head .ids')).toMatch(new RegExp(`^run ${item.replace(/\./g, '\\.')} · `));
    expect(await page.$('#children')).toBeNull();
    // Its first event names the item's task.
    await page.click('#timeline li[data-type="RunStarted"]');
    expect(JSON.parse((await page.textContent('#context')) ?? '{}')).toMatchObject({ context: { taskId: 'EPIC-1-T3' } });
  });

  it("a child's page links to its parent, and the link returns to the epic", async () => {
    const item = childId('implement_all', 2);
    await openRun(item);
    expect(await page.textContent('#parent-run')).toBe('child run of epic (node implement_all, item 2) · running');
    expect(await page.getAttribute('#parent-run', 'data-run-id')).toBe(root);
    expect(await page.getAttribute('#parent-run a', 'href')).toBe(runHref(root));
    expect(await page.getAttribute('#parent-run a', 'title')).toBe(root);
    await page.click('#parent-run a');
    await waitForRunPage(root);
    expect(page.url()).toBe(`${viewer.url}${runHref(root)}`);
    expect(await page.textContent('.run-head h2')).toBe('epic running');
    expect(await page.$$eval('#children tbody tr', (trs) => trs.length)).toBe(7);
  });

  it("the epic's graph draws its playbook and map nodes as subroutines, visible, with what each runs", async () => {
    await openRun(root);
    const chart = await page.$eval('#chart', (svg) => { const { x, y, width, height } = svg.getBoundingClientRect(); return { x, y, width, height }; });
    const nodes = await page.$$eval('#chart g.node', (groups) =>
      groups.map((g) => {
        const { x, y, width, height } = g.getBoundingClientRect();
        return {
          node: g.getAttribute('data-node'),
          type: ['playbook', 'map', 'final'].filter((type) => g.classList.contains(type)),
          id: g.querySelector('.node-id')?.textContent,
          detail: g.querySelector('.node-detail')?.textContent ?? null,
          bars: g.querySelectorAll('line.subroutine-bar').length,
          box: { x, y, width, height },
        };
      }),
    );
    expect(nodes.map(({ box: _box, ...rest }) => rest)).toEqual([
      { node: 'plan', type: ['playbook'], id: 'plan', detail: 'runs rcasd.cantbook', bars: 2 },
      { node: 'implement_all', type: ['map'], id: 'implement_all', detail: 'map tasks → ivtr.cantbook (≤ 3)', bars: 2 },
      { node: 'release', type: ['playbook'], id: 'release', detail: 'runs release.cantbook', bars: 2 },
      { node: '@completed', type: ['final'], id: 'completed', detail: null, bars: 0 },
      { node: '@failed', type: ['final'], id: 'failed', detail: null, bars: 0 },
      { node: '@exceeded_iteration_cap', type: ['final'], id: 'exceeded_iteration_cap', detail: null, bars: 0 },
      { node: '@cancelled', type: ['final'], id: 'cancelled', detail: null, bars: 0 },
    ]);
    for (const { node, box } of nodes) {
      expect(await page.isVisible(`#chart g.node[data-node="${node}"]`), node).toBe(true);
      expect(box.width, node).toBeGreaterThan(100);
      expect(box.height, node).toBeGreaterThan(30);
      expect(box.x >= chart.x && box.y >= chart.y && box.x + box.width <= chart.x + chart.width + 1 && box.y + box.height <= chart.y + chart.height + 1, `${node} inside the chart`).toBe(true);
    }
    // Each subroutine bar runs the height of its box, inside it.
    const bars = await page.$$eval('#chart g.node[data-node="implement_all"] line.subroutine-bar', (lines) => lines.map((line) => { const { x, height } = line.getBoundingClientRect(); return { x, height }; }));
    const map = nodes.find((n) => n.node === 'implement_all')?.box as { x: number; width: number; height: number };
    expect(bars).toHaveLength(2);
    for (const bar of bars) {
      expect(bar.x).toBeGreaterThan(map.x);
      expect(bar.x).toBeLessThan(map.x + map.width);
      expect(Math.abs(bar.height - map.height)).toBeLessThan(2);
    }
    expect(await page.$$eval('#chart g.edge.next', (edges) => edges.map((e) => [e.getAttribute('data-from'), e.getAttribute('data-to')]))).toEqual([
      ['plan', 'implement_all'],
      ['implement_all', 'release'],
      ['release', '@completed'],
    ]);
    // The epic waits in its release node (the child's gate); plan and implement_all are done.
    const states = await page.$$eval('#chart g.node', (groups) => Object.fromEntries(groups.map((g) => [g.getAttribute('data-node'), [g.getAttribute('data-active'), g.getAttribute('data-state')]])));
    expect(states).toEqual({
      plan: ['false', 'done'],
      implement_all: ['false', 'done'],
      release: ['true', 'running'],
      '@completed': ['false', ''],
      '@failed': ['false', ''],
      '@exceeded_iteration_cap': ['false', ''],
      '@cancelled': ['false', ''],
    });
  });

  it("approving the gate on the release child's page finishes the release, then the epic", async () => {
    const release = childId('release', 0);
    await page.click(`#children tr[data-run-id="${release}"] a`);
    await waitForRunPage(release);
    await page.waitForSelector('#gate[data-kind="approval"]', WAIT);
    expect(await page.textContent('#gate .prompt')).toContain('Publish version 1.0.0');
    await page.fill('#token', token);
    await page.fill('#approver', 'ana');
    await page.click('#approve');
    await page.waitForSelector('#notice', WAIT);
    // The result is the highest run the approval drove on: the epic.
    expect(await page.textContent('#notice')).toBe('Approved by ana; the run is completed.');
    expect(await page.textContent('.run-head h2')).toBe('release completed');
    expect(await page.textContent('#parent-run')).toBe('child run of epic (node release) · completed');

    await page.click('#parent-run a');
    await waitForRunPage(root);
    expect(await page.textContent('.run-head h2')).toBe('epic completed');
    expect((await childRows()).map((row) => [row[0], row[4], row[6]])).toEqual(childIds().map((id) => [id, 'completed', '–']));
    expect(await page.$$eval('#timeline li[data-type="ChildRunSettled"]', (items) => items.length)).toBe(7);
    expect(await page.getAttribute('#chart g.node[data-node="@completed"]', 'data-active')).toBe('true');

    await page.click('.run-head a.back');
    await page.waitForSelector(`#runs tr[data-run-id="${root}"] [data-status="completed"]`, WAIT);
    expect((await runRows()).map((row) => row.status)).toEqual(Array(8).fill('completed'));
    expect(await page.textContent('main')).toContain('No gate is waiting for a decision.');
  });
});
