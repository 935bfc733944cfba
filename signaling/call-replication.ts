/**
 * Who owns which calls, and keeping their state in JetStream (call-state.ts) so that another
 * process carries them on. After each model input the call model's shell asks `persist` to write
 * every call group the input changed, before any of the input's outputs is carried out; a lost
 * compare-and-set means another replica owns the group: it is dropped here and the outputs are
 * not carried out (fencing). Leases say which replicas live: a replica whose lease stops moving
 * for 1500 ms (by our own clock) is dead, and its groups are claimed (owner := us) and rebuilt.
 * A replica that finds its own lease gone or that was paused longer than a lease drops all its
 * groups before acting on any of them. A replica that stops while others live hands its groups
 * over instead of releasing their calls: it says so in its lease, drops the groups here without a
 * BYE and removes its lease, and the others claim them at once (handOff).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { MediaEvent } from '../common/nats/media-contract.js';
import { OrderedWrites } from '../common/nats/ordered-writes.js';
import { within } from '../common/process/lifecycle.js';
import type { TEvent } from '../common/tlib/messages.js';
import type { B2bua, LegState, SipFact } from './b2bua.js';
import { CallStateConflict, CallStateStore, type GroupRecord, type ReplicaLease } from './call-state.js';
import type { MediaClient } from './media-client.js';
import type { CallModel, ModelInput, ModelOutput } from './model/index.js';

export const LeaseRenewMs = 500;
export const LeaseDeadMs = 1500;
/**
 * A replica whose lease stopped but whose NATS connection still stands (the probe finds its
 * subscription) is loaded, paused or cut off from JetStream, not gone: it is taken over only after
 * this long, so that a busy event loop does not lose its calls.
 */
export const LeaseSilentDeadMs = 4000;
/** How long an input waits for its call state write before it goes on (see Replicator.bounded). */
const WriteWaitMs = 1000;
/** How often other replicas' leases are looked at: a dead one is noticed within LeaseDeadMs + this. */
const WatchMs = 250;
/** How long a stopping replica waits for JetStream to take its last writes. */
const StopWriteMs = 1000;
/** How long a request for a call of a leaving replica waits for the hand-over, at most. */
const LeavingWaitMs = 5000;

/** What an input and its outputs name: the calls, legs and bridges whose groups may have changed. */
export interface Seeds {
  connIds: Set<string>;
  legIds: Set<string>;
  bridgeIds: Set<string>;
}

export function seedsOf(input: ModelInput, outputs: readonly ModelOutput[]): Seeds {
  const seeds: Seeds = { connIds: new Set(), legIds: new Set(), bridgeIds: new Set() };
  const event = (e: TEvent) => {
    if (typeof e.ConnID === 'string') seeds.connIds.add(e.ConnID);
    if (typeof e.PreviousConnID === 'string') seeds.connIds.add(e.PreviousConnID);
  };
  switch (input.kind) {
    case 'tlib.request': {
      const connId = (input.request as { ConnID?: unknown }).ConnID;
      if (typeof connId === 'string') seeds.connIds.add(connId);
      break;
    }
    case 'media.event':
      mediaEventSeeds(input.event, seeds);
      break;
    case 'sip.ringing':
    case 'sip.answered':
    case 'sip.failed':
    case 'sip.released':
    case 'sip.hold':
    case 'sip.retrieve':
    case 'sip.remoteParties':
      seeds.legIds.add(input.legId);
      break;
    default:
      break;
  }
  for (const out of outputs) {
    switch (out.kind) {
      case 'tlib.event':
      case 'tlib.reply':
        event(out.event);
        break;
      case 'media':
        seeds.bridgeIds.add(out.command.bridgeId);
        if ('legId' in out.command) seeds.legIds.add(out.command.legId);
        if (out.command.op === 'leg.move') seeds.bridgeIds.add(out.command.toBridgeId);
        break;
      case 'sip.connect':
      case 'sip.ringing':
      case 'sip.answer':
      case 'sip.release':
      case 'sip.remoteAnswer':
      case 'sip.partiesReport':
        seeds.legIds.add(out.legId);
        break;
      case 'conference.state':
        seeds.connIds.add(out.connId);
        break;
      default:
        break;
    }
  }
  return seeds;
}

function mediaEventSeeds(event: MediaEvent, seeds: Seeds): void {
  if ('bridgeId' in event) seeds.bridgeIds.add(event.bridgeId);
  if ('legId' in event) seeds.legIds.add(event.legId);
}

/** What this replica last wrote of a group it owns. */
interface OwnedGroup {
  /** The key's revision; 0 while the group is not in the bucket yet. */
  revision: number;
  json: string;
  connIds: string[];
  legIds: string[];
  bridgeIds: string[];
  callIds: string[];
}

/** What became of an in-dialog request for a dialog this replica did not hold (takeOverDialog). */
export type DialogOutcome = 'delivered' | 'unknown' | { relay: string };

/** The shell's serial queue, as the replicator reaches it. */
export interface ReplicationShell {
  /** Runs `job` alone in the model's queue. */
  exclusive<T>(job: () => Promise<T>): Promise<T>;
  /** Carries out outputs the replicator got from the model (resync events). */
  perform(outputs: readonly ModelOutput[]): Promise<void>;
  /** Hands the model a fact, in the queue. */
  fact(fact: SipFact): void;
}

export interface ReplicatorOptions {
  store: CallStateStore;
  /** This replica's id (unique among the site's live replicas). */
  replica: string;
  /** Our SIP address, written in the lease. */
  sip: string;
  model: CallModel;
  b2bua: Pick<B2bua, 'exportLeg' | 'restoreLeg' | 'dropLeg' | 'callIdOf'>;
  media: Pick<MediaClient, 'ownerOf' | 'setOwner'>;
  log: Logger;
  /**
   * Whether an in-dialog request for a call another live replica owns is relayed to it: only
   * behind the SIP edge, which matches the owner's answer to the request (a phone talking to a
   * replica directly would keep sending to it whatever we relay).
   */
  relays?: boolean;
  /** Figures of the replication: bytes written and write time. */
  onWrite?: (bytes: number, seconds: number) => void;
  /**
   * Asks whether the process of a replica whose lease stopped is still connected: 'gone' when NATS
   * has no subscriber of it any more (killed, crashed), else 'present'. Without it a stopped lease
   * counts as death after LeaseDeadMs.
   */
  probe?: (replica: string) => Promise<'gone' | 'present'>;
}

export class Replicator {
  private shell: ReplicationShell | undefined;
  private readonly owned = new Map<string, OwnedGroup>();
  private readonly groupOfConn = new Map<string, string>();
  private readonly groupOfLeg = new Map<string, string>();
  /** Desktop registrations as last written or read, per DN (JSON of the origin list). */
  private readonly desktops = new Map<string, string>();
  private leaseRevision = 0;
  /** When the lease was last renewed (or tried), by our clock. */
  private lastTick = Date.now();
  /**
   * When our timer last ran. A gap longer than a lease means this process was paused (SIGSTOP, a
   * stalled host): its lease must be confirmed before it acts again. A renewal that is merely slow
   * (NATS electing a leader) is not: inputs do not wait for it.
   */
  private awakeAt = Date.now();
  private paused = false;
  private readonly lease: ReplicaLease;
  /** Other replicas' leases: the revision seen and when it last changed, by our clock. */
  private readonly seen = new Map<string, { revision: number; changedAt: number; sip: string; moves: number }>();
  /** Replicas found dead whose groups are still to claim. */
  private readonly dead = new Set<string>();
  /** Replicas whose lease says they stop: their groups are about to be handed over. */
  private readonly leaving = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopWatch: (() => void) | undefined;
  private stopping = false;
  /** Our groups were handed to the other replicas (handOff): requests for them go to their claimers. */
  private handedOff = false;
  /** Claims under way (written, maybe not rebuilt yet). */
  private claiming = 0;
  private ticking = false;
  /** Every write, in input order (a delayed one keeps the next behind it). */
  private readonly writes: OrderedWrites;

  constructor(private readonly o: ReplicatorOptions) {
    this.lease = { replica: o.replica, sip: o.sip, startedAt: Date.now() };
    this.writes = new OrderedWrites({
      waitMs: WriteWaitMs,
      onDelayed: (waitedMs) => o.log.warn({ waitedMs }, 'call state write delayed by JetStream; the call goes on and the write follows'),
      onLateFailure: (err) => o.log.error({ err: err.message }, 'call state not written'),
    });
  }

  /** The other replicas with a lease. */
  peers(): string[] {
    return [...this.seen.keys()];
  }

  /** A replica went silent for more than a renewal or is found dead: its calls are about to be claimed. */
  takeoverPending(): boolean {
    const now = Date.now();
    return this.dead.size > 0 || this.leaving.size > 0 || [...this.seen.values()].some((s) => now - s.changedAt > 2 * LeaseRenewMs);
  }

  /**
   * An in-dialog request for a dialog this replica does not hold. When the Call-ID index names a
   * group of another live replica, the request is for that replica (`relay` to its SIP address:
   * the SIP edge sends a dialog to its first replica whenever that one answers probes, and to a
   * survivor otherwise, neither of which need own it now). When the owner is leaving or its lease
   * stops moving, the request waits for the hand-over or claim of that group (`deliver` hands it
   * to the restored dialog here). Unknown when nobody holds the dialog.
   */
  async takeOverDialog(callId: string, deliver: () => boolean): Promise<DialogOutcome> {
    const ownerOf = async () => {
      const groupId = await this.o.store.groupOfDialog(callId).catch(() => undefined);
      return groupId === undefined ? undefined : await this.o.store.ownerOf(groupId).catch(() => undefined);
    };
    const owner = await ownerOf();
    const relays = this.o.relays === true;
    if (relays && owner === this.o.replica && this.handedOff) return this.toClaimer(ownerOf);
    if (owner === undefined) return deliver() ? 'delivered' : 'unknown';
    // Ours: claimed already and being rebuilt (the claims are written before the rebuild).
    if (owner === this.o.replica) return (await afterTakeover(() => this.claiming > 0, deliver, LeavingWaitMs)) ? 'delivered' : 'unknown';
    const live = relays ? this.liveSip(owner) : undefined;
    if (live !== undefined) return { relay: live };
    const movesAt = this.seen.get(owner)?.moves;
    // The owner is alive once its lease moved twice (one move may be a renewal made just before it
    // died, seen late); a leaving owner hands the group over, a dead one gets claimed.
    const aliveBy = Date.now() + 2 * LeaseRenewMs + WatchMs;
    const pending = () => {
      const s = this.seen.get(owner);
      const moving = s !== undefined && movesAt !== undefined && s.moves - movesAt >= 2;
      return (!moving && (s !== undefined || Date.now() < aliveBy)) || this.leaving.has(owner) || this.dead.has(owner);
    };
    if (await afterTakeover(pending, deliver, this.leaving.has(owner) ? LeavingWaitMs : LeaseSilentDeadMs + 3 * WatchMs + 500)) return 'delivered';
    // The wait can end between the claim and its rebuild here: the group is ours then.
    const now = await ownerOf();
    if (now === this.o.replica) return (await afterTakeover(() => this.claiming > 0, deliver, LeavingWaitMs)) ? 'delivered' : 'unknown';
    const sip = relays && now !== undefined ? this.liveSip(now) : undefined;
    return sip === undefined ? 'unknown' : { relay: sip };
  }

  /** A request for a group this replica just handed over: for the replica that claims it (within LeavingWaitMs). */
  private async toClaimer(ownerOf: () => Promise<string | undefined>): Promise<DialogOutcome> {
    const deadline = Date.now() + LeavingWaitMs;
    for (;;) {
      const owner = await ownerOf();
      if (owner === undefined) return 'unknown';
      const sip = owner === this.o.replica ? undefined : this.seen.get(owner)?.sip;
      if (sip !== undefined) return { relay: sip };
      if (Date.now() > deadline) return 'unknown';
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The SIP address of a replica whose lease moves and that is not leaving. */
  private liveSip(replica: string): string | undefined {
    const s = this.seen.get(replica);
    if (!s || this.leaving.has(replica) || this.dead.has(replica) || Date.now() - s.changedAt > 2 * LeaseRenewMs + WatchMs) return undefined;
    return s.sip;
  }

  /** Calls this replica owns (huddle_calls_active). */
  get calls(): number {
    let n = 0;
    for (const g of this.owned.values()) n += g.connIds.length;
    return n;
  }

  /**
   * Takes the lease, restores desktop registrations, claims the groups of our previous incarnation
   * (same replica id) and of replicas with no lease, resyncs every registered DN, then watches
   * the other replicas.
   */
  async start(shell: ReplicationShell): Promise<void> {
    this.shell = shell;
    this.leaseRevision = await this.o.store.putLease(this.lease);
    this.lastTick = Date.now();
    const desktops = await this.o.store.desktops();
    await shell.exclusive(async () => {
      for (const [dn, origins] of desktops) {
        this.desktops.set(dn, JSON.stringify(origins));
        this.o.model.setRegistrations(dn, origins);
      }
    });
    this.stopWatch = await this.o.store.watchDesktops((dn, origins) => void shell.exclusive(async () => this.desktopWritten(dn, origins)));
    const leases = await this.o.store.leases();
    const now = Date.now();
    for (const [replica, { revision, lease }] of leases) if (replica !== this.o.replica) this.seen.set(replica, { revision, changedAt: now, sip: lease.sip, moves: 0 });
    await this.claim((owner) => owner === this.o.replica || !leases.has(owner), false);
    await shell.perform(this.o.model.registeredDns().flatMap((dn) => this.o.model.resync(dn)));
    this.awakeAt = Date.now();
    this.timer = setInterval(() => {
      if (Date.now() - this.awakeAt > LeaseDeadMs) this.paused = true;
      this.awakeAt = Date.now();
      void this.tick();
    }, WatchMs);
  }

  /**
   * Stops renewing; with `release` the groups (all ended by now) and the lease are removed. Bounded
   * (StopWriteMs) so that a JetStream without a leader cannot hold up the process's exit: what is
   * left in the bucket then is ended calls, which a restarted replica finds without legs.
   */
  async stop(release: boolean): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.stopWatch?.();
    if (!release) return;
    const deadline = Date.now() + StopWriteMs;
    if (!(await this.writes.settled(StopWriteMs))) this.o.log.warn({ writes: this.writes.depth }, 'call state writes still waiting for JetStream at stop; left undone');
    const removals = Promise.all([...[...this.owned].map(([groupId, group]) => this.o.store.deleteGroup(groupId, group.revision)), this.o.store.deleteLease(this.o.replica)].map((p) => p.catch(() => undefined)));
    await within(removals, Math.max(0, deadline - Date.now()));
  }

  /**
   * Says in our lease, from its next renewal on (within LeaseRenewMs), that this replica stops
   * (rolling upgrade): the others make requests for its calls wait for the hand-over instead of
   * answering them as unknown.
   */
  leave(): void {
    this.lease.leaving = true;
  }

  /**
   * Hands every call group to the other live replicas, without a BYE: in the model's queue (no
   * input runs meanwhile), the groups in the bucket are dropped here and our lease is removed; the
   * others claim them within a lease check (WatchMs), as they would a dead replica's. Resolves
   * with the calls handed over, or undefined when no other replica lives: the caller then releases
   * the calls. Groups not yet in the bucket (a set-up under way) stay here to be released.
   */
  async handOff(): Promise<number | undefined> {
    const shell = this.shell;
    if (!shell) return undefined;
    const now = Date.now();
    const alive = [...this.seen].filter(([replica, s]) => !this.leaving.has(replica) && now - s.changedAt <= LeaseDeadMs).map(([replica]) => replica);
    if (alive.length === 0) return undefined;
    return shell.exclusive(async () => {
      this.stopping = true;
      this.handedOff = true;
      clearInterval(this.timer);
      // The groups' last writes land before the hand-over's own (same revisions).
      await this.writes.settled(StopWriteMs);
      // What the SIP side learnt since the last write (an ACK confirming a dialog) goes with the groups.
      await Promise.all(
        [...this.owned].map(([groupId, group]) =>
          this.writeGroup(groupId, group.connIds, 'after').catch((err: unknown) => {
            if (err instanceof CallStateConflict) this.dropLocal(groupId, group.connIds);
            else this.o.log.warn({ group: groupId, err: (err as Error).message }, 'call group not written before the hand-over');
          }),
        ),
      );
      const stored = [...this.owned].filter(([, group]) => group.revision > 0);
      let calls = 0;
      for (const [groupId, group] of stored) {
        calls += group.connIds.length;
        this.dropLocal(groupId, group.connIds);
      }
      await retry(() => this.o.store.deleteLease(this.o.replica), this.o.log).catch((err: unknown) => {
        this.o.log.warn({ err: (err as Error).message }, 'lease not removed: the others claim the calls once it stops moving');
      });
      this.o.log.info({ groups: stored.length, calls, to: alive }, 'calls handed to the other replicas');
      return calls;
    });
  }

  // ---------------------------------------------------------------- writing

  /**
   * Writes the groups an input changed (and removes those that ended or merged). Resolves false
   * when this replica no longer owns one of them: they are dropped here, and the input's outputs
   * must not be carried out.
   */
  async persist(input: ModelInput, outputs: readonly ModelOutput[]): Promise<boolean> {
    if (!(await this.ensureLease())) return false;
    const lost = await this.bounded(async () => {
      await this.persistDesktops(input);
      return this.write(seedsOf(input, outputs), 'before');
    });
    if (lost.length === 0) return true;
    this.o.log.warn({ groups: lost }, 'call groups owned by another replica now: dropped here, outputs not carried out');
    return false;
  }

  /** After the outputs: what they changed on the SIP side (a dialog confirmed, new SDP) is written too. */
  async settle(input: ModelInput, outputs: readonly ModelOutput[]): Promise<void> {
    await this.bounded(() => this.write(seedsOf(input, outputs), 'after'));
  }

  /**
   * A write in input order, waited for at most WriteWaitMs (see OrderedWrites). Not at all once
   * this replica leaves: its last inputs (unregistrations, releases) must not stretch the stop
   * past its grace while JetStream elects a leader; handOff and stop wait for the writes instead.
   */
  private bounded(write: () => Promise<string[]>): Promise<string[]> {
    const late = (lost: string[]) => {
      if (lost.length > 0) this.o.log.warn({ groups: lost }, 'call groups found owned by another replica after a delayed write: dropped here');
    };
    return this.writes.run(write, [], late, this.stopping || this.lease.leaving ? 0 : WriteWaitMs);
  }

  /**
   * `before` the outputs, only groups already in the bucket are written: their compare-and-set is
   * the fence. A new group is first written `after` them, once it has a confirmed dialog: before
   * that, another process could only release its legs (their set-up dies with this process).
   */
  private async write(seeds: Seeds, phase: 'before' | 'after'): Promise<string[]> {
    const plan = this.plan(seeds);
    const lost: string[] = [];
    await Promise.all([
      ...plan.keep.map(async ({ groupId, connIds }) => {
        try {
          await this.writeGroup(groupId, connIds, phase);
        } catch (err) {
          if (!(err instanceof CallStateConflict)) throw err;
          lost.push(groupId);
          this.dropLocal(groupId, connIds);
        }
      }),
      ...plan.remove.map(async (groupId) => {
        const group = this.owned.get(groupId);
        if (!group) return;
        this.forget(groupId);
        if (group.revision === 0) return;
        await retry(() => this.o.store.deleteGroup(groupId, group.revision), this.o.log).catch((err: unknown) => {
          if (!(err instanceof CallStateConflict)) throw err;
          // Its calls ended here, in a model that no longer owned them: the SIP and media sides are left to the owner.
          lost.push(groupId);
          for (const legId of group.legIds) this.o.b2bua.dropLeg(legId);
          for (const bridgeId of group.bridgeIds) this.o.media.setOwner(bridgeId, undefined);
        });
        for (const callId of group.callIds) this.o.store.deleteDialog(callId);
      }),
    ]);
    return lost;
  }

  /** The groups after an input: which keep (or get) which id, and which ids are gone. */
  private plan(seeds: Seeds): { keep: { groupId: string; connIds: string[] }[]; remove: string[] } {
    const model = this.o.model;
    const components: string[][] = [];
    const placed = new Set<string>();
    const touched = new Set<string>();
    const add = (connId: string) => {
      if (placed.has(connId)) return;
      const group = model.groupOf(connId);
      for (const id of group) placed.add(id);
      if (group.length > 0) components.push(group);
    };
    for (const connId of seeds.connIds) {
      const old = this.groupOfConn.get(connId);
      if (old !== undefined) touched.add(old);
      add(connId);
    }
    for (const legId of seeds.legIds) {
      const old = this.groupOfLeg.get(legId);
      if (old !== undefined) touched.add(old);
      for (const connId of model.callsOfLeg(legId)) add(connId);
    }
    for (const bridgeId of seeds.bridgeIds) {
      const connId = model.callOfBridge(bridgeId);
      if (connId !== undefined) add(connId);
    }
    // A group the input touched may have split: its calls that still live are placed too.
    for (const groupId of touched) for (const connId of this.owned.get(groupId)?.connIds ?? []) add(connId);
    const keep: { groupId: string; connIds: string[] }[] = [];
    const taken = new Set<string>();
    for (const connIds of components) {
      const candidates = [...new Set(connIds.map((c) => this.groupOfConn.get(c)).filter((g): g is string => g !== undefined))].sort();
      for (const g of candidates) touched.add(g);
      const groupId = candidates.find((g) => !taken.has(g)) ?? randomBytes(6).toString('hex');
      taken.add(groupId);
      keep.push({ groupId, connIds });
    }
    return { keep, remove: [...touched].filter((g) => !taken.has(g)) };
  }

  private record(connIds: readonly string[]): { record: GroupRecord; legIds: string[]; bridgeIds: string[]; callIds: string[] } {
    const snapshot = this.o.model.snapshot(connIds);
    const legIds = snapshot.legs.map((l) => l.id);
    const sip = legIds.map((id) => this.o.b2bua.exportLeg(id)).filter((l): l is LegState => l !== undefined);
    const bridgeIds = [...new Set([...snapshot.calls.map((c) => c.bridgeId), ...snapshot.legs.map((l) => l.bridgeId)])];
    const media: Record<string, string> = {};
    for (const bridgeId of bridgeIds) {
      const owner = this.o.media.ownerOf(bridgeId);
      if (owner !== undefined) media[bridgeId] = owner;
    }
    const callIds = sip.flatMap((l) => (l.dialog ? [l.dialog.callId] : []));
    return { record: { owner: this.o.replica, ...snapshot, sip, media }, legIds, bridgeIds, callIds };
  }

  private async writeGroup(groupId: string, connIds: string[], phase: 'before' | 'after'): Promise<void> {
    const { record, legIds, bridgeIds, callIds } = this.record(connIds);
    const before = this.owned.get(groupId);
    const stored = before !== undefined && before.revision > 0;
    this.adopt(groupId, { revision: before?.revision ?? 0, json: before?.json ?? '', connIds, legIds, bridgeIds, callIds: before?.callIds ?? [] });
    if (!stored && (phase === 'before' || callIds.length === 0)) return;
    const json = JSON.stringify(record);
    if (before?.json === json) return;
    const started = performance.now();
    const revision = await retry(() => this.o.store.putGroup(groupId, json, stored ? before.revision : undefined), this.o.log);
    this.o.onWrite?.(CallStateStore.bytes(json), (performance.now() - started) / 1000);
    const group = this.owned.get(groupId);
    if (group) {
      group.revision = revision;
      group.json = json;
    }
    const known = new Set(before?.callIds ?? []);
    for (const callId of callIds) if (!known.has(callId)) this.o.store.putDialog(callId, groupId);
    for (const callId of known) if (!callIds.includes(callId)) this.o.store.deleteDialog(callId);
    if (group) group.callIds = callIds;
  }

  /** Records a group as ours under `groupId`, with its calls and legs. */
  private adopt(groupId: string, group: OwnedGroup): void {
    const old = this.owned.get(groupId);
    if (old) {
      for (const c of old.connIds) if (this.groupOfConn.get(c) === groupId) this.groupOfConn.delete(c);
      for (const l of old.legIds) if (this.groupOfLeg.get(l) === groupId) this.groupOfLeg.delete(l);
    }
    this.owned.set(groupId, group);
    for (const c of group.connIds) this.groupOfConn.set(c, groupId);
    for (const l of group.legIds) this.groupOfLeg.set(l, groupId);
  }

  private forget(groupId: string): void {
    const old = this.owned.get(groupId);
    if (!old) return;
    for (const c of old.connIds) if (this.groupOfConn.get(c) === groupId) this.groupOfConn.delete(c);
    for (const l of old.legIds) if (this.groupOfLeg.get(l) === groupId) this.groupOfLeg.delete(l);
    this.owned.delete(groupId);
  }

  /** A group another replica owns now: gone from the model, the B2BUA and the media owners, silently. */
  private dropLocal(groupId: string, connIds: readonly string[]): void {
    const group = this.owned.get(groupId);
    const snapshot = this.o.model.snapshot(connIds);
    const legIds = new Set([...(group?.legIds ?? []), ...snapshot.legs.map((l) => l.id)]);
    const bridgeIds = new Set([...(group?.bridgeIds ?? []), ...snapshot.calls.map((c) => c.bridgeId)]);
    this.o.model.drop([...new Set([...connIds, ...(group?.connIds ?? [])])]);
    for (const legId of legIds) this.o.b2bua.dropLeg(legId);
    for (const bridgeId of bridgeIds) this.o.media.setOwner(bridgeId, undefined);
    this.forget(groupId);
  }

  private dropAll(): void {
    for (const [groupId, group] of [...this.owned]) this.dropLocal(groupId, group.connIds);
  }

  // ---------------------------------------------------------------- desktops

  private async persistDesktops(input: ModelInput): Promise<void> {
    let dns: string[] = [];
    if (input.kind === 'tlib.request' && (input.request.request === 'RegisterAddress' || input.request.request === 'UnregisterAddress')) dns = [input.request.ThisDN ?? ''];
    else if (input.kind === 'tlib.gatewayGone') dns = [...new Set([...this.desktops.keys(), ...this.o.model.registeredDns()])];
    for (const dn of dns) {
      const origins = this.o.model.registrationsOf(dn);
      const json = JSON.stringify(origins);
      if ((this.desktops.get(dn) ?? '[]') === json) continue;
      if (origins.length === 0) this.desktops.delete(dn);
      else this.desktops.set(dn, json);
      await retry(() => this.o.store.putDesktops(dn, origins), this.o.log);
    }
  }

  private desktopWritten(dn: string, origins: string[]): void {
    const json = JSON.stringify(origins);
    if ((this.desktops.get(dn) ?? '[]') === json) return;
    if (origins.length === 0) this.desktops.delete(dn);
    else this.desktops.set(dn, json);
    this.o.model.setRegistrations(dn, origins);
  }

  // ---------------------------------------------------------------- leases and claims

  /**
   * True while our lease is ours. After a pause longer than a lease (SIGSTOP, a stalled host) it
   * is renewed first: when another replica removed it meanwhile, every group is dropped here.
   */
  private async ensureLease(): Promise<boolean> {
    if (!this.paused && Date.now() - this.awakeAt <= LeaseDeadMs) return true;
    return this.renew();
  }

  private async renew(): Promise<boolean> {
    this.lastTick = Date.now();
    try {
      this.leaseRevision = await this.o.store.renewLease(this.lease, this.leaseRevision);
      this.paused = false;
      return true;
    } catch (err) {
      this.paused = false;
      if (!(err instanceof CallStateConflict)) {
        // NATS out of reach: nobody else can claim our groups either; we keep them.
        this.o.log.warn({ err: (err as Error).message }, 'lease not renewed');
        return true;
      }
      this.o.log.warn('our lease was taken while we were away: every call group dropped here');
      this.dropAll();
      this.leaseRevision = await this.o.store.putLease(this.lease);
      return false;
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopping || !this.shell) return;
    this.ticking = true;
    try {
      const since = Date.now() - this.lastTick;
      const kept = this.paused ? await this.shell.exclusive(() => this.renew()) : since >= LeaseRenewMs ? await this.renew() : true;
      if (!kept) {
        // Whatever nobody claimed while we were away is ours again.
        await this.claim((owner) => owner === this.o.replica, true);
      }
      await this.watchReplicas();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'replica lease check failed');
    } finally {
      this.ticking = false;
    }
  }

  /** Notes which replicas' leases stopped moving; claims the groups of dead ones. */
  private async watchReplicas(): Promise<void> {
    const now = Date.now();
    let leases: Map<string, { revision: number; lease: ReplicaLease }>;
    try {
      leases = await this.o.store.leases();
    } catch {
      // We could not look: nobody's lease counts as stopped for this while.
      for (const s of this.seen.values()) s.changedAt = Date.now();
      return;
    }
    for (const [replica, { revision, lease }] of leases) {
      if (replica === this.o.replica) continue;
      if (lease.leaving) this.leaving.add(replica);
      else this.leaving.delete(replica);
      const s = this.seen.get(replica);
      if (!s || s.revision !== revision) this.seen.set(replica, { revision, changedAt: now, sip: lease.sip, moves: (s?.moves ?? 0) + 1 });
      else if (now - s.changedAt > LeaseDeadMs && (now - s.changedAt > LeaseSilentDeadMs || (await this.gone(replica)))) this.dead.add(replica);
    }
    for (const replica of this.seen.keys()) {
      if (!leases.has(replica)) {
        this.dead.add(replica);
        this.seen.delete(replica);
        this.leaving.delete(replica);
      }
    }
    if (this.dead.size === 0) return;
    const dead = new Set(this.dead);
    this.o.log.warn({ replicas: [...dead] }, 'signaling replicas dead: claiming their calls');
    await this.claim((owner) => dead.has(owner) || (owner !== this.o.replica && !leases.has(owner)), true);
    for (const replica of dead) {
      await this.o.store.deleteLease(replica).catch(() => undefined);
      this.dead.delete(replica);
      this.seen.delete(replica);
    }
  }

  private async gone(replica: string): Promise<boolean> {
    if (!this.o.probe) return true;
    try {
      return (await this.o.probe(replica)) === 'gone';
    } catch {
      return false;
    }
  }

  /**
   * Claims (compare-and-set owner := us) every group whose owner `claimable` says, and carries its
   * calls on. All claims are written at once and then rebuilt in one turn of the model's queue: a
   * replica that takes hundreds of calls over while it carries its own load takes them in well
   * under a second.
   */
  private async claim(claimable: (owner: string) => boolean, resync: boolean): Promise<void> {
    const shell = this.shell;
    if (!shell) return;
    this.claiming++;
    try {
      await this.claimNow(shell, claimable, resync);
    } finally {
      this.claiming--;
    }
  }

  private async claimNow(shell: ReplicationShell, claimable: (owner: string) => boolean, resync: boolean): Promise<void> {
    const groups = await this.o.store.groups();
    const claimed = await Promise.all(
      groups
        .filter(({ groupId, record }) => claimable(record.owner) && !this.owned.has(groupId))
        .map(async ({ groupId, revision, record }) => {
          const mine: GroupRecord = { ...record, owner: this.o.replica };
          const json = JSON.stringify(mine);
          try {
            return { groupId, from: record.owner, record: mine, json, revision: await this.o.store.putGroup(groupId, json, revision) };
          } catch (err) {
            if (err instanceof CallStateConflict) return undefined;
            throw err;
          }
        }),
    );
    const won = claimed.filter((c) => c !== undefined);
    if (won.length === 0) return;
    const dns = new Set<string>();
    await shell.exclusive(async () => {
      for (const { groupId, record, revision, json } of won) for (const party of this.restore(groupId, record, revision, json)) dns.add(party);
    });
    this.o.log.info({ groups: won.length, calls: won.reduce((n, c) => n + c.record.calls.length, 0), from: [...new Set(won.map((c) => c.from))] }, 'call groups taken over');
    if (resync) {
      const registered = [...dns].filter((dn) => this.o.model.registrationsOf(dn).length > 0);
      await shell.perform(registered.flatMap((dn) => this.o.model.resync(dn)));
    }
  }

  /** Rebuilds a claimed group here; resolves with the DNs of its parties. */
  private restore(groupId: string, record: GroupRecord, revision: number, json: string): string[] {
    this.o.model.restore(record);
    for (const [bridgeId, instance] of Object.entries(record.media)) this.o.media.setOwner(bridgeId, instance);
    const unfinished: SipFact[] = [];
    const restored = new Set<string>();
    for (const leg of record.sip) {
      restored.add(leg.legId);
      if (this.o.b2bua.restoreLeg(leg)) continue;
      // Its set-up was under way in the process that died: the transaction went with it.
      unfinished.push(leg.direction === 'outbound' ? { kind: 'sip.failed', legId: leg.legId, status: 408, reason: 'set-up lost with its signaling process' } : { kind: 'sip.released', legId: leg.legId });
    }
    this.adopt(groupId, {
      revision,
      json,
      connIds: record.calls.map((c) => c.connId),
      legIds: record.legs.map((l) => l.id),
      bridgeIds: Object.keys(record.media),
      callIds: record.sip.flatMap((l) => (l.dialog ? [l.dialog.callId] : [])),
    });
    for (const fact of unfinished) this.shell?.fact(fact);
    return record.calls.flatMap((c) => c.parties.flatMap((p) => (p.dn === undefined ? [] : [p.dn])));
  }
}

/**
 * Waits, while a takeover is under way (`pending`), until `ready` holds; resolves whether it did.
 * A request about a call of a replica that just died waits for the claim instead of failing.
 */
export async function afterTakeover(pending: () => boolean, ready: () => boolean, maxMs = 2500): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (!ready()) {
    if (!pending() || Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Retries a KV operation while NATS cannot be reached (calls wait rather than diverge); a conflict is thrown at once. */
async function retry<T>(op: () => Promise<T>, log: Logger): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (err instanceof CallStateConflict || attempt >= 15) throw err;
      if (attempt === 0) log.warn({ err: (err as Error).message }, 'call state not written yet; retrying');
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 1000)));
    }
  }
}
