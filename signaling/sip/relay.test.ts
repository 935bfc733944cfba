/**
 * SipStack.relay: a request handed on unchanged to another server (a replica behind the SIP
 * edge that owns the dialog) is answered by that server straight to the top Via, the sender. The
 * sender here is what the edge is to a replica: a UDP socket whose Via asks for no rport
 * (Kamailio's does not), so the answer goes to the Via's sent-by.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackStacks } from '../../test/support/sip-stacks.js';
import type { ServerRequest, SipStack } from './index.js';

const { stack, closeAll } = loopbackStacks();

afterEach(closeAll);

const udpPort = (s: SipStack) => s.addresses.find((a) => a.transport === 'udp')!.port;

describe('SipStack.relay', () => {
  it('the server it is relayed to answers the sender; the relaying one sends nothing back', async () => {
    const [relaying, owner] = [await stack(), await stack()];
    const edge = dgram.createSocket('udp4');
    await new Promise<void>((r) => edge.bind(0, '127.0.0.1', r));
    const edgePort = edge.address().port;
    const received: string[] = [];
    edge.on('message', (m) => received.push(m.toString()));
    const relayed: ServerRequest[] = [];
    const answered: ServerRequest[] = [];
    relaying.onRequest((req) => {
      relayed.push(req);
      expect(relaying.relay(req, { protocol: 'udp', host: '127.0.0.1', port: udpPort(owner) })).toBe(true);
    });
    owner.onRequest((req) => {
      answered.push(req);
      req.respond(200, { headers: { 'X-Answered-By': 'owner' } });
    });
    const options = [
      `OPTIONS sip:7001@127.0.0.1:${udpPort(relaying)} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${edgePort};branch=z9hG4bKedge1`,
      'Max-Forwards: 69',
      'From: <sip:7002@127.0.0.1>;tag=a1',
      'To: <sip:7001@127.0.0.1>',
      'Call-ID: relay-test-1',
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    try {
      edge.send(options, udpPort(relaying), '127.0.0.1');
      const deadline = Date.now() + 5000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      edge.close();
    }
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(/^SIP\/2\.0 200 /);
    expect(received[0]).toMatch(/\r\nX-Answered-By: owner\r\n/i);
    expect(relayed).toHaveLength(1);
    // Unchanged: the same Call-ID, CSeq and Via branch reached the owner.
    expect(answered[0]!.message.callId).toBe('relay-test-1');
    expect(answered[0]!.message.get('via')).toBe(`SIP/2.0/UDP 127.0.0.1:${edgePort};branch=z9hG4bKedge1`);
  });
});
