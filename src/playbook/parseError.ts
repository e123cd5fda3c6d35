/**
 * The one error `parsePlaybook` throws.
 */
import { CantbookError, E_PLAYBOOK_PARSE } from '../errors.js';
import { formatIssue } from './formatIssues.js';
import type { PlaybookIssue } from './types.js';

/**
 * A playbook failed to parse or validate. Carries **every** issue found, sorted
 * by position.
 *
 * `code` is `E_PLAYBOOK_PARSE` and `exitCode` 70. The message names the number of
 * issues and the first one; use `formatIssue` on `issues` for the full report.
 */
export class PlaybookParseError extends CantbookError {
  declare readonly code: typeof E_PLAYBOOK_PARSE;
  readonly issues: PlaybookIssue[];
  readonly fileName?: string;

  constructor(issues: readonly PlaybookIssue[], fileName?: string) {
    const [first] = issues;
    const count = `${issues.length} issue${issues.length === 1 ? '' : 's'}`;
    const summary = first === undefined ? '' : `; first: ${formatIssue(first, fileName)}`;
    super(E_PLAYBOOK_PARSE, `invalid playbook ${fileName ?? '<playbook>'}: ${count}${summary}`, {
      issueCount: issues.length,
      ...(fileName === undefined ? {} : { fileName }),
    });
    this.name = 'PlaybookParseError';
    this.issues = [...issues];
    if (fileName !== undefined) this.fileName = fileName;
  }
}
