/** evaluatePolicy and DEFAULT_POLICY_RULES (SPEC §13): every default rule, the default decision, require-human first, the frozen list. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY_RULES, evaluatePolicy, I_POLICY_RULE_INVALID, policyRuleIssues,
} from '../../../src/policy/evaluatePolicy.js';
import type { PolicyRule } from '../../../src/policy/evaluatePolicy.js';

/** Each default rule by reason, with command lines it must decide and ones it must leave to other rules. */
const cases: { reason: string; action: 'require-human' | 'auto-approve'; matches: string[]; misses: string[] }[] = [
  {
    reason: 'publish', action: 'require-human',
    matches: ['npm publish', 'pnpm publish --access public', 'yarn publish', 'npx pnpm  publish', 'cd pkg && npm publish'],
    misses: ['npm run publish-docs', 'npm publisher', 'npm pack', 'bun publish'],
  },
  {
    reason: 'push', action: 'require-human',
    matches: ['git push', 'git push origin main --force', 'env GIT_TRACE=1 git  push'],
    misses: ['git pull', 'git pushd', 'gitpush'],
  },
  {
    reason: 'tag', action: 'require-human',
    matches: ['git tag v1.0.0', 'git tag -d v1'],
    misses: ['git tags', 'git log --tags'],
  },
  {
    reason: 'release', action: 'require-human',
    matches: ['gh release create v1.0.0', 'gh  release  create v2 --notes x'],
    misses: ['gh release list', 'gh release view v1'],
  },
  {
    reason: 'workflow-trigger', action: 'require-human',
    matches: ['gh workflow run deploy.yml', 'gh workflow run ci --ref main'],
    misses: ['gh workflow list', 'gh run list'],
  },
  {
    reason: 'destructive', action: 'require-human',
    matches: ['rm -rf dist', 'RM -RF /', 'psql -c "DROP TABLE users"', 'psql -c "drop table users"', 'sqlite3 db "TRUNCATE logs"', 'mysql -e "Delete From t"', 'rm -rfv build'],
    misses: ['rm file.txt', 'rm -r dist', 'drop tables.txt', 'echo truncated', 'delete-from-list'],
  },
  {
    reason: 'external-api', action: 'require-human',
    matches: ['curl https://api.example.com', 'curl -s http://localhost:8080/x', 'wget https://x.test/a.tgz', 'fetch --url https://x'],
    misses: ['curl --version', 'wget -h', 'git fetch origin', 'echo https://example.com'],
  },
  {
    reason: 'remote-access', action: 'require-human',
    matches: ['ssh deploy@prod.example.com', 'scp dist.tgz me@host:/srv', 'rsync -a ./ ci@box:/w'],
    misses: ['ssh-keygen -t ed25519', 'scp --help', 'rsync -a src/ dst/', 'echo me@example.com'],
  },
  {
    reason: 'safe-qa-tool', action: 'auto-approve',
    matches: ['pnpm test', 'pnpm test -- --run', 'pnpm run test', 'pnpm biome check .', 'pnpm tsc --noEmit'],
    misses: ['npm test', 'pnpm testing', 'pnpm run build', 'cd x && pnpm test', 'pnpm install'],
  },
  {
    reason: 'safe-cleo-read', action: 'auto-approve',
    matches: ['cleo verify', 'cleo check T1', 'cleo show T12', 'cleo find auth', 'cleo list', 'cleo status', 'cleo current', 'cleo next'],
    misses: ['cleo add T1', 'cleo complete T1', 'cleo delete T1', 'xcleo show', 'cleo shows'],
  },
];

describe('DEFAULT_POLICY_RULES', () => {
  it('holds exactly the rules of SPEC §13, in order', () => {
    expect(DEFAULT_POLICY_RULES.map((rule) => [rule.action, rule.reason])).toEqual([
      ['require-human', 'publish'], ['require-human', 'push'], ['require-human', 'tag'], ['require-human', 'release'],
      ['require-human', 'workflow-trigger'], ['require-human', 'destructive'], ['require-human', 'external-api'],
      ['require-human', 'remote-access'], ['auto-approve', 'safe-qa-tool'], ['auto-approve', 'safe-cleo-read'],
    ]);
    expect(cases.map((c) => c.reason)).toEqual(DEFAULT_POLICY_RULES.map((rule) => rule.reason));
  });

  it('only the destructive rule is case-insensitive, and no rule carries a stateful flag', () => {
    expect(DEFAULT_POLICY_RULES.filter((rule) => rule.pattern.ignoreCase).map((rule) => rule.reason)).toEqual(['destructive']);
    expect(DEFAULT_POLICY_RULES.some((rule) => rule.pattern.global || rule.pattern.sticky)).toBe(false);
  });

  it('is frozen: the list and each rule refuse changes (strict mode throws)', () => {
    expect(Object.isFrozen(DEFAULT_POLICY_RULES)).toBe(true);
    expect(DEFAULT_POLICY_RULES.every((rule) => Object.isFrozen(rule))).toBe(true);
    const rules = DEFAULT_POLICY_RULES as PolicyRule[];
    expect(() => rules.push({ pattern: /.*/, action: 'auto-approve', reason: 'anything' })).toThrow(TypeError);
    expect(() => { rules[0] = { pattern: /x/, action: 'auto-approve', reason: 'x' }; }).toThrow(TypeError);
    expect(() => { (rules[0] as { action: string }).action = 'auto-approve'; }).toThrow(TypeError);
    expect(() => { (rules[8] as { pattern: RegExp }).pattern = /.*/; }).toThrow(TypeError);
    expect(() => rules.splice(0, 8)).toThrow(TypeError);
    expect(evaluatePolicy('npm publish').action).toBe('require-human');
  });
});

describe('evaluatePolicy with the default rules', () => {
  describe.each(cases)('$reason', ({ reason, action, matches, misses }) => {
    const pattern = DEFAULT_POLICY_RULES.find((rule) => rule.reason === reason)!.pattern.source;

    it.each(matches)('decides %j', (command) => {
      expect(evaluatePolicy(command)).toEqual({ action, reason, matchedPattern: pattern });
    });

    it.each(misses)('leaves %j to other rules', (command) => {
      expect(evaluatePolicy(command).reason).not.toBe(reason);
    });
  });

  it('requires a human for a command no rule matches, without matchedPattern', () => {
    for (const command of ['make build', 'node script.js', '', 'npm test', 'ls -la']) {
      const result = evaluatePolicy(command);
      expect(result).toEqual({ action: 'require-human', reason: 'default' });
      expect(Object.hasOwn(result, 'matchedPattern')).toBe(false);
    }
  });

  it('lets a require-human rule win over an auto-approve rule matching the same line', () => {
    expect(evaluatePolicy('pnpm test && git push')).toMatchObject({ action: 'require-human', reason: 'push' });
    expect(evaluatePolicy('cleo show T1; curl https://evil.test')).toMatchObject({ action: 'require-human', reason: 'external-api' });
    expect(evaluatePolicy('pnpm run test -- rm -rf /')).toMatchObject({ action: 'require-human', reason: 'destructive' });
  });

  it('among require-human rules, the first in list order decides', () => {
    expect(evaluatePolicy('git tag v1 && git push --tags').reason).toBe('push');
    expect(evaluatePolicy('npm publish && git push').reason).toBe('publish');
  });
});

describe('evaluatePolicy with host rules', () => {
  const allowAll: PolicyRule = { pattern: /.*/, action: 'auto-approve', reason: 'allow-all' };
  const blockMake: PolicyRule = { pattern: /^make\s+deploy\b/, action: 'require-human', reason: 'deploy' };
  const allowMake: PolicyRule = { pattern: /^make\b/, action: 'auto-approve', reason: 'make' };

  it('tests every require-human rule before any auto-approve rule, wherever it sits', () => {
    const rules = [allowAll, allowMake, ...DEFAULT_POLICY_RULES, blockMake];
    expect(evaluatePolicy('make deploy', rules)).toEqual({ action: 'require-human', reason: 'deploy', matchedPattern: blockMake.pattern.source });
    expect(evaluatePolicy('npm publish', rules)).toMatchObject({ action: 'require-human', reason: 'publish' });
    expect(evaluatePolicy('make build', rules)).toEqual({ action: 'auto-approve', reason: 'allow-all', matchedPattern: '.*' });
  });

  it('takes the first matching auto-approve rule in list order', () => {
    expect(evaluatePolicy('make build', [allowMake, allowAll]).reason).toBe('make');
    expect(evaluatePolicy('make build', [allowAll, allowMake]).reason).toBe('allow-all');
  });

  it('uses only the rules given: an empty list decides default for everything', () => {
    expect(evaluatePolicy('pnpm test', [])).toEqual({ action: 'require-human', reason: 'default' });
    expect(evaluatePolicy('npm publish', [allowAll])).toMatchObject({ action: 'auto-approve', reason: 'allow-all' });
  });

  it('gives the same answer every time for a regex with the g or y flag', () => {
    const rules: PolicyRule[] = [{ pattern: /^make/g, action: 'auto-approve', reason: 'make' }, { pattern: /deploy/y, action: 'require-human', reason: 'deploy' }];
    const answers = Array.from({ length: 4 }, () => evaluatePolicy('make build', rules).action);
    expect(answers).toEqual(['auto-approve', 'auto-approve', 'auto-approve', 'auto-approve']);
    expect(rules[0]!.pattern.lastIndex).toBe(0);
  });

  it('throws TypeError for a malformed rule or a command that is not a string', () => {
    expect(() => evaluatePolicy('make', [{ pattern: /make/, action: 'require_human', reason: 'typo' } as unknown as PolicyRule])).toThrow(/rules\[0\]\.action: expected "require-human" or "auto-approve", found "require_human"/);
    expect(() => evaluatePolicy('make', [{ pattern: 'make', action: 'auto-approve', reason: 'x' } as unknown as PolicyRule])).toThrow(TypeError);
    expect(() => evaluatePolicy(42 as unknown as string)).toThrow(/expected the command line as a string, found number/);
  });
});

describe('policyRuleIssues', () => {
  it('accepts the default rules and a well-formed host list', () => {
    expect(policyRuleIssues(DEFAULT_POLICY_RULES)).toEqual([]);
    expect(policyRuleIssues([{ pattern: /^make/, action: 'auto-approve', reason: 'make' }])).toEqual([]);
  });

  it('reports every bad field with its path and code', () => {
    expect(policyRuleIssues([{ pattern: '^make', action: 'auto', reason: '' }, null])).toEqual([
      { code: I_POLICY_RULE_INVALID, path: [0, 'pattern'], message: 'rules[0].pattern: expected a RegExp, found string' },
      { code: I_POLICY_RULE_INVALID, path: [0, 'action'], message: 'rules[0].action: expected "require-human" or "auto-approve", found "auto"' },
      { code: I_POLICY_RULE_INVALID, path: [0, 'reason'], message: 'rules[0].reason: expected a non-empty string, found ""' },
      { code: I_POLICY_RULE_INVALID, path: [1], message: 'rules[1]: expected {pattern, action, reason}, found null' },
    ]);
    expect(policyRuleIssues('rules')).toEqual([{ code: I_POLICY_RULE_INVALID, path: [], message: 'expected a list of policy rules, found string' }]);
  });
});

describe('the package root', () => {
  it('exports evaluatePolicy and DEFAULT_POLICY_RULES (the API of @cleocode/playbooks)', async () => {
    const root = await import('../../../src/index.js');
    expect(root.evaluatePolicy).toBe(evaluatePolicy);
    expect(root.DEFAULT_POLICY_RULES).toBe(DEFAULT_POLICY_RULES);
    expect(typeof root.decideGatePolicy).toBe('function');
    expect(typeof root.commandsAfterGate).toBe('function');
  });
});
