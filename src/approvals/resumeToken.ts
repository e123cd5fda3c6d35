import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../events/canonicalJson.js';

/** What a resume token vouches for. Changing any field invalidates the token. */
export interface ResumeTokenClaims {
  runId: string;
  approvalId: string;
  nodeId: string;
  /** SHA-256 of the canonical JSON of the whole context the reviewer approves. */
  contextDigest: string;
  /** ISO-8601, or null for a gate without timeout. */
  expiresAt: string | null;
}

const PREFIX = 'cbk1';
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const APPROVAL_ID = /^[A-Za-z0-9_-]{1,128}$/;

function signature(secret: string, claims: ResumeTokenClaims): Buffer {
  const message = canonicalJson(['cantbook-resume-v1', claims.runId, claims.approvalId, claims.nodeId, claims.contextDigest, claims.expiresAt]);
  return createHmac('sha256', secret).update(message, 'utf8').digest();
}

/**
 * Signs a resume token: `cbk1.<approvalId>.<HMAC-SHA256, base64url, 256 bits>`.
 * The token is a bearer credential: whoever holds it may decide the gate.
 * Store only `hashResumeToken(token)`.
 *
 * Pure (the secret is passed in).
 */
export function signResumeToken(secret: string, claims: ResumeTokenClaims): string {
  return `${PREFIX}.${claims.approvalId}.${signature(secret, claims).toString('base64url')}`;
}

/** Splits a token into its approval id and signature, or null when it is not shaped like one. Pure. */
export function parseResumeToken(token: string): { approvalId: string; signature: string } | null {
  if (typeof token !== 'string' || token.length > 256) return null;
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) return null;
  const [, approvalId, sig] = parts as [string, string, string];
  if (!APPROVAL_ID.test(approvalId) || !SIGNATURE.test(sig)) return null;
  return { approvalId, signature: sig };
}

/**
 * True when `token` carries a valid signature for `claims` under `secret`.
 * Compares in constant time.
 *
 * Pure.
 */
export function verifyResumeToken(secret: string, token: string, claims: ResumeTokenClaims): boolean {
  const parsed = parseResumeToken(token);
  if (!parsed || parsed.approvalId !== claims.approvalId) return false;
  const given = Buffer.from(parsed.signature, 'base64url');
  const expected = signature(secret, claims);
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
