/**
 * The SIP edge (issue 16 point 3): Kamailio in front of the signaling replicas, as `npm start`
 * runs it and as the operator deploys it. This module only writes its configuration: the
 * kamailio.cfg script and the dispatcher list of replicas.
 *
 * The replicas talk to the edge on a socket of their own (`internal`, reachable by them only), so
 * the edge knows a replica's request by where it arrives, whatever the replica's address.
 *
 * Routing, with no dialog state in the edge (any edge instance can route any message):
 * - a request from a replica goes where its Route / Request-URI says: a phone, a trunk. A
 *   dialog-creating one is Record-Routed with `hr=<replica host:port>` (the replica's Via).
 * - an initial request from outside (INVITE, REGISTER, OPTIONS, SUBSCRIBE, ...) goes to an active
 *   replica chosen by a hash over the Call-ID; an INVITE is Record-Routed with `hr` naming it.
 * - an in-dialog request from outside goes to the replica its Route's `hr` names while that
 *   replica answers the edge's OPTIONS probes; otherwise to the replica a hash over `hr` picks
 *   among the active ones, so every dialog of a dead replica lands on the same survivor.
 * - an initial request a replica does not answer (timeout, 503) is tried on the replica the same
 *   hash over the failed one picks: later in-dialog requests of that call (whose Record-Route
 *   names the failed one) find it there.
 */
import { randomBytes } from 'node:crypto';

/** The dispatcher set of the signaling replicas. */
export const EDGE_REPLICA_SET = 1;

/** What the edge tells a replica of a request's source ("<transport> <ip> <port>"); signaling/sip reads it. */
export const EDGE_SOURCE_HEADER = 'X-Huddle-Source';

/** A new random EdgeConfigInput.sourceToken (for an edge the launcher runs). */
export function newSourceToken(): string {
  return randomBytes(24).toString('base64url');
}

/** The Record-Route parameter naming the replica that handles a dialog. */
export const EDGE_REPLICA_PARAM = 'hr';

export interface EdgeListen {
  /** ws and wss: SIP over WebSocket (RFC 7118), by the websocket module on a tcp or tls socket. */
  transport: 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';
  host: string;
  port: number;
  /** Address phones reach this socket at when it differs (Kubernetes Service, NAT): written in Record-Route and Via. */
  advertise?: string;
}

export interface EdgeReplica {
  /** Name for logs and the list file's attributes (signaling-0, a pod name). */
  name: string;
  host: string;
  port: number;
}

export interface EdgeConfigInput {
  /** The sockets phones and trunks reach. */
  listen: EdgeListen[];
  /**
   * Proves to a replica that EDGE_SOURCE_HEADER was written by the edge: a replica reachable by
   * others than the edge would otherwise take a stranger's word for a trunk's source address.
   */
  sourceToken: string;
  /** The UDP socket the replicas send to and the edge sends to them from. */
  internal: { host: string; port: number; advertise?: string };
  /** Where /metrics (Prometheus), /healthz and /readyz are served, over HTTP on TCP. */
  metrics: { host: string; port: number };
  /** The dispatcher list file kamailio reads (written by `dispatcherList`). */
  dispatcherFile: string;
  /** OPTIONS probe interval; a replica that fails one probe is inactive until it answers 200 again. */
  probeIntervalSeconds: number;
  /** Kamailio modules directory (Debian: /usr/lib/x86_64-linux-gnu/kamailio/modules). */
  modulesDir: string;
  /** Worker processes per UDP socket and for TCP. */
  children?: number;
  /** Certificate for tls and wss listen sockets (needs the tls module: Debian package kamailio-tls-modules). */
  tls?: { certFile: string; keyFile: string; configFile: string };
  /** Per-source request limit (spec.sip.rateLimit), done by the pike module: replicas see only the edge. */
  rateLimit?: { requestsPerWindow: number; windowMs: number; banMs: number; action: 'drop' | 'reject' };
  /** How long a request waits for a replica's (or a probe's) first answer before another replica is tried (ms). */
  replicaTimeoutMs?: number;
}

/** One dispatcher line per replica: `<set> sip:<host>:<port> <flags> <priority> <attrs>`. */
export function dispatcherList(replicas: readonly EdgeReplica[]): string {
  const header = '# signaling replicas behind the SIP edge: set destination flags priority attributes\n';
  return header + replicas.map((r) => `${EDGE_REPLICA_SET} sip:${uriHost(r.host)}:${r.port} 0 0 name=${r.name}\n`).join('');
}

function uriHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** kamailio's TLS module configuration for the tls listen sockets. */
export function tlsConfig(tls: { certFile: string; keyFile: string }): string {
  return ['[server:default]', 'method = TLSv1.2+', 'verify_certificate = no', 'require_certificate = no', `certificate = ${tls.certFile}`, `private_key = ${tls.keyFile}`, '', '[client:default]', 'method = TLSv1.2+', 'verify_certificate = no', ''].join('\n');
}

/** A test of the next hop's transport: Kamailio 5.6 names ws and wss in lower case in $nh(P), the others in upper case. */
function nextHopIs(transport: EdgeListen['transport']): string {
  return transport === 'ws' || transport === 'wss' ? `$nh(P) == "${transport}"` : `$nh(P) == "${transport.toUpperCase()}"`;
}

export function kamailioConfig(input: EdgeConfigInput): string {
  const children = input.children ?? 2;
  // Sockets by name: a host may be an interface (eth0 in a pod), and the script picks sockets by name.
  const socket = (transport: string, host: string, port: number, name: string, advertise?: string) =>
    `listen=${transport}:${host}:${port}${advertise ? ` advertise ${advertise}` : ''} name "${name}"`;
  const firstOf = (transport: EdgeListen['transport']) => input.listen.find((l) => l.transport === transport);
  // A WebSocket listener is a tcp (ws) or tls (wss) socket whose HTTP upgrade the websocket module takes.
  const carrier = (t: EdgeListen['transport']) => (t === 'ws' ? 'tcp' : t === 'wss' ? 'tls' : t);
  const listen = input.listen.map((l) => socket(carrier(l.transport), l.host, l.port, l === firstOf(l.transport) ? `public-${l.transport}` : `public-${l.transport}-${l.port}`, l.advertise));
  const tls = input.listen.some((l) => l.transport === 'tls' || l.transport === 'wss');
  if (tls && !input.tls) throw new Error('SIP edge: a tls or wss listen socket needs a certificate (spec.sip.tls)');
  const wsPorts = input.listen.filter((l) => l.transport === 'ws' || l.transport === 'wss').map((l) => l.port);
  const ports = input.listen.map((l) => `${carrier(l.transport)}:${l.port}`);
  if (new Set(ports).size !== ports.length) throw new Error('SIP edge: two listen sockets of one transport on the same port (a ws listener needs a port of its own, apart from tcp)');
  const rate = input.rateLimit;
  const modules = ['kex', 'corex', 'tm', 'sl', 'rr', 'pv', 'maxfwd', 'textops', 'siputils', 'xlog', 'sanity', 'dispatcher', 'xhttp', 'xhttp_prom', 'path', 'nathelper', ...(rate ? ['pike'] : []), ...(tls ? ['tls'] : []), ...(wsPorts.length > 0 ? ['websocket'] : [])];
  const pikeParams = rate
    ? [
        `modparam("pike", "sampling_time_unit", ${Math.max(1, Math.round(rate.windowMs / 1000))})`,
        `modparam("pike", "reqs_density_per_unit", ${rate.requestsPerWindow})`,
        `modparam("pike", "remove_latency", ${Math.max(1, Math.round(rate.banMs / 1000))})`,
      ].join('\n') + '\n'
    : '';
  const reject = rate?.action === 'reject' ? `    if (!is_method("ACK")) {\n      append_to_reply("Retry-After: ${Math.ceil(rate.banMs / 1000)}\\r\\n");\n      sl_send_reply("503", "Service Unavailable");\n    }\n` : '';
  const pikeCheck = rate ? `  if (!pike_check_req()) {\n${reject}    exit;\n  }\n` : '';
  const timeout = input.replicaTimeoutMs ?? 1000;
  // The next hop's transport ($nh(P), see nextHopIs; UDP when the URI names none).
  const publicSockets = (['tcp', 'tls', 'udp', 'ws', 'wss'] as const)
    .flatMap((transport) => {
      const l = input.listen.find((x) => x.transport === transport);
      return l ? [`  if (${nextHopIs(transport)}) $fsn = "public-${transport}";`] : [];
    })
    .join('\n');
  const wsSockets = (['ws', 'wss'] as const)
    .flatMap((transport) => (input.listen.some((x) => x.transport === transport) ? [`  if (${nextHopIs(transport)}) $fsn = "public-${transport}";`] : []))
    .join('\n');
  if (input.listen.some((l) => l.port === input.internal.port)) throw new Error('SIP edge: the replicas\' socket needs a port of its own');
  return `#!KAMAILIO
# Generated by huddle (common/edge/kamailio-config.ts): the SIP edge in front of the signaling replicas.
debug=2
log_stderror=yes
log_facility=LOG_LOCAL0
children=${children}
tcp_children=${children}
auto_aliases=no
${listen.join('\n')}
${socket('udp', input.internal.host, input.internal.port, 'replicas', input.internal.advertise)}
listen=tcp:${input.metrics.host}:${input.metrics.port}
tcp_accept_no_cl=yes
enable_tls=${tls ? 'yes' : 'no'}
server_header="Server: huddle-sip-edge"
user_agent_header="User-Agent: huddle-sip-edge"
mpath="${input.modulesDir}"
${modules.map((m) => `loadmodule "${m}.so"`).join('\n')}
${tls ? `modparam("tls", "config", "${input.tls!.configFile}")\n` : ''}${
    wsPorts.length > 0
      ? '# RFC 7118: only clients offering the "sip" subprotocol; a browser that stops answering pings is closed.\nmodparam("websocket", "sub_protocols", 1)\nmodparam("websocket", "keepalive_mechanism", 1)\nmodparam("websocket", "keepalive_timeout", 30)\n'
      : ''
  }
# Replicas are near and answer at once: a second of silence means dead (the probes time out alike).
modparam("tm", "fr_timer", ${timeout})
modparam("tm", "fr_inv_timer", 120000)
modparam("rr", "enable_full_lr", 1)
modparam("rr", "append_fromtag", 0)
modparam("dispatcher", "list_file", "${input.dispatcherFile}")
modparam("dispatcher", "flags", 2)
modparam("dispatcher", "ds_default_sockname", "replicas")
modparam("dispatcher", "hash_pvar", "$avp(replica)")
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:edge@huddle.invalid")
modparam("dispatcher", "ds_ping_interval", ${input.probeIntervalSeconds})
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("xhttp_prom", "xhttp_prom_stats", "all")
# A request to a registered phone carries the Path the edge added to its REGISTER (RFC 3327): its
# received parameter is where the phone's REGISTER came from, over the connection it opened.
modparam("path", "use_received", 1)
${pikeParams}
request_route {
  if (!mf_process_maxfwd_header("10")) {
    sl_send_reply("483", "Too Many Hops");
    exit;
  }
  if (!sanity_check()) exit;
  if (is_method("CANCEL")) {
    if (t_check_trans()) t_relay();
    exit;
  }
  if (is_method("ACK") && !has_totag()) {
    # The ACK of a non-2xx final answer ends its transaction here.
    t_check_trans();
    exit;
  }
  if ($Rp == ${input.internal.port}) route(FROM_REPLICA);
${pikeCheck}  # Where it came from, for the replica (trunks are known by their address); never the sender's say.
  remove_hf("${EDGE_SOURCE_HEADER}");
  append_hf("${EDGE_SOURCE_HEADER}: $pr $si $sp ${input.sourceToken}\\r\\n");
  # A phone behind NAT (or any TCP/TLS phone: its connection is not its Contact) is reached where
  # its request came from: a REGISTER gets our Path with that address, other requests an alias in
  # their Contact, which comes back in the Request-URI of the requests towards it.
  if (is_method("REGISTER")) add_path_received();
  else if (is_present_hf("Contact")) add_contact_alias();
  if (has_totag()) route(IN_DIALOG);
  route(TO_REPLICA);
}

# A replica's request to a phone or trunk: where its Route set or Request-URI says.
route[FROM_REPLICA] {
  # Phones and trunks may be far and slow to answer.
  t_set_fr(120000, 5000);
  route(PUBLIC_SOCKET);
  if (has_totag()) {
    loose_route();
    handle_ruri_alias();
    route(PUBLIC_SOCKET_OF_FLOW);
    route(RELAY);
  }
  # A registered phone's Path: to where its REGISTER came from.
  if (is_present_hf("Route")) loose_route();
  route(PUBLIC_SOCKET_OF_FLOW);
  $avp(replica) = @via[1].host + ":" + @via[1].port;
  if (is_method("INVITE|SUBSCRIBE")) record_route(";${EDGE_REPLICA_PARAM}=$avp(replica)");
  route(RELAY);
}

# A phone's request in a dialog: to the replica the Record-Route parameter names while it is
# active, else to the one the hash over that name picks among the active replicas.
route[IN_DIALOG] {
  if (is_present_hf("Route")) $avp(replica) = $(hdr(Route)[0]{nameaddr.uri}{uri.param,${EDGE_REPLICA_PARAM}});
  if (!is_present_hf("Route") || !loose_route() || $avp(replica) == "") {
    if (is_method("ACK")) exit;
    sl_send_reply("404", "Not here");
    exit;
  }
  if (ds_is_active("${EDGE_REPLICA_SET}", "sip:$avp(replica)")) {
    # Until the probes find it dead (within 2 s) a request to a dead replica times out, and is
    # tried on the survivor that claims its calls.
    $du = "sip:" + $avp(replica);
    t_on_failure("NAMED_REPLICA_FAILED");
    route(RELAY_TO_REPLICA);
  }
  if (!ds_select_dst("${EDGE_REPLICA_SET}", "7")) route(NO_REPLICA);
  t_on_failure("REPLICA_FAILED");
  route(RELAY_TO_REPLICA);
}

# A phone's or trunk's initial request: an active replica by a hash over the Call-ID.
route[TO_REPLICA] {
  if (!ds_select_dst("${EDGE_REPLICA_SET}", "0")) route(NO_REPLICA);
  $avp(replica) = $(du{uri.host}) + ":" + $(du{uri.port});
  if (is_method("INVITE|SUBSCRIBE")) record_route(";${EDGE_REPLICA_PARAM}=$avp(replica)");
  t_on_failure("REPLICA_FAILED");
  route(RELAY_TO_REPLICA);
}

route[NO_REPLICA] {
  if (!is_method("ACK")) {
    append_to_reply("Retry-After: 5\\r\\n");
    sl_send_reply("503", "No signaling replica available");
  }
  exit;
}

route[RELAY] {
  if (!t_relay()) {
    # A browser is reached only over the WebSocket it opened (RFC 7118): gone, it is unavailable.
    if (${nextHopIs('ws')} || ${nextHopIs('wss')}) sl_send_reply("480", "WebSocket connection closed");
    else sl_reply_error();
  }
  exit;
}

# A browser's WebSocket, named by the Path or Contact alias just followed: the Via names the ws socket.
route[PUBLIC_SOCKET_OF_FLOW] {
${wsSockets || '  return;'}
}

# Out of a socket phones and trunks reach, so that the edge Record-Routes twice (one entry per side).
route[PUBLIC_SOCKET] {
${publicSockets}
}

# From the internal socket: the replica's Record-Route entry (the edge puts one per socket) names
# it, so the replica's own requests in the dialog arrive there too.
route[RELAY_TO_REPLICA] {
  $avp(tried) = $du;
  $fsn = "replicas";
  route(RELAY);
}

# The chosen replica timed out or refused the request (503: overloaded or stopping): it goes to
# the survivor the hash over the replica its Record-Route names picks, the one its later in-dialog
# requests find too. Only a timeout marks the replica dead until a probe finds it again: a 503 is
# that request's refusal (admission control), and marking on it would leave a loaded site's last
# replica out of the set, its in-dialog requests answered "No signaling replica available".
failure_route[REPLICA_FAILED] {
  if (t_is_canceled()) exit;
  if (!t_check_status("408|503") && !t_branch_timeout()) exit;
  if (t_branch_timeout() || t_check_status("408")) {
    ds_mark_dst("ip");
  } else {
    # Refused: one other replica is asked (flag 1), then the refusal goes back to the caller.
    if (isflagset(1)) exit;
    setflag(1);
  }
  if (!ds_select_dst("${EDGE_REPLICA_SET}", "7")) exit;
  if ($du == $avp(tried) && !ds_next_dst()) exit;
  if ($du == $avp(tried)) exit;
  t_on_failure("REPLICA_FAILED");
  route(RELAY_TO_REPLICA);
}

# The replica an in-dialog request's Record-Route names timed out before the probes marked it
# dead: the request goes to the replica the hash over that name picks, never to the failed one.
failure_route[NAMED_REPLICA_FAILED] {
  if (t_is_canceled()) exit;
  if (!t_check_status("408|503") && !t_branch_timeout()) exit;
  if (!ds_select_dst("${EDGE_REPLICA_SET}", "7")) exit;
  if ($du == "sip:" + $avp(replica) && !ds_next_dst()) exit;
  $fsn = "replicas";
  t_relay();
}

# A phone's answer: its Contact gets the alias of where it came from, as its requests' do.
onreply_route {
  if ($Rp != ${input.internal.port} && is_present_hf("Contact")) add_contact_alias();
}

event_route[xhttp:request] {
${
  wsPorts.length > 0
    ? `  # The WebSocket listeners: the upgrade to SIP over WebSocket, nothing else.
  if (${wsPorts.map((p) => `$Rp == ${p}`).join(' || ')}) {
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {
      if (ws_handle_handshake()) exit;
    }
    xhttp_reply("426", "Upgrade Required", "text/plain", "SIP over WebSocket only\\n");
    exit;
  }
`
    : ''
}  if ($Rp != ${input.metrics.port}) {
    xhttp_reply("403", "Forbidden", "text/plain", "SIP port\\n");
    exit;
  }
  if ($hu =~ "^/metrics") {
    prom_dispatch();
    exit;
  }
  if ($hu =~ "^/healthz") {
    xhttp_reply("200", "OK", "text/plain", "ok\\n");
    exit;
  }
  if ($hu =~ "^/readyz") {
    if (ds_list_exists("${EDGE_REPLICA_SET}")) xhttp_reply("200", "OK", "text/plain", "ready\\n");
    else xhttp_reply("503", "Service Unavailable", "text/plain", "no replica list\\n");
    exit;
  }
  xhttp_reply("404", "Not Found", "text/plain", "not found\\n");
}
`;
}
