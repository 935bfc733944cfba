import { afterEach, describe, expect, it } from 'vitest';
import { edgePlacement, heldWhileStarting, listenAddress } from './edge.js';
import { loopbackStacks } from '../test/support/sip-stacks.js';

const { stack, closeAll } = loopbackStacks();

afterEach(closeAll);

describe('a signaling replica behind the SIP edge (environment)', () => {
  it('faces phones itself without HUDDLE_SIP_EDGE', () => {
    expect(edgePlacement({})).toBeUndefined();
  });

  it('listens on its own sockets, names the edge in Contact and sends through its socket for replicas', () => {
    expect(
      edgePlacement({
        HUDDLE_SIP_EDGE: 'site-a-sip-edge-internal.telephony.svc.cluster.local:5071',
        HUDDLE_SIP_EDGE_CONTACT: 'sip.example.com:5060',
        HUDDLE_SIP_LISTEN: 'udp:0.0.0.0:5070, tcp:0.0.0.0:5070',
        HUDDLE_SIP_REPLICA_HOST: 'site-a-signaling-0.site-a-signaling.telephony.svc.cluster.local',
        HUDDLE_SIP_EDGE_TOKEN: 'token-1',
      }),
    ).toEqual({
      listen: [
        { transport: 'udp', host: '0.0.0.0', port: 5070 },
        { transport: 'tcp', host: '0.0.0.0', port: 5070 },
      ],
      contactAddress: { host: 'sip.example.com', port: 5060 },
      outboundProxy: { protocol: 'udp', host: 'site-a-sip-edge-internal.telephony.svc.cluster.local', port: 5071 },
      edgeSourceToken: 'token-1',
      advertisedHost: 'site-a-signaling-0.site-a-signaling.telephony.svc.cluster.local',
    });
  });

  it('names the edge for phones as the replicas reach it when no contact address is given; IPv6 in brackets', () => {
    const placement = edgePlacement({ HUDDLE_SIP_EDGE: '[::1]:5071', HUDDLE_SIP_LISTEN: 'udp:[::1]:15061', HUDDLE_SIP_EDGE_TOKEN: 't' });
    expect(placement?.contactAddress).toEqual({ host: '::1', port: 5071 });
    expect(placement?.listen).toEqual([{ transport: 'udp', host: '::1', port: 15061 }]);
  });

  it('refuses a malformed setting, naming the variable', () => {
    expect(() => edgePlacement({ HUDDLE_SIP_EDGE: '127.0.0.1:5071' })).toThrow(/HUDDLE_SIP_LISTEN must name/);
    expect(() => listenAddress('sctp:127.0.0.1:5060')).toThrow(/HUDDLE_SIP_LISTEN: "sctp:127.0.0.1:5060"/);
    expect(() => edgePlacement({ HUDDLE_SIP_EDGE: '127.0.0.1:5071', HUDDLE_SIP_LISTEN: 'udp:127.0.0.1:1' })).toThrow(/HUDDLE_SIP_EDGE_TOKEN must give/);
    expect(() => edgePlacement({ HUDDLE_SIP_EDGE: 'edge', HUDDLE_SIP_LISTEN: 'udp:127.0.0.1:1', HUDDLE_SIP_EDGE_TOKEN: 't' })).toThrow(/HUDDLE_SIP_EDGE: "edge" is not host:port/);
  });
});

describe('a signaling replica while it starts', () => {
  it('answers the edge\'s OPTIONS probe 503 and holds other requests until its handlers are in place', async () => {
    const [replica, edge] = [await stack(), await stack()];
    const start = heldWhileStarting(replica);
    const target = `sip:7001@127.0.0.1:${replica.addresses[0]!.port}`;
    const probe = await edge.request('OPTIONS', target);
    expect([probe.status, probe.reason, probe.get('retry-after')]).toEqual([503, 'Replica starting', '1']);
    const handled: string[] = [];
    let answered = false;
    const message = edge.request('MESSAGE', target, { body: 'hello', contentType: 'text/plain' }).then((res) => {
      answered = true;
      return res;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);
    start({
      request: (req) => {
        handled.push(req.method);
        req.respond(200);
      },
      unknownDialog: (req) => req.respond(481),
    });
    expect((await message).status).toBe(200);
    expect((await edge.request('OPTIONS', target)).status).toBe(200);
    expect(handled).toEqual(['MESSAGE', 'OPTIONS']);
  });
});
