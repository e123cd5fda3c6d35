/**
 * Where the CLI writes: human text or JSON on stdout, errors and hints on
 * stderr. Nothing else in src/cli touches process.stdout/stderr directly, so
 * `--json` mode can promise that stdout holds exactly one JSON document.
 */

/** A stream the CLI writes to (process.stdout / process.stderr, or a test double). */
export interface TextSink {
  write(text: string): unknown;
  /** Present and true on a terminal. */
  isTTY?: boolean;
  /** The terminal's width in characters (0 when the terminal reports no size). */
  columns?: number;
}

/** The CLI's writer for one invocation. */
export interface Output {
  /** True when `--json` was given: stdout carries one JSON document and nothing else. */
  readonly json: boolean;
  /**
   * True when stdout is a terminal that reports a width, so a spinner can
   * redraw its line. A pseudo-terminal without a size (`script` without
   * `stty cols`, `docker exec -t`) reports 0 columns and counts as no terminal.
   */
  readonly tty: boolean;
  readonly stdout: TextSink;
  /** A line of human output on stdout; dropped in JSON mode. */
  line(text?: string): void;
  /** A line on stderr (hints, warnings); dropped in JSON mode unless `always`. */
  note(text: string, options?: { always?: boolean }): void;
  /** The command's JSON result on stdout (JSON mode only; a no-op otherwise). */
  data(value: unknown): void;
}

/**
 * Creates the writer for one invocation.
 *
 * @example
 * const out = createOutput({ json: false, stdout: process.stdout, stderr: process.stderr });
 * out.line('✓ done');
 */
export function createOutput(options: { json: boolean; stdout: TextSink; stderr: TextSink }): Output {
  const { json, stdout, stderr } = options;
  return {
    json,
    // ora divides by the width to know how many lines to clear: 0 columns made it clear forever.
    tty: stdout.isTTY === true && stdout.columns !== 0,
    stdout,
    line(text = '') {
      if (!json) stdout.write(`${text}\n`);
    },
    note(text, { always = false } = {}) {
      if (!json || always) stderr.write(`${text}\n`);
    },
    data(value) {
      if (json) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    },
  };
}

/**
 * Lays rows out as an aligned table with a header row. Pure.
 *
 * Cells are single-line (newlines become spaces); the last column is not padded.
 *
 * @example
 * formatTable(['ID', 'STATUS'], [['r1', 'paused']]);
 * // 'ID  STATUS\nr1  paused'
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const clean = (cell: string): string => cell.replace(/\s*\n\s*/g, ' ');
  const all = [headers, ...rows].map((row) => row.map(clean));
  const widths = headers.map((_, column) => Math.max(...all.map((row) => (row[column] ?? '').length)));
  return all
    .map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/** `label  value` lines with the values aligned. Pure. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${value}`.trimEnd()).join('\n');
}

/** Shortens text to one line of at most `max` characters. Pure. */
export function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * Quotes a word for a POSIX shell when it needs it, so printed commands can be
 * pasted as they are. Pure.
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
