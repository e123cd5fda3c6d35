/**
 * `--db postgres://…`: which texts are URLs, the `schema` parameter, the
 * printable form (no password), and the `--db` printed commands repeat.
 */
import { describe, expect, it } from 'vitest';
import { postgresFlag } from '../../../src/cli/cliContext.js';
import { isPostgresUrl, parsePostgresUrl, scrubSecrets } from '../../../src/cli/postgresUrl.js';

describe('isPostgresUrl', () => {
  it.each([
    ['postgres://db/cantbook', true],
    ['postgresql://u@/db?host=/run/postgresql', true],
    ['POSTGRES://db/x', true],
    ['  postgresql://db/x', true],
    ['.cantbook/cantbook.db', false],
    ['postgres.db', false],
    ['postgres:db', false],
    [':memory:', false],
  ])('%j -> %j', (text, expected) => {
    expect(isPostgresUrl(text)).toBe(expected);
  });
});

describe('parsePostgresUrl', () => {
  it('takes the schema parameter out of the connection string and keeps it in the printable form', () => {
    expect(parsePostgresUrl('postgres://ci@db.internal:5433/cantbook?sslmode=require&schema=nightly&application_name=cbk')).toEqual({
      connectionString: 'postgres://ci@db.internal:5433/cantbook?sslmode=require&application_name=cbk',
      schema: 'nightly',
      display: 'postgres://ci@db.internal:5433/cantbook?sslmode=require&schema=nightly&application_name=cbk',
      hasPassword: false,
      secrets: [],
    });
  });

  it('leaves a URL without schema or password as it is (socket directories in host= included)', () => {
    const url = 'postgresql://postgres@/cantbook_test?host=/tmp/cbk pg/socket&port=38209';
    expect(parsePostgresUrl(url)).toEqual({ connectionString: url, schema: undefined, display: url, hasPassword: false, secrets: [] });
    expect(parsePostgresUrl('postgres://db')).toMatchObject({ connectionString: 'postgres://db', display: 'postgres://db' });
  });

  it('drops the password from the printable form, in the user part and as a password parameter, and lists it for scrubbing', () => {
    const inUser = parsePostgresUrl('postgres://ci:p%40ss:w0rd@db/cantbook?schema=s1');
    expect(inUser).toMatchObject({ connectionString: 'postgres://ci:p%40ss:w0rd@db/cantbook', display: 'postgres://ci@db/cantbook?schema=s1', hasPassword: true });
    expect(inUser.secrets).toEqual(expect.arrayContaining(['p%40ss:w0rd', 'p@ss:w0rd']));

    const inQuery = parsePostgresUrl('postgresql://ci@/cantbook?host=/run/pg&password=hunter%202&schema=s1');
    expect(inQuery).toMatchObject({
      connectionString: 'postgresql://ci@/cantbook?host=/run/pg&password=hunter%202',
      display: 'postgresql://ci@/cantbook?host=/run/pg&schema=s1',
      hasPassword: true,
    });
    expect(inQuery.secrets).toEqual(expect.arrayContaining(['hunter%202', 'hunter 2']));
    // An '@' in the password (as typed, unencoded): the user part ends at the authority's last '@'.
    expect(parsePostgresUrl('postgres://ci:a@b@db/x')).toMatchObject({ display: 'postgres://ci@db/x', secrets: ['a@b'] });
    // An empty password is none.
    expect(parsePostgresUrl('postgres://ci:@db/x')).toMatchObject({ display: 'postgres://ci:@db/x', hasPassword: false });
  });

  it.each([
    ['postgres://u:secret@db/x?schema=', "the database URL's 'schema' parameter is empty"],
    ['postgres://u:secret@db/x?schema=1st', "must be letters, digits and '_' (at most 63, not starting with a digit), got '1st'"],
    ['postgres://u:secret@db/x?schema=a;drop', "got 'a;drop'"],
    ['postgres://u:secret@db/x?schema=a&schema=b', "has 2 'schema' parameters"],
  ])('%s is E_USAGE (never quoting the URL)', (url, says) => {
    let caught: unknown;
    try {
      parsePostgresUrl(url);
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'E_USAGE', exitCode: 64 });
    const message = (caught as Error).message;
    expect(message).toContain(says);
    expect(message).not.toContain('secret');
  });
});

describe('postgresFlag (what printed commands pass as --db)', () => {
  const plain = parsePostgresUrl('postgres://ci@db/cantbook?schema=s1');
  const secret = parsePostgresUrl('postgres://ci:hunter2@db/cantbook?schema=s1');

  it('repeats a URL without a password, wherever it came from', () => {
    for (const source of ['flag', 'env', 'config'] as const) expect(postgresFlag(plain, source)).toBe('postgres://ci@db/cantbook?schema=s1');
  });

  it('with a password: the URL without it after --db; nothing after CANTBOOK_DB or the config file (the pasted command reads them again)', () => {
    expect(postgresFlag(secret, 'flag')).toBe('postgres://ci@db/cantbook?schema=s1');
    expect(postgresFlag(secret, 'env')).toBe('');
    expect(postgresFlag(secret, 'config')).toBe('');
  });
});

describe('scrubSecrets', () => {
  it('replaces every secret, the longest first', () => {
    expect(scrubSecrets("auth failed for 'p@ss' (p%40ss)", ['p%40ss', 'p@ss'])).toBe("auth failed for '***' (***)");
    expect(scrubSecrets('nothing here', [])).toBe('nothing here');
  });
});
