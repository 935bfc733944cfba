/**
 * A confirmed dialog carried on by another stack (a restarted or another signaling process) from
 * its exported state: in-dialog requests both ways keep working, with CSeq in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSipStack, type Dialog, type DialogState, type ServerRequest, type SipStack } from './index.js';

const stacks: SipStack[] = [];

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close(0)));
});

async function stack(udp = 0, tcp = 0): Promise<SipStack> {
  const s = await createSipStack({
    listen: [
      { transport: 'udp', host: '127.0.0.1', port: udp },
      { transport: 'tcp', host: '127.0.0.1', port: tcp },
    ],
    timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 },
  });
  stacks.push(s);
  return s;
}

function portOf(s: SipStack, transport: 'udp' | 'tcp'): number {
  return s.addresses.find((a) => a.transport === transport)!.port;
}

/** The same listen addresses, in a new stack: the process that carries the dialog on. */
async function restart(s: SipStack): Promise<SipStack> {
  const [udp, tcp] = [portOf(s, 'udp'), portOf(s, 'tcp')];
  stacks.splice(stacks.indexOf(s), 1);
  await s.close(0);
  return stack(udp, tcp);
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A dialog's state as the KV store carries it. */
const throughJson = (state: DialogState): DialogState => JSON.parse(JSON.stringify(state)) as DialogState;

/** Answers every in-dialog request 200, and records the methods. */
function answerAll(d: Dialog, methods: string[]): void {
  d.onRequest((r) => {
    methods.push(r.method);
    r.respond(200, r.method === 'INVITE' ? { body: 'answer-again' } : {});
  });
}

// Over UDP: a stream peer must first notice that its connection died with the process, which is the stream transport's business, not the dialog's.
describe.each(['udp'] as const)('dialog restore over %s', (transport) => {
  for (const side of ['uas', 'uac'] as const) {
    it(`the ${side} side restarts and carries the dialog on`, async () => {
      const uas = await stack();
      const uac = await stack();
      let answered: Dialog | undefined;
      uas.onRequest((req) => (answered = req.accept({ body: 'answer' })));
      const target = `sip:bob@127.0.0.1:${portOf(uas, transport)}`;
      const result = await uac.invite(target, { body: 'offer', from: 'sip:alice@127.0.0.1' }).result;
      if (!result.ok) throw new Error(`call failed: ${result.status}`);
      const dialogs = { uac: result.dialog, uas: answered! };
      // A first in-dialog request each way, so that both CSeqs have moved on.
      const seen: Record<'uac' | 'uas', string[]> = { uac: [], uas: [] };
      answerAll(dialogs.uac, seen.uac);
      answerAll(dialogs.uas, seen.uas);
      expect((await dialogs.uac.request('INFO')).status).toBe(200);
      expect((await dialogs.uas.request('INFO')).status).toBe(200);

      const state = throughJson(dialogs[side].exportState());
      expect(state).toMatchObject({ role: side, protocol: transport, callId: dialogs.uac.callId, localSeq: expect.any(Number) as number, remoteSeq: expect.any(Number) as number });
      const stayed = side === 'uas' ? dialogs.uac : dialogs.uas;
      const moved = await restart(side === 'uas' ? uas : uac);
      const restored = moved.restoreDialog(state);
      expect(restored).toMatchObject({ id: dialogs[side].id, role: side, state: 'confirmed', remoteTarget: state.remoteTarget });
      const movedSeen: string[] = [];
      answerAll(restored, movedSeen);

      // The peer's in-dialog requests reach the restored dialog (no 481).
      expect((await stayed.request('OPTIONS')).status).toBe(200);
      // Ours carry the next CSeq: the peer takes them.
      const reinvite = await restored.request('INVITE', { body: 'offer-again' });
      expect(reinvite.status).toBe(200);
      expect(reinvite.cseq.seq).toBe(state.localSeq + 1);
      expect(reinvite.body.toString()).toBe('answer-again');
      expect(movedSeen).toEqual(['OPTIONS']);
      expect(seen[side === 'uas' ? 'uac' : 'uas']).toEqual(['INFO', 'INVITE']);

      const ended = restored.terminated;
      expect((await stayed.bye()).status).toBe(200);
      expect((await ended).cause).toBe('remote-bye');
    });
  }

  it('forget ends a dialog here without a BYE: the peer then gets 481', async () => {
    const uas = await stack();
    const uac = await stack();
    let answered: Dialog | undefined;
    uas.onRequest((req) => (answered = req.accept({ body: 'answer' })));
    const result = await uac.invite(`sip:bob@127.0.0.1:${portOf(uas, transport)}`, { body: 'offer' }).result;
    if (!result.ok) throw new Error(`call failed: ${result.status}`);
    const byes: string[] = [];
    result.dialog.onTerminated((t) => byes.push(t.cause));
    answered!.forget();
    expect((await answered!.terminated).cause).toBe('closed');
    expect((await result.dialog.request('OPTIONS')).status).toBe(481);
    expect(byes).toEqual([]);
  });

  it('a request for a dialog not held here waits in onUnknownDialog until deliver hands it to the restored dialog', async () => {
    const uas = await stack();
    const uac = await stack();
    let answered: Dialog | undefined;
    uas.onRequest((req) => (answered = req.accept({ body: 'answer' })));
    const result = await uac.invite(`sip:bob@127.0.0.1:${portOf(uas, transport)}`, { body: 'offer' }).result;
    if (!result.ok) throw new Error(`call failed: ${result.status}`);
    const state = throughJson(answered!.exportState());
    const moved = await restart(uas);
    const waiting: ServerRequest[] = [];
    moved.onUnknownDialog((req) => waiting.push(req));
    const options = result.dialog.request('OPTIONS');
    await until(() => waiting.length === 1);
    expect(moved.deliver(waiting[0]!)).toBe(false);
    const restored = moved.restoreDialog(state);
    const seen: string[] = [];
    answerAll(restored, seen);
    expect(moved.deliver(waiting[0]!)).toBe(true);
    expect((await options).status).toBe(200);
    expect(seen).toEqual(['OPTIONS']);
  });
});
