import { describe, expect, it } from 'vitest';
import { Registrar } from './registrar.js';

const source = { transport: 'udp' as const, host: '127.0.0.1', port: 5070 };

describe('Registrar', () => {
  it('binds, refreshes, expires and removes contacts', () => {
    const r = new Registrar();
    const ok = r.register({ dn: '7001', callId: 'a', cseq: 1, source, contacts: [{ uri: 'sip:7001@127.0.0.1:5070', expires: undefined }], expires: 60, now: 0 });
    expect(ok.status).toBe(200);
    expect(r.lookup('7001', 59_000).map((b) => b.contact)).toEqual(['sip:7001@127.0.0.1:5070']);
    expect(r.lookup('7001', 60_000)).toEqual([]);
    r.register({ dn: '7001', callId: 'a', cseq: 2, source, contacts: [{ uri: 'sip:7001@127.0.0.1:5070', expires: 120 }], expires: undefined, now: 0 });
    expect(r.lookup('7001', 100_000)).toHaveLength(1);
    r.register({ dn: '7001', callId: 'a', cseq: 3, source, contacts: [{ uri: 'sip:7001@127.0.0.1:5070', expires: 0 }], expires: undefined, now: 1 });
    expect(r.lookup('7001', 2)).toEqual([]);
  });

  it('drops the bindings made over a WebSocket that closed, and only those (RFC 5626 §5.3)', () => {
    const r = new Registrar();
    const tab = { transport: 'ws' as const, host: '127.0.0.1', port: 40001 };
    const otherTab = { transport: 'ws' as const, host: '127.0.0.1', port: 40002 };
    r.register({ dn: '7001', callId: 'a', cseq: 1, source: tab, contacts: [{ uri: 'sip:k2j4@q7oc.invalid;transport=ws', expires: 600 }], expires: undefined, now: 0 });
    r.register({ dn: '7001', callId: 'b', cseq: 1, source, contacts: [{ uri: 'sip:7001@127.0.0.1:5070', expires: 600 }], expires: undefined, now: 0 });
    r.register({ dn: '7002', callId: 'c', cseq: 1, source: otherTab, contacts: [{ uri: 'sip:m3n1@z8x.invalid;transport=ws', expires: 600 }], expires: undefined, now: 0 });
    // The same address and port over udp is another flow.
    expect(r.dropFlow({ ...tab, transport: 'udp' })).toEqual([]);
    expect(r.dropFlow(tab)).toEqual(['7001']);
    expect(r.lookup('7001', 1).map((b) => b.contact)).toEqual(['sip:7001@127.0.0.1:5070']);
    expect(r.lookup('7002', 1)).toHaveLength(1);
    expect(r.dropFlow(otherTab)).toEqual(['7002']);
    expect(r.lookup('7002', 1)).toEqual([]);
  });

  it('keeps the Path of the REGISTER that made a binding (RFC 3327), and only that one', () => {
    const r = new Registrar();
    const path = ['<sip:10.0.0.5:5071;lr;received=sip:203.0.113.7:40112%3Btransport%3Dtcp>'];
    r.register({ dn: '7001', callId: 'a', cseq: 1, source, path, contacts: [{ uri: 'sip:7001@192.168.1.20:5060;transport=tcp', expires: 60 }], expires: undefined, now: 0 });
    expect(r.lookup('7001', 0)[0]!.path).toEqual(path);
    r.register({ dn: '7001', callId: 'a', cseq: 2, source, contacts: [{ uri: 'sip:7001@192.168.1.20:5060;transport=tcp', expires: 60 }], expires: undefined, now: 0 });
    expect(r.lookup('7001', 0)[0]!.path).toBeUndefined();
  });

  it('answers 423 below the minimum interval and 400 to an old CSeq', () => {
    const r = new Registrar();
    expect(r.register({ dn: '7001', callId: 'a', cseq: 1, source, contacts: [{ uri: 'sip:x@h', expires: 5 }], expires: undefined, now: 0 })).toEqual({
      status: 423,
      reason: 'Interval Too Brief',
      minExpires: 30,
    });
    r.register({ dn: '7001', callId: 'a', cseq: 5, source, contacts: [{ uri: 'sip:x@h', expires: 60 }], expires: undefined, now: 0 });
    expect(r.register({ dn: '7001', callId: 'a', cseq: 5, source, contacts: [{ uri: 'sip:x@h', expires: 60 }], expires: undefined, now: 0 }).status).toBe(400);
  });

  it('removes all bindings with Contact: * and Expires: 0 only', () => {
    const r = new Registrar();
    r.register({ dn: '7001', callId: 'a', cseq: 1, source, contacts: [{ uri: 'sip:x@h', expires: 60 }], expires: undefined, now: 0 });
    expect(r.register({ dn: '7001', callId: 'b', cseq: 1, source, contacts: '*', expires: 60, now: 0 }).status).toBe(400);
    expect(r.register({ dn: '7001', callId: 'b', cseq: 1, source, contacts: '*', expires: 0, now: 0 }).status).toBe(200);
    expect(r.lookup('7001', 0)).toEqual([]);
  });

  it('restores a snapshot without the bindings that expired meanwhile', () => {
    const r = new Registrar();
    r.register({ dn: '7001', callId: 'a', cseq: 1, source, contacts: [{ uri: 'sip:a@h', expires: 60 }, { uri: 'sip:b@h', expires: 600 }], expires: undefined, now: 0 });
    const copy = new Registrar();
    copy.restore('7001', r.snapshot('7001'), 120_000);
    expect(copy.lookup('7001', 120_000).map((b) => b.contact)).toEqual(['sip:b@h']);
    expect(copy.registeredCount(120_000)).toBe(1);
  });
});
