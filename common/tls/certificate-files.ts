/**
 * A certificate and key read from files (a Kubernetes TLS Secret mounted as tls.crt/tls.key, as
 * cert-manager writes it) and read again when they change. The kubelet swaps a Secret volume's files
 * through a symlink, which file watches miss: the files' stat is polled instead. A half-written pair
 * (new certificate, old key) fails to load; the previous context stays until a later poll loads both.
 */
import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';

export interface CertificateFilesOptions {
  certFile: string;
  keyFile: string;
  /** How often the files' stat is compared (default 10 s; the kubelet refreshes Secrets within about a minute). */
  pollMs?: number;
  /** A rotation could not be loaded; the previous certificate stays in use. */
  onError?: (err: Error) => void;
}

export class CertificateFiles {
  private current: { cert: Buffer; key: Buffer; context: tls.SecureContext };
  private stamp: string;
  private readonly timer: NodeJS.Timeout;
  private readonly listeners: ((files: CertificateFiles) => void)[] = [];

  /** Reads both files now: a missing or invalid pair throws, naming the file. */
  constructor(private readonly opts: CertificateFilesOptions) {
    this.stamp = this.stat();
    this.current = this.load();
    this.timer = setInterval(() => this.poll(), opts.pollMs ?? 10_000);
    this.timer.unref();
  }

  /** The context new connections get. */
  get context(): tls.SecureContext {
    return this.current.context;
  }

  /** PEM text of the certificate and key, for servers that take options (https.Server.setSecureContext). */
  get pem(): { cert: Buffer; key: Buffer } {
    return { cert: this.current.cert, key: this.current.key };
  }

  /** Called after a rotation was loaded. */
  onChange(listener: (files: CertificateFiles) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private stat(): string {
    return [this.opts.certFile, this.opts.keyFile]
      .map((f) => {
        try {
          const s = statSync(f);
          return `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  private load(): { cert: Buffer; key: Buffer; context: tls.SecureContext } {
    const read = (file: string, what: string) => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw new Error(`TLS ${what} ${file}: ${(err as Error).message}`, { cause: err });
      }
    };
    const cert = read(this.opts.certFile, 'certificate');
    const key = read(this.opts.keyFile, 'key');
    try {
      return { cert, key, context: tls.createSecureContext({ cert, key }) };
    } catch (err) {
      throw new Error(`TLS certificate ${this.opts.certFile} with key ${this.opts.keyFile}: ${(err as Error).message}`, { cause: err });
    }
  }

  private poll(): void {
    const stamp = this.stat();
    if (stamp === this.stamp) return;
    try {
      this.current = this.load();
      this.stamp = stamp;
    } catch (err) {
      this.opts.onError?.(err as Error);
      return;
    }
    for (const l of this.listeners) l(this);
  }
}
