import { describe, expect, it } from 'vitest';
import { CallStateKeys, ConfigKeys, Subjects, fromKvToken, fromSubjectToken, kvToken, subjectToken } from './subjects.js';

describe('NATS subjects', () => {
  it('escapes DN numbers that NATS tokens cannot hold and reads them back', () => {
    for (const dn of ['7001', '+4930123', '*72', '#1', 'a.b', 'sip user']) {
      const token = subjectToken(dn);
      expect(token).toMatch(/^[A-Za-z0-9_~-]+$/);
      expect(fromSubjectToken(token)).toBe(dn);
    }
  });

  it('gives each site and DN its own subjects', () => {
    expect(Subjects.tlibRequest('SiteA', '7001')).toBe('huddle.SiteA.tlib.req.7001');
    expect(Subjects.tlibEvent('SiteB', '+49')).toBe('huddle.SiteB.tlib.evt.~2b49');
    expect(Subjects.dnOf(Subjects.tlibEvent('SiteB', '+49'))).toBe('+49');
    expect(Subjects.mediaInstanceCommand('SiteA', 'pod-1')).toBe('huddle.SiteA.media.cmd.pod-1');
    expect(ConfigKeys.dn('site-a', '7001')).toBe('site-a.dn.7001');
    expect(() => subjectToken('')).toThrow();
  });

  it('writes call state keys with the characters KV keys allow, and reads their ids back', () => {
    for (const id of ['7001', '9015cdc0@127.0.0.1', 'a.b', 'sip user', 'é~=']) {
      expect(kvToken(id)).toMatch(/^[A-Za-z0-9_=-]+$/);
      expect(fromKvToken(kvToken(id))).toBe(id);
      expect(CallStateKeys.idOf(CallStateKeys.dialog('Site A', id))).toBe(id);
    }
    expect(CallStateKeys.group('SiteA', '0a1b')).toBe('SiteA.group.0a1b');
  });
});
