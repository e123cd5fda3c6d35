import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../../src/playbook/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500], ['0s', 0], ['45s', 45_000], ['30m', 1_800_000], ['72h', 259_200_000], ['7d', 604_800_000],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '72', 'h', '1.5h', '-1h', ' 1h', '1h ', '1 h', '1H', '1h30m', '1w', '99999999999999999d'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});
