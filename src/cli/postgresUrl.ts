/**
 * `--db postgres://…` (SPEC §7, §11): which database texts are PostgreSQL
 * URLs, the `schema` parameter the CLI reads from them, and the form of the
 * URL that may be printed (never its password). Pure: text in, text out.
 */
import { usageError } from './cliErrors.js';

/** A PostgreSQL URL, taken apart for the CLI. */
export interface PostgresUrl {
  /**
   * The URL to connect with: as given, without the `schema` parameter (the
   * driver would not know it). Holds the password, if the URL has one: never
   * print it.
   */
  connectionString: string;
  /** The `schema` parameter: the PostgreSQL schema holding cantbook's tables (undefined: the connection's search_path). */
  schema: string | undefined;
  /**
   * The URL as given with its password taken out (from the user part and from
   * a `password` parameter); user, host, port, database and every other
   * parameter, `schema` included, are kept as typed. Safe to print.
   */
  display: string;
  /** True when the URL carries a password (which `display` leaves out). */
  hasPassword: boolean;
  /** The password as written and decoded, for scrubbing it from messages (empty when there is none). */
  secrets: readonly string[];
}

/** The URL parameter naming the schema; the CLI's own, removed before the URL reaches the driver. */
export const SCHEMA_PARAMETER = 'schema';

/** `postgres://` or `postgresql://` (any case): the database texts that select the PostgreSQL store. */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text.trim());
}

/** The same rule as openPostgresStore's `schema` option, checked here so a bad one is a usage error. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Takes a PostgreSQL URL apart (see {@link PostgresUrl}). Anything the
 * driver reads (host, port, user, `host=/socket/dir`, `sslmode`, `options`,
 * ...) is passed on untouched. Throws E_USAGE (64) for a `schema` parameter
 * that is empty, repeated, or not letters, digits and `_`; the message never
 * quotes the URL (it may hold a password).
 *
 * @example
 * parsePostgresUrl('postgres://ci:hunter2@db/cantbook?schema=nightly');
 * // { connectionString: 'postgres://ci:hunter2@db/cantbook', schema: 'nightly',
 * //   display: 'postgres://ci@db/cantbook?schema=nightly', hasPassword: true, secrets: ['hunter2'] }
 */
export function parsePostgresUrl(text: string): PostgresUrl {
  const url = text.trim();
  const hashAt = url.indexOf('#');
  const beforeFragment = hashAt === -1 ? url : url.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : url.slice(hashAt);
  const queryAt = beforeFragment.indexOf('?');
  const base = queryAt === -1 ? beforeFragment : beforeFragment.slice(0, queryAt);
  const parameters = queryAt === -1 ? [] : beforeFragment.slice(queryAt + 1).split('&');

  // The user part is what precedes the authority's last '@' (the authority ends at the first '/', '?' or '#').
  const schemeEnd = base.indexOf('://') + 3;
  const authorityEnd = ((): number => {
    const slash = base.indexOf('/', schemeEnd);
    return slash === -1 ? base.length : slash;
  })();
  const at = base.lastIndexOf('@', authorityEnd - 1);
  const userInfo = at < schemeEnd ? '' : base.slice(schemeEnd, at);
  const colon = userInfo.indexOf(':');
  const rawPassword = colon === -1 ? '' : userInfo.slice(colon + 1);
  const displayBase = rawPassword === '' ? base : `${base.slice(0, schemeEnd)}${userInfo.slice(0, colon)}${base.slice(at)}`;

  const secrets = new Set<string>();
  if (rawPassword !== '') addSecret(secrets, rawPassword);
  const schemas: string[] = [];
  const kept: string[] = [];
  const shown: string[] = [];
  for (const parameter of parameters) {
    const [key, value] = keyValue(parameter);
    if (key === SCHEMA_PARAMETER) {
      schemas.push(value);
      shown.push(parameter);
      continue;
    }
    kept.push(parameter);
    if (key.toLowerCase() === 'password') {
      if (value !== '') addSecret(secrets, value, parameter.slice(parameter.indexOf('=') + 1));
      continue;
    }
    shown.push(parameter);
  }

  if (schemas.length > 1) throw usageError(`the database URL has ${schemas.length} '${SCHEMA_PARAMETER}' parameters; give one`);
  const schema = schemas[0];
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw usageError(
      schema === ''
        ? `the database URL's '${SCHEMA_PARAMETER}' parameter is empty: name a schema, like ?${SCHEMA_PARAMETER}=cantbook`
        : `the database URL's '${SCHEMA_PARAMETER}' parameter must be letters, digits and '_' (at most 63, not starting with a digit), got '${schema}'`,
    );
  }
  const withQuery = (head: string, list: readonly string[]): string => `${head}${list.length === 0 ? '' : `?${list.join('&')}`}${fragment}`;
  return {
    connectionString: withQuery(base, kept),
    schema,
    display: withQuery(displayBase, shown),
    hasPassword: secrets.size > 0,
    secrets: [...secrets],
  };
}

/** A `key=value` parameter read the way URLSearchParams (and so the driver) reads it: `+` and `%xx` decoded. */
function keyValue(parameter: string): [string, string] {
  const first = [...new URLSearchParams(parameter)][0];
  return first === undefined ? ['', ''] : first;
}

/** Records a password in every form it may appear in a message: as written, and decoded. */
function addSecret(secrets: Set<string>, ...forms: string[]): void {
  for (const form of forms) {
    secrets.add(form);
    try {
      secrets.add(decodeURIComponent(form));
    } catch {
      // Not valid percent-encoding: the driver sees it as written.
    }
  }
}

/** `text` with every secret replaced by `***`. Pure. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  // Longest first, so a secret that contains another is replaced whole.
  return [...secrets].sort((a, b) => b.length - a.length).reduce((scrubbed, secret) => (secret === '' ? scrubbed : scrubbed.split(secret).join('***')), text);
}
