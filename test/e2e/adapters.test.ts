/**
 * The real adapters behind the real CLI: deterministic nodes as child processes
 * (no shell, output cap, exit codes, timeouts that kill), and agentic nodes
 * through `--agent exec:` (the demo agent), `module:` and `http:`.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../unit/adapters/helpers.js';
import { createCliSession, demoAgent, repoRoot } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
  finalContext: Record<string, unknown>;
  errorContext?: string;
  error?: { cause: string; nodeId?: string; message: string };
}

const node = process.execPath;
/** Arguments a shell would mangle: each must reach the child exactly as written. */
const TRICKY = ['two words', `it's "quoted"`, 'a;b', '$(touch pwned-subst)', '`touch pwned-backtick`', '$HOME', '*', 'x > pwned-redirect', 'line1\nline2', ''];
const TRICKY_INPUT = '$(touch pwned-input); echo "hi" | cat';
const MiB = 1024 * 1024;

let cli: CliSession;

/** Writes a playbook; JSON is valid YAML, which keeps the arguments above exact. */
function playbook(file: string, definition: Record<string, unknown>): string {
  writeFileSync(cli.path(file), JSON.stringify({ version: '1.0', ...definition }, null, 2));
  return file;
}

beforeAll(() => {
  cli = createCliSession();
  playbook('literal.cantbook', {
    name: 'literal-args',
    inputs: [{ name: 'note', required: true }],
    nodes: [
      { id: 'echo_args', type: 'deterministic', command: node, args: ['-e', 'process.stdout.write(JSON.stringify({ argv: process.argv.slice(1) }))', ...TRICKY, '{{inputs.note}}'] },
      { id: 'big_output', type: 'deterministic', command: node, args: ['-e', `process.stdout.write('x'.repeat(${3 * MiB}))`], depends: ['echo_args'] },
    ],
  });
  playbook('exits.cantbook', {
    name: 'exits-nonzero',
    nodes: [{ id: 'fails', type: 'deterministic', command: node, args: ['-e', "process.stderr.write('boom: disk full\\n'); process.exit(3)"], on_failure: { max_iterations: 1 } }],
  });
  const hang = [
    "const { spawn } = require('node:child_process');",
    "const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });",
    "require('node:fs').writeFileSync('hang.pids', JSON.stringify([process.pid, grandchild.pid]));",
    'setInterval(() => {}, 1000);',
  ].join('\n');
  playbook('hangs.cantbook', {
    name: 'hangs',
    nodes: [{ id: 'hangs', type: 'deterministic', command: node, args: ['-e', hang], timeout_ms: 300, on_failure: { max_iterations: 1 } }],
  });
  playbook('plan.cantbook', {
    name: 'plan',
    inputs: [{ name: 'goal', default: 'ship it' }],
    nodes: [{ id: 'plan', type: 'agentic', skill: 'planner', model: 'demo-model', inputs: { goal: '{{inputs.goal}}' } }],
  });
  writeFileSync(
    cli.path('agent.mjs'),
    'export default async (request) => ({ status: "success", output: { plan: { via: "module", agentId: request.agentId, key: request.idempotencyKey, goal: request.bindings.goal, model: request.model } } });\n',
  );
});
afterAll(() => cli.remove());

describe('deterministic nodes: createSubprocessRunner behind cantbook run', () => {
  it('arguments with spaces, quotes, ;, $() and backticks reach the child literally (no shell); huge output is capped', async () => {
    const result = await cli.json<Result>(['run', 'literal.cantbook', '--input', `note=${TRICKY_INPUT}`]);
    expect(result.terminalStatus).toBe('completed');
    expect(result.finalContext.argv).toEqual([...TRICKY, TRICKY_INPUT]);
    expect(readdirSync(cli.dir).filter((name) => name.startsWith('pwned'))).toEqual([]);

    const big = result.finalContext.big_output as { exitCode: number; stdout: string };
    expect(big.exitCode).toBe(0);
    expect(big.stdout.startsWith('x'.repeat(1000))).toBe(true);
    expect(big.stdout.endsWith(`… [truncated: ${2 * MiB} more bytes]`)).toBe(true);
    expect(big.stdout.length).toBeLessThan(MiB + 100);
  });

  it('a non-zero exit is a node failure carrying the exit code and stderr; a timeout kills the child and its children', async () => {
    const [exited, timedOut] = await Promise.all([cli.run(['run', 'exits.cantbook']), cli.run(['run', 'hangs.cantbook'])]);
    // max_iterations 1: the first failure ends the run at its cap (exit 2). The progress line carries the node's error.
    expect({ code: exited.code, stderr: exited.stderr }).toEqual({ code: 2, stderr: '' });
    expect(exited.stdout.split('\n')).toContain(`✗ fails (attempt 1): command '${node}' exited with code 3: boom: disk full`);
    expect(exited.stdout).toMatch(/^✗ run \S+ exceeded its iteration cap at 'fails'/m);

    expect({ code: timedOut.code, stderr: timedOut.stderr }).toEqual({ code: 2, stderr: '' });
    expect(timedOut.stdout.split('\n')).toContain(`✗ hangs (attempt 1): command '${node}' timed out after 300 ms`);
    const pids = JSON.parse(readFileSync(cli.path('hang.pids'), 'utf8')) as number[];
    expect(pids).toHaveLength(2);
    expect(pids.filter(isAlive)).toEqual([]);
  });

  it("ci-gate: templates in a node's env and args are rendered, and the `when` branch follows the input", async () => {
    const gate = join(repoRoot, 'starter', 'ci-gate.cantbook');
    const [quick, full] = await Promise.all([cli.json<Result>(['run', gate]), cli.json<Result>(['run', gate, '--input', 'mode=full'])]);
    expect(quick).toMatchObject({ terminalStatus: 'completed', finalContext: { mode: 'quick', lint: 'ok', suite: 'smoke', gate: 'passed' } });
    expect(full).toMatchObject({ terminalStatus: 'completed', finalContext: { mode: 'full', suite: 'full', gate: 'passed' } });
  });
});

describe('agentic nodes: --agent exec:, module:, http:', () => {
  it('exec: the demo agent fails a node on request (DEMO_AGENT_FAIL); the node is retried, and approve exits 2 when publish exhausts its cap', async () => {
    const env = { DEMO_AGENT_FAIL: 'changelog:1,publish' };
    const paused = await cli.run(['--db', 'fail.db', 'run', join(repoRoot, 'starter', 'release.cantbook'), '--input', 'targetVersion=5.0.0', '--agent', demoAgent], { env });
    expect({ code: paused.code, stderr: paused.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = paused.stdout.split('\n');
    expect(lines).toContain("✗ changelog (attempt 1): demo agent: DEMO_AGENT_FAIL makes 'changelog' fail (attempt 1 of the first 1)");
    expect(lines).toContain('✓ changelog (attempt 2)');
    const token = /^ {2}token: {3}(\S+)$/m.exec(paused.stdout)?.[1] ?? '';

    const approved = await cli.run(['--db', 'fail.db', 'approve', token, '--by', 'gina', '--agent', demoAgent, '--json'], { env });
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 2, stderr: '' });
    expect(JSON.parse(approved.stdout)).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', error: { nodeId: 'publish', cause: 'exceeded_iteration_cap' } });
  });

  it('module: an ESM module of the project gets the request in-process, with the idempotency key runId:nodeId:attempt', async () => {
    const result = await cli.json<Result>(['run', 'plan.cantbook', '--agent', 'module:./agent.mjs']);
    expect(result).toMatchObject({ terminalStatus: 'completed' });
    expect(result.finalContext.plan).toEqual({ via: 'module', agentId: 'planner', key: `${result.runId}:plan:1`, goal: 'ship it', model: 'demo-model' });
  });

  describe('http:', () => {
    const requests: { method: string | undefined; url: string | undefined; headers: IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
    let server: Server;
    let url: string;

    beforeAll(async () => {
      server = createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          requests.push({ method: request.method, url: request.url, headers: request.headers, body });
          const bindings = body.bindings as Record<string, string>;
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ status: 'success', output: { plan: { via: 'http', goal: bindings.goal } } }));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dispatch`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('POSTs the request as JSON with an idempotency-key header and merges the answer', async () => {
      const result = await cli.json<Result>(['run', 'plan.cantbook', '--input', 'goal=release 2.0', '--agent', url]);
      expect(result).toMatchObject({ terminalStatus: 'completed', finalContext: { goal: 'release 2.0', plan: { via: 'http', goal: 'release 2.0' } } });
      expect(requests).toHaveLength(1);
      const [request] = requests;
      expect(request).toMatchObject({ method: 'POST', url: '/dispatch', headers: { 'content-type': 'application/json', 'idempotency-key': `${result.runId}:plan:1` } });
      expect(request?.body).toMatchObject({
        runId: result.runId,
        nodeId: 'plan',
        agentId: 'planner',
        iteration: 1,
        idempotencyKey: `${result.runId}:plan:1`,
        playbookName: 'plan',
        bindings: { goal: 'release 2.0' },
        model: 'demo-model',
      });
      expect(existsSync(cli.path('.cantbook', 'cantbook.db'))).toBe(true);
    });
  });
});
