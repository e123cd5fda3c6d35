import { describe, expect, it } from 'vitest';
import { closestMatch, didYouMean, editDistance } from '../../../src/playbook/suggest.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0], ['abc', 'abc', 0], ['', 'abc', 3], ['abc', '', 3],
    ['kitten', 'sitting', 3], ['skil', 'skill', 1], ['agnet', 'agent', 1], ['ab', 'ba', 1],
    ['inject_itno', 'inject_into', 1], ['flaw', 'lawn', 2], ['ca', 'abc', 3],
  ])('%j -> %j is %i', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('closestMatch', () => {
  it('names the closest candidate within a third of the word', () => {
    expect(closestMatch('skil', ['agent', 'skill', 'role'])).toBe('skill');
    expect(closestMatch('max_iteration', ['max_iterations', 'inject_into'])).toBe('max_iterations');
    expect(closestMatch('Skill', ['skill'])).toBe('skill');
    expect(closestMatch('validat', ['implement', 'validate', 'test'])).toBe('validate');
  });

  it('suggests nothing for a word far from every candidate, or for itself', () => {
    expect(closestMatch('zzz', ['skill', 'agent'])).toBeUndefined();
    expect(closestMatch('x', ['a', 'b'])).toBeUndefined();
    expect(closestMatch('skill', ['skill'])).toBeUndefined();
    expect(closestMatch('deploy', [])).toBeUndefined();
  });

  it('breaks ties by candidate order', () => {
    expect(closestMatch('cat', ['bat', 'hat'])).toBe('bat');
    expect(closestMatch('cat', ['hat', 'bat'])).toBe('hat');
  });

  it('didYouMean formats the suggestion, or nothing', () => {
    expect(didYouMean('skil', ['skill'])).toBe('; did you mean `skill`?');
    expect(didYouMean('qqq', ['skill'])).toBe('');
  });
});
