/**
 * YAML-level problems as playbook issues: the yaml library's errors, one per
 * location and in plain words, plus the stray lines it accepts as an empty key.
 */
import { isPair, isScalar, visit } from 'yaml';
import type { Document, LineCounter, YAMLError } from 'yaml';
import { describeValue } from './describeValue.js';
import { I_DUPLICATE_KEY, I_YAML_SYNTAX } from './issues.js';
import type { PlaybookIssue } from './types.js';

const implicitKeyHint =
  'YAML reads a map inside this value: it holds ": " (a colon and a space), or the next line is indented further than this key; quote the value, or align the next line with the keys above it';

/** Plain words for the library's messages that name parser internals; others are clear as they are. */
function plainWords(error: YAMLError): string {
  const { code, message } = error;
  switch (code) {
    case 'BLOCK_AS_IMPLICIT_KEY':
      return implicitKeyHint;
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key runs over more than one line (a line indented further than the one before it, or an unclosed quote); put the key on one line and align the next line with its siblings';
    case 'TAB_AS_INDENT':
      return 'a tab indents this line; YAML indents with spaces only';
    case 'MULTIPLE_DOCS':
      return 'a "---" line starts a second YAML document; a playbook is a single document: remove the "---" line or what follows it';
    case 'MISSING_CHAR':
      if (message.includes('"quote')) return 'a double-quoted string is not closed: add the closing "';
      if (message.includes("'quote")) return "a single-quoted string is not closed: add the closing '";
      if (message.includes('without - indicator')) return 'this line is indented like a list item but has no "- " in front: add "- ", or align it with the keys above it';
      return message;
    case 'BAD_INDENT':
      if (message.startsWith('Flow sequence')) return 'a "[" list is not closed: add the "]" (and indent its continuation lines further than its key)';
      if (message.startsWith('Flow map')) return 'a "{" map is not closed: add the "}" (and indent its continuation lines further than its key)';
      if (message.includes('same column')) return 'this line is not aligned with the others of the same map or list: indent it the same';
      return message;
    case 'BAD_SCALAR_START':
      return `${message}; quote the value`;
    default:
      return message;
  }
}

/** The text of the map key starting at `offset`, if there is one. */
function keyTextAt(doc: Document, offset: number): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Offsets of the `:` of every pair whose key is empty in the text: a line such
 * as `  : broken`, which the yaml library reads as a null key. A quoted `""`
 * key is deliberate and is not reported.
 */
function emptyKeyOffsets(doc: Document, source: string): number[] {
  const offsets: number[] = [];
  visit(doc, {
    Pair(_, pair) {
      // The composer gives every parsed pair a key node; an absent key is an empty plain scalar.
      const key = isPair(pair) ? pair.key : null;
      if (isScalar(key) && key.value === null && key.source === '' && key.type === 'PLAIN' && key.range) {
        const colon = source.indexOf(':', key.range[0]);
        offsets.push(colon === -1 ? key.range[0] : colon);
      }
    },
  });
  return offsets;
}

function position(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/**
 * Every YAML-level issue of a parsed document.
 *
 * Pure. A repeated key is `I_DUPLICATE_KEY` naming the key; any other library
 * error is `I_YAML_SYNTAX`, reported once per line and column (the library can
 * report two codes for one mistake) in plain words, without the library's
 * codes; a key-less `: value` line anywhere in the file is `I_YAML_SYNTAX` at
 * its colon. Sorted by position.
 */
export function yamlIssues(doc: Document, lineCounter: LineCounter, source: string): PlaybookIssue[] {
  const issues: PlaybookIssue[] = [];
  const seen = new Set<string>();
  const add = (issue: PlaybookIssue): void => {
    const key = `${issue.code} ${issue.line ?? 0}:${issue.column ?? 0}`;
    if (seen.has(key)) return;
    seen.add(key);
    issues.push(issue);
  };
  for (const error of doc.errors) {
    const [start] = error.pos;
    if (error.code === 'DUPLICATE_KEY') {
      const key = keyTextAt(doc, start);
      add({ code: I_DUPLICATE_KEY, path: [], message: `duplicate key${key === undefined ? '' : ` ${describeValue(key)}`}: keys in a map must be unique`, ...position(lineCounter, start) });
    } else {
      add({ code: I_YAML_SYNTAX, path: [], message: `YAML syntax error: ${plainWords(error)}`, ...position(lineCounter, start) });
    }
  }
  for (const offset of emptyKeyOffsets(doc, source)) {
    add({
      code: I_YAML_SYNTAX, path: [], ...position(lineCounter, offset),
      message: 'YAML syntax error: a line starts with ":" and no key, which YAML would read as an empty key; write the key before the colon, or fix the indentation of the line',
    });
  }
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
