import { describe, expect, it } from 'vitest';
import { E_PLAYBOOK_PARSE, hasCode } from '../../../src/errors.js';
import { formatIssue, formatIssues, formatPath } from '../../../src/playbook/formatIssues.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { PlaybookParseError } from '../../../src/playbook/parseError.js';

describe('formatIssue', () => {
  it('prints file:line:col  CODE  message', () => {
    expect(formatIssue({ code: 'I_CYCLE', path: ['edges', 3], message: 'cycle', line: 12, column: 5 }, 'a.cantbook'))
      .toBe('a.cantbook:12:5  I_CYCLE  cycle');
  });

  it('uses <playbook> without a file name and drops a missing position', () => {
    expect(formatIssue({ code: 'I_X', path: [], message: 'm' })).toBe('<playbook>  I_X  m');
    expect(formatIssues([{ code: 'A', path: [], message: 'm', line: 1 }, { code: 'B', path: [], message: 'n', line: 2, column: 3 }], 'f'))
      .toBe('f:1:1  A  m\nf:2:3  B  n');
  });
});

describe('formatPath', () => {
  it('writes paths as a reader would', () => {
    expect(formatPath(['nodes', 2, 'on_failure', 'max_iterations'])).toBe('nodes[2].on_failure.max_iterations');
    expect(formatPath(['nodes', 0, 'env', 'MY-VAR'])).toBe('nodes[0].env["MY-VAR"]');
    expect(formatPath([])).toBe('(root)');
  });
});

describe('PlaybookParseError', () => {
  it('carries code, exit code, file name, issues and a summary', () => {
    let caught: unknown;
    try {
      parsePlaybook('version: "1.0"\nname: t\nnodes: []\nextra: 1\n', { fileName: 'x.cantbook' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PlaybookParseError);
    const error = caught as PlaybookParseError;
    expect(hasCode(error, E_PLAYBOOK_PARSE)).toBe(true);
    expect(error.exitCode).toBe(70);
    expect(error.fileName).toBe('x.cantbook');
    expect(error.issues).toHaveLength(2);
    expect(error.message).toBe('invalid playbook x.cantbook: 2 issues; first: x.cantbook:3:8  I_INVALID_VALUE  nodes: expected a non-empty list, found an empty list');
  });
});
