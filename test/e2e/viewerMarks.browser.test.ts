/**
 * The viewer shows SPEC §13's gates as such, in headless Chromium against a
 * real `cantbook ui` over runs real `cantbook run` processes wrote: a pending
 * escalation gate (tagged in the list, its own heading on the run page, noted
 * at the node), a gate its policy auto-passed (noted at the gate's step), and
 * a run that failed contract_violation (its cause and message at the node).
 *
 * Chromium: CANTBOOK_CHROMIUM (default /usr/bin/chromium). A missing browser
 * fails the test; only CANTBOOK_SKIP_BROWSER=1 skips it, explicitly.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AGENT, runCantbook, runCantbookJson, startViewerProcess } from '../helpers/cantbookProcess.js';
import type { ViewerProcess } from '../helpers/cantbookProcess.js';

const CHROMIUM = process.env.CANTBOOK_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.CANTBOOK_SKIP_BROWSER === '1';
const BROWSER_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20_000 };

let dir: string;
let viewer: ViewerProcess;
let browser: Browser;
let page: Page;
const runs: Record<'escalated' | 'autoPassed' | 'plain' | 'violated', string> = { escalated: '', autoPassed: '', plain: '', violated: '' };

/** Opens a run's page (a change of the fragment only) and waits until that run's page, not the previous one, is drawn. */
async function openRun(runId: string): Promise<void> {
  await page.goto(`${viewer.info.url}#/runs/${encodeURIComponent(runId)}`);
  await page.waitForSelector(`.run-head .ids:has-text("run ${runId} ·")`, WAIT);
  await page.waitForSelector('#timeline li', WAIT);
}

describe.skipIf(SKIP)('the viewer marks escalations, auto-passes and contract violations', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install the Debian package (apt-get install chromium), point CANTBOOK_CHROMIUM at one, or set CANTBOOK_SKIP_BROWSER=1 to skip this test on purpose`);
    }
    dir = mkdtempSync(join(tmpdir(), 'cantbook-viewer-marks-'));
    const db = join(dir, 'cantbook.db');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'pnpm'), `#!${process.execPath}\nconsole.log(JSON.stringify({ tests: { passed: 3 } }));\n`);
    chmodSync(join(dir, 'bin', 'pnpm'), 0o755);
    writeFileSync(
      join(dir, 'qa.cantbook'),
      'version: "1.0"\nname: qa\nnodes:\n  - { id: run_tests, type: approval, policy: permissive, prompt: "Run the tests?" }\n  - { id: unit, type: deterministic, command: pnpm, args: [test], depends: [run_tests] }\n',
    );
    writeFileSync(
      join(dir, 'escalate.cantbook'),
      'version: "1.0"\nname: escalate\nerror_handlers:\n  - { on: contract_violation, action: hitl_escalate }\nnodes:\n  - { id: research, type: agentic, skill: s }\n  - { id: plan, type: agentic, skill: s, depends: [research], requires: { fields: [topic] } }\n',
    );

    const run = <T>(args: string[], env: Record<string, string> = {}) => runCantbookJson<T & { runId: string; terminalStatus: string }>(['--db', db, 'run', ...args], env);
    const escalated = await run<object>([join(dir, 'escalate.cantbook'), '--agent', DEMO_AGENT]);
    expect(escalated.terminalStatus).toBe('pending_approval');
    const autoPassed = await run<object>([join(dir, 'qa.cantbook')], { PATH: `${join(dir, 'bin')}${delimiter}${process.env.PATH ?? ''}` });
    expect(autoPassed.terminalStatus).toBe('completed');
    const plain = await run<object>(['starter/release.cantbook', '--input', 'targetVersion=3.0.0', '--agent', DEMO_AGENT]);
    expect(plain.terminalStatus).toBe('pending_approval');
    const violated = await runCantbook(['--db', db, 'run', 'starter/rcasd.cantbook', '--input', 'epicId=EPIC-5', '--agent', DEMO_AGENT, '--json'], { DEMO_AGENT_EMPTY: 'decomposition' });
    expect(violated.code).toBe(1);
    Object.assign(runs, { escalated: escalated.runId, autoPassed: autoPassed.runId, plain: plain.runId, violated: (JSON.parse(violated.stdout) as { runId: string }).runId });

    viewer = await startViewerProcess(db, ['--agent', DEMO_AGENT]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(viewer.info.openUrl);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (viewer) expect(await viewer.stop()).toBe(0);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the pending list tags the escalation gate, and only it', async () => {
    await page.waitForSelector(`#approvals tr[data-run-id="${runs.escalated}"]`, WAIT);
    expect(await page.textContent(`#approvals tr[data-run-id="${runs.escalated}"] .tag.escalation`)).toBe('escalation · contract_violation');
    expect(await page.$(`#approvals tr[data-run-id="${runs.plain}"] .tag`)).toBeNull();
  });

  it("an escalation's run page says so in the gate form, at the node and in the timeline", async () => {
    await openRun(runs.escalated);
    await page.waitForSelector('#gate[data-kind="escalation"]', WAIT);
    expect(await page.textContent('#gate h3')).toBe("Escalation at 'plan' (contract_violation) is waiting for a decision");
    expect(await page.textContent('#gate .prompt')).toContain("requires on 'plan': the context has no 'topic'");
    expect(await page.$eval('#chart g.node[data-node="plan"]', (node) => [node.getAttribute('data-active'), node.getAttribute('data-phase')])).toEqual(['true', 'paused']);
    expect(await page.textContent('#gate-note')).toBe(' · escalation (contract_violation)');
    expect(await page.textContent('#timeline li[data-type="RunPaused"] .summary')).toBe("'plan' escalated to a human (contract_violation)");
    // A plain gate keeps its plain form.
    await openRun(runs.plain);
    await page.waitForSelector('#gate[data-kind="approval"]', WAIT);
    expect(await page.textContent('#gate h3')).toBe("Gate 'approval' is waiting for a decision");
    expect(await page.$('#gate-note')).toBeNull();
  });

  it("an auto-passed gate has no form; its step says it was auto-passed by policy and by which rule", async () => {
    await openRun(runs.autoPassed);
    expect(await page.$('#gate')).toBeNull();
    expect(await page.textContent('#timeline li[data-type="ApprovalGranted"] .summary')).toBe('run_tests auto-passed by policy (rule safe-qa-tool)');
    await page.click('#timeline li[data-type="ApprovalGranted"]');
    await page.waitForSelector('#gate-note', WAIT);
    expect(await page.textContent('#position strong')).toBe('run_tests');
    expect(await page.textContent('#gate-note')).toBe(' · auto-passed by policy (rule safe-qa-tool)');
  });

  it('a run that failed contract_violation shows the cause and the message at the node that broke it', async () => {
    await openRun(runs.violated);
    expect(await page.textContent('#position strong')).toBe('decomposition');
    const error = await page.textContent('#position .error-text');
    expect(error).toBe(' contract_violation: ensures.schema[task_tree] on decomposition: the context has no "task_tree" (the node\'s output must set it)');
    expect(await page.textContent('#timeline li[data-type="ContractViolated"] .summary')).toContain('decomposition broke its contract (schema task_tree)');
  });
});
