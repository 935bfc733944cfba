import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { socketHost } from '../uri.js';
import type { Endpoint, Transport, TransportHandler } from './transport.js';

export interface UdpTransportOptions {
  host: string;
  port: number;
  /** SO_RCVBUF; the default 4 MiB avoids drops in bursts (the kernel caps it at rmem_max). */
  recvBufferSize?: number;
}

export class UdpTransport implements Transport {
  readonly protocol = 'udp' as const;
  readonly reliable = false;
  private socket: dgram.Socket;
  private handler?: TransportHandler;
  private boundPort = 0;
  private lastSource: Endpoint | undefined;

  constructor(private readonly opts: UdpTransportOptions) {
    const host = socketHost(opts.host);
    this.socket = dgram.createSocket({
      type: net.isIPv6(host) ? 'udp6' : 'udp4',
      recvBufferSize: opts.recvBufferSize ?? 4 * 1024 * 1024,
      // Destinations are resolved before they reach a transport: skip dns.lookup's per-send tick for IP literals.
      lookup: (address, options, callback) => {
        const family = net.isIP(address);
        if (family) (callback as (err: null, address: string, family: number) => void)(null, address, family);
        else dns.lookup(address, options, callback);
      },
    });
    this.socket.on('message', (data, rinfo) => {
      let source = this.lastSource;
      // Endpoints are never modified: a peer sending again gets the same one, so the transactions
      // that keep it for 64*T1 share one object instead of a copy each.
      if (source === undefined || source.port !== rinfo.port || source.host !== rinfo.address) {
        source = { protocol: 'udp', host: rinfo.address, port: rinfo.port };
        this.lastSource = source;
      }
      this.handler?.onMessage(data, source, this);
    });
    // ICMP port unreachable surfaces here on some platforms; a datagram socket keeps serving.
    this.socket.on('error', () => undefined);
  }

  get host(): string {
    return this.opts.host;
  }

  get port(): number {
    return this.boundPort;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(this.opts.port, socketHost(this.opts.host), () => {
        this.socket.off('error', reject);
        this.boundPort = this.socket.address().port;
        resolve();
      });
    });
  }

  send(data: Buffer, dest: Endpoint, onError?: (err: Error) => void): void {
    // A callback per datagram costs a closure and a tick; only pay for it when someone listens.
    if (onError) this.socket.send(data, dest.port, socketHost(dest.host), (err) => err && onError(err));
    else this.socket.send(data, dest.port, socketHost(dest.host));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
