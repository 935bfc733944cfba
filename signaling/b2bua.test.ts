import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { B2bua, isHoldOffer } from './b2bua.js';
import type { DnAuthenticator } from './dn-auth.js';
import type { DnDirectory } from './dn-directory.js';
import type { MediaClient } from './media-client.js';
import type { RegistrarService } from './registrar-service.js';
import { loopbackStacks } from '../test/support/sip-stacks.js';

const { stack, closeAll } = loopbackStacks();

afterEach(closeAll);

describe('B2BUA: out-of-dialog requests', () => {
  it('answers OPTIONS with one Allow (the stack’s) and Accept: application/sdp, other methods 405 with one Allow', async () => {
    const uas = await stack();
    const b2bua = new B2bua({
      stack: uas,
      // OPTIONS and 405 touch neither media, registrations, DNs, credentials, conferences nor the call model.
      media: {} as MediaClient,
      registrar: {} as RegistrarService,
      directory: {} as DnDirectory,
      auth: {} as DnAuthenticator,
      conferenceEvents: { onSubscribe: () => undefined },
      facts: { serially: () => undefined },
      location: () => 'SiteA',
      log: pino({ level: 'silent' }),
    });
    uas.onRequest((req) => b2bua.onRequest(req));
    const uac = await stack();
    const target = `sip:huddle@127.0.0.1:${uas.addresses[0]!.port}`;

    const options = await uac.request('OPTIONS', target);
    expect(options.status).toBe(200);
    expect(options.headers.filter((h) => h.key === 'allow')).toHaveLength(1);
    expect(options.get('accept')).toBe('application/sdp');

    const message = await uac.request('MESSAGE', target, { body: 'hi', contentType: 'text/plain' });
    expect(message.status).toBe(405);
    expect(message.headers.filter((h) => h.key === 'allow')).toHaveLength(1);
  });
});

describe('isHoldOffer (RFC 3264 §8.4)', () => {
  const sdp = (audio: string, session = 'c=IN IP4 192.0.2.1'): string =>
    ['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', session, 't=0 0', 'm=audio 4000 RTP/AVP 0', ...(audio ? [audio] : []), ''].join('\r\n');

  it('sendonly and inactive hold, at media or session level', () => {
    expect(isHoldOffer(sdp('a=sendonly'))).toBe(true);
    expect(isHoldOffer(sdp('a=inactive'))).toBe(true);
    expect(isHoldOffer(sdp('', 'c=IN IP4 192.0.2.1\r\na=sendonly'))).toBe(true);
  });

  it('old style: connection address 0.0.0.0 holds', () => {
    expect(isHoldOffer(sdp('', 'c=IN IP4 0.0.0.0'))).toBe(true);
  });

  it('sendrecv, recvonly or no direction do not hold', () => {
    expect(isHoldOffer(sdp('a=sendrecv'))).toBe(false);
    expect(isHoldOffer(sdp('a=recvonly'))).toBe(false);
    expect(isHoldOffer(sdp(''))).toBe(false);
  });
});
