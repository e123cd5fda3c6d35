import fc from 'fast-check';
import { stringify } from 'yaml';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import type { PlaybookDefinition } from '../../../src/playbook/types.js';

/** A generated graph: a chain of steps, each a work node, a gate or a group of branches (themselves chains). */
export type Step =
  | { kind: 'work'; cap: number; inject: boolean }
  | { kind: 'gate' }
  | { kind: 'group'; cap: number; failure: 'fail_fast' | 'wait_all'; maxConcurrency: number | null; branches: Step[][] };

export const stepArbitrary: fc.Arbitrary<Step> = fc.letrec<{ step: Step; chain: Step[] }>((tie) => ({
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('work' as const), cap: fc.integer({ min: 0, max: 3 }), inject: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('gate' as const) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('group' as const),
        cap: fc.integer({ min: 0, max: 2 }),
        failure: fc.constantFrom('fail_fast' as const, 'wait_all' as const),
        maxConcurrency: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
        branches: fc.array(tie('chain'), { minLength: 2, maxLength: 3 }),
      }),
    },
  ),
  chain: fc.array(tie('step'), { minLength: 1, maxLength: 3 }),
})).step;

export const chainArbitrary = fc.array(stepArbitrary, { minLength: 1, maxLength: 3 });

/** Turns a generated chain into playbook YAML (ids n1, n2, … and b1, b2, … in document order). */
export function playbookOf(chain: Step[]): { source: string; definition: PlaybookDefinition } {
  let nodes = 0;
  let branches = 0;
  const build = (steps: Step[]): Record<string, unknown>[] => {
    const out: Record<string, unknown>[] = [];
    for (const step of steps) {
      const id = `n${++nodes}`;
      const previous = out.at(-1)?.id as string | undefined;
      const base: Record<string, unknown> = { id, ...(previous === undefined ? {} : { depends: [previous] }) };
      if (step.kind === 'gate') {
        out.push({ ...base, type: 'approval', prompt: `gate ${id}?` });
      } else if (step.kind === 'work') {
        const inject = step.inject ? (out.find((node) => node.type === 'agentic')?.id as string | undefined) : undefined;
        out.push({ ...base, type: 'agentic', skill: 's', on_failure: { max_iterations: step.cap, ...(inject === undefined ? {} : { inject_into: inject }) } });
      } else {
        out.push({
          ...base,
          type: 'parallel',
          failure: step.failure,
          ...(step.maxConcurrency === null ? {} : { max_concurrency: step.maxConcurrency }),
          on_failure: { max_iterations: step.cap },
          branches: step.branches.map((branch) => ({ id: `b${++branches}`, nodes: build(branch) })),
        });
      }
    }
    return out;
  };
  const source = stringify({ version: '1.0', name: 'generated', nodes: build(chain) });
  return { source, definition: parsePlaybook(source).definition };
}
