/**
 * The DNs of this site as signaling needs them, read from the live configuration at the moment of
 * use (a SipDN edit applies to the next call without a restart).
 */
import type { LiveConfig } from '../common/nats/config-kv.js';
import type { DnConfig } from './model/index.js';
import { parseUri } from './sip/index.js';

export class DnDirectory {
  constructor(private readonly config: LiveConfig) {}

  dn(number: string): DnConfig | undefined {
    const doc = this.config.dn(number);
    return doc ? { number: doc.spec.number, type: doc.spec.type, options: doc.spec.options } : undefined;
  }

  trunks(): DnConfig[] {
    return this.config.dns.filter((d) => d.spec.type === 'Trunk').map((d) => ({ number: d.spec.number, type: d.spec.type, options: d.spec.options }));
  }

  /** The Trunk whose peer (options.contact) is host:port, if any. */
  trunkAt(host: string, port: number): DnConfig | undefined {
    return this.trunks().find((t) => {
      const peer = peerOf(t.options.contact);
      return peer !== undefined && peer.host === host && peer.port === port;
    });
  }
}

function peerOf(contact: string | undefined): { host: string; port: number } | undefined {
  if (!contact) return undefined;
  try {
    const uri = parseUri(/^sips?:/.test(contact) ? contact : `sip:${contact}`);
    if (uri.scheme === 'tel') return undefined;
    return { host: uri.host, port: uri.port ?? 5060 };
  } catch {
    return undefined;
  }
}
