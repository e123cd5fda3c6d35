/** docs/errors.md documents every issue code and every runtime error code with its real exit code. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exitCodes } from '../../../src/errors.js';
import { issueCodes } from '../../../src/playbook/issues.js';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/errors.md'), 'utf8');
const rows = new Map(doc.split('\n').filter((line) => line.startsWith('| `')).map((line) => {
  const cells = line.split(' | ').map((cell) => cell.replace(/^\|? ?`?|`$/g, '').trim());
  return [cells[0] ?? '', cells] as const;
}));

describe('docs/errors.md', () => {
  it.each(issueCodes)('explains %s', (code) => {
    expect(rows.has(code)).toBe(true);
  });

  it.each(Object.entries(exitCodes))('lists %s with exit code %i', (code, exit) => {
    expect(rows.get(code)?.[1]).toBe(String(exit));
  });
});
