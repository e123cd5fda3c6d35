/**
 * The playbook resolver of the CLI (SPEC §12): a `playbook:` reference is a
 * file path relative to the file that makes it. It lives in the adapters ring
 * because it reads files; `pinPlaybookTree` (pure) only calls it.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CantbookError, E_FILE_UNREADABLE } from '../errors.js';
import type { PlaybookResolver } from '../playbook/resolvePlaybooks.js';

/** Options of {@link createFileResolver}. */
export interface FileResolverOptions {
  /** Directory the references of a playbook without an id are resolved against (default: `process.cwd()` when the resolver is created). */
  cwd?: string;
}

/** Error codes that mean "there is no such file", as opposed to "it cannot be read". */
const missingCodes: ReadonlySet<unknown> = new Set(['ENOENT', 'ENOTDIR']);

/**
 * A {@link PlaybookResolver} over the file system: `ref` is resolved relative to
 * the directory of `from.id` (the referring file's path), or to `cwd` when the
 * referring playbook has no id; an absolute `ref` is taken as it is. The id it
 * gives is the absolute, normalised path, so `a.cantbook` and `./x/../a.cantbook`
 * are one text and a cycle written with different relative paths is still found.
 *
 * The resolver resolves to null when the file does not exist (the caller
 * reports E_PLAYBOOK_NOT_FOUND) and rejects with `CantbookError`
 * `E_FILE_UNREADABLE` when it exists but cannot be read (a directory, no
 * permission). Symbolic links are not followed for the id: two links to one
 * file are two ids.
 *
 * @example
 * const pinned = await pinPlaybookTree({ definition, id: resolve('epic.cantbook') }, createFileResolver());
 */
export function createFileResolver(options: FileResolverOptions = {}): PlaybookResolver {
  const cwd = resolve(options.cwd ?? process.cwd());
  return async (ref, from) => {
    const id = resolve(from.id === null ? cwd : dirname(from.id), ref);
    try {
      return { id, source: await readFile(id, 'utf8') };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (missingCodes.has(code)) return null;
      const reason = error instanceof Error ? error.message : String(error);
      throw new CantbookError(E_FILE_UNREADABLE, `cannot read playbook '${ref}' (resolved to '${id}', named by '${from.id ?? from.name}'): ${reason}`, { path: id, ref });
    }
  };
}
