/**
 * Every error code the source can raise (any quoted `E_*` literal under src/)
 * is explained in docs/errors.md, and docs/cli.md's exit-code table gives each
 * code a command can print the same exit code as src/errors.ts, the CLI's own
 * constants and docs/errors.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { E_INTERNAL, INTERNAL_EXIT_CODE } from '../../../src/cli/cliErrors.js';
import { CONFIG_EXIT_CODE, E_CONFIG_INVALID } from '../../../src/cli/configFile.js';
import { exitCodes } from '../../../src/errors.js';

const root = join(import.meta.dirname, '..', '..', '..');

/** `| `CODE` | exit | ...` rows of a markdown table, as code -> exit cell. */
function codeRows(doc: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of doc.split('\n')) {
    const match = /^\| `(E_[A-Z0-9_]+)` \| ([^|]+?) \|/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) rows.set(match[1], match[2]);
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const errorsDoc = codeRows(readFileSync(join(root, 'docs', 'errors.md'), 'utf8'));
const cliDoc = codeRows(readFileSync(join(root, 'docs', 'cli.md'), 'utf8'));
const codesInSource = [...new Set(sourceFiles(join(root, 'src')).flatMap((file) => [...readFileSync(file, 'utf8').matchAll(/['"`](E_[A-Z0-9_]+)['"`]/g)].map((match) => match[1] ?? '')))].sort();
/** What the CLI itself exits with, per code. */
const cliExitCodes: Record<string, number> = { ...exitCodes, [E_CONFIG_INVALID]: CONFIG_EXIT_CODE, [E_INTERNAL]: INTERNAL_EXIT_CODE };

describe('error codes in the docs', () => {
  it('finds the codes the CLI adds to src/errors.ts', () => {
    expect(codesInSource).toEqual(expect.arrayContaining([...Object.keys(exitCodes), E_CONFIG_INVALID, E_INTERNAL]));
  });

  it.each(codesInSource)('docs/errors.md explains %s', (code) => {
    expect(errorsDoc.has(code)).toBe(true);
  });

  it.each(Object.entries(cliExitCodes))('docs/errors.md and docs/cli.md give %s exit %i', (code, exit) => {
    expect({ errors: errorsDoc.get(code), cli: cliDoc.get(code) }).toEqual({ errors: String(exit), cli: String(exit) });
  });

  it('docs/cli.md lists every code a command can exit with, with the exit docs/errors.md gives it', () => {
    const printable = [...errorsDoc].filter(([, exit]) => /^\d+$/.test(exit));
    expect(Object.fromEntries([...cliDoc].sort())).toEqual(Object.fromEntries(printable.sort()));
  });
});
