/**
 * The calls of the registered DN as the page shows them, kept from T-Library events: the parties
 * come from EventPartyInfo and from the LCTParty keys of EventUserEvent.
 */
export function partiesFromLCT(ext) {
  const length = Number(ext.LCTPartiesLength);
  if (!Number.isInteger(length) || length < 0) return undefined;
  const parties = [];
  for (let n = 0; n < length; n++) {
    parties.push({
      dn: String(ext[`LCTParty${n}`] ?? '?'),
      location: ext[`LCTParty${n}_location`] === undefined ? '' : String(ext[`LCTParty${n}_location`]),
      disconnected: ext[`LCTParty${n}_state`] === 'ListenDisconnectedHeld',
      muted: ext[`LCTParty${n}_mute`] === 'on',
    });
  }
  return parties;
}

/** Party states of EventPartyInfo that mean listen-disconnected (signaling's QueryCall says ListenDisconnected). */
const LISTEN_DISCONNECTED = 'ListenDisconnectedHeld';

const CALL_STATES = {
  EventDialing: 'Dialing',
  EventRinging: 'Ringing',
  EventEstablished: 'Established',
  EventRetrieved: 'Established',
  EventHeld: 'Held',
};

export class CallBook {
  constructor() {
    this.calls = new Map();
    this.current = undefined;
  }

  call(connID) {
    let call = this.calls.get(connID);
    if (!call) {
      call = { connID, state: 'Unknown', parties: [] };
      this.calls.set(connID, call);
    }
    this.current = connID;
    return call;
  }

  /** Applies one event; returns true when what the page shows changed. */
  apply(event) {
    const connID = event.ConnID;
    if (!connID) return false;
    if (event.event === 'EventReleased') {
      this.calls.delete(connID);
      if (this.current === connID) this.current = [...this.calls.keys()].at(-1);
      return true;
    }
    const call = this.call(connID);
    if (CALL_STATES[event.event]) call.state = CALL_STATES[event.event];
    if (event.event === 'EventPartyInfo' && Array.isArray(event.Parties)) {
      call.state = call.state === 'Unknown' ? 'Established' : call.state;
      call.parties = event.Parties.map((p) => ({ dn: p.DN, location: p.Location ?? '', disconnected: p.State === LISTEN_DISCONNECTED, muted: false }));
    }
    if (event.event === 'EventUserEvent' && event.Extensions) {
      const parties = partiesFromLCT(event.Extensions);
      if (parties) call.parties = parties;
    }
    if ((event.event === 'EventListenDisconnected' || event.event === 'EventListenReconnected') && event.OtherDN) {
      const party = call.parties.find((p) => p.dn === event.OtherDN);
      if (party) party.disconnected = event.event === 'EventListenDisconnected';
    }
    if (event.event === 'EventPartyDeleted' && event.OtherDN) call.parties = call.parties.filter((p) => p.dn !== event.OtherDN);
    if (event.event === 'EventPartyAdded' && event.OtherDN && !call.parties.some((p) => p.dn === event.OtherDN)) {
      call.parties.push({ dn: event.OtherDN, location: '', disconnected: false, muted: false });
    }
    return true;
  }

  get currentCall() {
    return this.current === undefined ? undefined : this.calls.get(this.current);
  }
}
