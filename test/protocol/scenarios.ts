/**
 * The situations the protocol reference (tlib-api/README.md, "Request reference") describes, run
 * on the real call model (signaling/model through its test harness, site A of config/local.yaml):
 * for each request, what it is answered with when it succeeds and which EventError it gets for
 * which failure. The reference prints what these runs produce, never what someone remembered.
 */
import type { RequestName } from '../../common/tlib/enums.js';
import { Harness } from '../../signaling/model/test-harness.js';
import type { ModelOutput } from '../../signaling/model/types.js';

/** What a world set up: the request's attributes and the calls it made, by the name the reference gives them. */
export interface World {
  attrs: Record<string, string>;
  calls: Record<string, string>;
}

/** Something that happens after the request and leads to more events answering it (a phone rings, answers, is busy). */
export interface Then {
  what: string;
  /** `call` gives the ConnID of a call by its name in the reference (A, B, ...). */
  run: (h: Harness, call: (name: string) => string) => ModelOutput[];
}

export interface Scenario {
  request: RequestName;
  /** The situation, in the reference's words. */
  situation: string;
  world: (h: Harness) => World;
  then?: Then[];
  /** The EventError code the request must get, or undefined when it must be carried out. */
  refused?: number;
}

const A = (connId: string): Record<string, string> => ({ A: connId });

/** 7001's phone called 7002, who answered; 7001's desktop is registered. */
function call(h: Harness, registered: string[] = ['7001']): string {
  const connId = h.phoneCall('7001', '7002');
  h.register(...registered);
  return connId;
}

/** 7001 called 7002, then added 7003 single-step; desktops 7001, 7002, 7003 registered. */
function conference(h: Harness): string {
  h.register('7002', '7003');
  return h.conference3();
}

/** Call A (7001-7002), 7001 consulting 7003 in call B; `answered`: 7003 picked up. Desktops 7001 and 7003 registered. */
function consultation(h: Harness, answered: boolean): Record<string, string> {
  const a = call(h, ['7001', '7003']);
  h.req('InitiateConference', { ThisDN: '7001', ConnID: a, OtherDN: '7003' });
  const b = h.lastConnId();
  h.ringing(h.legOf(b, '7003'));
  if (answered) h.answered(h.legOf(b, '7003'));
  return { A: a, B: b };
}

const rings = (dn: string, name = 'A'): Then => ({ what: `${dn}'s phone rings`, run: (h, call) => h.ringing(h.legOf(call(name), dn)) });
const answers = (dn: string, name = 'A'): Then => ({ what: `${dn}'s phone answers`, run: (h, call) => h.answered(h.legOf(call(name), dn)) });

const ld = (h: Harness, otherDN = '7002'): World => {
  const connId = conference(h);
  return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: otherDN }, calls: A(connId) };
};

export const scenarios: Scenario[] = [
  // RegisterAddress
  { request: 'RegisterAddress', situation: '7001 is in no call', world: () => ({ attrs: { ThisDN: '7001' }, calls: {} }) },
  {
    request: 'RegisterAddress',
    situation: '7001 is in call A with 7002 (a desktop that reconnects learns its calls)',
    world: (h) => ({ attrs: { ThisDN: '7001' }, calls: A(h.phoneCall('7001', '7002')) }),
  },
  { request: 'RegisterAddress', situation: 'ThisDN is no DN of the site', world: () => ({ attrs: { ThisDN: '7999' }, calls: {} }), refused: 59 },

  // UnregisterAddress
  {
    request: 'UnregisterAddress',
    situation: '7001 is registered by this client',
    world: (h) => {
      h.register('7001');
      return { attrs: { ThisDN: '7001' }, calls: {} };
    },
  },
  { request: 'UnregisterAddress', situation: 'this client has not registered 7001', world: () => ({ attrs: { ThisDN: '7001' }, calls: {} }), refused: 41 },

  // MakeCall
  {
    request: 'MakeCall',
    situation: '7001 calls 7002 (the server calls 7001\'s phone first, then 7002)',
    world: (h) => {
      h.register('7001', '7002');
      return { attrs: { ThisDN: '7001', OtherDN: '7002' }, calls: {} };
    },
    then: [
      { what: "7001's phone answers", run: (h) => h.answered(h.legOf(h.lastConnId(), '7001')) },
      { what: "7002's phone rings", run: (h) => h.ringing(h.legOf(h.lastConnId(), '7002')) },
      { what: "7002's phone answers", run: (h) => h.answered(h.legOf(h.lastConnId(), '7002')) },
    ],
  },
  {
    request: 'MakeCall',
    situation: 'OtherDN is neither a DN nor a number a Trunk prefix matches',
    world: (h) => {
      h.register('7001');
      return { attrs: { ThisDN: '7001', OtherDN: '5555' }, calls: {} };
    },
    refused: 71,
  },
  {
    request: 'MakeCall',
    situation: 'OtherDN is ThisDN',
    world: (h) => {
      h.register('7001');
      return { attrs: { ThisDN: '7001', OtherDN: '7001' }, calls: {} };
    },
    refused: 71,
  },
  {
    request: 'MakeCall',
    situation: 'ThisDN is not registered by this client',
    world: () => ({ attrs: { ThisDN: '7001', OtherDN: '7002' }, calls: {} }),
    refused: 41,
  },

  // AnswerCall
  {
    request: 'AnswerCall',
    situation: "7001's phone calls 7005 (remote-answer true), 7005 rings",
    world: (h) => {
      h.register('7005');
      h.incoming({ dn: '7001' }, '7005');
      const connId = h.lastConnId();
      h.ringing(h.legOf(connId, '7005'));
      return { attrs: { ThisDN: '7005', ConnID: connId }, calls: A(connId) };
    },
    then: [answers('7005')],
  },
  {
    request: 'AnswerCall',
    situation: "7002 rings, but its DN's remote-answer is false",
    world: (h) => {
      h.register('7002');
      h.incoming({ dn: '7001' }, '7002');
      const connId = h.lastConnId();
      h.ringing(h.legOf(connId, '7002'));
      return { attrs: { ThisDN: '7002', ConnID: connId }, calls: A(connId) };
    },
    refused: 51,
  },
  {
    request: 'AnswerCall',
    situation: '7002 is already connected to the call',
    world: (h) => {
      const connId = call(h, ['7002']);
      return { attrs: { ThisDN: '7002', ConnID: connId }, calls: A(connId) };
    },
    refused: 43,
  },

  // ReleaseCall
  {
    request: 'ReleaseCall',
    situation: '7001 in call A with 7002',
    world: (h) => {
      const connId = call(h, ['7001', '7002']);
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
  },
  {
    request: 'ReleaseCall',
    situation: 'the leaving rule: in conference A, 7001 listen-disconnected 7002, then 7001 releases (one active party would be left)',
    world: (h) => {
      const connId = conference(h);
      h.req('ListenDisconnect', { ThisDN: '7001', ConnID: connId, OtherDN: '7002' });
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
  },
  {
    request: 'ReleaseCall',
    situation: 'ConnID names no call',
    world: (h) => {
      call(h);
      return { attrs: { ThisDN: '7001', ConnID: '00000000000000ff' }, calls: {} };
    },
    refused: 56,
  },
  {
    request: 'ReleaseCall',
    situation: 'ConnID is not 16 lowercase hexadecimal digits',
    world: (h) => {
      call(h);
      return { attrs: { ThisDN: '7001', ConnID: 'call-1' }, calls: {} };
    },
    refused: 56,
  },
  {
    request: 'ReleaseCall',
    situation: 'ThisDN is not a party of the call',
    world: (h) => {
      const connId = call(h, ['7004']);
      return { attrs: { ThisDN: '7004', ConnID: connId }, calls: A(connId) };
    },
    refused: 56,
  },

  // HoldCall / RetrieveCall
  {
    request: 'HoldCall',
    situation: '7001 in call A with 7002',
    world: (h) => {
      const connId = call(h, ['7001', '7002']);
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
  },
  {
    request: 'HoldCall',
    situation: '7001 already holds the call',
    world: (h) => {
      const connId = call(h);
      h.req('HoldCall', { ThisDN: '7001', ConnID: connId });
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
    refused: 43,
  },
  {
    request: 'RetrieveCall',
    situation: '7001 holds call A with 7002',
    world: (h) => {
      const connId = call(h, ['7001', '7002']);
      h.req('HoldCall', { ThisDN: '7001', ConnID: connId });
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
  },
  {
    request: 'RetrieveCall',
    situation: '7001 does not hold the call',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
    refused: 43,
  },
  {
    request: 'RetrieveCall',
    situation: '7001 is consulting 7003 (call B) from call A',
    world: (h) => {
      const calls = consultation(h, true);
      return { attrs: { ThisDN: '7001', ConnID: calls.A! }, calls };
    },
    refused: 565,
  },

  // InitiateConference
  {
    request: 'InitiateConference',
    situation: '7001 in call A with 7002 consults 7003: the server holds A and calls 7003 in a new call B',
    world: (h) => {
      const connId = call(h, ['7001', '7002', '7003']);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
    then: [rings('7003', 'B'), answers('7003', 'B')],
  },
  {
    request: 'InitiateConference',
    situation: 'OtherDN is already a party of the call',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }, calls: A(connId) };
    },
    refused: 53,
  },
  {
    request: 'InitiateConference',
    situation: '7001 holds the call',
    world: (h) => {
      const connId = call(h);
      h.req('HoldCall', { ThisDN: '7001', ConnID: connId });
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
    refused: 565,
  },
  {
    request: 'InitiateConference',
    situation: 'OtherDN is neither a DN nor a number a Trunk prefix matches',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '5555' }, calls: A(connId) };
    },
    refused: 71,
  },

  // CompleteConference
  {
    request: 'CompleteConference',
    situation: "with the ConnID of the held call A: 7001 in A with 7002 consulted 7003 in call B, 7003 answered",
    world: (h) => {
      h.register('7002');
      const calls = consultation(h, true);
      return { attrs: { ThisDN: '7001', ConnID: calls.A! }, calls };
    },
  },
  {
    request: 'CompleteConference',
    situation: 'with the ConnID of the consultation call B instead: the same outcome',
    world: (h) => {
      h.register('7002');
      const calls = consultation(h, true);
      return { attrs: { ThisDN: '7001', ConnID: calls.B! }, calls };
    },
  },
  {
    request: 'CompleteConference',
    situation: '7003 has not answered the consultation call yet',
    world: (h) => {
      const calls = consultation(h, false);
      return { attrs: { ThisDN: '7001', ConnID: calls.A! }, calls };
    },
    refused: 565,
  },
  {
    request: 'CompleteConference',
    situation: '7001 has no consultation call',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
    refused: 565,
  },

  // SingleStepConference
  {
    request: 'SingleStepConference',
    situation: '7001 in call A with 7002 adds 7003 (answered when 7003 joins)',
    world: (h) => {
      const connId = call(h, ['7001', '7002', '7003']);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
    then: [rings('7003'), answers('7003')],
  },
  {
    request: 'SingleStepConference',
    situation: "7003's phone is busy (the answer comes when it says so)",
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
    then: [{ what: "7003's phone answers 486 Busy Here", run: (h, call) => h.handle({ kind: 'sip.failed', legId: h.legOf(call('A'), '7003'), status: 486 }) }],
  },
  {
    request: 'SingleStepConference',
    situation: 'the call is not established yet',
    world: (h) => {
      h.register('7001');
      h.incoming({ dn: '7001' }, '7002');
      const connId = h.lastConnId();
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
    refused: 565,
  },

  // DeleteFromConference
  {
    request: 'DeleteFromConference',
    situation: '7001 deletes 7003 from conference A (7001, 7002, 7003)',
    world: (h) => {
      const connId = conference(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7003' }, calls: A(connId) };
    },
  },
  {
    request: 'DeleteFromConference',
    situation: 'the call has two parties',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }, calls: A(connId) };
    },
    refused: 565,
  },
  {
    request: 'DeleteFromConference',
    situation: 'OtherDN is not an LCTParty alias of the call',
    world: (h) => {
      const connId = conference(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7004' }, calls: A(connId) };
    },
    refused: 53,
  },

  // ListenDisconnect
  { request: 'ListenDisconnect', situation: '7001 disconnects 7002 in conference A (7001, 7002, 7003)', world: (h) => ld(h) },
  { request: 'ListenDisconnect', situation: 'OtherDN is not an LCTParty alias of the call', world: (h) => ld(h, '7004'), refused: 53 },
  { request: 'ListenDisconnect', situation: 'OtherDN is the requester itself', world: (h) => ld(h, '7001'), refused: 53 },
  {
    request: 'ListenDisconnect',
    situation: 'ConnID names no call',
    world: (h) => {
      conference(h);
      return { attrs: { ThisDN: '7001', ConnID: '00000000000000ff', OtherDN: '7002' }, calls: {} };
    },
    refused: 56,
  },
  {
    request: 'ListenDisconnect',
    situation: 'the requester is not a party of the call',
    world: (h) => {
      const connId = conference(h);
      h.register('7004');
      return { attrs: { ThisDN: '7004', ConnID: connId, OtherDN: '7002' }, calls: A(connId) };
    },
    refused: 56,
  },
  {
    request: 'ListenDisconnect',
    situation: 'OtherDN is already listen-disconnected',
    world: (h) => {
      const w = ld(h);
      h.req('ListenDisconnect', w.attrs);
      return w;
    },
    refused: 43,
  },
  {
    request: 'ListenDisconnect',
    situation: 'a two-party call',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }, calls: A(connId) };
    },
    refused: 565,
  },
  {
    request: 'ListenDisconnect',
    situation: 'it would leave fewer than two active parties (7003 already disconnected)',
    world: (h) => {
      const w = ld(h);
      h.req('ListenDisconnect', { ...w.attrs, OtherDN: '7003' });
      return w;
    },
    refused: 565,
  },
  {
    request: 'ListenDisconnect',
    situation: 'the option sip-enable-call-info-extended is false',
    world: (h) => {
      const w = ld(h);
      h.options['sip-enable-call-info-extended'] = false;
      return w;
    },
    refused: 51,
  },

  // ListenReconnect
  {
    request: 'ListenReconnect',
    situation: 'any party, here 7003, reconnects 7002, whom 7001 disconnected in conference A',
    world: (h) => {
      const w = ld(h);
      h.req('ListenDisconnect', w.attrs);
      return { ...w, attrs: { ...w.attrs, ThisDN: '7003' } };
    },
  },
  { request: 'ListenReconnect', situation: 'OtherDN is not listen-disconnected', world: (h) => ld(h), refused: 43 },
  { request: 'ListenReconnect', situation: 'OtherDN is not an LCTParty alias of the call', world: (h) => ld(h, '7004'), refused: 53 },
  {
    request: 'ListenReconnect',
    situation: 'a two-party call',
    world: (h) => {
      const connId = call(h);
      return { attrs: { ThisDN: '7001', ConnID: connId, OtherDN: '7002' }, calls: A(connId) };
    },
    refused: 565,
  },

  // QueryCall
  {
    request: 'QueryCall',
    situation: '7001 in conference A, 7002 listen-disconnected',
    world: (h) => {
      const w = ld(h);
      h.req('ListenDisconnect', w.attrs);
      return { attrs: { ThisDN: '7001', ConnID: w.calls.A! }, calls: w.calls };
    },
  },
  {
    request: 'QueryCall',
    situation: 'ThisDN is not a party of the call (and the token is no supervisor\'s)',
    world: (h) => {
      const connId = call(h, ['7004']);
      return { attrs: { ThisDN: '7004', ConnID: connId }, calls: A(connId) };
    },
    refused: 56,
  },

  // SendUserEvent
  {
    request: 'SendUserEvent',
    situation: '7001 in call A with 7002 sends a user event to the call',
    world: (h) => {
      const connId = call(h, ['7001', '7002']);
      return { attrs: { ThisDN: '7001', ConnID: connId }, calls: A(connId) };
    },
  },
  {
    request: 'SendUserEvent',
    situation: 'without ConnID: to ThisDN only',
    world: (h) => {
      h.register('7001');
      return { attrs: { ThisDN: '7001' }, calls: {} };
    },
  },
  {
    request: 'SendUserEvent',
    situation: 'ThisDN is not a party of the call named',
    world: (h) => {
      const connId = call(h, ['7004']);
      return { attrs: { ThisDN: '7004', ConnID: connId }, calls: A(connId) };
    },
    refused: 56,
  },
];

/** One event as the reference shows it. */
export interface Row {
  /** The DN whose desktops get it, or `requester` for a reply to the asking client only. */
  to: string;
  event: string;
  ConnID?: string;
  PreviousConnID?: string;
  OtherDN?: string;
  ThirdPartyDN?: string;
  CallState?: string;
  ErrorCode?: number;
  ErrorMessage?: string;
  /** The request's ReferenceID is on it. */
  echoes: boolean;
  /** EventUserEvent (LCTParty) and EventPartyInfo: what they carry. */
  Extensions?: Record<string, string | number | boolean>;
  Parties?: unknown;
}

export interface Recording {
  scenario: Scenario;
  request: Record<string, unknown>;
  /** The events of the request itself, then of each `then` step. */
  steps: { what: string; rows: Row[] }[];
}

/** Runs a scenario on a fresh model; ConnIDs become A, B, ... in the order the reference meets them. */
export function record(scenario: Scenario): Recording {
  const h = new Harness();
  const world = scenario.world(h);
  const names = new Map(Object.entries(world.calls).map(([name, connId]) => [connId, name] as const));
  // A ConnID the request names that no call has (unknown, malformed) is shown as it is.
  const literal = new Set(world.attrs.ConnID !== undefined && !names.has(world.attrs.ConnID) ? [world.attrs.ConnID] : []);
  const name = (connId: string | undefined): string | undefined => {
    if (connId === undefined || literal.has(connId)) return connId;
    if (!names.has(connId)) names.set(connId, String.fromCharCode(65 + names.size));
    return names.get(connId);
  };
  const request = { request: scenario.request, ReferenceID: 0, ...world.attrs };
  const outputs = h.req(scenario.request, world.attrs);
  const ref = h.lastRef();
  request.ReferenceID = ref;
  const rows = (out: ModelOutput[]): Row[] =>
    out.flatMap((o): Row[] => {
      if (o.kind !== 'tlib.event' && o.kind !== 'tlib.reply') return [];
      const e = o.event;
      const row: Row = { to: o.kind === 'tlib.reply' ? 'requester' : o.to, event: e.event, echoes: e.ReferenceID === ref };
      const connId = name(e.ConnID);
      if (connId !== undefined) row.ConnID = connId;
      const previous = name(e.PreviousConnID);
      if (previous !== undefined) row.PreviousConnID = previous;
      if (e.OtherDN !== undefined) row.OtherDN = e.OtherDN;
      if (e.ThirdPartyDN !== undefined) row.ThirdPartyDN = e.ThirdPartyDN;
      if (e.CallState !== undefined) row.CallState = e.CallState;
      if (e.ErrorCode !== undefined) row.ErrorCode = e.ErrorCode;
      if (e.ErrorMessage !== undefined) row.ErrorMessage = e.ErrorMessage.replace(/[0-9a-f]{16}/g, (id) => (literal.has(id) ? id : `<${name(id) ?? id}>`));
      if (e.Extensions !== undefined) row.Extensions = e.Extensions;
      if (e.Parties !== undefined) row.Parties = e.Parties;
      return [row];
    });
  const steps = [{ what: `the request (ReferenceID ${ref})`, rows: rows(outputs) }];
  const call = (wanted: string): string => {
    for (const [connId, shown] of names) if (shown === wanted) return connId;
    throw new Error(`${scenario.request}: no call ${wanted}`);
  };
  for (const then of scenario.then ?? []) steps.push({ what: then.what, rows: rows(then.run(h, call)) });
  const shownConnID = name(world.attrs.ConnID);
  return { scenario, request: shownConnID === undefined || literal.has(shownConnID) ? request : { ...request, ConnID: `<${shownConnID}>` }, steps };
}

/** The EventError code a recording got for its request, if it was refused. */
export function refusal(recording: Recording): number | undefined {
  const first = recording.steps[0]?.rows.find((r) => r.echoes && r.event === 'EventError');
  return first?.ErrorCode;
}

/** The checks every request goes through before its own, each as a failing request of its kind. */
export const commonChecks: { check: string; attrs: (h: Harness) => Record<string, string>; needs: 'ThisDN' | 'ConnID' }[] = [
  { check: 'ThisDN is no DN of the site', needs: 'ThisDN', attrs: () => ({ ThisDN: '7999', ConnID: '00000000000000ff', OtherDN: '7003' }) },
  {
    check: 'ThisDN not registered by this client',
    needs: 'ThisDN',
    attrs: (h) => ({ ThisDN: '7001', ConnID: h.phoneCall('7001', '7002'), OtherDN: '7003' }),
  },
  {
    check: 'ThisDN is a Trunk, not a phone',
    needs: 'ThisDN',
    attrs: (h) => {
      h.register('9000');
      return { ThisDN: '9000', ConnID: h.phoneCall('7001', '7002'), OtherDN: '7003' };
    },
  },
  {
    check: 'ConnID names no call',
    needs: 'ConnID',
    attrs: (h) => {
      h.register('7001');
      return { ThisDN: '7001', ConnID: '00000000000000ff', OtherDN: '7003' };
    },
  },
  {
    check: 'ConnID malformed',
    needs: 'ConnID',
    attrs: (h) => {
      h.register('7001');
      return { ThisDN: '7001', ConnID: 'call-1', OtherDN: '7003' };
    },
  },
  {
    check: 'ThisDN not a party of the call',
    needs: 'ConnID',
    attrs: (h) => {
      h.register('7004');
      return { ThisDN: '7004', ConnID: h.phoneCall('7001', '7002'), OtherDN: '7003' };
    },
  },
];

/** The EventError code the model answers a request of `name` with when `check` fails, or undefined when it answers otherwise. */
export function commonRefusal(name: RequestName, check: (typeof commonChecks)[number], takes: readonly string[]): number | undefined {
  const h = new Harness();
  const all = check.attrs(h);
  const attrs = Object.fromEntries(Object.entries(all).filter(([k]) => takes.includes(k)));
  const out = h.req(name, attrs);
  const error = out.find((o) => o.kind === 'tlib.reply' && o.event.event === 'EventError');
  return error?.kind === 'tlib.reply' ? error.event.ErrorCode : undefined;
}
