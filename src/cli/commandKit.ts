/**
 * The small contract between the program and its command modules: a command
 * handler gets the invocation's context and its commander Command, does its
 * work, and returns the exit code. Throwing is fine: the program reports it.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import type { CliContext } from './cliContext.js';

/** A command's work. Returns the process exit code. */
export type CommandHandler = (ctx: CliContext, command: Command) => Promise<number>;

/** Wraps a handler as a commander action (the program supplies it). */
export type BindAction = (handler: CommandHandler) => (...args: unknown[]) => Promise<void>;

/** Appends an "Examples:" section to a command's `--help`. */
export function withExamples(command: Command, examples: readonly string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${examples.map((line) => `  $ ${line}`).join('\n')}\n`);
}

/** Collects a repeatable option into an array (commander option processor). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** An option value that must say something: blank text is a usage error, not an empty name in the log. */
export function nonBlank(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('it must not be blank');
  return value;
}

/** An option parser accepting at most `max` characters (after {@link nonBlank} when `required`). */
export function bounded(max: number, { required = false } = {}): (value: string) => string {
  return (value) => {
    if (required) nonBlank(value);
    const length = value.trim().length;
    if (length > max) throw new InvalidArgumentError(`it is ${length} characters long; at most ${max} are allowed`);
    return value;
  };
}
