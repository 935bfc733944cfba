/**
 * Who a WebSocket client is and which DNs it may register and control. A bearer token is either
 * one of spec.gateway.tokens (read at every connect, so config changes apply to the next client;
 * the config bucket holds only their verifiers, common/config/token-verifier.ts) or a JWT (HS256
 * or RS256) whose `dnsClaim` lists the DNs.
 */
import { createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { errors as joseErrors, jwtVerify } from 'jose';
import type { SipClusterSpec } from '../../common/config/schema.js';
import { presentedDigest, tokenDigest } from '../../common/config/token-verifier.js';

export interface Principal {
  /** For logs: the token's name or the JWT's subject. */
  name: string;
  /** DNs this client may register and control; '*' allows all. */
  dns: readonly string[];
  /** May query any call of the site (spec.gateway.tokens `supervisor`). */
  supervisor?: boolean;
  /** May read the site's call detail records (spec.gateway.tokens `cdr`, or a JWT claim `cdr: true`). */
  cdr?: boolean;
}

export interface JwtKeys {
  hs256Secret?: Uint8Array;
  rs256PublicKey?: KeyObject;
}

/** Keys for JWTs as a pod receives them from the Secrets named in spec.gateway.jwt (env). */
export function jwtKeysFromEnv(env: NodeJS.ProcessEnv): JwtKeys {
  const keys: JwtKeys = {};
  if (env.HUDDLE_GATEWAY_JWT_HS256_SECRET) keys.hs256Secret = new TextEncoder().encode(env.HUDDLE_GATEWAY_JWT_HS256_SECRET);
  if (env.HUDDLE_GATEWAY_JWT_RS256_PUBLIC_KEY) keys.rs256PublicKey = createPublicKey(env.HUDDLE_GATEWAY_JWT_RS256_PUBLIC_KEY);
  return keys;
}

/** The bearer token of an upgrade request: `Authorization: Bearer <token>` or `?token=`. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match) return match[1];
  }
  const query = new URL(req.url ?? '/', 'http://gateway').searchParams.get('token');
  return query ?? undefined;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: string };

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export async function authenticate(
  token: string | undefined,
  gateway: SipClusterSpec['gateway'],
  keys: JwtKeys,
  fileTokens: SipClusterSpec['gateway']['tokens'] = [],
): Promise<AuthResult> {
  if (!token) return { ok: false, reason: 'no bearer token (Authorization header or ?token=)' };
  const presented = presentedDigest(token);
  const configured = [...gateway.tokens, ...fileTokens].find((t) => timingSafeEqual(tokenDigest(t.token), presented));
  if (configured) {
    const principal: Principal = { name: configured.name, dns: configured.dns };
    if (configured.supervisor === true) principal.supervisor = true;
    if (configured.cdr === true) principal.cdr = true;
    return { ok: true, principal };
  }
  if (!JWT_SHAPE.test(token)) return { ok: false, reason: 'unknown token' };
  if (!keys.hs256Secret && !keys.rs256PublicKey) return { ok: false, reason: 'JWTs are not accepted: no JWT key configured' };
  const claim = gateway.jwt?.dnsClaim ?? 'dns';
  try {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        if (header.alg === 'HS256' && keys.hs256Secret) return keys.hs256Secret;
        if (header.alg === 'RS256' && keys.rs256PublicKey) return keys.rs256PublicKey;
        throw new joseErrors.JOSEAlgNotAllowed(`JWT algorithm ${String(header.alg)} is not accepted`);
      },
      { algorithms: ['HS256', 'RS256'] },
    );
    const value = payload[claim];
    const dns = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
    if (!Array.isArray(dns) || dns.length === 0 || !dns.every((d): d is string => typeof d === 'string' && d.length > 0)) {
      return { ok: false, reason: `JWT claim "${claim}" must list the DNs` };
    }
    return { ok: true, principal: { name: payload.sub ?? 'jwt', dns, ...(payload.cdr === true ? { cdr: true } : {}) } };
  } catch (err) {
    return { ok: false, reason: `invalid JWT: ${(err as Error).message}` };
  }
}

export function mayUse(principal: Principal, dn: string): boolean {
  return principal.dns.includes('*') || principal.dns.includes(dn);
}
