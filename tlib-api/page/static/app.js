/* global document, location */
/** The agent page: sign in, register a DN, see the current call and its parties, act on them. */
import { BrowserTlibClient } from './tlib.js';
import { CallBook } from './calls.js';

const $ = (id) => document.getElementById(id);
const book = new CallBook();
let client;
let myDN;

function setStatus(text) {
  $('status').textContent = text;
}

function logEvent(event) {
  const item = document.createElement('li');
  const details = ['ThisDN', 'OtherDN', 'ConnID', 'CallState', 'ReferenceID']
    .filter((k) => event[k] !== undefined)
    .map((k) => `${k}=${event[k]}`);
  if (event.event === 'EventError') {
    item.className = 'error';
    details.unshift(`${event.ErrorCode} ${event.ErrorMessage}`);
  }
  item.textContent = `${new Date().toLocaleTimeString()} ${event.event} ${details.join(' ')}`;
  $('events').append(item);
  while ($('events').children.length > 100) $('events').firstElementChild.remove();
  item.scrollIntoView({ block: 'nearest' });
}

function render() {
  const call = book.currentCall;
  $('call-summary').textContent = call ? `Call ${call.connID}: ${call.state}` : 'No call';
  const list = $('parties');
  list.replaceChildren();
  for (const party of call?.parties ?? []) {
    const item = document.createElement('li');
    item.dataset.dn = party.dn;
    if (party.disconnected) item.className = 'disconnected';
    const name = document.createElement('span');
    name.textContent = `${party.dn}${party.location ? ` @ ${party.location}` : ''}${party.dn === myDN ? ' (you)' : ''}`;
    const state = document.createElement('span');
    state.className = 'party-state';
    state.textContent = party.disconnected ? 'Listen-disconnected: hears music, not in the conversation' : party.muted ? 'Muted' : 'In the conversation';
    item.append(name, state);
    if (party.dn !== myDN) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = party.disconnected ? `Reconnect ${party.dn}` : `Listen-disconnect ${party.dn}`;
      button.addEventListener('click', () => act(party.disconnected ? 'ListenReconnect' : 'ListenDisconnect', { OtherDN: party.dn }));
      item.append(button);
    }
    list.append(item);
  }
}

/** Sends a request about the current call; errors show in the status line and the event log. */
async function act(request, attributes = {}, needsCall = true) {
  const call = book.currentCall;
  if (needsCall && !call) {
    setStatus(`${request}: no current call`);
    return;
  }
  try {
    await client.request(request, { ThisDN: myDN, ...(needsCall ? { ConnID: call.connID } : {}), ...attributes });
  } catch (err) {
    setStatus(`${request} failed: ${err.ErrorMessage ?? err.message}`);
  }
}

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  client?.close();
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  client = new BrowserTlibClient(`${scheme}//${location.host}/tlib`, $('token').value, {
    onEvent: (event) => {
      logEvent(event);
      if (book.apply(event)) render();
    },
    onStatus: (text) => setStatus(myDN ? `${myDN}: ${text}` : text),
  });
  try {
    await client.connect();
    setStatus('Signed in; register your DN');
    $('register-form').hidden = false;
    $('dn').focus();
  } catch (err) {
    setStatus(`Sign-in failed: ${err.message}`);
  }
});

$('register-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const dn = $('dn').value.trim();
  try {
    await client.register(dn);
    myDN = dn;
    setStatus(`Registered ${dn}`);
    $('call-section').hidden = false;
    render();
  } catch (err) {
    setStatus(`Register failed: ${err.ErrorMessage ?? err.message}`);
  }
});

$('makecall-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void act('MakeCall', { OtherDN: $('destination').value.trim() }, false);
});

$('conference-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const kind = e.submitter?.value === 'initiate' ? 'InitiateConference' : 'SingleStepConference';
  void act(kind, { OtherDN: $('party').value.trim() });
});

$('complete').addEventListener('click', () => act('CompleteConference'));
$('release').addEventListener('click', () => act('ReleaseCall'));
