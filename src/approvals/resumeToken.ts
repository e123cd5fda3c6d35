import { timingSafeEqual } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../events/canonicalJson.js';

/**
 * Resume tokens (SPEC §5.2, docs/security.md).
 *
 * A token is `cbk1.<approvalId>.<credential>`: the gate's approval id in clear
 * (so the store can find the gate) and a 256-bit random credential in base64url
 * (43 characters). Only `hashResumeToken(token)` is stored, in `RunPaused.tokenHash`.
 * No key exists anywhere: whoever can read every file, environment and database row
 * cantbook writes still cannot mint a token, because the credential exists only in
 * the token handed to the caller when the gate opened.
 *
 * Tokens of v1 runs (HMAC signatures of the same length) verify the same way, by
 * hash: the log stored their SHA-256 exactly like today's.
 */

/** The number of random bytes in a credential: 256 bits. */
export const CREDENTIAL_BYTES = 32;

const PREFIX = 'cbk1';
const CREDENTIAL = /^[A-Za-z0-9_-]{43}$/;
const APPROVAL_ID = /^[A-Za-z0-9_-]{1,128}$/;
const HASH = /^[0-9a-f]{64}$/;

/**
 * Builds a token from a gate's approval id and a fresh random credential.
 *
 * Pure: the randomness is passed in (the runtime draws it from `crypto.randomBytes`).
 * Throws TypeError when `credential` is not exactly {@link CREDENTIAL_BYTES} bytes or
 * the approval id is not token-safe (a programmer error). The token is a bearer
 * credential: whoever holds it may decide the gate. Store only its hash.
 *
 * @example issueResumeToken(approvalId, randomBytes(32)) // 'cbk1.<approvalId>.<43 base64url characters>'
 */
export function issueResumeToken(approvalId: string, credential: Uint8Array): string {
  if (!(credential instanceof Uint8Array) || credential.length !== CREDENTIAL_BYTES) {
    throw new TypeError(`a resume token needs a ${CREDENTIAL_BYTES}-byte random credential`);
  }
  if (!APPROVAL_ID.test(approvalId)) throw new TypeError(`approval id '${approvalId}' cannot be part of a token`);
  return `${PREFIX}.${approvalId}.${Buffer.from(credential).toString('base64url')}`;
}

/** Splits a token into its approval id and credential, or null when it is not shaped like one. Pure. */
export function parseResumeToken(token: string): { approvalId: string; credential: string } | null {
  if (typeof token !== 'string' || token.length > 256) return null;
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return null;
  const [, approvalId, credential] = parts as [string, string, string];
  if (!APPROVAL_ID.test(approvalId) || !CREDENTIAL.test(credential)) return null;
  return { approvalId, credential };
}

/**
 * True when `token` is shaped like a token and its SHA-256 equals `tokenHash`
 * (the hash recorded in the gate's `RunPaused`). Compares in constant time.
 *
 * Pure. This is the whole of token authentication; the caller checks the gate
 * it names (pending, not expired, context unchanged) separately.
 */
export function tokenMatchesHash(token: string, tokenHash: string): boolean {
  if (parseResumeToken(token) === null || typeof tokenHash !== 'string' || !HASH.test(tokenHash)) return false;
  const given = Buffer.from(hashResumeToken(token), 'hex');
  const expected = Buffer.from(tokenHash, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The SHA-256 of a token: what the log stores instead of the token. Pure. */
export function hashResumeToken(token: string): string {
  return sha256Hex(token.trim());
}

/** The digest a token binds to: SHA-256 of the canonical JSON of the context. Pure. */
export function digestContext(context: unknown): string {
  return sha256Hex(canonicalJson(context));
}
