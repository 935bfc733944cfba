import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { TEvent } from '../common/tlib/messages.js';
import type { SipAction, SipFact } from './b2bua.js';
import { CallModelShell, pipelinedMediaRun } from './call-model-shell.js';
import { MediaCommandError, type MediaClient } from './media-client.js';
import type { ModelInput, ModelOutput } from './model/index.js';

const media = (command: Extract<ModelOutput, { kind: 'media' }>['command']): ModelOutput => ({ kind: 'media', command });
const event: ModelOutput = { kind: 'tlib.event', to: '7001', event: { event: 'EventListenDisconnected', ThisDN: '7001' } };

/** The runs execute() carries out, in order, as op names. */
function runs(outputs: ModelOutput[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < outputs.length; ) {
    const run = pipelinedMediaRun(outputs, i);
    out.push(run.map((o) => (o.kind === 'media' ? `${o.command.op}@${'bridgeId' in o.command ? o.command.bridgeId : ''}` : o.kind)));
    i += run.length;
  }
  return out;
}

describe('pipelinedMediaRun: which outputs go out without waiting for each other', () => {
  it('sends consecutive commands on one bridge together, then waits before the events', () => {
    const outputs = [
      media({ op: 'leg.flags', bridgeId: 'b1', legId: 'l3', listen: false, talk: false }),
      media({ op: 'leg.music.play', bridgeId: 'b1', legId: 'l3', file: '/music/on_hold.wav' }),
      event,
      event,
    ];
    expect(runs(outputs)).toEqual([['leg.flags@b1', 'leg.music.play@b1'], ['tlib.event'], ['tlib.event']]);
  });

  it('keeps commands on different bridges, bridge.create and leg.move apart', () => {
    const outputs = [
      media({ op: 'bridge.create', bridgeId: 'b2' }),
      media({ op: 'leg.move', bridgeId: 'b1', legId: 'l1', toBridgeId: 'b2' }),
      media({ op: 'leg.flags', bridgeId: 'b2', legId: 'l1', listen: true, talk: true }),
      media({ op: 'leg.music.stop', bridgeId: 'b2', legId: 'l1' }),
      media({ op: 'leg.remove', bridgeId: 'b1', legId: 'l2' }),
      media({ op: 'bridge.destroy', bridgeId: 'b1' }),
    ];
    expect(runs(outputs)).toEqual([
      ['bridge.create@b2'],
      ['leg.move@b1'],
      ['leg.flags@b2', 'leg.music.stop@b2'],
      ['leg.remove@b1', 'bridge.destroy@b1'],
    ]);
  });
});

describe('CallModelShell: replies travel back with the request', () => {
  const origin = { gateway: 'gw-1', client: 'c-1' };
  const reply = (ThisDN: string): ModelOutput => ({ kind: 'tlib.reply', origin, event: { event: 'EventACK', ThisDN } });
  const connect: ModelOutput = { kind: 'sip.connect', direction: 'outbound', legId: 'l1', bridgeId: 'b1', target: { dn: '7002' }, caller: { alias: '7001', location: 'SiteA' }, autoAnswer: false, originConnId: '0000000000000001' };

  /** A shell whose model answers each input kind with the outputs given, logging every input and SIP action. */
  function shell(outputs: Partial<Record<ModelInput['kind'], ModelOutput[]>>, sip: (out: SipAction) => SipFact | undefined, mediaClient = {} as MediaClient) {
    const log: string[] = [];
    const published: TEvent[] = [];
    const calls = new CallModelShell({
      model: {
        handle: (input) => {
          log.push(input.kind);
          return outputs[input.kind] ?? [];
        },
        registrationsOf: (dn) => (dn === '7001' ? ['gw-1\u0000c-1'] : []),
        resync: (dn) => [{ kind: 'tlib.event', to: dn, event: { event: 'EventRegistered', ThisDN: dn } }],
      },
      media: mediaClient,
      b2bua: {
        carryOut: (out) => {
          log.push(out.kind);
          return Promise.resolve(sip(out));
        },
        connectFailed: (out) => ({ kind: 'sip.failed', legId: out.legId, status: 503 }),
        releaseAll: () => undefined,
      },
      conferenceEvents: { stateChanged: () => undefined, endAll: () => undefined },
      publish: (_dn, event) => published.push(event),
      log: pino({ level: 'silent' }),
    });
    return { calls, log, published };
  }

  it('resolves a request with its replies, also those of the SIP facts its outputs led to, in the order met', async () => {
    const { calls, log, published } = shell(
      {
        'tlib.request': [{ kind: 'tlib.event', to: '7001', event: { event: 'EventDialing', ThisDN: '7001' } }, connect, reply('request')],
        'sip.failed': [reply('failed')],
      },
      () => ({ kind: 'sip.failed', legId: 'l1', status: 480 }),
    );
    const replies = await calls.tlibRequest({ request: 'MakeCall', ReferenceID: 1, ThisDN: '7001', OtherDN: '7002' }, origin);
    expect(replies.map((e) => e.ThisDN)).toEqual(['failed', 'request']);
    expect(published.map((e) => e.event)).toEqual(['EventDialing']);
    expect(log).toEqual(['tlib.request', 'sip.connect', 'sip.failed']);
  });

  it('resyncs the DNs named that are still registered, after the inputs queued before', async () => {
    const { calls, log, published } = shell({ 'tlib.gatewayGone': [] }, () => undefined);
    calls.gatewayGone('gw-0');
    expect(await calls.resync(() => (log.push('select'), ['7001', '7002']))).toEqual(['7001']);
    expect(log).toEqual(['tlib.gatewayGone', 'select']);
    expect(published).toEqual([{ event: 'EventRegistered', ThisDN: '7001' }]);
  });

  it('a request gets none of the replies of inputs before it', async () => {
    const { calls } = shell({ 'tlib.gatewayGone': [reply('gone')], 'tlib.request': [reply('request')] }, () => undefined);
    calls.gatewayGone('gw-0');
    const replies = await calls.tlibRequest({ request: 'RegisterAddress', ReferenceID: 2, ThisDN: '7001' }, origin);
    expect(replies.map((e) => e.ThisDN)).toEqual(['request']);
  });

  it('runs a SIP fact after the inputs queued before it', async () => {
    const { calls, log } = shell({ 'tlib.request': [connect] }, () => undefined);
    const request = calls.tlibRequest({ request: 'MakeCall', ReferenceID: 3, ThisDN: '7001', OtherDN: '7002' }, origin);
    calls.serially(() => {
      log.push('job');
      return { kind: 'sip.ringing', legId: 'l1' };
    });
    await request;
    await calls.drain();
    expect(log).toEqual(['tlib.request', 'sip.connect', 'job', 'sip.ringing']);
  });

  it('a media change that failed is answered with EventError 58, never success, and the model is told the leg failed', async () => {
    const answer = (name: TEvent['event'], to: string): ModelOutput => ({ kind: 'tlib.event', to, event: { event: name, ThisDN: to, ConnID: 'c1', ReferenceID: 4 }, ...(to === '7001' ? { origin } : {}) });
    const failing = {
      send: (command: { op: string }) =>
        command.op === 'leg.flags' ? Promise.reject(new MediaCommandError('RtpengineUnavailable', 'rtpengine gone', 'leg.flags')) : Promise.resolve({ ok: true, instance: 'mc-1' }),
    } as unknown as MediaClient;
    const { calls, published, log } = shell(
      {
        'tlib.request': [
          media({ op: 'leg.music.stop', bridgeId: 'b1', legId: 'l3' }),
          media({ op: 'leg.flags', bridgeId: 'b1', legId: 'l3', listen: true, talk: true }),
          answer('EventListenReconnected', '7001'),
          answer('EventListenReconnected', '7002'),
        ],
      },
      () => undefined,
      failing,
    );
    const replies = await calls.tlibRequest({ request: 'ListenReconnect', ReferenceID: 4, ThisDN: '7001', OtherDN: '7003', ConnID: 'c1' }, origin);
    expect(replies).toEqual([expect.objectContaining({ event: 'EventError', ErrorCode: 58, ReferenceID: 4, ThisDN: '7001', ConnID: 'c1' })]);
    expect(published).toEqual([]);
    await calls.drain();
    expect(log).toEqual(['tlib.request', 'media.event']);
  });
});
