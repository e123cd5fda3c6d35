/**
 * docs/cli.md shows a real session: running it again with the built CLI prints
 * the same thing, ids, tokens and times aside. When this fails, the CLI's
 * output changed: regenerate with `npm run build && npx tsx scripts/cliTranscript.ts`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeTranscript, recordCliSession, transcriptOf } from '../../scripts/cliTranscript.js';
import { repoRoot } from '../helpers/cliSession.js';

describe('docs/cli.md', () => {
  it('its session transcript is what the commands print today', () => {
    const documented = transcriptOf(readFileSync(join(repoRoot, 'docs', 'cli.md'), 'utf8'));
    expect(documented).not.toBeNull();
    expect(normalizeTranscript(recordCliSession())).toBe(normalizeTranscript(documented ?? ''));
  });

  it('the normalisation keeps what matters: a changed word is a difference', () => {
    const documented = transcriptOf(readFileSync(join(repoRoot, 'docs', 'cli.md'), 'utf8')) ?? '';
    expect(documented).toContain('✓ publish (attempt 1)');
    expect(normalizeTranscript(documented.replace('✓ publish (attempt 1)', '✓ publish (attempt 2)'))).not.toBe(normalizeTranscript(documented));
  });
});
