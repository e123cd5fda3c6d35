import { compileModel } from '../compiler/compilePlaybook.js';
import type { PlaybookMachine } from '../compiler/compilePlaybook.js';
import { createPlaybookModel } from '../compiler/playbookModel.js';
import type { PlaybookModel } from '../compiler/playbookModel.js';
import { sha256Hex } from '../events/canonicalJson.js';
import { parsePlaybook } from '../playbook/parsePlaybook.js';

/** A playbook text parsed, indexed and compiled once. */
export interface CompiledPlaybook {
  sourceHash: string;
  source: string;
  model: PlaybookModel;
  machine: PlaybookMachine;
}

const MAX_ENTRIES = 256;
const cache = new Map<string, CompiledPlaybook>();

/**
 * Parses and compiles playbook text, memoised by its SHA-256 (a pure function of
 * the text, so sharing across runs and stores is safe). Throws PlaybookParseError.
 */
export function compileSource(source: string, options: { pinned?: boolean; contracts?: boolean } = {}): CompiledPlaybook {
  const key = `${options.pinned === true ? 'pinned:' : ''}${options.contracts === false ? 'v1:' : ''}${sha256Hex(source)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const { definition, sourceHash } = parsePlaybook(source, options.pinned === true ? { pinned: true } : {});
  const model = createPlaybookModel(definition, options.contracts === false ? { contracts: false } : {});
  const compiled: CompiledPlaybook = { sourceHash, source, model, machine: compileModel(model) };
  if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  cache.set(key, compiled);
  return compiled;
}
