/**
 * The protocol document against behaviour: tlib-api/README.md's request reference must be exactly
 * what the schema and the real call model produce now, and the hand-written answers above it must
 * agree with the same runs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RequestNames } from '../../common/tlib/enums.js';
import { BEGIN, END, generate, passwordShapes } from './reference.js';
import { record, refusal, scenarios, type Recording, type Row } from './scenarios.js';

const README = new URL('../../tlib-api/README.md', import.meta.url);
const recordings = scenarios.map(record);
const ok = (request: string) => recordings.filter((r) => r.scenario.request === request && r.scenario.refused === undefined);
const echoed = (r: Recording): Row[] => r.steps.flatMap((s) => s.rows.filter((row) => row.echoes));

describe('tlib-api/README.md request reference', () => {
  it('is what `npm run docs:protocol` generates from the schema and the call model now', () => {
    const readme = readFileSync(README, 'utf8');
    const begin = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);
    expect(begin, 'markers').toBeGreaterThan(0);
    expect(readme.slice(begin, end + END.length), 'run npm run docs:protocol and commit tlib-api/README.md').toBe(generate());
  });

  it('shows every request carried out at least once, and each refusal with the code the model gives', () => {
    for (const name of RequestNames) expect(ok(name).length, name).toBeGreaterThan(0);
    for (const r of recordings) expect(refusal(r), `${r.scenario.request}: ${r.scenario.situation}`).toBe(r.scenario.refused);
    for (const r of ok('SingleStepConference').concat(ok('AnswerCall'), ok('MakeCall'))) expect(r.steps.length).toBeGreaterThan(1);
  });

  it('backs the answers written above it', () => {
    const codes = (request: string) => [...new Set(recordings.filter((r) => r.scenario.request === request && r.scenario.refused !== undefined).map((r) => r.scenario.refused))].sort();
    expect(codes('ListenDisconnect')).toEqual([43, 51, 53, 56, 565]);
    expect(codes('ListenReconnect')).toEqual([43, 53, 565]);
    // CompleteConference with either ConnID: EventReleased of the consultation call first, then EventRetrieved and EventPartyAdded of the held one.
    const complete = ok('CompleteConference');
    expect(complete.map((r) => r.request.ConnID)).toEqual(['<A>', '<B>']);
    for (const r of complete) expect(echoed(r).map((row) => `${row.event} ${row.ConnID ?? ''}`)).toEqual(['EventReleased B', 'EventRetrieved A', 'EventPartyAdded A']);
    // The leaving rule: the remaining parties get a new ConnID, with the old one as PreviousConnID.
    const leaving = ok('ReleaseCall').find((r) => r.scenario.situation.startsWith('the leaving rule'));
    expect(leaving?.steps[0]?.rows.filter((row) => row.event === 'EventEstablished').map((row) => `${row.ConnID ?? ''}<-${row.PreviousConnID ?? ''}`)).toEqual(['B<-A', 'B<-A']);
    // ThirdPartyDN on EventListen*: the requester; the extended LCTParty keys present.
    const disconnect = ok('ListenDisconnect')[0]!.steps[0]!.rows;
    expect(disconnect.filter((row) => row.event === 'EventListenDisconnected').map((row) => `${row.to} ${row.ThirdPartyDN ?? ''} ${row.CallState ?? ''}`)).toEqual(['7001 7001 Held', '7002 7001 Held', '7003 7001 Held']);
    const lct = disconnect.find((row) => row.Extensions?.LCTParty1_disconnectedBy !== undefined)?.Extensions;
    expect(lct).toMatchObject({ LCTParty1_state: 'ListenDisconnectedHeld', LCTParty1_disconnectedBy: '7001', LCTParty1_role: 'ConferenceMember', LCTParty1_type: 'Extension' });
    // InitiateConference and RegisterAddress answer with more than one event echoing the ReferenceID.
    expect(echoed(ok('InitiateConference')[0]!).map((row) => row.event)).toEqual(['EventHeld', 'EventDialing']);
    expect(echoed(ok('RegisterAddress')[1]!).map((row) => row.event)).toEqual(['EventRegistered', 'EventPartyInfo', 'EventUserEvent']);
    // A SipDN password is {value} or {secretKeyRef}; a plain string is refused.
    expect(passwordShapes().map((p) => p.problem === undefined)).toEqual([true, true, false]);
  });
});
