/**
 * Turning playbook issues into text for people. Pure; kept apart from the
 * validator the way zod keeps formatting apart from its issues.
 */
import type { PlaybookIssue } from './types.js';

/**
 * Renders an issue path the way a reader would write it: `nodes[2].on_failure.max_iterations`.
 *
 * Pure. Numbers become `[n]`; keys that are not plain identifiers are quoted
 * (`env["MY-VAR"]`). The empty path renders as `(root)`.
 */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(root)';
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/**
 * One issue as a line: `file:line:col  CODE  message`.
 *
 * Pure. `fileName` defaults to `<playbook>`; the `:line:col` part is left out
 * when the issue has no position (column defaults to 1 when only the line is known).
 *
 * @example formatIssue({code: 'I_CYCLE', path: ['edges', 3], message: '...', line: 12, column: 5}, 'a.cantbook')
 * // 'a.cantbook:12:5  I_CYCLE  ...'
 */
export function formatIssue(issue: PlaybookIssue, fileName?: string): string {
  const file = fileName ?? '<playbook>';
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  return `${where}  ${issue.code}  ${issue.message}`;
}

/** Every issue, one {@link formatIssue} line each, joined with newlines. Pure. */
export function formatIssues(issues: readonly PlaybookIssue[], fileName?: string): string {
  return issues.map((issue) => formatIssue(issue, fileName)).join('\n');
}
