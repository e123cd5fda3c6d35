/**
 * `cantbook export <file> --format stately|mermaid|json`: the compiled machine
 * of a playbook as text.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { compilePlaybook } from '../index.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { renderMermaid, renderStatelyModule } from './exportFormats.js';
import { readPlaybookFile } from './playbookFile.js';

const FORMATS = ['stately', 'mermaid', 'json'] as const;
type ExportFormat = (typeof FORMATS)[number];

/**
 * Registers `export`. Prints the rendering on stdout; with `--json`, prints
 * `{name, sourceHash, format, output}` (`output` is the config object for
 * `json`, the text otherwise). Exit 0, 66 unreadable file, 70 invalid playbook.
 */
export function registerExport(program: Command, bind: BindAction): void {
  const command = program
    .command('export')
    .description("print a playbook's compiled XState machine: Stately Studio module, Mermaid diagram or JSON config")
    .argument('<file>', 'the .cantbook playbook')
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).makeOptionMandatory());
  withExamples(command, [
    'cantbook export starter/release.cantbook --format stately > release.machine.js   # Stately Studio: Import from code',
    'cantbook export starter/review.cantbook --format mermaid   # a parallel group as concurrent regions',
    'cantbook export starter/ivtr.cantbook --format json',
  ]);
  command.action(
    bind(async (ctx, cmd) => {
      const file = cmd.processedArgs[0] as string;
      const { format } = cmd.opts<{ format: ExportFormat }>();
      const { definition, sourceHash } = readPlaybookFile(ctx.cwd, file);
      const config: unknown = compilePlaybook(definition).config;
      const subject = { definition, sourceHash };
      const text = format === 'json' ? `${JSON.stringify(config, null, 2)}\n` : format === 'stately' ? renderStatelyModule(subject, config) : renderMermaid(subject);
      ctx.out.data({ name: definition.name, sourceHash, format, output: format === 'json' ? config : text });
      if (!ctx.out.json) ctx.out.stdout.write(text);
      return 0;
    }),
  );
}
