/**
 * `{{...}}` templates used in approval prompts, agentic `inputs` bindings and
 * deterministic `args`/`cwd`/`env` (`cwd` and `env` read `{{inputs.*}}` only;
 * `command` is never rendered).
 *
 * `{{inputs.name}}` reads the run's inputs; `{{key}}` and `{{a.b}}` read the run
 * context by dotted path. Whitespace inside the braces is ignored. Templates never
 * read the environment, and a placeholder that does not resolve stays literal.
 */

/** What a template is rendered against. */
export interface TemplateScope {
  /** The run's inputs (declared defaults applied). */
  inputs: Readonly<Record<string, unknown>>;
  /** The current run context. */
  context: Readonly<Record<string, unknown>>;
}

const placeholderPattern = /\{\{([^{}]*)\}\}/g;

/** Splits the text between braces into `{source, path}`; `null` when it is not a dotted path. */
function parsePlaceholder(body: string): { source: 'inputs' | 'context'; path: string[] } | null {
  const segments = body.trim().split('.').map((s) => s.trim());
  if (segments.some((s) => s === '')) return null;
  if (segments.length > 1 && segments[0] === 'inputs') return { source: 'inputs', path: segments.slice(1) };
  return { source: 'context', path: segments };
}

/** Reads a dotted path through own properties only (never the prototype chain). */
function readPath(root: unknown, path: readonly string[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Strings as they are; everything else as JSON; `undefined` when it cannot be rendered. */
function renderValue(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    // Circular structures and BigInts have no JSON form; keep the placeholder.
    return undefined;
  }
}

/**
 * Renders every `{{...}}` placeholder in `text`.
 *
 * Pure; never throws. `{{inputs.x}}` and `{{inputs.x.y}}` read `scope.inputs`,
 * any other dotted path reads `scope.context`. Strings are inserted as they are,
 * other values as JSON (`null`, `3`, `{"a":1}`). Placeholders that do not
 * resolve (missing key, empty segment) are left exactly as written.
 *
 * @example renderTemplate('Ship {{inputs.v}} to {{ target.env }}', {inputs: {v: '1.2'}, context: {target: {env: 'prod'}}})
 * // 'Ship 1.2 to prod'
 */
export function renderTemplate(text: string, scope: TemplateScope): string {
  if (typeof text !== 'string') return text;
  return text.replace(placeholderPattern, (whole, body: string) => {
    const placeholder = parsePlaceholder(body);
    if (placeholder === null) return whole;
    const root = placeholder.source === 'inputs' ? scope.inputs : scope.context;
    return renderValue(readPath(root, placeholder.path)) ?? whole;
  });
}

/**
 * Lists the input names that `{{inputs.name...}}` placeholders in `text` refer to.
 *
 * Pure. Names appear once each, in order of first use. Used by the validator to
 * reject templates naming undeclared inputs.
 *
 * @example templateInputRefs('{{inputs.a}} {{ctx}} {{ inputs.b.c }} {{inputs.a}}') // ['a', 'b']
 */
export function templateInputRefs(text: string): string[] {
  if (typeof text !== 'string') return [];
  const names = new Set<string>();
  for (const match of text.matchAll(placeholderPattern)) {
    const placeholder = parsePlaceholder(match[1] ?? '');
    const name = placeholder?.source === 'inputs' ? placeholder.path[0] : undefined;
    if (name !== undefined) names.add(name);
  }
  return [...names];
}

/**
 * Lists the context placeholders (anything but `{{inputs.name...}}`) in `text`,
 * as written between the braces, trimmed.
 *
 * Pure. Used by the validator to keep deterministic `cwd` and `env` independent
 * of what agents wrote into the context.
 *
 * @example templateContextRefs('{{inputs.a}}/{{ workdir }}/{{a.b}}') // ['workdir', 'a.b']
 */
export function templateContextRefs(text: string): string[] {
  if (typeof text !== 'string') return [];
  const refs = new Set<string>();
  for (const match of text.matchAll(placeholderPattern)) {
    const placeholder = parsePlaceholder(match[1] ?? '');
    if (placeholder?.source === 'context') refs.add(placeholder.path.join('.'));
  }
  return [...refs];
}

/** True when `text` holds any `{{...}}` placeholder a render would replace. Pure. */
export function hasTemplate(text: string): boolean {
  if (typeof text !== 'string') return false;
  for (const match of text.matchAll(placeholderPattern)) if (parsePlaceholder(match[1] ?? '') !== null) return true;
  return false;
}
