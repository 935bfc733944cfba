/**
 * What the config bucket holds of an agent token: a verifier, `sha256:<hex>`, never the token.
 *
 * SHA-256 rather than a slow salted hash: the gateway checks a presented token with one hash per
 * connection whatever the number of configured tokens (a per-token salt would need one slow hash
 * per configured token, and each connect attempt of a stranger would cost that much CPU). Agent
 * tokens are generated secrets, not passwords a person picks: give them 128 bits or more, and a
 * leaked verifier cannot be turned back into a token.
 */
import { createHash } from 'node:crypto';

const VERIFIER = /^sha256:([0-9a-f]{64})$/;

export function tokenVerifier(token: string): string {
  return VERIFIER.test(token) ? token : `sha256:${createHash('sha256').update(token).digest('hex')}`;
}

/** The digest a configured token (or its verifier) stands for. */
export function tokenDigest(tokenOrVerifier: string): Buffer {
  const hex = VERIFIER.exec(tokenOrVerifier)?.[1];
  return hex ? Buffer.from(hex, 'hex') : createHash('sha256').update(tokenOrVerifier).digest();
}

/** The digest of a token a client presents (never read as a verifier: knowing a verifier must not let anybody in). */
export function presentedDigest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
