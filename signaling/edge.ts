/**
 * A signaling replica behind the SIP edge (issue 16 point 3; common/edge/kamailio-config.ts): it
 * listens on its own address, names the edge in its Contact, sends requests that have no route
 * through the edge, and refuses new work while it stops so that the edge sends it elsewhere.
 *
 * The launcher (`npm start` with spec.sip.replicas > 1) and the operator set, per replica:
 *   HUDDLE_SIP_LISTEN        its own sockets, e.g. "udp:127.0.0.1:15061,tcp:127.0.0.1:15061"
 *   HUDDLE_SIP_EDGE          the edge's socket for the replicas, host:port (UDP)
 *   HUDDLE_SIP_EDGE_CONTACT  the edge as phones reach it, host:port (default HUDDLE_SIP_EDGE)
 *   HUDDLE_SIP_EDGE_TOKEN    the edge's source token: only a request carrying it is believed about
 *                            where it came from (X-Huddle-Source)
 *   HUDDLE_SIP_REPLICA_HOST  the name the edge's replica list gives this replica, written in Via
 *                            (default: the listen host): the edge names the replica of a dialog it
 *                            started by that
 */
import type { ListenAddress, ServerRequest, SipStack, SipStackOptions } from './sip/index.js';

export interface EdgeEnv {
  HUDDLE_SIP_LISTEN?: string;
  HUDDLE_SIP_EDGE?: string;
  HUDDLE_SIP_EDGE_CONTACT?: string;
  HUDDLE_SIP_EDGE_TOKEN?: string;
  HUDDLE_SIP_REPLICA_HOST?: string;
}

export type EdgePlacement = Required<Pick<SipStackOptions, 'listen' | 'contactAddress' | 'outboundProxy' | 'edgeSourceToken'>> & Pick<SipStackOptions, 'advertisedHost'>;

/** The stack options of a replica behind the edge, or undefined when signaling faces phones itself. */
export function edgePlacement(env: EdgeEnv): EdgePlacement | undefined {
  if (!env.HUDDLE_SIP_EDGE) return undefined;
  if (!env.HUDDLE_SIP_LISTEN) throw new Error('HUDDLE_SIP_EDGE is set: HUDDLE_SIP_LISTEN must name this replica\'s own sockets');
  if (!env.HUDDLE_SIP_EDGE_TOKEN) throw new Error('HUDDLE_SIP_EDGE is set: HUDDLE_SIP_EDGE_TOKEN must give the edge\'s source token');
  const edge = hostPort(env.HUDDLE_SIP_EDGE, 'HUDDLE_SIP_EDGE');
  return {
    listen: env.HUDDLE_SIP_LISTEN.split(',').map((s) => listenAddress(s.trim())),
    contactAddress: env.HUDDLE_SIP_EDGE_CONTACT ? hostPort(env.HUDDLE_SIP_EDGE_CONTACT, 'HUDDLE_SIP_EDGE_CONTACT') : edge,
    outboundProxy: { protocol: 'udp', ...edge },
    edgeSourceToken: env.HUDDLE_SIP_EDGE_TOKEN,
    ...(env.HUDDLE_SIP_REPLICA_HOST ? { advertisedHost: env.HUDDLE_SIP_REPLICA_HOST } : {}),
  };
}

/** "udp:127.0.0.1:15061" */
export function listenAddress(text: string): ListenAddress {
  const m = /^(udp|tcp|tls):(.+):(\d{1,5})$/.exec(text);
  if (!m) throw new Error(`HUDDLE_SIP_LISTEN: "${text}" is not transport:host:port (udp, tcp or tls)`);
  return { transport: m[1] as ListenAddress['transport'], host: m[2]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[3]) };
}

function hostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`${what}: "${text}" is not host:port`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}

/**
 * While the replica stops, the edge's OPTIONS probe and new calls get 503: the edge marks the
 * replica inactive and tries the INVITE on another one. In-dialog requests are not seen here.
 */
export function refusedWhileStopping(req: ServerRequest): boolean {
  if (req.method !== 'OPTIONS' && req.method !== 'INVITE' && req.method !== 'SUBSCRIBE') return false;
  req.respond(503, { reason: 'Replica stopping', headers: { 'Retry-After': '1' } });
  return true;
}


/** What a replica does with requests once it has started. */
export interface StartedHandlers {
  request: (req: ServerRequest) => void;
  unknownDialog: (req: ServerRequest) => void;
}

/** Requests held while a replica starts; beyond this many, 503 (a flood at start-up stays bounded). */
export const HeldWhileStartingMax = 1000;

/**
 * Until the returned function is called with the replica's handlers (its previous incarnation's
 * calls are back by then), the edge's OPTIONS probe gets 503, so the edge sends it nothing new, and
 * any other request waits for those handlers (an INVITE gets its 100 meanwhile).
 */
export function heldWhileStarting(stack: Pick<SipStack, 'onRequest' | 'onUnknownDialog'>): (handlers: StartedHandlers) => void {
  let started: StartedHandlers | undefined;
  const held: Array<(h: StartedHandlers) => void> = [];
  const hold = (req: ServerRequest, handle: (h: StartedHandlers) => void) => {
    if (req.method === 'OPTIONS' || held.length >= HeldWhileStartingMax) req.respond(503, { reason: 'Replica starting', headers: { 'Retry-After': '1' } });
    else held.push(handle);
  };
  stack.onRequest((req) => (started ? started.request(req) : hold(req, (h) => h.request(req))));
  stack.onUnknownDialog((req) => (started ? started.unknownDialog(req) : hold(req, (h) => h.unknownDialog(req))));
  return (handlers) => {
    started = handlers;
    for (const handle of held.splice(0)) handle(handlers);
  };
}
