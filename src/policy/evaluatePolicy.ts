/**
 * Approval policies (SPEC §13, the API of `@cleocode/playbooks`): does a
 * command line need a human, or may it run without one?
 *
 * Pure: no I/O, no clock. The decision is fail-closed: every `require-human`
 * rule is tested before any `auto-approve` rule, and a command no rule matches
 * requires a human.
 */

/** What a rule decides for a command it matches. */
export type PolicyAction = 'auto-approve' | 'require-human';

/** One rule: when `pattern` matches the command line, `action` applies for `reason`. */
export interface PolicyRule {
  readonly pattern: RegExp;
  readonly action: PolicyAction;
  /** A short name for the rule, recorded with the decision (`publish`, `safe-qa-tool`). */
  readonly reason: string;
}

/**
 * The decision {@link evaluatePolicy} returns. `matchedPattern` is the
 * `.source` of the regex that decided; it is absent for the `default` decision.
 */
export interface EvaluatePolicyResult {
  action: PolicyAction;
  reason: string;
  matchedPattern?: string;
}

/** A problem with a rule list, as {@link policyRuleIssues} reports it. */
export interface PolicyRuleIssue {
  code: typeof I_POLICY_RULE_INVALID;
  /** `[index]` or `[index, field]` into the rule list. */
  path: (string | number)[];
  message: string;
}

/** A policy rule list holds something that is not `{pattern: RegExp, action, reason: non-empty string}`. */
export const I_POLICY_RULE_INVALID = 'I_POLICY_RULE_INVALID';

const actions: readonly PolicyAction[] = ['require-human', 'auto-approve'];

const rule = (pattern: RegExp, action: PolicyAction, reason: string): PolicyRule => Object.freeze({ pattern, action, reason });

/**
 * The default rules, frozen (the list and each rule), in this order: the
 * `require-human` rules `publish`, `push`, `tag`, `release`,
 * `workflow-trigger`, `destructive` (case-insensitive), `external-api`,
 * `remote-access`, then the `auto-approve` rules `safe-qa-tool` and
 * `safe-cleo-read`.
 *
 * The require-human patterns match anywhere in the command line (a word
 * boundary before the program name), so `npx pnpm publish` and
 * `env FOO=1 git push` are caught; the auto-approve patterns are anchored at the
 * start, so only a command line that *is* `pnpm test` (etc.) is approved.
 *
 * Assigning to the list or to a rule's field throws in strict mode. The
 * `RegExp` objects themselves are not frozen (a frozen regex cannot be used with
 * `g`/`y`), and none of them has a stateful flag.
 */
export const DEFAULT_POLICY_RULES: readonly PolicyRule[] = Object.freeze([
  rule(/\b(?:npm|pnpm|yarn)\s+publish\b/, 'require-human', 'publish'),
  rule(/\bgit\s+push\b/, 'require-human', 'push'),
  rule(/\bgit\s+tag\b/, 'require-human', 'tag'),
  rule(/\bgh\s+release\s+create\b/, 'require-human', 'release'),
  rule(/\bgh\s+workflow\s+run\b/, 'require-human', 'workflow-trigger'),
  rule(/\brm\s+-rf|\bdrop\s+table\b|\btruncate\b|\bdelete\s+from\b/i, 'require-human', 'destructive'),
  rule(/\b(?:curl|wget|fetch)\b.*\bhttps?:/, 'require-human', 'external-api'),
  rule(/\b(?:ssh|scp|rsync)\b.*@/, 'require-human', 'remote-access'),
  rule(/^pnpm\s+(?:test|run\s+test|biome|tsc)\b/, 'auto-approve', 'safe-qa-tool'),
  rule(/^cleo\s+(?:verify|check|show|find|list|status|current|next)\b/, 'auto-approve', 'safe-cleo-read'),
]);

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/**
 * Checks a rule list (for example a host's `policyRules`) before it is used.
 *
 * Pure; never throws. Returns one `I_POLICY_RULE_INVALID` issue per bad field,
 * or `[]` for a usable list. A misspelt action is an issue rather than a rule
 * that never matches: a `require_human` typo must not silently drop a block.
 *
 * @example policyRuleIssues([{ pattern: /^make/, action: 'auto', reason: 'make' }])
 * // [{ code: 'I_POLICY_RULE_INVALID', path: [0, 'action'], message: 'rules[0].action: expected "require-human" or "auto-approve", found "auto"' }]
 */
export function policyRuleIssues(rules: unknown): PolicyRuleIssue[] {
  const issue = (path: (string | number)[], message: string): PolicyRuleIssue => ({ code: I_POLICY_RULE_INVALID, path, message });
  if (!Array.isArray(rules)) return [issue([], `expected a list of policy rules, found ${rules === null ? 'null' : typeof rules}`)];
  const issues: PolicyRuleIssue[] = [];
  rules.forEach((item: unknown, index) => {
    if (!isRecord(item)) {
      issues.push(issue([index], `rules[${index}]: expected {pattern, action, reason}, found ${item === null ? 'null' : typeof item}`));
      return;
    }
    if (!(item['pattern'] instanceof RegExp)) {
      issues.push(issue([index, 'pattern'], `rules[${index}].pattern: expected a RegExp, found ${typeof item['pattern']}`));
    }
    if (!actions.includes(item['action'] as PolicyAction)) {
      issues.push(issue([index, 'action'], `rules[${index}].action: expected "require-human" or "auto-approve", found ${JSON.stringify(item['action']) ?? 'nothing'}`));
    }
    if (typeof item['reason'] !== 'string' || item['reason'] === '') {
      issues.push(issue([index, 'reason'], `rules[${index}].reason: expected a non-empty string, found ${JSON.stringify(item['reason']) ?? 'nothing'}`));
    }
  });
  return issues;
}

/** `pattern.test(text)` without the `lastIndex` state a `g`/`y` regex carries between calls. */
function matches(pattern: RegExp, text: string): boolean {
  if (!pattern.global && !pattern.sticky) return pattern.test(text);
  return new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')).test(text);
}

/**
 * Decides whether `command` (a whole command line: program and arguments) may
 * run without a human.
 *
 * Pure. Every `require-human` rule is tested first, in list order; then the
 * `auto-approve` rules, in list order; the first match decides, with
 * `matchedPattern` = its regex's `.source`. No match is
 * `{action: 'require-human', reason: 'default'}` without `matchedPattern`. So an
 * `auto-approve` rule, wherever it sits in the list, can never relax a
 * `require-human` one. A regex with the `g` or `y` flag is applied without its
 * `lastIndex` state (as if the flag were absent), so the answer never depends
 * on earlier calls.
 *
 * Throws `TypeError` when `command` is not a string or `rules` fails
 * {@link policyRuleIssues} (a programmer error; validate host rules up front).
 *
 * @example
 * evaluatePolicy('pnpm test')   // { action: 'auto-approve', reason: 'safe-qa-tool', matchedPattern: '^pnpm\\s+(?:test|run\\s+test|biome|tsc)\\b' }
 * evaluatePolicy('npm publish') // { action: 'require-human', reason: 'publish', matchedPattern: '\\b(?:npm|pnpm|yarn)\\s+publish\\b' }
 * evaluatePolicy('make build')  // { action: 'require-human', reason: 'default' }
 */
export function evaluatePolicy(command: string, rules: readonly PolicyRule[] = DEFAULT_POLICY_RULES): EvaluatePolicyResult {
  if (typeof command !== 'string') throw new TypeError(`evaluatePolicy: expected the command line as a string, found ${typeof command}`);
  if (rules !== DEFAULT_POLICY_RULES) {
    const [first] = policyRuleIssues(rules);
    if (first !== undefined) throw new TypeError(`evaluatePolicy: ${first.message}`);
  }
  for (const action of actions) {
    for (const candidate of rules) {
      if (candidate.action === action && matches(candidate.pattern, command)) {
        return { action, reason: candidate.reason, matchedPattern: candidate.pattern.source };
      }
    }
  }
  return { action: 'require-human', reason: 'default' };
}
