/** SIP stacks and transports for unit tests of signaling's SIP layers. */
import { createSipStack, type SipStack } from '../../signaling/sip/index.js';
import type { Transport } from '../../signaling/sip/transport/transport.js';

/**
 * Loopback UDP stacks with short timers (T1 100 ms), closed together: `stack()` in a test,
 * `closeAll()` in its afterEach.
 */
export function loopbackStacks(): { stack(): Promise<SipStack>; closeAll(): Promise<void> } {
  const stacks: SipStack[] = [];
  return {
    async stack() {
      const s = await createSipStack({ listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }], timers: { t1Ms: 100, t2Ms: 400, t4Ms: 500 } });
      stacks.push(s);
      return s;
    },
    async closeAll() {
      await Promise.all(stacks.splice(0).map((s) => s.close(0)));
    },
  };
}

/** A transport that sends nowhere, for transactions driven by hand on a fake clock. */
export function fakeTransport(reliable: boolean): Transport {
  return {
    protocol: reliable ? 'tcp' : 'udp',
    reliable,
    host: '127.0.0.1',
    port: 5060,
    setHandler: () => undefined,
    listen: async () => undefined,
    send: () => undefined,
    close: async () => undefined,
  };
}
