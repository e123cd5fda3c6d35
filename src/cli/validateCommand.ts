/**
 * `cantbook validate <files..>`: parses playbooks and reports every issue with
 * file:line:col, then resolves the child playbooks each one names.
 */
import type { Command } from 'commander';
import { relative, resolve } from 'node:path';
import { createFileResolver, formatIssue, pinPlaybookTree } from '../index.js';
import type { PlaybookIssue } from '../index.js';
import { describeError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { readPlaybookFile } from './playbookFile.js';

/** One file's verdict (the `--json` shape). */
export interface ValidatedFile {
  file: string;
  ok: boolean;
  name?: string;
  sourceHash?: string;
  nodes?: number;
  error?: { code: string; message: string };
  issues?: readonly PlaybookIssue[];
}

/**
 * Registers `validate`. Exit code: 0 when every file is valid, otherwise the
 * exit code of the first bad file (66 unreadable, 70 invalid).
 */
export function registerValidate(program: Command, bind: BindAction): void {
  const command = program
    .command('validate')
    .description('check playbooks and report every issue with file:line:col')
    .argument('<files...>', '.cantbook files to check');
  withExamples(command, ['cantbook validate starter/*.cantbook', 'cantbook validate my.cantbook --json']);
  command.action(
    bind(async (ctx, cmd) => {
      const files = cmd.processedArgs[0] as string[];
      const results: ValidatedFile[] = [];
      let exitCode = 0;
      for (const file of files) {
        try {
          const { definition, sourceHash } = readPlaybookFile(ctx.cwd, file);
          // The playbooks it starts as child runs must exist, parse, take its inputs and not lead back to it (SPEC §12).
          await pinPlaybookTree({ definition, id: resolve(ctx.cwd, file) }, createFileResolver({ cwd: ctx.cwd }));
          results.push({ file, ok: true, name: definition.name, sourceHash, nodes: definition.nodes.length });
          ctx.out.line(`✓ ${file}  ${definition.name} · ${definition.nodes.length} node${definition.nodes.length === 1 ? '' : 's'} · sha256 ${sourceHash.slice(0, 12)}`);
        } catch (error) {
          const reported = describeError(error);
          if (exitCode === 0) exitCode = reported.exitCode;
          const result: ValidatedFile = { file, ok: false, error: { code: reported.code, message: reported.message } };
          if (reported.issues) result.issues = reported.issues;
          results.push(result);
          const issues = reported.issues ?? [];
          const headline = issues.length > 0 ? `${file}: ${issues.length} issue${issues.length === 1 ? '' : 's'}` : reported.message;
          // A child playbook's issues are located in the child's file, which the error names.
          const where = (error as { fileName?: unknown }).fileName;
          const located = typeof where === 'string' && resolve(ctx.cwd, file) !== where ? relative(ctx.cwd, where) : file;
          ctx.out.note([`error[${reported.code}]: ${headline}`, ...issues.map((issue) => `  ${formatIssue(issue, located)}`)].join('\n'));
        }
      }
      const firstError = results.find((result) => !result.ok)?.error;
      ctx.out.data({ ok: exitCode === 0, files: results, ...(firstError ? { error: firstError } : {}) });
      return exitCode;
    }),
  );
}
