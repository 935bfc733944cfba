import { describe, expect, it } from 'vitest';
import { pipelinedMediaRun } from './call-model-shell.js';
import type { ModelOutput } from './model/index.js';

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
