/**
 * Run ids as the command line takes them (SPEC §7): the whole id, or any
 * start of it that names exactly one run, as `git` and `docker` take
 * hashes and ids. A start several runs share is refused with the ones it
 * names, never guessed.
 */
import type { EventStore } from '../index.js';
import { runNotFound, usageError } from './cliErrors.js';

/** How many of the runs an ambiguous start names the refusal lists. */
const LISTED = 5;

/**
 * The run `given` names: the run with that id, else the one run whose id
 * starts with it. E_RUN_NOT_FOUND (67) when none does, E_USAGE (64) when
 * several do.
 */
export async function resolveRunId(store: EventStore, given: string): Promise<string> {
  if (given === '' || (await store.getRun(given)) !== null) return given;
  const matches = (await store.listRunIds()).filter((id) => id.startsWith(given));
  const [only] = matches;
  if (only !== undefined && matches.length === 1) return only;
  if (matches.length === 0) throw runNotFound(given);
  const shown = matches.slice(0, LISTED).join(', ');
  const more = matches.length > LISTED ? ` and ${matches.length - LISTED} more` : '';
  throw usageError(`'${given}' is the start of ${matches.length} run ids (${shown}${more}); give more of the id`);
}
