/**
 * `cantbook ui` as a process: where it listens, what it prints, how it stops,
 * and its coded failures (documented in docs/errors.md with the inspector's).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E_INSPECTOR_UNREACHABLE, INSPECTOR_EXIT_CODE } from '../../src/cli/inspectionSocket.js';
import { E_UI_UNAVAILABLE, UI_EXIT_CODE } from '../../src/cli/uiCommand.js';
import { E_UI_FORBIDDEN, E_UI_NOT_FOUND } from '../../src/cli/ui/uiServer.js';
import { cliPath, repoRoot, runCantbook, startViewerProcess } from '../helpers/cantbookProcess.js';
import { rawRequest } from '../helpers/uiFixture.js';
import { openSqliteStore } from '../../src/store/sqliteEventStore.js';

let dir: string;
let db: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cantbook-ui-'));
  db = join(dir, 'cantbook.db');
  // The viewer only reads, so it never creates a database: give it one.
  await openSqliteStore(db).close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cantbook ui', () => {
  it('listens on 127.0.0.1, prints the link with its session key, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [cliPath, '--db', db, 'ui', '--port', '0'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        if (stdout.includes('Ctrl-C stops it.')) resolve();
      });
      void exited.then((code) => reject(new Error(`cantbook ui exited (${code}) before it listened: ${stdout}`)));
    });
    const match = /open: http:\/\/127\.0\.0\.1:(\d+)\/#key=([0-9a-f]{64})\n/.exec(stdout);
    expect(match, stdout).not.toBeNull();
    expect(stdout).toContain(`cantbook viewer for ${db}`);
    const port = Number(match?.[1]);
    const page = await rawRequest(port, { path: '/' });
    expect(page.status).toBe(200);
    // The key printed is the one the API wants.
    expect((await rawRequest(port, { path: '/api/runs', headers: { 'x-cantbook-key': match?.[2] as string } })).status).toBe(200);
    expect((await rawRequest(port, { path: '/api/runs' })).status).toBe(401);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('a taken port is error[E_UI_UNAVAILABLE] (exit 69); a bad one is E_USAGE (64)', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const { port } = holder.address() as AddressInfo;
    try {
      const taken = await runCantbook(['--db', db, 'ui', '--port', String(port)]);
      expect(taken.code).toBe(69);
      expect(taken.stderr).toMatch(new RegExp(`^error\\[E_UI_UNAVAILABLE\\]: cannot serve the viewer on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.* \\(pick another --port, or 0 for any free one\\)\\n`));
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    const bad = await runCantbook(['--db', db, 'ui', '--port', '70000', '--json']);
    expect(bad.code).toBe(64);
    expect(JSON.parse(bad.stdout)).toEqual({ error: { code: 'E_USAGE', message: "--port expects a number 0..65535, got '70000'" } });
  });

  it('Ctrl-C (SIGINT) right after it announces itself closes the viewer and exits 0, without the run command\'s interrupt notice', async () => {
    const viewer = await startViewerProcess(db);
    let stderr = '';
    viewer.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    expect(await viewer.stop('SIGINT')).toBe(0);
    expect(stderr).not.toMatch(/interrupted/);
  });

  it('--json prints where it listens, once, as one document', async () => {
    const viewer = await startViewerProcess(db);
    try {
      expect(viewer.info).toEqual({ url: `http://127.0.0.1:${viewer.info.port}/`, openUrl: expect.stringMatching(/#key=[0-9a-f]{64}$/), host: '127.0.0.1', port: viewer.info.port, db });
    } finally {
      expect(await viewer.stop()).toBe(0);
    }
  });
});

describe('the package', () => {
  it('ships the page `cantbook ui` serves and the generated machines', async () => {
    // `npm pack --dry-run` lists what an install gets; scripts are skipped so it neither builds nor writes.
    const listed = await new Promise<string>((resolve, reject) => {
      execFile('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
    const files = (JSON.parse(listed) as { files: { path: string }[] }[])[0]?.files.map((file) => file.path) ?? [];
    expect(files).toEqual(expect.arrayContaining(['viewer/index.html', 'viewer/viewer.js', 'viewer/viewer.css', 'machines/release.machine.js', 'docs/visualize.md']));
  });
});

describe('docs/errors.md', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
  const exitOf = (code: string) => new RegExp(`^\\| \`${code}\` \\| ([^|]+) \\|`, 'm').exec(doc)?.[1]?.trim();

  it('lists the viewer and inspector codes with their exit codes', () => {
    expect(exitOf(E_INSPECTOR_UNREACHABLE)).toBe(String(INSPECTOR_EXIT_CODE));
    expect(exitOf(E_UI_UNAVAILABLE)).toBe(String(UI_EXIT_CODE));
    // HTTP-only codes: no exit code.
    expect(exitOf(E_UI_FORBIDDEN)).toBe('–');
    expect(exitOf(E_UI_NOT_FOUND)).toBe('–');
  });
});
