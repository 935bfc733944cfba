/** How `tlib` prints events: one line per event for people, or the JSON frame for scripts. */
import type { CallDetailRecord } from '../../common/nats/cdr-contract.js';
import type { TEvent } from '../../common/tlib/messages.js';

const HEAD = ['ThisDN', 'OtherDN', 'ThirdPartyDN', 'ConnID', 'PreviousConnID', 'OriginConnID', 'CallState', 'ThisDNRole', 'OtherDNRole', 'ThirdPartyDNRole', 'CallType', 'ReferenceID'] as const;

export function formatEvent(event: TEvent, json: boolean, now = new Date()): string {
  if (json) return JSON.stringify(event);
  const time = now.toISOString().slice(11, 23);
  const parts = [time, event.event];
  if (event.event === 'EventError') parts.push(`${event.ErrorCode ?? '?'} ${event.ErrorMessage ?? ''}`.trim());
  for (const key of HEAD) if (event[key] !== undefined) parts.push(`${key}=${event[key]}`);
  const lines = [parts.join(' ')];
  const ext = { ...(event.Extensions ?? {}) };
  const parties = lctParties(ext);
  if (parties) {
    lines.push(`  parties: ${parties.join(', ')}`);
    for (const key of Object.keys(ext)) if (key.startsWith('LCTPart')) delete ext[key];
  }
  if (Object.keys(ext).length > 0) lines.push(`  Extensions: ${keyValues(ext)}`);
  if (event.UserData && Object.keys(event.UserData).length > 0) lines.push(`  UserData: ${keyValues(event.UserData)}`);
  for (const p of event.Parties ?? []) lines.push(`  party ${p.DN}@${p.Location} ${p.Role} ${p.State}`);
  return lines.join('\n');
}

/** "7001@SiteA, 7003@SiteA (listen-disconnected)" from the LCTParty keys, if the event has them. */
export function lctParties(ext: Record<string, string | number | boolean>): string[] | undefined {
  const length = Number(ext.LCTPartiesLength);
  if (!Number.isInteger(length) || length < 0) return undefined;
  const parties: string[] = [];
  for (let n = 0; n < length; n++) {
    const flags: string[] = [];
    if (ext[`LCTParty${n}_state`] === 'ListenDisconnectedHeld') flags.push('listen-disconnected');
    else if (ext[`LCTParty${n}_state`] !== undefined) flags.push(String(ext[`LCTParty${n}_state`]));
    if (ext[`LCTParty${n}_mute`] === 'on') flags.push('muted');
    const location = ext[`LCTParty${n}_location`];
    parties.push(`${String(ext[`LCTParty${n}`] ?? '?')}${location !== undefined ? `@${String(location)}` : ''}${flags.length ? ` (${flags.join(', ')})` : ''}`);
  }
  return parties;
}

function keyValues(kv: Record<string, string | number | boolean>): string {
  return Object.entries(kv)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/**
 * A CDR for people: its ConnID, times and cause on the first line, then one line per party stay
 * and per listen-disconnect interval, times as UTC clock times (HH:MM:SS.mmm); or its JSON.
 */
export function formatCdr(record: CallDetailRecord, json: boolean): string {
  if (json) return JSON.stringify(record);
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);
  const head = [new Date(record.start).toISOString(), record.connId, record.type, `${((record.end - record.start) / 1000).toFixed(1)}s`];
  head.push(`answered=${record.answer === undefined ? 'no' : clock(record.answer)}`, `ended=${clock(record.end)}`);
  const { cause, by, status, nextConnId } = record.release;
  head.push(`release=${cause}${by ? ` by ${by}` : ''}${status ? ` (${status})` : ''}${nextConnId ? ` -> ${nextConnId}` : ''}`);
  if (record.previousConnIds.length > 0) head.push(`previous=${record.previousConnIds.join(',')}`);
  head.push(`site=${record.site}`);
  const lines = [head.join(' ')];
  for (const p of record.parties) {
    const via = p.trunk ? ` via ${p.trunk}` : '';
    lines.push(`  party ${p.alias}@${p.location}${via} ${p.role} ${clock(p.joined)}-${clock(p.left)}${p.connected === undefined ? ' never connected' : ` connected ${clock(p.connected)}`}${p.callId ? ` Call-ID ${p.callId}` : ''}`);
  }
  for (const i of record.listenDisconnects) {
    lines.push(`  listen-disconnect ${i.whom} by ${i.by} ${clock(i.from)}-${clock(i.to)}${i.reconnectedBy ? ` reconnected by ${i.reconnectedBy}` : ''}`);
  }
  return lines.join('\n');
}
