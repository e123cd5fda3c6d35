import { CantbookError, E_ADAPTER_INVALID } from '../errors.js';

/** Characters a shell would treat as syntax; unquoted, they are refused rather than passed on silently. */
const SHELL_SYNTAX = new Set(['|', '&', ';', '<', '>', '(', ')', '`', '$']);

/**
 * Splits a command line into `[command, ...args]` the way a POSIX shell splits
 * words, without running or expanding anything.
 *
 * - Blanks (space, tab, newline) separate words.
 * - `'...'` keeps everything literally; `"..."` keeps everything except that a
 *   backslash escapes `"`, `\`, `$` and `` ` ``; outside quotes a backslash
 *   escapes any character. `''` and `""` give an empty argument.
 * - There is no shell: no variables, globs, `~`, pipes or redirections. An
 *   unquoted `| & ; < > ( ) $` or backtick is refused so that `a | b` does not
 *   silently become the arguments `|` and `b`; quote it to pass it literally,
 *   or run `sh -c '...'` explicitly.
 *
 * Pure. Throws CantbookError `E_ADAPTER_INVALID` for an empty line, an
 * unclosed quote, a trailing backslash or unquoted shell syntax.
 *
 * @example
 * splitCommandLine(`node agent.mjs --name "my agent" 'a;b'`)
 * // => ['node', 'agent.mjs', '--name', 'my agent', 'a;b']
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  const fail = (what: string): never => {
    throw new CantbookError(E_ADAPTER_INVALID, `cannot split the command line ${JSON.stringify(line)}: ${what}`, { commandLine: line });
  };

  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) fail(`the single quote at offset ${i} is never closed`);
      word += line.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        const c = line[j] as string;
        const next = line[j + 1];
        if (c === '\\' && next !== undefined && '"\\$`'.includes(next)) {
          word += next;
          j++;
        } else if (c === '\\' && next === '\n') {
          j++;
        } else {
          word += c;
        }
      }
      if (j >= line.length) fail(`the double quote at offset ${i} is never closed`);
      i = j;
    } else if (ch === '\\') {
      const next = line[i + 1];
      if (next === undefined) fail('it ends with a backslash');
      if (next !== '\n') word += next;
      else if (word === '') inWord = false;
      i++;
    } else if (SHELL_SYNTAX.has(ch)) {
      fail(`'${ch}' at offset ${i} is shell syntax, but no shell runs this command; quote it to pass it literally, or use sh -c '...'`);
    } else {
      word += ch;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0 || words[0] === '') fail('no command is given');
  return words;
}
