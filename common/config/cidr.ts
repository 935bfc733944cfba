/** An address range as configuration writes it: `address/bits`, IPv4 or IPv6. */
import { isIP, type BlockList } from 'node:net';

export interface Cidr {
  address: string;
  bits: number;
  family: 'ipv4' | 'ipv6';
}

/** `address/bits` with a prefix length that fits the address's family; undefined otherwise. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const digits = text.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || !/^[0-9]{1,3}$/.test(digits)) return undefined;
  const bits = Number(digits);
  if (bits > (family === 4 ? 32 : 128)) return undefined;
  return { address, bits, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/** Adds a parsed range to `list` (BlockList.addSubnet throws on a prefix length out of range: parse first). */
export function addCidr(list: BlockList, cidr: Cidr): void {
  list.addSubnet(cidr.address, cidr.bits, cidr.family);
}
