/** Properties of valid playbooks: they parse, round-trip exactly, and hash by their exact text. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryNodeId, outgoingEdges } from '../../src/playbook/graph.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import { playbookDefinitionArbitrary, playbookToYaml, validPlaybookSourceArbitrary } from './arbitraries/playbookArbitrary.js';

const seed = Number(process.env['FC_SEED'] ?? 20_240_611);
const params = { seed, numRuns: 200 };
console.info(`validPlaybooks: fast-check seed ${seed} (set FC_SEED to change)`);

describe('valid playbooks', () => {
  it('parse back to exactly the generated definition, with or without defaults spelled out', () => {
    fc.assert(fc.property(playbookDefinitionArbitrary(), fc.boolean(), (definition, omitDefaults) => {
      const parsed = parsePlaybook(playbookToYaml(definition, { omitDefaults }));
      expect(parsed.definition).toStrictEqual(definition);
    }), params);
  });

  it('have one entry from which every node is reachable, and at most one default edge per node', () => {
    fc.assert(fc.property(playbookDefinitionArbitrary(), (definition) => {
      const { definition: parsed } = parsePlaybook(playbookToYaml(definition));
      const reached = new Set([entryNodeId(parsed)]);
      for (const id of reached) for (const edge of outgoingEdges(parsed, id)) reached.add(edge.to);
      expect(reached.size).toBe(parsed.nodes.length);
      for (const node of parsed.nodes) {
        expect(outgoingEdges(parsed, node.id).filter((edge) => edge.when === undefined).length).toBeLessThanOrEqual(1);
      }
    }), params);
  });

  it('hash the exact text: identical text, identical hash; any change, a different hash', () => {
    fc.assert(fc.property(validPlaybookSourceArbitrary(), fc.stringMatching(/^[a-z ]{0,12}$/), (source, comment) => {
      const { sourceHash } = parsePlaybook(source);
      expect(sourceHash).toBe(createHash('sha256').update(source).digest('hex'));
      expect(parsePlaybook(source.slice()).sourceHash).toBe(sourceHash);
      const changed = `${source}# ${comment}\n`;
      expect(parsePlaybook(changed).sourceHash).not.toBe(sourceHash);
    }), params);
  });
});
