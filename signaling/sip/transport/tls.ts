import net from 'node:net';
import tls from 'node:tls';
import { CertificateFiles } from '../../../common/tls/certificate-files.js';
import { socketHost } from '../uri.js';
import { StreamTransport, type StreamTransportOptions } from './stream.js';
import type { Endpoint } from './transport.js';

export interface TlsTransportOptions extends StreamTransportOptions {
  /** PEM files of our certificate (chain) and key, read again when they change (cert-manager rotation). */
  certFile: string;
  keyFile: string;
  /** How often the files are checked for a rotation (default 10 s). */
  reloadMs?: number;
  /** PEM CAs trusted for connections we open, besides the system's (a private CA, tests). */
  ca?: string | Buffer;
  /** A rotation that could not be loaded (the previous certificate stays). */
  onCertificateError?: (err: Error) => void;
}

/**
 * SIP over TLS (RFC 3261 §26.3.1, RFC 5630): TCP framing over node:tls. A new certificate applies to
 * connections accepted after it was read; open ones keep the session they negotiated.
 */
export class TlsTransport extends StreamTransport {
  readonly protocol = 'tls' as const;
  private readonly certificate: CertificateFiles;
  private readonly trusted: string[] | undefined;

  constructor(opts: TlsTransportOptions) {
    super(opts);
    this.certificate = new CertificateFiles({
      certFile: opts.certFile,
      keyFile: opts.keyFile,
      ...(opts.reloadMs ? { pollMs: opts.reloadMs } : {}),
      ...(opts.onCertificateError ? { onError: opts.onCertificateError } : {}),
    });
    this.trusted = opts.ca ? [...tls.rootCertificates, opts.ca.toString()] : undefined;
  }

  protected inbound(raw: net.Socket): { socket: net.Socket; secured: boolean } {
    return { socket: new tls.TLSSocket(raw, { isServer: true, secureContext: this.certificate.context }), secured: false };
  }

  protected outbound(dest: Endpoint): { socket: net.Socket; readyEvent: string } {
    const host = socketHost(dest.host);
    const socket = tls.connect({
      host,
      port: dest.port,
      // Destinations arrive resolved: an IP is checked against the certificate's IP names, a name by SNI.
      ...(net.isIP(host) ? {} : { servername: host }),
      ...(this.trusted ? { ca: this.trusted } : {}),
    });
    return { socket, readyEvent: 'secureConnect' };
  }

  override async close(): Promise<void> {
    this.certificate.close();
    await super.close();
  }
}
