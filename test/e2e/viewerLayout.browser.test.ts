/**
 * The statechart stays readable, in headless Chromium: for every starter
 * playbook and for a generated 30-node one (branches with labels, retries, an
 * escalation, a gate, a parallel group), the run page's SVG is read back box by
 * box (getBoundingClientRect) and checked: no two node boxes overlap unless a
 * group or lane holds the other, no edge label lies on a box or on another
 * label, every node and every end state of the graph is drawn, with a size,
 * inside the chart. A failed run lights its end state.
 *
 * The runs are real (the library, a store file, an in-process viewer); their
 * agents fail on purpose, so each run ends after a few events. Screenshots:
 * docs/img/viewer-30-nodes.png and viewer-parallel-review.png with
 * CANTBOOK_UPDATE_SCREENSHOTS=1 (`npm run screenshots`), test/.out/ otherwise.
 *
 * Chromium: CANTBOOK_CHROMIUM (default /usr/bin/chromium). A missing browser
 * fails the test; only CANTBOOK_SKIP_BROWSER=1 skips it, explicitly.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executePlaybook, openSqliteStore, parsePlaybook } from '../../src/index.js';
import type { AgentDispatcher, EventStore } from '../../src/index.js';
import { buildRunGraph } from '../../src/cli/ui/runView.js';
import type { RunGraph } from '../../src/cli/ui/runView.js';
import { startUiServer } from '../../src/cli/ui/uiServer.js';
import type { UiServer } from '../../src/cli/ui/uiServer.js';
import { chartProblems, thirtyNodePlaybook } from '../helpers/chartGeometry.js';
import type { Box, ChartBoxes } from '../helpers/chartGeometry.js';
import { repoRoot } from '../helpers/cantbookProcess.js';

const CHROMIUM = process.env.CANTBOOK_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.CANTBOOK_SKIP_BROWSER === '1';
const SCREENSHOTS = process.env.CANTBOOK_UPDATE_SCREENSHOTS === '1' ? join(repoRoot, 'docs', 'img') : join(repoRoot, 'test', '.out', 'screenshots');
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20_000 };
const STARTERS = readdirSync(join(repoRoot, 'starter')).filter((file) => file.endsWith('.cantbook')).sort();

/** Every agent fails for good (`retryable: false`): a run gives up at its first agentic node, or exhausts a child-run node's cap. */
const failing: AgentDispatcher = { dispatch: (request) => ({ status: 'failure', error: `${request.nodeId} fails on purpose`, retryable: false }) };

let dir: string;
let store: EventStore;
let server: UiServer;
let browser: Browser;
let page: Page;
const runs = new Map<string, { runId: string; status: string; graph: RunGraph }>();

/** Runs in the page: the DOM's computed style (the DOM types are not in this project's lib). */
type Styled = { getComputedStyle(element: unknown): { fill: string; visibility: string; display: string } };

/** Every agent succeeds: a review run goes on until its security gate waits, the other branches done. */
const succeeding: AgentDispatcher = { dispatch: (request) => ({ status: 'success', output: { [request.nodeId]: 'done' } }) };

/** Runs `source` once (required inputs filled in) and remembers its run and graph under `name`. */
async function runOnce(name: string, source: string, file: string | null, dispatcher = failing): Promise<void> {
  const { definition } = parsePlaybook(source);
  const initialContext = Object.fromEntries((definition.inputs ?? []).map((input) => [input.name, 'x']));
  const result = await executePlaybook({
    store,
    playbook: definition,
    source,
    initialContext,
    dispatcher,
    ...(file === null ? {} : { playbookId: file, resolvePlaybook: (ref: string, from: { id: string | null }) => {
      const path = resolve(dirname(from.id ?? file), ref);
      return existsSync(path) ? { id: path, source: readFileSync(path, 'utf8') } : null;
    } }),
  });
  runs.set(name, { runId: result.runId, status: result.terminalStatus, graph: buildRunGraph(definition) });
}

/** Opens a run's page and waits until its chart is drawn. */
async function openRun(runId: string): Promise<void> {
  await page.goto(`${server.url}#/runs/${encodeURIComponent(runId)}`);
  await page.waitForSelector(`.run-head .ids:has-text("run ${runId} ·")`, WAIT);
  await page.waitForSelector('#chart g.node', WAIT);
}

/** The chart's boxes as the browser rendered them (page pixels). */
async function drawnBoxes(): Promise<ChartBoxes> {
  const read = await page.$eval('#chart', (chart) => {
    const rect = (element: { getBoundingClientRect(): { x: number; y: number; width: number; height: number } }) => {
      const { x, y, width, height } = element.getBoundingClientRect();
      return { x, y, width, height };
    };
    const all = (selector: string) => [...chart.querySelectorAll(selector)];
    return {
      frame: rect(chart),
      nodes: all('g.node > rect').map((r) => [r.parentElement?.getAttribute('data-node') ?? '', rect(r)] as const),
      lanes: all('g.lane > rect').map((r) => [r.parentElement?.getAttribute('data-branch') ?? '', rect(r)] as const),
      labels: all('g.edge .edge-label').map((text) => {
        const edge = text.parentElement;
        return { edge: `${edge?.getAttribute('data-from')} → ${edge?.getAttribute('data-to')}`, box: rect(text) };
      }),
      hidden: all('g.node').filter((g) => {
        const style = (globalThis as unknown as Styled).getComputedStyle(g);
        return style.visibility === 'hidden' || style.display === 'none';
      }).map((g) => g.getAttribute('data-node')),
    };
  });
  expect(read.hidden).toEqual([]);
  return { frame: read.frame, nodes: new Map<string, Box>(read.nodes), lanes: new Map<string, Box>(read.lanes), labels: read.labels };
}

describe.skipIf(SKIP)('the statechart layout in headless Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install the Debian package (apt-get install chromium), point CANTBOOK_CHROMIUM at one, or set CANTBOOK_SKIP_BROWSER=1 to skip this test on purpose`);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'cantbook-layout-'));
    store = openSqliteStore(join(dir, 'cantbook.db'));
    for (const file of STARTERS) await runOnce(file, readFileSync(join(repoRoot, 'starter', file), 'utf8'), join(repoRoot, 'starter', file), file === 'review.cantbook' ? succeeding : failing);
    await runOnce('thirty', thirtyNodePlaybook().source, null);
    server = await startUiServer({ store, port: 0, dispatcherFor: () => failing, label: 'layout test' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // The session key travels in the fragment once; the page keeps it for the later navigations.
    await page.goto(server.openUrl);
    await page.waitForSelector('#runs', WAIT);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the generated playbook has 30 nodes, branches, retries, an escalation and a parallel group', () => {
    const { graph } = runs.get('thirty') as { graph: RunGraph };
    expect(graph.nodes.filter((node) => node.type !== 'final')).toHaveLength(thirtyNodePlaybook().nodeCount);
    expect(thirtyNodePlaybook().nodeCount).toBe(30);
    expect(graph.edges.filter((edge) => edge.label?.startsWith('when ')).length).toBeGreaterThanOrEqual(4);
    expect(graph.edges.some((edge) => edge.kind === 'retry')).toBe(true);
    expect(graph.edges.some((edge) => edge.kind === 'escalate')).toBe(true);
    expect(graph.branches.map((branch) => branch.id)).toEqual(['security', 'perf', 'docs']);
  });

  it.each([...STARTERS, 'thirty'])('%s: every node and end state drawn, visible, no box over another, no label over a box', async (name) => {
    const { runId, graph } = runs.get(name) as { runId: string; graph: RunGraph };
    await openRun(runId);
    const boxes = await drawnBoxes();
    expect(chartProblems(graph, boxes)).toEqual([]);
    // Each end state is a node the page can highlight, and every drawn edge joins two drawn boxes.
    for (const end of ['@completed', ...graph.ends.map((node) => node.id)]) expect(await page.isVisible(`#chart g.node.final[data-node="${end}"]`), end).toBe(true);
    expect(await page.$$eval('#chart g.edge', (edges) => edges.length)).toBe(graph.edges.length + graph.endEdges.length);
    if (name === 'thirty') await page.screenshot({ path: join(SCREENSHOTS, 'viewer-30-nodes.png'), fullPage: true });
  });

  it('a failed run lights its end state; the node it failed at stays the active one', async () => {
    const { runId, status } = runs.get('thirty') as { runId: string; status: string };
    expect(status).toBe('failed');
    await openRun(runId);
    expect(await page.$$eval('#chart g.node[data-active="true"]', (nodes) => nodes.map((n) => [n.getAttribute('data-node'), n.getAttribute('data-phase')]))).toEqual([['intake', 'failed']]);
    const fill = (id: string) => page.$eval(`#chart g.node[data-node="${id}"] > rect`, (rect) => (globalThis as unknown as Styled).getComputedStyle(rect).fill);
    expect(await fill('@failed')).not.toBe(await fill('@cancelled'));
    expect(await fill('@failed')).toBe(await fill('intake'));
  });

  it('a parallel review: lanes side by side in the group box, each holding its own nodes', async () => {
    const { runId, graph, status } = runs.get('review.cantbook') as { runId: string; status: string; graph: RunGraph };
    expect(status).toBe('pending_approval');
    await openRun(runId);
    await page.waitForSelector('#chart g.node[data-node="sec_gate"][data-active="true"][data-phase="paused"]', WAIT);
    const boxes = await drawnBoxes();
    for (const branch of graph.branches) {
      const lane = boxes.lanes.get(branch.id) as Box;
      for (const node of branch.nodes) {
        const box = boxes.nodes.get(node) as Box;
        expect(box.x >= lane.x && box.x + box.width <= lane.x + lane.width && box.y >= lane.y && box.y + box.height <= lane.y + lane.height, `${node} in lane ${branch.id}`).toBe(true);
      }
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'viewer-parallel-review.png'), fullPage: true });
  });
});
