/**
 * The DNs of this site as signaling needs them, read from the live configuration at the moment of
 * use (a SipDN edit applies to the next call without a restart).
 */
import type { LiveConfig } from '../common/nats/config-kv.js';
import type { DnConfig } from './model/index.js';
import { parseUri, type SipUri } from './sip/index.js';

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
      return peer !== undefined && peer.host === host && (peer.port ?? 5060) === port;
    });
  }

  /** A DN's options.contact as a SIP URI ("host:port" is taken as sip:host:port); undefined if absent or not SIP. */
  peer(number: string): SipUri | undefined {
    return peerOf(this.dn(number)?.options.contact);
  }
}

function peerOf(contact: string | undefined): SipUri | undefined {
  if (!contact) return undefined;
  try {
    const uri = parseUri(/^sips?:/.test(contact) ? contact : `sip:${contact}`);
    return uri.scheme === 'tel' ? undefined : uri;
  } catch {
    return undefined;
  }
}
