/**
 * Every T-Library request through the whole path a desktop's frame takes: its schema, the gateway's
 * parseFrame, then the call model. Examples are generated from each request's schema, with every
 * optional attribute present and absent, in a world where the request makes sense (a call to
 * hold, a conference to listen-disconnect from ...). A request name added without a schema, a
 * world or model handling fails here.
 */
import type { TObject, TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { checker } from '../../common/config/check.js';
import { RequestNames, type RequestName } from '../../common/tlib/enums.js';
import { ErrorCodes } from '../../common/tlib/errors.js';
import { RequestSchemas, type TRequest } from '../../common/tlib/requests.js';
import { parseFrame } from '../../tlib-api/gateway/protocol.js';
import { Desk, Harness } from './test-harness.js';
import type { ModelOutput } from './types.js';

/** The string attributes of a request, as the world set up for it has them. */
type Samples = Record<string, string>;

/** Per request: the state in which it can be carried out, and the DNs and call it names there. */
const worlds: { [N in RequestName]: (h: Harness) => Samples } = {
  RegisterAddress: () => ({ ThisDN: '7001' }),
  UnregisterAddress: (h) => {
    h.register('7001');
    return { ThisDN: '7001' };
  },
  MakeCall: (h) => {
    h.register('7001');
    return { ThisDN: '7001', OtherDN: '7002' };
  },
  AnswerCall: (h) => {
    h.register('7005');
    h.incoming({ dn: '7001' }, '7005');
    h.ringing(h.legOf(h.lastConnId(), '7005'));
    return { ThisDN: '7005', ConnID: h.lastConnId() };
  },
  ReleaseCall: (h) => callOf7001(h),
  HoldCall: (h) => callOf7001(h),
  RetrieveCall: (h) => {
    const samples = callOf7001(h);
    h.req('HoldCall', samples);
    return samples;
  },
  InitiateConference: (h) => ({ ...callOf7001(h), OtherDN: '7003' }),
  CompleteConference: (h) => {
    const samples = callOf7001(h);
    h.req('InitiateConference', { ...samples, OtherDN: '7003' });
    const consult = h.lastConnId();
    h.ringing(h.legOf(consult, '7003'));
    h.answered(h.legOf(consult, '7003'));
    return samples;
  },
  DeleteFromConference: (h) => ({ ThisDN: '7001', ConnID: h.conference3(), OtherDN: '7003' }),
  SingleStepConference: (h) => ({ ...callOf7001(h), OtherDN: '7003' }),
  QueryCall: (h) => callOf7001(h),
  SendUserEvent: (h) => callOf7001(h),
  ListenDisconnect: (h) => ({ ThisDN: '7001', ConnID: h.conference3(), OtherDN: '7002' }),
  ListenReconnect: (h) => {
    const samples = { ThisDN: '7001', ConnID: h.conference3(), OtherDN: '7002' };
    h.req('ListenDisconnect', samples);
    return samples;
  },
};

/** 7001's phone calls 7002, who answers; 7001's desktop is registered. */
function callOf7001(h: Harness): Samples {
  const connId = h.phoneCall('7001', '7002');
  h.register('7001');
  return { ThisDN: '7001', ConnID: connId };
}

/** A value the schema accepts for one attribute: strings come from the world. */
function sample(attribute: string, schema: TSchema, samples: Samples): unknown {
  if ('const' in schema) return schema.const;
  switch (schema.type) {
    case 'integer':
      return (schema.minimum as number | undefined) ?? 0;
    case 'string': {
      const value = samples[attribute];
      if (value === undefined) throw new Error(`the world has no ${attribute}`);
      return value;
    }
    case 'object':
      return { music: 'jazz' };
    default:
      throw new Error(`no sample for ${attribute} of type ${String(schema.type)}`);
  }
}

/** The request with its required attributes and the optional ones in `present`. */
function example(schema: TObject, present: string[], samples: Samples): Record<string, unknown> {
  const required = new Set(schema.required ?? []);
  const request: Record<string, unknown> = {};
  for (const [attribute, property] of Object.entries(schema.properties)) {
    if (required.has(attribute) || present.includes(attribute)) request[attribute] = sample(attribute, property, samples);
  }
  return request;
}

/** No optional attribute, each one alone, all of them. */
function variants(schema: TObject): string[][] {
  const required = new Set(schema.required ?? []);
  const optional = Object.keys(schema.properties).filter((a) => !required.has(a));
  return [[], ...optional.map((a) => [a]), optional];
}

const documented = new Set<number>(Object.values(ErrorCodes).filter((code) => code !== ErrorCodes.UnknownError));

function refusal(outputs: ModelOutput[]): number | undefined {
  const error = outputs.find((o) => o.kind === 'tlib.reply' && o.event.event === 'EventError');
  return error?.kind === 'tlib.reply' ? error.event.ErrorCode : undefined;
}

describe('every request', () => {
  it('has a schema and a world, and nothing else has', () => {
    expect(Object.keys(RequestSchemas).sort()).toEqual([...RequestNames].sort());
    expect(Object.keys(worlds).sort()).toEqual([...RequestNames].sort());
  });

  // A name without a schema or a world fails the test above; its examples cannot be made.
  for (const name of RequestNames.filter((n) => Object.hasOwn(RequestSchemas, n) && Object.hasOwn(worlds, n))) {
    describe(name, () => {
      const schema: TObject = RequestSchemas[name];
      const valid = checker(schema);

      for (const present of variants(schema)) {
        it(`with ${present.length === 0 ? 'no optional attribute' : present.join(', ')}: accepted by the gateway, handled by the model`, () => {
          const h = new Harness();
          const request = example(schema, present, worlds[name](h));
          expect(valid(request), valid.problem()).toBe(true);
          const parsed = parseFrame(JSON.stringify(request));
          if (request.ThisDN === undefined) {
            // The one attribute a schema may leave out that the gateway still needs: it routes by ThisDN.
            expect(parsed).toMatchObject({ ok: false, error: { ErrorCode: 53, ErrorMessage: `invalid request ${name}: ThisDN is required` } });
          } else {
            expect(parsed).toEqual({ ok: true, request });
          }
          const outputs = h.handle({ kind: 'tlib.request', request: request as TRequest, origin: Desk });
          const code = refusal(outputs);
          // Without ThisDN the request names no DN in the call: only a supervisor's client may query it.
          if (request.ThisDN === undefined) expect(code, `${name} without ThisDN`).toBe(ErrorCodes.InvalidConnID);
          else if (present.length === 0) expect(code, `${name} refused in its world`).toBeUndefined();
          else if (code !== undefined) expect(documented.has(code), `${name} refused with ${code}`).toBe(true);
        });
      }

      for (const unlisted of ['ThirdPartyDN', 'Unlisted']) {
        it(`with ${unlisted}, which its schema does not list: refused 53 by the gateway`, () => {
          const request = { ...example(schema, [], worlds[name](new Harness())), [unlisted]: '7003' };
          expect(parseFrame(JSON.stringify(request))).toMatchObject({
            ok: false,
            error: { event: 'EventError', ErrorCode: 53, ErrorMessage: `invalid request ${name}: unknown attribute "${unlisted}"` },
          });
        });
      }
    });
  }
});
