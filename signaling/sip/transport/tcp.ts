import net from 'node:net';
import { socketHost } from '../uri.js';
import { StreamTransport, type StreamTransportOptions } from './stream.js';
import type { Endpoint } from './transport.js';

export type TcpTransportOptions = StreamTransportOptions;

/**
 * TCP with connection reuse: one connection per remote address, whether we accepted or opened it
 * (§18.2.2: responses go back over the connection the request came on).
 */
export class TcpTransport extends StreamTransport {
  readonly protocol = 'tcp' as const;

  protected inbound(raw: net.Socket): { socket: net.Socket; secured: boolean } {
    return { socket: raw, secured: true };
  }

  protected outbound(dest: Endpoint): { socket: net.Socket; readyEvent: string } {
    return { socket: net.connect({ host: socketHost(dest.host), port: dest.port }), readyEvent: 'connect' };
  }
}
