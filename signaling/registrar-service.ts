/**
 * REGISTER over SIP (RFC 3261 §10): bindings per DN with expiry, digest authentication per DN,
 * and persistence in a KV bucket so that a signaling restart keeps every phone reachable.
 */
import { KvWatchInclude, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { decodeJson, encodeJson } from '../common/nats/codec.js';
import { RegistrationKeys } from '../common/nats/subjects.js';
import type { DnAuthenticator } from './dn-auth.js';
import type { DnDirectory } from './dn-directory.js';
import { peerOpenedOnly, Registrar, type Binding } from './registrar.js';
import { parseNameAddr, uriUser, type Endpoint, type ServerRequest } from './sip/index.js';

export class RegistrarService {
  private readonly registrar = new Registrar();
  /** The DN of each registration key seen, for deletes (their entries carry no value). */
  private readonly dnOfKey = new Map<string, string>();

  constructor(
    private readonly opts: {
      directory: DnDirectory;
      kv: KV;
      clusterName: string;
      /** Every REGISTER, removals (Contact: *, Expires: 0) included, proves it comes from the DN. */
      auth: DnAuthenticator;
      log: Logger;
    },
  ) {}

  /** Loads the bindings persisted by an earlier run. */
  async restore(): Promise<void> {
    const now = Date.now();
    const keys = await this.opts.kv.keys(`${RegistrationKeys.prefix(this.opts.clusterName)}>`);
    for await (const key of keys) {
      const entry = await this.opts.kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        const { dn, bindings } = decodeJson(entry.value) as { dn: string; bindings: Binding[] };
        this.dnOfKey.set(key, dn);
        // A browser's connection died with the process that held it: it registers again on a new one.
        this.registrar.restore(dn, bindings.filter((b) => !peerOpenedOnly(b.source.transport)), now);
      } catch (err) {
        this.opts.log.warn({ key, err: (err as Error).message }, 'unreadable persisted registration ignored');
      }
    }
  }

  /**
   * Keeps the bindings other signaling replicas write (issue 16: a phone registers through the SIP
   * edge with whichever replica the hash picks; any replica may call it).
   */
  async follow(): Promise<void> {
    const watch = await this.opts.kv.watch({ key: `${RegistrationKeys.prefix(this.opts.clusterName)}>`, include: KvWatchInclude.UpdatesOnly });
    this.stopFollowing = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        try {
          if (entry.operation === 'PUT') {
            const { dn, bindings } = decodeJson(entry.value) as { dn: string; bindings: Binding[] };
            this.dnOfKey.set(entry.key, dn);
            this.registrar.restore(dn, bindings, Date.now());
          } else {
            const dn = this.dnOfKey.get(entry.key);
            if (dn) this.registrar.restore(dn, [], Date.now());
          }
        } catch (err) {
          this.opts.log.warn({ key: entry.key, err: (err as Error).message }, 'unreadable registration update ignored');
        }
      }
    })();
  }

  stopFollowing: () => void = () => undefined;

  lookup(dn: string): Binding | undefined {
    return this.registrar.lookup(dn, Date.now()).at(-1);
  }

  count(): number {
    return this.registrar.registeredCount(Date.now());
  }

  async onRegister(req: ServerRequest): Promise<void> {
    const msg = req.message;
    let dn: string | undefined;
    try {
      dn = uriUser(msg.to.uri);
    } catch {
      dn = undefined;
    }
    if (!dn) {
      req.respond(400, { reason: 'To header has no DN' });
      return;
    }
    const config = this.opts.directory.dn(dn);
    if (!config || config.type === 'Trunk') {
      req.respond(404, { reason: `DN ${dn} is not configured` });
      return;
    }
    const verdict = await this.opts.auth.check(msg, dn, false);
    if (!verdict.ok) {
      req.respond(verdict.status, { reason: verdict.reason, ...(verdict.headers ? { headers: verdict.headers } : {}) });
      return;
    }
    const contactValues = msg.getAll('contact');
    const expiresHeader = msg.get('expires');
    const expires = expiresHeader !== undefined ? Number(expiresHeader) : undefined;
    if (expires !== undefined && !Number.isInteger(expires)) {
      req.respond(400, { reason: 'Expires is not a number' });
      return;
    }
    let contacts: { uri: string; expires: number | undefined }[] | '*';
    try {
      contacts =
        contactValues.length === 1 && contactValues[0]!.trim() === '*'
          ? '*'
          : contactValues.map((v) => {
              const na = parseNameAddr(v);
              const e = na.params.expires;
              return { uri: na.uri, expires: e === undefined || e === null ? undefined : Number(e) };
            });
    } catch (err) {
      req.respond(400, { reason: `Bad Contact: ${(err as Error).message}`.slice(0, 100) });
      return;
    }
    const path = msg.getAll('path');
    const source = { transport: req.source.protocol, host: req.source.host, port: req.source.port };
    const now = Date.now();
    const result =
      contacts !== '*' && contacts.length === 0
        ? { status: 200 as const, bindings: this.registrar.lookup(dn, now) }
        : this.registrar.register({ dn, callId: msg.callId, cseq: msg.cseq.seq, source, path, contacts, expires, now });
    if (result.status === 423) {
      req.respond(423, { reason: result.reason, headers: { 'Min-Expires': String(result.minExpires) } });
      return;
    }
    if (result.status === 400) {
      req.respond(400, { reason: result.reason });
      return;
    }
    // RFC 3327 §5.3: the Path stored is echoed, so the phone (and the edge) know it is used.
    req.respond(200, { headers: { Contact: result.bindings.map((b) => `<${b.contact}>;expires=${Math.max(0, Math.round((b.expiresAt - now) / 1000))}`), ...(path.length > 0 ? { Path: path } : {}) } });
    await this.persist(dn);
  }

  /** A browser's connection closed: its bindings go, so a call to its DN is answered 480 at once. */
  async flowClosed(flow: Endpoint): Promise<void> {
    const dns = this.registrar.dropFlow({ transport: flow.protocol, host: flow.host, port: flow.port });
    for (const dn of dns) {
      this.opts.log.info({ dn, flow: `${flow.protocol}:${flow.host}:${flow.port}` }, 'registration ended: its WebSocket closed');
      await this.persist(dn);
    }
  }

  private async persist(dn: string): Promise<void> {
    const key = RegistrationKeys.dn(this.opts.clusterName, dn);
    this.dnOfKey.set(key, dn);
    const bindings = this.registrar.snapshot(dn);
    try {
      if (bindings.length === 0) await this.opts.kv.delete(key);
      else await this.opts.kv.put(key, encodeJson({ dn, bindings }));
    } catch (err) {
      this.opts.log.warn({ dn, err: (err as Error).message }, 'registration not persisted');
    }
  }
}
