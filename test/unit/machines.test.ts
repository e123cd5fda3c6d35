/**
 * machines/ holds each starter's compiled machine as Stately Studio source.
 * These tests fail when a starter changes and `npm run machines` was not run,
 * and show that the files are real machines, not just text.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { compilePlaybook, parsePlaybook } from '../../src/index.js';
import { findMachineDrift, REGENERATE_COMMAND, renderMachineFiles, writeMachineFiles } from '../../scripts/generateMachines.js';

const root = join(import.meta.dirname, '..', '..');

/** A scratch copy of starter/ and machines/ to edit without touching the repository. */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cantbook-machines-'));
  cpSync(join(root, 'starter'), join(dir, 'starter'), { recursive: true });
  cpSync(join(root, 'machines'), join(dir, 'machines'), { recursive: true });
  return dir;
}

/** Runs the generator script as `npm run machines` does (tsx), on `dir`. */
function runGenerator(dir: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const tsx = join(root, 'node_modules', '.bin', 'tsx');
  return new Promise((resolve) => {
    execFile(tsx, [join(root, 'scripts', 'generateMachines.ts'), '--root', dir, ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('machines/', () => {
  it('is current: every starter has its machine and every machine its starter', () => {
    const problems = findMachineDrift(root);
    expect(problems, `machines/ drifted from starter/; run \`${REGENERATE_COMMAND}\`:\n${problems.join('\n')}`).toEqual([]);
    expect(renderMachineFiles(root).map((file) => file.path)).toEqual([
      'machines/ci-gate.machine.js',
      'machines/epic.machine.js',
      'machines/ivtr.machine.js',
      'machines/rcasd.machine.js',
      'machines/release.machine.js',
      'machines/review.machine.js',
    ]);
  });

  it('each file names its playbook and sourceHash, then is exactly what `cantbook export --format stately` prints', () => {
    for (const file of renderMachineFiles(root)) {
      const source = readFileSync(join(root, file.playbookPath), 'utf8');
      const { definition, sourceHash } = parsePlaybook(source);
      const text = readFileSync(join(root, file.path), 'utf8');
      const [generated, named, ...rest] = text.split('\n');
      expect(generated).toBe(`// Generated from ${file.playbookPath} by \`npm run machines\`. Do not edit: change the playbook and regenerate.`);
      expect(named).toBe(`// Playbook ${JSON.stringify(definition.name)}, sourceHash ${sourceHash}`);
      expect(rest.join('\n')).toContain("import { createMachine } from 'xstate';\n\nexport const machine = createMachine({\n");
    }
  });

  it("review's file holds its parallel group: a parallel state with one region per branch, as xstate resolves it", async () => {
    const { machine } = (await import(pathToFileURL(join(root, 'machines', 'review.machine.js')).href)) as { machine: AnyStateMachine };
    const running = machine.getStateNodeById('review.active.reviews.running');
    expect(running.type).toBe('parallel');
    expect(Object.keys(running.states)).toEqual(['security', 'perf', 'docs']);
    expect(Object.keys(machine.getStateNodeById('review.active.reviews.running.security.nodes').states)).toEqual(['scan', 'sec_gate']);
  });

  it('each file evaluates to the machine the runtime compiles from its starter', async () => {
    for (const file of renderMachineFiles(root)) {
      const { definition } = parsePlaybook(readFileSync(join(root, file.playbookPath), 'utf8'));
      const { machine } = (await import(pathToFileURL(join(root, file.path)).href)) as { machine: AnyStateMachine };
      const compiled = compilePlaybook(definition);
      expect(machine.id).toBe(definition.name);
      expect(JSON.parse(JSON.stringify(machine.config))).toEqual(JSON.parse(JSON.stringify(compiled.config)));
    }
  });

  it('a starter edited without regenerating is reported, naming the file and the command; regenerating fixes it', () => {
    const dir = scratchCopy();
    scratch.push(dir);
    const release = join(dir, 'starter', 'release.cantbook');
    writeFileSync(release, readFileSync(release, 'utf8').replace(/max_iterations: 1\b/, 'max_iterations: 2'));
    writeFileSync(join(dir, 'starter', 'nightly.cantbook'), 'version: "1.0"\nname: nightly\nnodes:\n  - { id: build, type: deterministic, command: make }\n');
    rmSync(join(dir, 'starter', 'ivtr.cantbook'));

    expect(findMachineDrift(dir)).toEqual([
      'machines/nightly.machine.js is missing for starter/nightly.cantbook: run `npm run machines`',
      'machines/release.machine.js is out of date with starter/release.cantbook: run `npm run machines`',
      'machines/ivtr.machine.js has no starter playbook left: run `npm run machines` (it deletes the file)',
    ]);
    expect(writeMachineFiles(dir)).toEqual({ written: ['machines/nightly.machine.js', 'machines/release.machine.js'], deleted: ['machines/ivtr.machine.js'] });
    expect(findMachineDrift(dir)).toEqual([]);
    expect(readFileSync(join(dir, 'machines', 'release.machine.js'), 'utf8')).not.toBe(readFileSync(join(root, 'machines', 'release.machine.js'), 'utf8'));
  });

  it('`npm run machines -- --check` exits 1 on drift and lists it; `npm run machines` regenerates', async () => {
    const dir = scratchCopy();
    scratch.push(dir);
    const gate = join(dir, 'starter', 'ci-gate.cantbook');
    writeFileSync(gate, `${readFileSync(gate, 'utf8')}\n# a comment changes the sourceHash\n`);
    const drifted = await runGenerator(dir, '--check');
    expect(drifted).toMatchObject({ code: 1, stderr: 'machines/ci-gate.machine.js is out of date with starter/ci-gate.cantbook: run `npm run machines`\n' });
    expect(await runGenerator(dir)).toMatchObject({ code: 0, stdout: 'wrote machines/ci-gate.machine.js\n' });
    expect(findMachineDrift(dir)).toEqual([]);
  });

  it('an invalid starter is reported as error[E_PLAYBOOK_PARSE] with file:line:col, not a stack trace', async () => {
    const dir = scratchCopy();
    scratch.push(dir);
    writeFileSync(join(dir, 'starter', 'broken.cantbook'), 'version: "1.0"\nname: broken\nnodes:\n  - { id: a, type: agentic }\n');
    const result = await runGenerator(dir, '--check');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error\[E_PLAYBOOK_PARSE\]: invalid playbook starter\/broken\.cantbook/);
    expect(result.stderr).toContain('starter/broken.cantbook:4:');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
