/**
 * parseFrame alone: every frame is checked against the schema of the request it names, and a
 * refused one gets EventError 53 naming its first problem. The cases marked "was a model test"
 * were refused by the call model before the check moved here.
 */
import { describe, expect, it } from 'vitest';
import { parseFrame } from './protocol.js';

function refused(frame: unknown, message: string, ReferenceID?: number): void {
  const parsed = parseFrame(typeof frame === 'string' ? frame : JSON.stringify(frame));
  const error = { event: 'EventError', ErrorCode: 53, ErrorMessage: message, ...(ReferenceID === undefined ? {} : { ReferenceID }) };
  expect(parsed).toEqual({ ok: false, error });
}

describe('parseFrame', () => {
  it('accepts a request that has what its schema needs, as it was sent', () => {
    const frame = { request: 'HoldCall', ReferenceID: 7, ThisDN: '7001', ConnID: '00a1b2c3d4e5f607', Extensions: { music: 'jazz' } };
    expect(parseFrame(JSON.stringify(frame))).toEqual({ ok: true, request: frame });
  });

  it('refuses frames that are no request', () => {
    refused('{not json', 'malformed frame: not JSON');
    refused('[1]', 'malformed frame: not a JSON object');
    refused({ ReferenceID: 3, ThisDN: '7001' }, 'malformed frame: "request" (the request name) is missing', 3);
    refused({ request: 'MakeCall', ThisDN: '7001', OtherDN: '7002' }, 'invalid request MakeCall: ReferenceID is required');
  });

  it('names the problem of the request the frame names, not of the union of all requests', () => {
    refused({ request: 'Dance', ReferenceID: 5, ThisDN: '7001' }, 'invalid request Dance: unknown request "Dance"', 5);
    refused({ request: 'HoldCall', ReferenceID: 6, ThisDN: '7001' }, 'invalid request HoldCall: needs attribute ConnID', 6);
    refused({ request: 'MakeCall', ReferenceID: 7, ConnID: '0000000000000001', OtherDN: '7002' }, 'invalid request MakeCall: unknown attribute "ConnID"', 7);
    refused({ request: 'MakeCall', ReferenceID: 8, ThisDN: '', OtherDN: '7002' }, 'invalid request MakeCall: ThisDN must NOT have fewer than 1 characters', 8);
  });

  it('reports what was sent wrong before what was left out', () => {
    refused({ request: 'MakeCall', ReferenceID: 7, ThisDN: '7001', Colour: 'blue' }, 'invalid request MakeCall: unknown attribute "Colour"', 7);
    refused({ request: 'MakeCall', ReferenceID: 6, ThisDN: 7001 }, 'invalid request MakeCall: ThisDN must be string', 6);
  });

  it('refuses ThirdPartyDN, which no request takes', () => {
    refused({ request: 'SingleStepConference', ReferenceID: 9, ThisDN: '7001', ConnID: '0000000000000001', OtherDN: '7003', ThirdPartyDN: '7002' }, 'invalid request SingleStepConference: unknown attribute "ThirdPartyDN"', 9);
  });

  it('keeps a malformed ConnID for signaling, which answers it with 56 (InvalidConnID)', () => {
    expect(parseFrame(JSON.stringify({ request: 'HoldCall', ReferenceID: 1, ThisDN: '7001', ConnID: 'not-a-connid' })).ok).toBe(true);
  });

  it('needs ThisDN to route a QueryCall, though its schema lets it out', () => {
    refused({ request: 'QueryCall', ReferenceID: 4, ConnID: '0000000000000001' }, 'invalid request QueryCall: ThisDN is required', 4);
  });

  describe('was a model test (lct-and-requests: unknown request, unknown attribute, bad ReferenceID, bad attribute type)', () => {
    it('unknown request', () => refused({ request: 'Transfer', ReferenceID: 100 }, 'invalid request Transfer: unknown request "Transfer"', 100));
    it('an attribute RegisterAddress does not take', () =>
      refused({ request: 'RegisterAddress', ReferenceID: 101, ThisDN: '7001', Priority: 3 }, 'invalid request RegisterAddress: unknown attribute "Priority"', 101));
    it('an attribute MakeCall does not take', () =>
      refused({ request: 'MakeCall', ReferenceID: 102, ThisDN: '7001', OtherDN: '7002', ConnID: '0000000000000001' }, 'invalid request MakeCall: unknown attribute "ConnID"', 102));
    it('OtherDN not a string', () => refused({ request: 'MakeCall', ReferenceID: 103, ThisDN: '7001', OtherDN: 7002 }, 'invalid request MakeCall: OtherDN must be string', 103));
    it('UserData not an object', () =>
      refused({ request: 'MakeCall', ReferenceID: 104, ThisDN: '7001', OtherDN: '7002', UserData: 'x' }, 'invalid request MakeCall: UserData must be object', 104));
    it('a negative ReferenceID', () => refused({ request: 'RegisterAddress', ReferenceID: -1, ThisDN: '7001' }, 'invalid request RegisterAddress: ReferenceID must be >= 0'));
  });

  describe('was a model test (listen-disconnect: bad requests)', () => {
    for (const name of ['ListenDisconnect', 'ListenReconnect']) {
      it(`${name}: a missing OtherDN`, () => refused({ request: name, ReferenceID: 110, ThisDN: '7001', ConnID: '0000000000000001' }, `invalid request ${name}: needs attribute OtherDN`, 110));
      it(`${name}: an unknown attribute`, () =>
        refused({ request: name, ReferenceID: 111, ThisDN: '7001', OtherDN: '7002', ConnID: '0000000000000001', Colour: 'red' }, `invalid request ${name}: unknown attribute "Colour"`, 111));
    }
  });
});
