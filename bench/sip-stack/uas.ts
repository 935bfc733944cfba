/**
 * The UAS under test, in its own process so its CPU is its own: answers INVITE with 200 at once
 * with the fixed SDP that bench/sip-stack/kamailio.cfg answers with (stateful: server
 * transactions, 2xx retransmission until ACK, dialogs), BYE is answered by the stack.
 * Parent asks {cmd: 'stats'} over IPC and gets retransmission counts back (it reads CPU from /proc,
 * as for Kamailio).
 */
import { Registry } from 'prom-client';
import { createSipStack } from '../../signaling/sip/index.js';

const port = Number(process.argv[2]);
const registry = new Registry();
const stack = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port }], registry });
const ANSWER = 'v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
stack.onRequest((req) => {
  if (req.method === 'INVITE') req.accept({ body: ANSWER });
  else req.respond(200);
});

async function retransmissions(): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'huddle_sip_retransmissions_total');
  return (m?.values ?? []).filter((v) => v.labels.direction === 'out').reduce((a, v) => a + v.value, 0);
}

process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'stats') {
    void retransmissions().then((r) => process.send?.({ retransmissions: r }));
  } else if (msg.cmd === 'stop') {
    void stack.close(0).then(() => process.exit(0));
  }
});
process.send?.({ ready: true });
