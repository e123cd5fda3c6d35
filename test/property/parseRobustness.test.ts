/**
 * parsePlaybook never throws anything but PlaybookParseError, for any input: valid
 * playbooks mutated structurally (deleted keys, wrong types) or textually
 * (truncation, insertions, garbage YAML), random strings and random bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { issueCodes } from '../../src/playbook/issues.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import { PlaybookParseError } from '../../src/playbook/parseError.js';
import { playbookDefinitionArbitrary, validPlaybookSourceArbitrary } from './arbitraries/playbookArbitrary.js';

const seed = Number(process.env['FC_SEED'] ?? 7_031_977);
const params = { seed, numRuns: 300 };
console.info(`parseRobustness: fast-check seed ${seed} (set FC_SEED to change)`);

/** Parses; returns normally or with a well-formed PlaybookParseError, and fails the property otherwise. */
function parsesOrRejectsCleanly(source: string): void {
  try {
    parsePlaybook(source);
  } catch (error) {
    if (!(error instanceof PlaybookParseError)) throw new Error(`threw ${String(error)} for ${JSON.stringify(source.slice(0, 200))}`, { cause: error });
    expect(error.issues.length).toBeGreaterThan(0);
    for (const issue of error.issues) {
      expect(issueCodes).toContain(issue.code);
      expect(issue.message).not.toBe('');
      if (issue.line !== undefined) expect(issue.line).toBeGreaterThanOrEqual(1);
      if (issue.column !== undefined) expect(issue.column).toBeGreaterThanOrEqual(1);
    }
  }
}

type Json = unknown;

/** Every path to a value inside `root` (objects and arrays), the root excluded. */
function pathsOf(root: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (Array.isArray(root)) root.forEach((v, i) => { out.push([...prefix, i]); pathsOf(v, [...prefix, i], out); });
  else if (typeof root === 'object' && root !== null) {
    for (const [k, v] of Object.entries(root)) { out.push([...prefix, k]); pathsOf(v, [...prefix, k], out); }
  }
  return out;
}

/** A structural mutation: delete the value at a path, or replace it with an arbitrary JSON value. */
const mutatedDocument = fc.tuple(
  playbookDefinitionArbitrary(), fc.nat(), fc.boolean(), fc.jsonValue({ maxDepth: 2 }),
).map(([definition, pick, remove, replacement]) => {
  const root = structuredClone(definition) as Json;
  const paths = pathsOf(root);
  const path = paths[pick % paths.length] ?? ['name'];
  const parent = path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string | number, Json>)[key], root) as Record<string | number, Json>;
  const key = path.at(-1)!;
  if (remove && Array.isArray(parent)) parent.splice(Number(key), 1);
  else if (remove) delete parent[key];
  else parent[key] = replacement;
  return stringify(root);
});

const yamlNoise = fc.constantFrom(':', '- ', '[', ']', '{', '}', '&a ', '*a', '!!', '|', '>', '#', '"', "'", '\t', '\n', '  ', '---', '...', '%YAML 1.2', '? ', '<<: *a', '@', '`', '\0', '\uFEFF');

/** A textual mutation of valid source: truncate, insert noise or delete a slice. */
const mutatedText = fc.tuple(validPlaybookSourceArbitrary({ maxNodes: 5 }), fc.nat(), fc.nat(), fc.array(yamlNoise, { minLength: 1, maxLength: 4 }), fc.constantFrom('truncate', 'insert', 'delete'))
  .map(([source, a, b, noise, op]) => {
    const i = a % (source.length + 1);
    const j = Math.min(source.length, i + (b % 40));
    if (op === 'truncate') return source.slice(0, i);
    if (op === 'insert') return source.slice(0, i) + noise.join('') + source.slice(i);
    return source.slice(0, i) + source.slice(j);
  });

const randomBytes = fc.uint8Array({ maxLength: 400 }).map((bytes) => new TextDecoder('utf-8', { fatal: false }).decode(bytes));

const garbageYaml = fc.array(fc.oneof(yamlNoise, fc.stringMatching(/^[a-z0-9_ ]{0,8}$/)), { maxLength: 60 }).map((parts) => parts.join(''));

describe('parsePlaybook robustness', () => {
  it('structurally mutated playbooks parse or fail with PlaybookParseError', () => {
    fc.assert(fc.property(mutatedDocument, parsesOrRejectsCleanly), params);
  });

  it('textually mutated playbooks (truncated, noisy, sliced) parse or fail with PlaybookParseError', () => {
    fc.assert(fc.property(mutatedText, parsesOrRejectsCleanly), params);
  });

  it('random strings, bytes and YAML garbage fail with PlaybookParseError', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), randomBytes, garbageYaml), parsesOrRejectsCleanly), params);
  });

  it('arbitrary JSON-ish documents fail or parse cleanly', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => parsesOrRejectsCleanly(stringify(value))), params);
  });

  it('pathological inputs finish quickly', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) bomb.push(`k${i}: &a${i} [${Array(10).fill(i === 1 ? '*a' : `*a${i - 1}`).join(', ')}]`);
    const cases = [
      bomb.join('\n'),
      '['.repeat(50_000),
      `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      `${'{a: '.repeat(5_000)}1${'}'.repeat(5_000)}`,
      Array.from({ length: 3_000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n'),
      `version: "1.0"\nname: big\nnodes:\n${Array.from({ length: 3_000 }, (_, i) => `  - { id: n${i}, type: agentic, skill: s${i > 0 ? `, depends: [n${i - 1}]` : ''} }`).join('\n')}\n`,
      `version: "1.0"\nname: cycles\nnodes:\n${Array.from({ length: 2_000 }, (_, i) => `  - { id: n${i}, type: agentic, skill: s, depends: [n${(i + 1) % 2_000}] }`).join('\n')}\n`,
    ];
    for (const source of cases) {
      const started = performance.now();
      parsesOrRejectsCleanly(source);
      expect(performance.now() - started).toBeLessThan(5_000);
    }
  });
});
