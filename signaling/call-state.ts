/**
 * The call state of a site in the JetStream KV bucket `huddle-calls` (CallStateKeys): replica
 * leases, call groups with their owner, desktop registrations and the Call-ID index. Group writes
 * are compare-and-set on the key's revision; a failed one is a CallStateConflict (another replica
 * owns the group now). Any other failure means NATS could not be reached.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { KvWatchInclude, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { openBucket } from '../common/nats/buckets.js';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { CallStateKeys } from '../common/nats/subjects.js';
import type { LegState } from './b2bua.js';
import type { GroupSnapshot } from './model/index.js';

/** One call group as another process needs it to carry the calls on. */
export interface GroupRecord extends GroupSnapshot {
  /** The replica that owns it. */
  owner: string;
  /** The B2BUA legs with their SIP dialogs. */
  sip: LegState[];
  /** Media bridge -> the media-controller instance that holds it. */
  media: Record<string, string>;
}

export interface ReplicaLease {
  replica: string;
  /** The replica's SIP address (transport host:port), where a request for a dialog it owns is relayed. */
  sip: string;
  startedAt: number;
  /** Set while the replica stops: its calls are about to be handed to the others (rolling upgrade). */
  leaving?: true;
}

/** A compare-and-set lost: the key changed since the revision given. */
export class CallStateConflict extends Error {
  constructor(key: string, options?: ErrorOptions) {
    super(`${key} changed under us`, options);
    this.name = 'CallStateConflict';
  }
}

function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class CallStateStore {
  private constructor(
    private readonly kv: KV,
    private readonly location: string,
    private readonly nc: NatsConnection,
  ) {}

  /** Opens (creating when absent) the bucket, with `replicas` copies in a NATS cluster (spec.nats.replicas). */
  static async open(nc: NatsConnection, location: string, replicas: number, log: Logger): Promise<CallStateStore> {
    const kv = await openBucket(nc, CallStateKeys.bucket, { history: 1, replicas, log });
    return new CallStateStore(kv, location, nc);
  }

  /** Bytes of a JSON text as written. */
  static bytes(json: string): number {
    return encoder.encode(json).length;
  }

  // ---------------------------------------------------------------- groups

  /** Writes a group: a new key when `revision` is undefined, else only over that revision. Resolves with the new revision. */
  async putGroup(groupId: string, json: string, revision: number | undefined): Promise<number> {
    const key = CallStateKeys.group(this.location, groupId);
    try {
      return revision === undefined ? await this.kv.create(key, encoder.encode(json)) : await this.kv.update(key, encoder.encode(json), revision);
    } catch (err) {
      if (isConflict(err)) return this.ownWrite(key, json, err);
      throw err;
    }
  }

  /**
   * A compare-and-set that failed because our own earlier attempt landed late (it timed out during
   * a NATS leader election and was tried again): the key holds exactly what we wrote, so it is ours
   * at that revision. Anything else there is another writer's: a CallStateConflict.
   */
  private async ownWrite(key: string, json: string, err: unknown): Promise<number> {
    const entry = await this.kv.get(key);
    if (entry?.operation === 'PUT' && decoder.decode(entry.value) === json) return entry.revision;
    throw new CallStateConflict(key, { cause: err });
  }

  async deleteGroup(groupId: string, revision: number): Promise<void> {
    const key = CallStateKeys.group(this.location, groupId);
    try {
      await this.kv.delete(key, { previousSeq: revision });
    } catch (err) {
      if (isConflict(err)) throw new CallStateConflict(key, { cause: err });
      throw err;
    }
  }

  /** The owner of a group, if the group exists. */
  async ownerOf(groupId: string): Promise<string | undefined> {
    const entry = await this.kv.get(CallStateKeys.group(this.location, groupId));
    return entry?.operation === 'PUT' ? (JSON.parse(decoder.decode(entry.value)) as GroupRecord).owner : undefined;
  }

  /** Every group of the site with its revision. */
  async groups(): Promise<{ groupId: string; revision: number; record: GroupRecord }[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(CallStateKeys.groupAll(this.location))) keys.push(key);
    // Read at once: a site holds hundreds of groups, and a takeover waits for this list.
    const entries = await Promise.all(keys.map((key) => this.kv.get(key)));
    return entries.flatMap((entry) =>
      entry?.operation === 'PUT' ? [{ groupId: CallStateKeys.idOf(entry.key), revision: entry.revision, record: JSON.parse(decoder.decode(entry.value)) as GroupRecord }] : [],
    );
  }

  // ---------------------------------------------------------------- leases

  async putLease(lease: ReplicaLease): Promise<number> {
    return this.kv.put(CallStateKeys.replica(this.location, lease.replica), encoder.encode(JSON.stringify(lease)));
  }

  /** Renews a lease over the revision we last wrote; a CallStateConflict when it was taken or removed meanwhile. */
  async renewLease(lease: ReplicaLease, revision: number): Promise<number> {
    const key = CallStateKeys.replica(this.location, lease.replica);
    const json = JSON.stringify(lease);
    try {
      return await this.kv.update(key, encoder.encode(json), revision);
    } catch (err) {
      if (isConflict(err)) return this.ownWrite(key, json, err);
      throw err;
    }
  }

  /** The revision of every replica lease present. */
  async leases(): Promise<Map<string, { revision: number; lease: ReplicaLease }>> {
    const found = new Map<string, { revision: number; lease: ReplicaLease }>();
    for await (const key of await this.kv.keys(CallStateKeys.replicaAll(this.location))) {
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      found.set(CallStateKeys.idOf(key), { revision: entry.revision, lease: JSON.parse(decoder.decode(entry.value)) as ReplicaLease });
    }
    return found;
  }

  async deleteLease(replica: string): Promise<void> {
    await this.kv.delete(CallStateKeys.replica(this.location, replica));
  }

  // ---------------------------------------------------------------- desktops

  async putDesktops(dn: string, origins: readonly string[]): Promise<void> {
    const key = CallStateKeys.desktop(this.location, dn);
    if (origins.length === 0) await this.kv.delete(key);
    else await this.kv.put(key, encoder.encode(JSON.stringify(origins)));
  }

  async desktops(): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    for await (const key of await this.kv.keys(CallStateKeys.desktopAll(this.location))) {
      const entry = await this.kv.get(key);
      if (entry?.operation === 'PUT') found.set(CallStateKeys.idOf(key), JSON.parse(decoder.decode(entry.value)) as string[]);
    }
    return found;
  }

  /** Calls `changed` for every desktop registration another replica (or this one) writes from now on; resolves with a stop function. */
  async watchDesktops(changed: (dn: string, origins: string[]) => void): Promise<() => void> {
    const watch = await this.kv.watch({ key: CallStateKeys.desktopAll(this.location), include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const entry of watch) changed(CallStateKeys.idOf(entry.key), entry.operation === 'PUT' ? (JSON.parse(decoder.decode(entry.value)) as string[]) : []);
    })().catch(() => undefined);
    return () => watch.stop();
  }

  // ---------------------------------------------------------------- Call-ID index

  /*
   * The index is a hint (a replica that misses it waits for the takeover instead), so it is
   * written as a plain publish on the bucket's subject (ADR-8: $KV.<bucket>.<key>, a delete
   * carries KV-Operation: DEL) without waiting for JetStream's acknowledgement: a third of the
   * CPU a replicated call costs otherwise.
   */
  putDialog(callId: string, groupId: string): void {
    this.nc.publish(`$KV.${CallStateKeys.bucket}.${CallStateKeys.dialog(this.location, callId)}`, encoder.encode(groupId));
  }

  deleteDialog(callId: string): void {
    const h = headers();
    h.set('KV-Operation', 'DEL');
    this.nc.publish(`$KV.${CallStateKeys.bucket}.${CallStateKeys.dialog(this.location, callId)}`, undefined, { headers: h });
  }

  /** The group of a SIP Call-ID, if a replica owns a dialog with it. */
  async groupOfDialog(callId: string): Promise<string | undefined> {
    const entry = await this.kv.get(CallStateKeys.dialog(this.location, callId));
    return entry?.operation === 'PUT' ? decoder.decode(entry.value) : undefined;
  }
}
