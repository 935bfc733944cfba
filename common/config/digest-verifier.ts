/** What a server may store instead of a digest password (RFC 7616 §3.4.2): H(username:realm:password). */
import { createHash } from 'node:crypto';

export function digestHa1(algorithm: 'MD5' | 'SHA-256', username: string, realm: string, password: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(`${username}:${realm}:${password}`).digest('hex');
}
