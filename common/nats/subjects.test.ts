import { describe, expect, it } from 'vitest';
import { ConfigKeys, Subjects, fromSubjectToken, subjectToken } from './subjects.js';

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
});
