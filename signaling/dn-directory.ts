/**
 * The DNs of this site as signaling needs them, read from the live configuration at the moment of
 * use (a SipDN edit applies to the next call without a restart).
 */
import { BlockList, isIP } from 'node:net';
import type { LiveConfig } from '../common/nats/config-kv.js';
import type { DnConfig } from './model/index.js';
import { parseUri, type SipUri } from './sip/index.js';
import { addCidr, parseCidr } from '../common/config/cidr.js';

export class DnDirectory {
  constructor(private readonly config: LiveConfig) {}

  dn(number: string): DnConfig | undefined {
    const doc = this.config.dn(number);
    return doc ? { number: doc.spec.number, type: doc.spec.type, options: doc.spec.options } : undefined;
  }

  trunks(): DnConfig[] {
    return this.config.dns.filter((d) => d.spec.type === 'Trunk').map((d) => ({ number: d.spec.number, type: d.spec.type, options: d.spec.options }));
  }

  /**
   * The Trunk a packet from host:port belongs to, if any: by its options['sip-trunk-sources']
   * (IP, IPv4:port or CIDR), else by the host and port of its contact. Only the packet's source
   * decides; headers (Via, From) are the sender's word and never make anyone a trunk.
   */
  trunkFrom(host: string, port: number): DnConfig | undefined {
    const address = host.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
    return this.trunks().find((t) => cachedSourcesOf(t).some((s) => s.matches(address, port)));
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

interface TrunkSource {
  matches(address: string, port: number): boolean;
}

/**
 * A trunk's sources are parsed once per configuration: the live config replaces a DN's options
 * object on every change, so keying on it drops what an edit made stale.
 */
const parsedSources = new WeakMap<DnConfig['options'], TrunkSource[]>();

function cachedSourcesOf(trunk: DnConfig): TrunkSource[] {
  let sources = parsedSources.get(trunk.options);
  if (!sources) parsedSources.set(trunk.options, (sources = sourcesOf(trunk)));
  return sources;
}

function sourcesOf(trunk: DnConfig): TrunkSource[] {
  const listed = trunk.options['sip-trunk-sources'];
  if (listed) return listed.map(parseSource).filter((s): s is TrunkSource => s !== undefined);
  const peer = peerOf(trunk.options.contact);
  if (!peer) return [];
  const port = peer.port ?? 5060;
  return [{ matches: (address, p) => address === peer.host && p === port }];
}

function parseSource(entry: string): TrunkSource | undefined {
  if (entry.includes('/')) {
    // An entry the schema let through but no range parses from matches nothing (never throws per INVITE).
    const cidr = parseCidr(entry);
    if (!cidr) return undefined;
    const list = new BlockList();
    addCidr(list, cidr);
    return {
      matches: (address) => {
        const family = isIP(address);
        return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
      },
    };
  }
  if (isIP(entry) !== 0) return { matches: (address) => address === entry };
  const withPort = /^([0-9.]+):([0-9]{1,5})$/.exec(entry);
  if (withPort && isIP(withPort[1]!) === 4) return { matches: (address, port) => address === withPort[1] && port === Number(withPort[2]) };
  return undefined;
}
