import { describe, expect, it } from 'vitest';
import { digestHa1 } from '../../common/config/digest-verifier.js';
import { authorize, digestResponse, DigestChallenger, parseChallenge } from './digest.js';
import { SipRequest, SipResponse } from './message.js';

function register(): SipRequest {
  const r = new SipRequest('REGISTER', 'sip:example.com');
  r.append('Via', 'SIP/2.0/UDP h;branch=z9hG4bKx').append('From', '<sip:7001@example.com>;tag=a').append('To', '<sip:7001@example.com>').append('Call-ID', 'c').append('CSeq', '1 REGISTER');
  return r;
}

describe('digest', () => {
  it('computes the RFC 2617 §3.5 example response', () => {
    // The RFC's HTTP example, reused: the algorithm is the same for SIP.
    expect(
      digestResponse({ algorithm: 'MD5', username: 'Mufasa', realm: 'testrealm@host.com', password: 'Circle Of Life', method: 'GET', uri: '/dir/index.html', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', cnonce: '0a4f113b', nc: '00000001', qop: 'auth' }),
    ).toBe('6629fae49393a05397450978507c4ef1');
  });

  it('computes the RFC 7616 §3.9.1 SHA-256 example response', () => {
    expect(
      digestResponse({ algorithm: 'SHA-256', username: 'Mufasa', realm: 'http-auth@example.org', password: 'Circle of Life', method: 'GET', uri: '/dir/index.html', nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v', cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ', nc: '00000001', qop: 'auth' }),
    ).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });

  it('a challenger accepts the answer of authorize(), for SHA-256 and MD5', async () => {
    for (const alg of ['SHA-256', 'MD5'] as const) {
      const ch = new DigestChallenger({ realm: 'example.com', algorithms: [alg] });
      const req = register();
      const res = new SipResponse(401, 'Unauthorized');
      for (const c of ch.challenge()) res.append('WWW-Authenticate', c);
      const cred = authorize(req, res, { username: '7001', password: 'pw' });
      expect(cred?.name).toBe('Authorization');
      req.append(cred!.name, cred!.value);
      expect(await ch.verify(req, () => 'pw')).toEqual({ ok: true, username: '7001' });
      expect(await ch.verify(req, () => 'other')).toMatchObject({ ok: false, reason: 'wrong password' });
    }
  });

  it('prefers SHA-256 when both are offered; answers 407 with Proxy-Authorization', () => {
    const ch = new DigestChallenger({ realm: 'r', algorithms: ['MD5', 'SHA-256'] });
    const res = new SipResponse(407, 'Proxy Authentication Required');
    for (const c of ch.challenge()) res.append('Proxy-Authenticate', c);
    const cred = authorize(register(), res, { username: 'u', password: 'p' });
    expect(cred?.name).toBe('Proxy-Authorization');
    expect(cred?.value).toContain('algorithm=SHA-256');
  });

  it('expired nonces are stale, forged ones refused', async () => {
    let now = 1_000_000;
    const ch = new DigestChallenger({ realm: 'r', nonceTtlMs: 1000, now: () => now });
    const res = new SipResponse(401, 'Unauthorized');
    res.append('WWW-Authenticate', ch.challenge()[0]!);
    const req = register();
    req.append('Authorization', authorize(req, res, { username: 'u', password: 'p' })!.value);
    now += 5000;
    expect(await ch.verify(req, () => 'p')).toMatchObject({ ok: false, stale: true });
    const other = new DigestChallenger({ realm: 'r' });
    expect(await other.verify(req, () => 'p')).toMatchObject({ ok: false, reason: 'unknown nonce' });
  });

  it('parses challenges with quoted commas and rejects other schemes', () => {
    expect(parseChallenge('Digest realm="a,b", nonce="n", qop="auth,auth-int", algorithm=SHA-256-sess, opaque="o"')).toEqual({
      realm: 'a,b',
      nonce: 'n',
      qop: ['auth', 'auth-int'],
      algorithm: 'SHA-256-sess',
      opaque: 'o',
      stale: false,
    });
    expect(parseChallenge('Basic realm="x"')).toBeNull();
  });

  it('offers MD5 alone by default (sipp answers the first challenge only, baresip refuses a list naming another algorithm), SHA-256 on request', () => {
    const ch = new DigestChallenger({ realm: 'r' });
    expect(ch.challenge().map((c) => parseChallenge(c)?.algorithm)).toEqual(['MD5']);
    expect(ch.challenge({ algorithms: ['SHA-256', 'MD5'] }).map((c) => parseChallenge(c)?.algorithm)).toEqual(['SHA-256', 'MD5']);
    expect(ch.challenge({ algorithms: ['SHA-256'] }).map((c) => parseChallenge(c)?.algorithm)).toEqual(['SHA-256']);
  });

  it('verifies from the HA1 verifiers alone, for MD5 and SHA-256; an algorithm the DN does not allow is refused', async () => {
    for (const alg of ['MD5', 'SHA-256'] as const) {
      const ch = new DigestChallenger({ realm: 'SiteA', algorithms: [alg] });
      const req = answered(ch, { username: '7001', password: 'pw' });
      const verifier = { ha1: { md5: digestHa1('MD5', '7001', 'SiteA', 'pw'), sha256: digestHa1('SHA-256', '7001', 'SiteA', 'pw') } };
      expect(await ch.verify(req, () => verifier)).toEqual({ ok: true, username: '7001' });
      const other = alg === 'MD5' ? 'SHA-256' : 'MD5';
      expect(await ch.verify(answered(ch, { username: '7001', password: 'pw' }), () => verifier, false, [other])).toMatchObject({ ok: false, reason: 'incomplete credentials' });
    }
  });

  it('refuses a replay: the same nonce and nonce-count twice; a higher nc on the same nonce passes', async () => {
    let now = 1_000_000;
    const ch = new DigestChallenger({ realm: 'r', now: () => now });
    const req = answered(ch, { username: 'u', password: 'p' });
    expect(await ch.verify(req, () => 'p')).toEqual({ ok: true, username: 'u' });
    now += 1000;
    expect(await ch.verify(req, () => 'p')).toMatchObject({ ok: false, stale: false, reason: 'replayed nonce-count' });
    const next = register();
    next.append('Authorization', req.get('authorization')!.replace(/response="[0-9a-f]+"/, `response="${responseFor(req, 'p', '00000002')}"`).replace('nc=00000001', 'nc=00000002'));
    expect(await ch.verify(next, () => 'p')).toEqual({ ok: true, username: 'u' });
    expect(await ch.verify(next, () => 'p')).toMatchObject({ ok: false, reason: 'replayed nonce-count' });
  });

  it('an answer without qop=auth is refused (no nonce-count, no replay protection)', async () => {
    const ch = new DigestChallenger({ realm: 'r' });
    const nonce = parseChallenge(ch.challenge()[0]!)!.nonce;
    const req = register();
    const response = digestResponse({ algorithm: 'MD5', username: 'u', realm: 'r', password: 'p', method: 'REGISTER', uri: req.uri, nonce });
    req.append('Authorization', `Digest username="u", realm="r", nonce="${nonce}", uri="${req.uri}", response="${response}", algorithm=MD5`);
    expect(await ch.verify(req, () => 'p')).toMatchObject({ ok: false, reason: 'qop=auth with nc and cnonce required' });
  });

  it('keeps a bounded nonce table; a live nonce pushed out of it is answered stale, never accepted again', async () => {
    let now = 1_000_000;
    const ch = new DigestChallenger({ realm: 'r', maxTrackedNonces: 2, now: () => now });
    const first = answered(ch, { username: 'u', password: 'p' });
    now += 1;
    const later = [answered(ch, { username: 'u', password: 'p' }), answered(ch, { username: 'u', password: 'p' })];
    expect(await ch.verify(first, () => 'p')).toMatchObject({ ok: true });
    for (const r of later) expect(await ch.verify(r, () => 'p')).toMatchObject({ ok: true });
    expect(await ch.verify(first, () => 'p')).toMatchObject({ ok: false, stale: true, reason: 'nonce no longer tracked' });
    expect(await ch.verify(later[1]!, () => 'p')).toMatchObject({ ok: false, reason: 'replayed nonce-count' });
  });
});

/** A REGISTER carrying authorize()'s answer to a fresh challenge of `ch`. */
function answered(ch: DigestChallenger, creds: { username: string; password: string }): SipRequest {
  const req = register();
  const res = new SipResponse(401, 'Unauthorized');
  for (const c of ch.challenge()) res.append('WWW-Authenticate', c);
  req.append('Authorization', authorize(req, res, creds)!.value);
  return req;
}

/** The response of `req`'s Authorization recomputed for another nonce-count. */
function responseFor(req: SipRequest, password: string, nc: string): string {
  const p = /username="([^"]+)".*realm="([^"]+)".*nonce="([^"]+)".*uri="([^"]+)".*algorithm=([A-Z0-9-]+).*cnonce="([^"]+)"/.exec(req.get('authorization')!)!;
  return digestResponse({ algorithm: p[5] as 'MD5', username: p[1]!, realm: p[2]!, password, method: req.method, uri: p[4]!, nonce: p[3]!, cnonce: p[6]!, nc, qop: 'auth' });
}
