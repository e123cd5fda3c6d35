/** splitCommandLine: POSIX word splitting without a shell. */
import { describe, expect, it } from 'vitest';
import { splitCommandLine } from '../../../src/adapters/commandLine.js';
import { E_ADAPTER_INVALID } from '../../../src/errors.js';

describe('splitCommandLine', () => {
  it.each([
    ['node agent.mjs', ['node', 'agent.mjs']],
    ['  node\tagent.mjs  \n --flag ', ['node', 'agent.mjs', '--flag']],
    [`node 'my agent.mjs' "second arg"`, ['node', 'my agent.mjs', 'second arg']],
    [`echo 'a;b|c' "x && y" '$(whoami)' "\\$HOME"`, ['echo', 'a;b|c', 'x && y', '$(whoami)', '$HOME']],
    [`echo "say \\"hi\\"" 'it'"'"'s'`, ['echo', 'say "hi"', "it's"]],
    [`echo "back\\\\slash" "keep\\n"`, ['echo', 'back\\slash', 'keep\\n']],
    [`echo a\\ b c\\;d`, ['echo', 'a b', 'c;d']],
    [`echo '' ""`, ['echo', '', '']],
    [`echo pre'fix'"ed"`, ['echo', 'prefixed']],
    [`echo 'line1\nline2'`, ['echo', 'line1\nline2']],
    [`echo one \\\n two`, ['echo', 'one', 'two']],
    [`/usr/bin/env KEY=value node --import tsx agent.ts`, ['/usr/bin/env', 'KEY=value', 'node', '--import', 'tsx', 'agent.ts']],
  ])('%j -> %j', (line, words) => {
    expect(splitCommandLine(line)).toEqual(words);
  });

  it.each([
    ['', 'no command is given'],
    ['   ', 'no command is given'],
    [`node 'unclosed`, 'the single quote at offset 5 is never closed'],
    [`node "unclosed`, 'the double quote at offset 5 is never closed'],
    ['node agent\\', 'it ends with a backslash'],
    ['node agent.mjs | tee log', `'|' at offset 15 is shell syntax`],
    ['node a; rm b', `';' at offset 6 is shell syntax`],
    ['node $AGENT', `'$' at offset 5 is shell syntax`],
    ['node a > out', `'>' at offset 7 is shell syntax`],
    [`'' arg`, 'no command is given'],
  ])('refuses %j with E_ADAPTER_INVALID', (line, message) => {
    let caught: unknown;
    try {
      splitCommandLine(line);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: E_ADAPTER_INVALID, exitCode: 78 });
    expect((caught as Error).message).toContain(message);
  });
});
