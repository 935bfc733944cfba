/**
 * The server under test, in its own process so its CPU is its own: our SIP stack answering every
 * request (INVITE 200 at once, others 200 or the stack's own refusal), with the per-source rate
 * limit of spec.sip.rateLimit when argv[3] is "limit". The parent asks {cmd: 'stats'} over IPC.
 */
import { Registry } from 'prom-client';
import { DEFAULT_RATE_LIMIT, createSipStack } from '../../signaling/sip/index.js';

const port = Number(process.argv[2]);
const limited = process.argv[3] === 'limit';
const registry = new Registry();
const stack = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port }], registry, ...(limited ? { rateLimit: DEFAULT_RATE_LIMIT } : {}) });
stack.onRequest((req) => {
  if (req.method === 'INVITE') req.accept();
  else req.respond(200);
});

async function counted(name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'stats') {
    void counted('huddle_sip_rate_limited_messages_total').then((dropped) => {
      const cpu = process.cpuUsage();
      process.send?.({ cpuUs: cpu.user + cpu.system, dropped });
    });
  } else if (msg.cmd === 'stop') {
    void stack.close(0).then(() => process.exit(0));
  }
});
process.send?.({ ready: true });
