/**
 * Who may publish and subscribe what on NATS: one NATS user per component role, its subject
 * permissions derived from subjects.ts. The embedded nats-server of `npm start` and the snippet an
 * operator of the platform installs (`npm run nats-config`) both come from here, so the two never
 * disagree.
 *
 * Replies are private per role: each role's connection uses its own inbox prefix (`inboxPrefix`),
 * and may subscribe only under it. Servers (signaling, media-controller) answer requests through
 * `allow_responses`, never by a publish permission on other roles' inboxes.
 */
import { randomBytes } from 'node:crypto';
import { CallStateKeys, CdrStream, ConfigKeys, MediaKeys, RegistrationKeys, Subjects } from './subjects.js';

export const NatsRoles = ['signaling', 'media-controller', 'gateway', 'config-publisher'] as const;
export type NatsRole = (typeof NatsRoles)[number];

export interface SubjectPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  /** Lets the user answer the requests it receives (one reply each) on the requester's inbox. */
  allow_responses?: boolean;
}

/** The site a set of users serves. */
export interface NatsSite {
  location: string;
  configBucket?: string;
}

/** The reply subjects of one role: `_INBOX.<role>.>`. */
export function inboxPrefix(role: NatsRole): string {
  return `_INBOX.${role}`;
}

/** JetStream API subjects to read a KV bucket (get, watch, keys) without creating or writing it. */
function kvRead(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    // Flow-control answers of the watchers' push consumers.
    `$JS.FC.${stream}.>`,
  ];
}

/** Creating a KV bucket (when absent), bringing it to the configured replicas, and writing its keys. */
function kvWrite(bucket: string): string[] {
  return [...kvRead(bucket), `$JS.API.STREAM.CREATE.KV_${bucket}`, `$JS.API.STREAM.UPDATE.KV_${bucket}`, `$KV.${bucket}.>`];
}

/** Creating a stream (when absent) and bringing it to the configured retention and replicas. */
function streamAdmin(stream: string): string[] {
  return ['$JS.API.INFO', `$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.UPDATE.${stream}`];
}

/** Reading a stream through ordered pull consumers (the gateway's /cdr endpoint), without writing it. */
function streamRead(stream: string): string[] {
  return [
    '$JS.API.INFO',
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
  ];
}

/** The permissions of `role` on each of `sites` (one NATS may carry several sites). */
export function permissionsFor(role: NatsRole, ...sites: NatsSite[]): SubjectPermissions {
  const each = sites.map((site) => sitePermissions(role, site));
  const union = (lists: string[][]) => [...new Set(lists.flat())];
  return {
    publish: { allow: union(each.map((p) => p.publish.allow)) },
    subscribe: { allow: union(each.map((p) => p.subscribe.allow)) },
    ...(each.some((p) => p.allow_responses) ? { allow_responses: true } : {}),
  };
}

function sitePermissions(role: NatsRole, site: NatsSite): SubjectPermissions {
  const { location } = site;
  const config = kvRead(site.configBucket ?? ConfigKeys.defaultBucket);
  const inbox = `${inboxPrefix(role)}.>`;
  switch (role) {
    case 'signaling':
      return {
        publish: {
          allow: [
            Subjects.tlibEventAll(location),
            Subjects.tlibReplicaAll(location),
            Subjects.mediaCommand(location),
            Subjects.mediaInstanceCommandAll(location),
            ...config,
            ...kvWrite(RegistrationKeys.bucket),
            ...kvWrite(CallStateKeys.bucket),
            // Call detail records: signaling writes them; only the gateway reads them, for tokens allowed to.
            Subjects.cdrAll(location),
            ...streamAdmin(CdrStream.name(location)),
          ],
        },
        subscribe: { allow: [Subjects.tlibRequestAll(location), Subjects.tlibReplicaAll(location), Subjects.tlibGatewayAliveAll(location), Subjects.mediaEventAll(location), Subjects.mediaAliveAll(location), inbox] },
        allow_responses: true,
      };
    case 'media-controller':
      return {
        publish: { allow: [Subjects.mediaEventAll(location), Subjects.mediaAliveAll(location), ...config, ...kvWrite(MediaKeys.bucket)] },
        subscribe: { allow: [Subjects.mediaCommand(location), Subjects.mediaInstanceCommandAll(location), Subjects.mediaAliveAll(location), inbox] },
        allow_responses: true,
      };
    case 'gateway':
      return {
        publish: { allow: [Subjects.tlibRequestAll(location), Subjects.tlibGatewayAliveAll(location), ...config, ...streamRead(CdrStream.name(location))] },
        subscribe: { allow: [Subjects.tlibEventAll(location), inbox] },
      };
    case 'config-publisher':
      return {
        publish: { allow: kvWrite(site.configBucket ?? ConfigKeys.defaultBucket) },
        subscribe: { allow: [inbox] },
      };
  }
}

export interface NatsUser {
  user: string;
  password: string;
  permissions: SubjectPermissions;
}

/** One user per role, named after it, with a fresh random password (the embedded server's, a test's). */
export function newUsers(...sites: NatsSite[]): NatsUser[] {
  return NatsRoles.map((role) => ({ user: role, password: randomBytes(24).toString('base64url'), permissions: permissionsFor(role, ...sites) }));
}

/**
 * An `authorization { users: [...] }` block for nats-server's configuration file (JSON is valid
 * there). Passwords given as bcrypt hashes (`$2a$...`) are written as they are.
 */
export function authorizationBlock(users: NatsUser[]): string {
  return `authorization ${JSON.stringify({ users: users.map((u) => ({ user: u.user, password: u.password, permissions: u.permissions })) }, null, 2)}\n`;
}
