/**
 * Every NATS subject, queue group, bucket and key the platform uses. Nothing else in the tree
 * spells a subject: components call these functions.
 *
 * Layout: huddle.<site>.<area>.<kind>[.<token>]
 *   tlib.req.<dn>        T-Library requests about a DN (gateway -> signaling, request/reply)
 *   tlib.evt.<dn>        T-Library events for the desktops registered on a DN (signaling -> gateways)
 *   tlib.gw.<inst>       gateway liveness (gateways -> signaling)
 *   tlib.replica.<id>    a T-Library request handed to the signaling replica that owns its call
 *   media.cmd            media commands that any media-controller may take (queue group)
 *   media.cmd.<inst>     media commands for the media-controller that owns a bridge
 *   media.evt.<kind>     media events (media-controller -> signaling)
 *   media.alive.<inst>   media-controller liveness (media-controller -> signaling, every 500 ms)
 *   cdr.<connId>         a call detail record (signaling -> the site's CDR stream, read through the gateway)
 */

const PREFIX = 'huddle';

/** Subject tokens may not hold '.', '*', '>' or white space: escape anything outside [A-Za-z0-9_-]. */
export function subjectToken(value: string): string {
  if (value.length === 0) throw new Error('empty subject token');
  return value.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function fromSubjectToken(token: string): string {
  return token.replace(/~([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function site(s: string): string {
  return `${PREFIX}.${subjectToken(s)}`;
}

export const QueueGroups = {
  signaling: 'signaling',
  mediaController: 'media-controller',
} as const;

export const Subjects = {
  tlibRequest: (location: string, dn: string) => `${site(location)}.tlib.req.${subjectToken(dn)}`,
  tlibRequestAll: (location: string) => `${site(location)}.tlib.req.*`,
  tlibEvent: (location: string, dn: string) => `${site(location)}.tlib.evt.${subjectToken(dn)}`,
  tlibEventAll: (location: string) => `${site(location)}.tlib.evt.*`,
  /** A gateway says it is alive (and, when it stops, that it is gone): signaling ends the registrations of a silent one. */
  tlibGatewayAlive: (location: string, instance: string) => `${site(location)}.tlib.gw.${subjectToken(instance)}`,
  tlibGatewayAliveAll: (location: string) => `${site(location)}.tlib.gw.*`,
  /** A T-Library request one signaling replica hands to the replica that owns the call (ConnID) it names. */
  tlibReplica: (location: string, replica: string) => `${site(location)}.tlib.replica.${subjectToken(replica)}`,
  tlibReplicaAll: (location: string) => `${site(location)}.tlib.replica.*`,
  /** The DN a tlib request/event subject is about. */
  dnOf: (subject: string) => fromSubjectToken(subject.slice(subject.lastIndexOf('.') + 1)),

  mediaCommand: (location: string) => `${site(location)}.media.cmd`,
  mediaInstanceCommand: (location: string, instance: string) => `${site(location)}.media.cmd.${subjectToken(instance)}`,
  mediaInstanceCommandAll: (location: string) => `${site(location)}.media.cmd.*`,
  mediaEvent: (location: string, kind: MediaEventKind) => `${site(location)}.media.evt.${kind}`,
  mediaEventAll: (location: string) => `${site(location)}.media.evt.*`,
  /** A media-controller says it is alive (and, when it stops, that it is gone): signaling releases the calls of a silent one. */
  mediaAlive: (location: string, instance: string) => `${site(location)}.media.alive.${subjectToken(instance)}`,
  mediaAliveAll: (location: string) => `${site(location)}.media.alive.*`,

  /** A call's detail record, stored in the site's CDR stream (CdrStream). */
  cdr: (location: string, connId: string) => `${site(location)}.cdr.${subjectToken(connId)}`,
  cdrAll: (location: string) => `${site(location)}.cdr.>`,
} as const;

/**
 * The JetStream stream of a site's call detail records (common/nats/cdr-contract.ts): one per
 * site, so that sites sharing a NATS never claim each other's subjects. Retention is
 * spec.cdr.maxAgeHours; a message id of ConnID and end time makes a retried publish count once.
 */
export const CdrStream = {
  name: (location: string) => `huddle-cdr-${subjectToken(location)}`,
  msgId: (connId: string, end: number) => `${connId}.${end}`,
} as const;

export type MediaEventKind = 'leg-failed' | 'music-ended' | 'music-error' | 'rtpengine-lost' | 'rtpengine-back';

/** JetStream KV bucket (name configurable per SipCluster, spec.nats.configBucket) and its keys. */
export const ConfigKeys = {
  defaultBucket: 'huddle-config',
  cluster: (clusterName: string) => `${subjectToken(clusterName)}.cluster`,
  dn: (clusterName: string, number: string) => `${subjectToken(clusterName)}.dn.${subjectToken(number)}`,
  dnPrefix: (clusterName: string) => `${subjectToken(clusterName)}.dn.`,
  allOf: (clusterName: string) => `${subjectToken(clusterName)}.>`,
} as const;

/** JetStream KV bucket where signaling keeps registrar bindings across restarts. */
export const RegistrationKeys = {
  bucket: 'huddle-registrations',
  dn: (clusterName: string, number: string) => `${subjectToken(clusterName)}.${subjectToken(number)}`,
  prefix: (clusterName: string) => `${subjectToken(clusterName)}.`,
} as const;

/** KV keys allow [-/_=.A-Za-z0-9]: anything else in a token is written =XX (hex). */
export function kvToken(value: string): string {
  if (value.length === 0) throw new Error('empty key token');
  return Array.from(new TextEncoder().encode(value), (b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `=${b.toString(16).padStart(2, '0')}`)).join('');
}

export function fromKvToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * JetStream KV bucket where signaling replicas keep the state of the calls they own, so that a
 * restarted replica or another one carries them on (signaling/call-state.ts).
 */
export const CallStateKeys = {
  bucket: 'huddle-calls',
  /** Lease of a signaling replica, renewed every 500 ms. */
  replica: (location: string, replica: string) => `${kvToken(location)}.replica.${kvToken(replica)}`,
  replicaAll: (location: string) => `${kvToken(location)}.replica.*`,
  /** One call group (the calls sharing legs), with its owner replica. */
  group: (location: string, groupId: string) => `${kvToken(location)}.group.${kvToken(groupId)}`,
  groupAll: (location: string) => `${kvToken(location)}.group.*`,
  /** The desktops (gateway clients) registered on a DN. */
  desktop: (location: string, dn: string) => `${kvToken(location)}.desktop.${kvToken(dn)}`,
  desktopAll: (location: string) => `${kvToken(location)}.desktop.*`,
  /** A leg's SIP Call-ID -> its group, for an in-dialog request that reaches a replica not owning it. */
  dialog: (location: string, callId: string) => `${kvToken(location)}.dialog.${kvToken(callId)}`,
  /** The last token of a key, unescaped. */
  idOf: (key: string) => fromKvToken(key.slice(key.lastIndexOf('.') + 1)),
} as const;

/**
 * JetStream KV bucket where each media-controller keeps what another instance needs to adopt a
 * bridge it did not create: per leg the rtpengine instance, call-id and tags, and the phone's SDP.
 */
export const MediaKeys = {
  bucket: 'huddle-media',
  bridge: (location: string, bridgeId: string) => `${kvToken(location)}.bridge.${kvToken(bridgeId)}`,
} as const;
