import { describe, expect, it } from 'vitest';
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
    const ch = new DigestChallenger({ realm: 'r' });
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
});
