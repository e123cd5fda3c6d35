/** Helpers for playbook tests: write YAML inline, collect the issues a parse reports. */
import { expect } from 'vitest';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { PlaybookParseError } from '../../../src/playbook/parseError.js';
import type { ParsedPlaybook, PlaybookIssue } from '../../../src/playbook/types.js';

/** Template tag that strips the first newline and the common indentation, so line numbers read naturally. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const indents = text.split('\n').filter((line) => line.trim() !== '').map((line) => /^ */.exec(line)?.[0].length ?? 0);
  const common = Math.min(...indents);
  return text.split('\n').map((line) => line.slice(common)).join('\n');
}

/** Every issue a rejected source carries; fails the test when the source is accepted. */
export function issuesOf(source: string): PlaybookIssue[] {
  try {
    parsePlaybook(source);
  } catch (error) {
    if (error instanceof PlaybookParseError) return [...error.issues];
    throw error;
  }
  throw new Error(`expected the playbook to be rejected:\n${source}`);
}

/** The single issue with `code`; fails when there is not exactly one. */
export function theIssue(source: string, code: string): PlaybookIssue {
  const all = issuesOf(source);
  const matching = all.filter((issue) => issue.code === code);
  expect(matching, JSON.stringify(all, null, 2)).toHaveLength(1);
  return matching[0]!;
}

/** Parses a source that must be valid, showing the issues when it is not. */
export function accepted(source: string): ParsedPlaybook {
  try {
    return parsePlaybook(source);
  } catch (error) {
    if (error instanceof PlaybookParseError) throw new Error(`expected a valid playbook, got:\n${JSON.stringify(error.issues, null, 2)}`);
    throw error;
  }
}

/** The issue codes of a rejected source, in report order. */
export function codesOf(source: string): string[] {
  return issuesOf(source).map((issue) => issue.code);
}
