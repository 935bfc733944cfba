/**
 * `npm run bench:call-state [-- --calls 1000 --conferences 200]`
 *
 * What keeping call state in JetStream costs per call: the call model and the replicator
 * (signaling/call-replication.ts) as signaling runs them, against a real nats-server, with the SIP
 * and media sides replaced by what they would write (an rtpengine-sized SDP and a dialog per leg).
 * Each two-party call: INVITE, ringing, answer, BYE. Each conference: a two-party call, a party
 * added (SingleStepConference), ListenDisconnect, ListenReconnect, then everyone hangs up.
 * Printed: KV writes and bytes per call, the size of one record, and the CPU of this process
 * (model + replication, not nats-server) per call with and without replication.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { connectNats } from '../../common/nats/connect.js';
import { createLogger } from '../../common/process/logger.js';
import type { LegState } from '../../signaling/b2bua.js';
import { Replicator } from '../../signaling/call-replication.js';
import { CallStateStore } from '../../signaling/call-state.js';
import type { ModelInput, ModelOutput } from '../../signaling/model/index.js';
import { Harness } from '../../signaling/model/test-harness.js';
import { startTestNats } from '../../test/support/infra.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' }, conferences: { type: 'string', default: '200' } } });
const CALLS = Number(values.calls);
const CONFERENCES = Number(values.conferences);

/** An answer SDP as rtpengine gives it for one PCMU/PCMA leg. */
const SDP = [
  'v=0',
  'o=- 1545997027 2 IN IP4 10.20.30.40',
  's=huddle',
  't=0 0',
  'm=audio 30000 RTP/AVP 0 8 101',
  'c=IN IP4 10.20.30.40',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=sendrecv',
  'a=rtcp:30001',
  'a=ptime:20',
  '',
].join('\r\n');

/** The SIP side of a leg once answered: what B2bua.exportLeg gives. */
function legState(legId: string, bridgeId: string, direction: 'inbound' | 'outbound'): LegState {
  const tag = legId.replace(/\W/g, '');
  return {
    legId,
    bridgeId,
    direction,
    localSdp: SDP,
    flow: { protocol: 'udp', host: '10.1.2.3', port: 5060 },
    dialog: {
      role: direction === 'inbound' ? 'uas' : 'uac',
      callId: `${tag}a8f1c02e9d4b7f11@10.1.2.3`,
      localTag: `${tag}4f1a`,
      remoteTag: `${tag}9c2e`,
      localUri: `<sip:7001@10.20.30.40>;tag=${tag}4f1a`,
      remoteUri: `"7002" <sip:7002@10.1.2.3>;tag=${tag}9c2e`,
      remoteTarget: 'sip:7002@10.1.2.3:5060;transport=udp',
      routeSet: ['<sip:10.20.30.1;lr;r=signaling-0>'],
      localSeq: 101,
      remoteSeq: 2,
      protocol: 'udp',
      flow: { protocol: 'udp', host: '10.1.2.3', port: 5060 },
      contact: 'sip:7001@10.20.30.40:5060',
    },
  };
}

interface Figures {
  writes: number;
  bytes: number;
  largest: number;
  cpuMs: number;
}

/** Two-party calls, then conferences. */
interface Run {
  calls: Figures;
  conferences: Figures;
}

async function run(replicate: boolean, nats: Awaited<ReturnType<typeof startTestNats>>): Promise<Run> {
  const h = new Harness();
  const legs = new Map<string, LegState>();
  const owners = new Map<string, string>();
  let figures: Figures = { writes: 0, bytes: 0, largest: 0, cpuMs: 0 };
  const nc = await connectNats(nats.url, 'bench-call-state', undefined, nats.client('signaling'));
  const store = await CallStateStore.open(nc, 'SiteA', 1, createLogger('bench', 'silent'));
  const replicator = new Replicator({
    store,
    replica: 'bench',
    sip: 'udp 127.0.0.1:5060',
    model: h.model,
    b2bua: {
      exportLeg: (legId) => legs.get(legId),
      restoreLeg: () => true,
      dropLeg: (legId) => void legs.delete(legId),
      callIdOf: (legId) => legs.get(legId)?.dialog?.callId,
    },
    media: { ownerOf: (bridgeId) => owners.get(bridgeId), setOwner: (bridgeId, instance) => void (instance === undefined ? owners.delete(bridgeId) : owners.set(bridgeId, instance)) },
    log: createLogger('bench', 'silent'),
    onWrite: (bytes) => {
      figures.writes += 1;
      figures.bytes += bytes;
      figures.largest = Math.max(figures.largest, bytes);
    },
  });
  await replicator.start({ exclusive: (job) => job(), perform: async () => undefined, fact: () => undefined });

  /** As the shell does it: the model, its state written, the SIP/media side carried out, what that changed written. */
  const input = async (i: ModelInput): Promise<ModelOutput[]> => {
    h.now += 1;
    const outputs = h.model.handle(i);
    if (replicate && !(await replicator.persist(i, outputs))) throw new Error('lost a group');
    for (const out of outputs) {
      if (out.kind === 'sip.connect') legs.set(out.legId, { legId: out.legId, bridgeId: out.bridgeId, direction: out.direction });
      if (out.kind === 'sip.answer') legs.set(out.legId, legState(out.legId, legs.get(out.legId)!.bridgeId, 'inbound'));
      if (out.kind === 'sip.release') legs.delete(out.legId);
      if (out.kind === 'media' && out.command.op === 'bridge.create') owners.set(out.command.bridgeId, 'media-controller-0');
      if (out.kind === 'media' && out.command.op === 'bridge.destroy') owners.delete(out.command.bridgeId);
    }
    if (replicate) await replicator.settle(i, outputs);
    return outputs;
  };
  const answered = async (legId: string) => {
    legs.set(legId, legState(legId, legs.get(legId)!.bridgeId, 'outbound'));
    await input({ kind: 'sip.answered', legId });
  };
  const call = async (from: string, to: string): Promise<string> => {
    const out = await input({ kind: 'sip.incoming', sipRef: `r${h.now}`, from: { dn: from }, to });
    const connect = out.find((o) => o.kind === 'sip.connect' && o.direction === 'outbound');
    if (connect?.kind !== 'sip.connect') throw new Error('no outbound leg');
    await input({ kind: 'sip.ringing', legId: connect.legId });
    await answered(connect.legId);
    return h.lastConnId();
  };
  const request = (request: string, attrs: Record<string, unknown>) => input({ kind: 'tlib.request', request: { request, ReferenceID: 1, ...attrs } as never, origin: { gateway: 'gw', client: 'desk' } });
  await request('RegisterAddress', { ThisDN: '7001' });

  let cpu = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) {
    const connId = await call('7001', '7002');
    await input({ kind: 'sip.released', legId: h.legOf(connId, '7001') });
  }
  const used = process.cpuUsage(cpu);
  const calls = { ...figures, cpuMs: (used.user + used.system) / 1000 };
  figures = { writes: 0, bytes: 0, largest: 0, cpuMs: 0 };
  cpu = process.cpuUsage();
  for (let i = 0; i < CONFERENCES; i++) {
    const connId = await call('7001', '7002');
    const out = await request('SingleStepConference', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    const connect = out.find((o) => o.kind === 'sip.connect');
    if (connect?.kind !== 'sip.connect') throw new Error('no leg for 7003');
    await answered(connect.legId);
    await request('ListenDisconnect', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    await request('ListenReconnect', { ThisDN: '7001', ConnID: connId, OtherDN: '7003' });
    for (const dn of ['7001', '7002', '7003']) {
      const leg = h.model.call(connId)?.parties.find((p) => p.dn === dn)?.legId;
      if (leg !== undefined) await input({ kind: 'sip.released', legId: leg });
    }
  }
  const usedConf = process.cpuUsage(cpu);
  figures.cpuMs = (usedConf.user + usedConf.system) / 1000;
  await replicator.stop(false);
  await nc.close();
  return { calls, conferences: figures };
}

const nats = await startTestNats({ sites: [{ location: 'SiteA' }] });
try {
  const without = await run(false, nats);
  const withState = await run(true, nats);
  console.log(`call state in JetStream (load ${os.loadavg()[0]!.toFixed(2)}, ${os.cpus().length} cpus)`);
  for (const [what, n, key] of [
    ['two-party call', CALLS, 'calls'],
    ['conference', CONFERENCES, 'conferences'],
  ] as const) {
    const w = withState[key];
    const per = (x: number) => (x / n).toFixed(2);
    console.log(`  per ${what} (${n}): ${per(w.writes)} group writes, ${per(w.bytes)} bytes (largest record ${w.largest} B); CPU ${per(without[key].cpuMs)} ms without replication, ${per(w.cpuMs)} ms with`);
  }
} finally {
  await nats.stop();
}
