import { describe, expect, it } from 'vitest';
import { renderTemplate, templateInputRefs } from '../../../src/playbook/templates.js';

const scope = {
  inputs: { version: '1.2.0', channel: 'latest', n: 3, nested: { deep: true } },
  context: { status: 'ok', score: 0.5, flags: [1, 2], report: { summary: 'fine', count: 2, none: null }, empty: '' },
};

describe('renderTemplate', () => {
  it('reads inputs and the context by dotted path', () => {
    expect(renderTemplate('Ship {{inputs.version}} to {{inputs.channel}}: {{status}}, {{report.summary}}', scope))
      .toBe('Ship 1.2.0 to latest: ok, fine');
  });

  it('allows whitespace inside the braces', () => {
    expect(renderTemplate('{{ inputs.version }}/{{  report.count}}', scope)).toBe('1.2.0/2');
  });

  it('renders non-strings as JSON and strings as they are', () => {
    expect(renderTemplate('{{score}} {{flags}} {{report.none}} {{inputs.nested}} {{inputs.n}} [{{empty}}]', scope))
      .toBe('0.5 [1,2] null {"deep":true} 3 []');
  });

  it('leaves placeholders that do not resolve exactly as written', () => {
    const text = '{{missing}} {{inputs.nope}} {{ report.summary.x }} {{a..b}} {{}} {{inputs}}x {{constructor}} {{status.length}}';
    expect(renderTemplate(text, scope)).toBe(text);
  });

  it('never reads the environment', () => {
    process.env['CANTBOOK_TEMPLATE_TEST'] = 'leak';
    expect(renderTemplate('{{CANTBOOK_TEMPLATE_TEST}} {{env.CANTBOOK_TEMPLATE_TEST}} {{process.env.CANTBOOK_TEMPLATE_TEST}}', scope))
      .toBe('{{CANTBOOK_TEMPLATE_TEST}} {{env.CANTBOOK_TEMPLATE_TEST}} {{process.env.CANTBOOK_TEMPLATE_TEST}}');
    delete process.env['CANTBOOK_TEMPLATE_TEST'];
  });

  it('keeps a placeholder whose value has no JSON form', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(renderTemplate('{{c}} {{b}}', { inputs: {}, context: { c: circular, b: 1n } })).toBe('{{c}} {{b}}');
  });

  it('renders the output of one placeholder literally (no second pass)', () => {
    expect(renderTemplate('{{a}}', { inputs: {}, context: { a: '{{b}}', b: 'no' } })).toBe('{{b}}');
  });
});

describe('templateInputRefs', () => {
  it('lists each referenced input once, in order', () => {
    expect(templateInputRefs('{{inputs.a}} {{ctx}} {{ inputs.b.c }} {{inputs.a}} {{inputs}}')).toEqual(['a', 'b']);
  });

  it('finds nothing in plain text', () => {
    expect(templateInputRefs('no templates {single} {{ }}')).toEqual([]);
  });
});
