import { describe, expect, it } from 'vitest';
import type { LiveConfig } from '../common/nats/config-kv.js';
import type { SipDN } from '../common/config/schema.js';
import { DnDirectory } from './dn-directory.js';

/** The part of LiveConfig the directory reads: its DNs. */
function directoryOf(dns: SipDN[]): DnDirectory {
  return new DnDirectory({ dns, dn: (n: string) => dns.find((d) => d.spec.number === n) } as unknown as LiveConfig);
}

function trunk(number: string, options: Record<string, unknown>): SipDN {
  return { apiVersion: 'sip.huddle.dev/v1alpha1', kind: 'SipDN', metadata: { name: `t-${number}` }, spec: { cluster: 'c', number, type: 'Trunk', options } } as unknown as SipDN;
}

describe('DnDirectory.trunkFrom', () => {
  it('a source entry whose prefix length does not fit its address matches nothing and never throws: a request from anyone else is still served', () => {
    const directory = directoryOf([trunk('9000', { contact: 'sip:127.0.0.1:5999', 'sip-trunk-sources': ['10.0.0.0/40', '127.0.0.9'] })]);
    expect(directory.trunkFrom('10.0.0.1', 5060)).toBeUndefined();
    expect(directory.trunkFrom('127.0.0.9', 1234)?.number).toBe('9000');
    expect(directory.trunkFrom('192.0.2.1', 5060)).toBeUndefined();
  });

  it('matches a CIDR (also as an IPv4-mapped IPv6 source), an address and an address:port; the contact by default', () => {
    const directory = directoryOf([
      trunk('9000', { contact: 'sip:198.51.100.7:5070' }),
      trunk('9001', { contact: 'sip:carrier', 'sip-trunk-sources': ['203.0.113.0/24', '192.0.2.5:5080'] }),
    ]);
    expect(directory.trunkFrom('198.51.100.7', 5070)?.number).toBe('9000');
    expect(directory.trunkFrom('198.51.100.7', 5060)).toBeUndefined();
    expect(directory.trunkFrom('::ffff:203.0.113.44', 5060)?.number).toBe('9001');
    expect(directory.trunkFrom('192.0.2.5', 5080)?.number).toBe('9001');
    expect(directory.trunkFrom('192.0.2.5', 5081)).toBeUndefined();
  });
});
