import { describe, expect, it } from 'vitest';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { conferenceInfoXml } from './conference-info.js';

describe('RFC 4575 conference-info', () => {
  it('lists every member once under <users>, the listen-disconnected one on hold with inactive media', () => {
    const body = conferenceInfoXml({
      entity: 'sip:conf-00b1c2d3e4f50607@SiteA',
      version: 3,
      state: 'full',
      members: [
        { alias: '7001', location: 'SiteA', entity: 'sip:7001@SiteA', status: 'connected', media: 'sendrecv' },
        { alias: '7002', location: 'SiteA', entity: 'sip:7002@SiteA', status: 'connected', media: 'sendrecv' },
        { alias: '8001', location: 'Site<B>', entity: 'sip:8001@SiteB', status: 'on-hold', media: 'inactive' },
      ],
    });
    expect(XMLValidator.validate(body)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(body) as {
      'conference-info': {
        xmlns: string;
        version: string;
        state: string;
        'conference-state': { 'user-count': number };
        users: { user: { entity: string; 'display-text': string; endpoint: { status: string; media: { status: string } } }[] };
      };
    };
    const info = doc['conference-info'];
    expect(info.xmlns).toBe('urn:ietf:params:xml:ns:conference-info');
    expect(info.version).toBe('3');
    expect(info['conference-state']['user-count']).toBe(3);
    expect(info.users.user.map((u) => [u.entity, u.endpoint.status, u.endpoint.media.status])).toEqual([
      ['sip:7001@SiteA', 'connected', 'sendrecv'],
      ['sip:7002@SiteA', 'connected', 'sendrecv'],
      ['sip:8001@SiteB', 'on-hold', 'inactive'],
    ]);
    expect(info.users.user[2]!['display-text']).toBe('8001 (Site<B>)');
  });
});
