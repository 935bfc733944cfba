/**
 * The one source of the platform's configuration: SipCluster and SipDN documents.
 * From these TypeBox schemas come the TypeScript types (Static), runtime validation
 * (common/config/validate.ts) and the CRD YAML in crds/ (crds/generate.ts).
 *
 * Kubernetes structural-schema rules apply here, so that every schema can be a CRD:
 * every node has a `type`, enums are string enums, no `anyOf` of literals.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const API_GROUP = 'sip.huddle.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** A string enumeration as Kubernetes and Ajv both understand it. */
export function StringEnum<const T extends readonly string[]>(values: T, options: { default?: T[number]; description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** CEL rules travel with the schema; Ajv ignores them, the CRD keeps them, validate.ts mirrors them. */
export function withRules<T extends TSchema>(schema: T, rules: { rule: string; message: string; fieldPath?: string }[]): T {
  return { ...schema, 'x-kubernetes-validations': rules };
}

const HostPort = Type.String({
  pattern: '^[^\\s:]+:[0-9]{1,5}$',
  description: 'host:port',
});

/** ws and wss are SIP over WebSocket (RFC 7118) for browsers; wss uses the certificate of sip.tls. */
export const SipTransports = ['udp', 'tcp', 'tls', 'ws', 'wss'] as const;
export type SipTransport = (typeof SipTransports)[number];

export const SipListen = Type.Object(
  {
    transport: StringEnum(SipTransports, { description: 'SIP transport' }),
    host: Type.String({ default: '127.0.0.1', minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5060 }),
  },
  { additionalProperties: false },
);

export const SipTimers = Type.Object(
  {
    t1Ms: Type.Integer({ minimum: 10, maximum: 10000, default: 500, description: 'RFC 3261 T1 (RTT estimate)' }),
    t2Ms: Type.Integer({ minimum: 100, maximum: 60000, default: 4000, description: 'RFC 3261 T2 (max non-INVITE retransmit interval)' }),
    t4Ms: Type.Integer({ minimum: 100, maximum: 60000, default: 5000, description: 'RFC 3261 T4 (max message lifetime)' }),
  },
  { additionalProperties: false, default: {} },
);

export const TServerOptions = Type.Object(
  {
    'sip-enable-call-info': Type.Boolean({ default: false, description: 'Distribute LCTParty (Call Participant Info) EventUserEvents' }),
    'sip-enable-call-info-extended': Type.Boolean({ default: false, description: 'Include extended LCTParty keys; required by ListenDisconnect' }),
    'music-listen-disconnect': Type.String({
      minLength: 1,
      default: 'music/on_hold',
      description: 'Audio file played to a listen-disconnected party, resolved against musicRoot (".wav" added when absent). Takes effect for the next TListenDisconnect.',
    }),
    'default-music': Type.String({ minLength: 1, default: 'music/on_hold', description: 'Music on hold when nothing more specific is configured' }),
  },
  { additionalProperties: false, default: {} },
);
export type TServerOptions = Static<typeof TServerOptions>;

export const AgentToken = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'Who holds the token (for logs)' }),
    token: Type.String({ minLength: 8, description: 'The token, or its verifier sha256:<64 hex> (all the config bucket holds)' }),
    dns: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'DNs the holder may register; "*" for all' }),
    supervisor: Type.Optional(Type.Boolean({ description: 'The holder may query any call of the site (QueryCall), not only calls its DNs are in' })),
    cdr: Type.Optional(Type.Boolean({ description: 'The holder may read the site\'s call detail records (the gateway\'s /cdr endpoint, `tlib cdr`)' })),
  },
  { additionalProperties: false },
);

export const SecretKeyRef = Type.Object(
  { name: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
);

/** An IPv4 or IPv6 CIDR, as a NetworkPolicy ipBlock takes it. */
const Cidr = Type.String({ pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$', description: 'CIDR (10.0.0.0/8, 2001:db8::/32)' });

const AllowedSources = (what: string) =>
  Type.Optional(Type.Array(Cidr, { description: `CIDRs ${what} may come from (besides the site's own pods); unset: anywhere` }));

// ---- TLS and connection limits (issue 15 point 3 and 5) ----------------------------------------

/** Where the operator mounts the TLS Secrets named by spec.sip.tls.secret and spec.gateway.tls.secret. */
export const SIP_TLS_DIR = '/etc/huddle/sip-tls';
export const GATEWAY_TLS_DIR = '/etc/huddle/gateway-tls';

const TlsFiles = (what: string, dir: string) => ({
  secret: Type.Optional(Type.String({ minLength: 1, description: `TLS Secret (tls.crt, tls.key; a cert-manager Certificate's secretName) the operator mounts at ${dir} for ${what}` })),
  certFile: Type.Optional(Type.String({ minLength: 1, description: `PEM certificate chain file; default ${dir}/tls.crt. Read again when it changes` })),
  keyFile: Type.Optional(Type.String({ minLength: 1, description: `PEM key file; default ${dir}/tls.key` })),
});

export const SipTls = Type.Object(
  {
    ...TlsFiles('signaling', SIP_TLS_DIR),
    caFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM CAs trusted for TLS connections signaling opens (trunks), besides the system CAs' })),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5061, description: 'TLS listen port added when sip.listen has no tls entry' }),
  },
  { additionalProperties: false, description: 'SIP over TLS: with it, signaling listens for TLS too' },
);
export type SipTls = Static<typeof SipTls>;

export const GatewayTls = Type.Object(TlsFiles('the gateway', GATEWAY_TLS_DIR), {
  additionalProperties: false,
  description: 'The gateway serves https and wss only (T-Library clients connect with wss://)',
});
export type GatewayTls = Static<typeof GatewayTls>;

export const SipConnectionLimits = Type.Object(
  {
    max: Type.Integer({ minimum: 1, default: 10000, description: 'Accepted TCP/TLS/WebSocket connections open at once, per transport' }),
    maxPerSource: Type.Integer({ minimum: 1, default: 500, description: 'Accepted TCP/TLS/WebSocket connections open at once from one address, per transport' }),
    headTimeoutSeconds: Type.Number({
      exclusiveMinimum: 0,
      maximum: 60,
      default: 5,
      description: 'A TLS handshake (and WebSocket upgrade), and each message from its first byte, must complete within this time, else the connection is closed',
    }),
  },
  { additionalProperties: false, default: {} },
);

/** Certificate and key files: the ones named, else the mounted Secret's. */
export function tlsFiles(tls: { certFile?: string; keyFile?: string }, dir: string): { certFile: string; keyFile: string } {
  return { certFile: tls.certFile ?? `${dir}/tls.crt`, keyFile: tls.keyFile ?? `${dir}/tls.key` };
}

/** spec.sip.listen, plus TLS on spec.sip.tls.port (the first listen host) when a certificate is given and no tls entry is listed. */
export function sipListenAddresses(sip: { listen: Static<typeof SipListen>[]; tls?: SipTls | undefined }): Static<typeof SipListen>[] {
  if (!sip.tls || sip.listen.some((l) => l.transport === 'tls')) return sip.listen;
  return [...sip.listen, { transport: 'tls', host: sip.listen[0]!.host, port: sip.tls.port }];
}

// ---- end TLS -----------------------------------------------------------------------------------

// ---- SIP edge (issue 16 point 3) ---------------------------------------------------------------

export const SipEdge = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Run Kamailio in front of the signaling replicas; unset: when sip.replicas > 1' })),
    replicas: Type.Integer({ minimum: 1, default: 2, description: 'Edge pods (stateless and interchangeable)' }),
    image: Type.String({ minLength: 1, default: 'ghcr.io/huddle-sip/kamailio:5.6', description: 'Kamailio image with the dispatcher, rr, tm, xhttp_prom (and tls) modules' }),
    replicaPort: Type.Integer({ minimum: 1, maximum: 65535, default: 5070, description: 'Port the signaling replicas listen on behind the edge' }),
    metricsPort: Type.Integer({ minimum: 1, maximum: 65535, default: 9471, description: "The edge's /metrics, /healthz and /readyz (HTTP)" }),
    probeIntervalSeconds: Type.Integer({ minimum: 1, maximum: 60, default: 1, description: 'OPTIONS probe interval; a replica failing one probe gets no new calls' }),
  },
  { additionalProperties: false, default: {}, description: 'The SIP edge: phones and trunks reach every replica through one address' },
);
export type SipEdge = Static<typeof SipEdge>;

/** Whether the site runs the SIP edge: explicitly, or because it has several signaling replicas. */
export function edgeEnabled(sip: { replicas: number; edge: SipEdge }): boolean {
  return sip.edge.enabled ?? sip.replicas > 1;
}

// ---- end SIP edge ------------------------------------------------------------------------------

// ---- Admission control (issue 17 point 3) ------------------------------------------------------

export const SipAdmission = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Refuse new calls (INVITE 503 with Retry-After, MakeCall EventError 58) while signaling is past its capacity' }),
    maxEventLoopDelayMs: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: 250,
      description: "Refuse while the event loop's delay (99th percentile per 0.5 s) has been above this in each of the last two windows (a single stall does not count)",
    }),
    maxMediaLatencyMs: Type.Integer({ minimum: 1, maximum: 60000, default: 500, description: 'Refuse while media commands take longer than this (recent average, or the oldest one unanswered)' }),
    maxLegsSettingUp: Type.Integer({ minimum: 1, default: 400, description: 'Refuse while this many SIP legs are being set up (INVITEs not yet taken, legs without a confirmed dialog, ringing ones included: a two-party call being set up has two)' }),
    maxQueueDepth: Type.Integer({ minimum: 1, default: 200, description: "Refuse while this many inputs wait in the call model's queue" }),
    maxQueueWaitMs: Type.Integer({
      minimum: 1,
      maximum: 60000,
      default: 1000,
      description: "Refuse while a new input would wait longer than this in the call model's queue (the inputs queued at the recent time per input, or the oldest one's age)",
    }),
    mediaPortsPerLeg: Type.Integer({
      minimum: 0,
      maximum: 16,
      default: 4,
      description: 'rtpengine ports one leg holds (RTP and RTCP on its phone and bridge sides): refuse a call whose two legs would not fit in media.portMin-portMax of every media pod; 0: no port check',
    }),
    retryAfterSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 2, description: 'Retry-After of a refused INVITE' }),
    setUpTimeoutSeconds: Type.Number({
      exclusiveMinimum: 0,
      maximum: 300,
      default: 10,
      description: 'An incoming INVITE neither ringing (180) nor answered this long after it came is answered 503 and its call and media released (also when enabled is false)',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Admission control: overload refuses new calls early; established and ringing calls are never refused' },
);
export type SipAdmission = Static<typeof SipAdmission>;

// ---- end admission control ---------------------------------------------------------------------

const SipClusterFields = Type.Object(
  {
    location: Type.String({ pattern: '^[A-Za-z0-9_-]{1,63}$', description: 'Site (location) name reported in LCTParty<n>_location' }),
    sip: Type.Object(
      {
        listen: Type.Array(SipListen, {
          minItems: 1,
          default: [
            { transport: 'udp', host: '127.0.0.1', port: 5060 },
            { transport: 'tcp', host: '127.0.0.1', port: 5060 },
          ],
        }),
        advertisedHost: Type.Optional(Type.String({ minLength: 1, description: 'Host put in Via/Contact when it differs from the listen host' })),
        udpReceiveBufferBytes: Type.Integer({ minimum: 65536, default: 4194304 }),
        tls: Type.Optional(SipTls),
        connections: SipConnectionLimits,
        timers: SipTimers,
        replicas: Type.Integer({ minimum: 1, default: 1, description: 'Signaling replicas; more than one run behind the SIP edge (sip.edge), each call owned by one of them' }),
        edge: SipEdge,
        admission: SipAdmission,
        service: Type.Object(
          {
            type: StringEnum(['ClusterIP', 'NodePort', 'LoadBalancer'] as const, { default: 'ClusterIP' }),
            port: Type.Integer({ minimum: 1, maximum: 65535, default: 5060 }),
          },
          { additionalProperties: false, default: {} },
        ),
        rateLimit: Type.Object(
          {
            enabled: Type.Boolean({ default: true, description: 'Limit the SIP request rate of each source address (after Kamailio pike)' }),
            requestsPerWindow: Type.Integer({ minimum: 1, default: 200, description: 'Requests one source address may send per window before it is blocked' }),
            windowMs: Type.Integer({ minimum: 100, maximum: 60000, default: 2000, description: 'Sampling window of the rate' }),
            banMs: Type.Integer({ minimum: 1000, maximum: 86400000, default: 60000, description: 'How long a source over the rate stays blocked' }),
            action: StringEnum(['drop', 'reject'] as const, {
              default: 'drop',
              description: 'What a blocked source gets: nothing (drop), or 503 with Retry-After (reject; it can reflect traffic to a spoofed UDP source)',
            }),
            exemptSources: Type.Array(Cidr, { default: [], description: 'Source CIDRs never limited: trunks, SBCs and proxies in front of the site' }),
            tableSize: Type.Integer({ minimum: 64, maximum: 1048576, default: 16384, description: 'Source addresses tracked at once (fixed memory; the oldest are evicted)' }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    options: TServerOptions,
    musicRoot: Type.Optional(
      Type.String({ minLength: 1, description: 'Directory music option values are resolved against; default: the config file directory (local) or /etc/huddle (pods)' }),
    ),
    music: Type.Object(
      {
        configMap: Type.Optional(Type.String({ minLength: 1, description: 'ConfigMap (binaryData) mounted at <musicRoot>/music' })),
        persistentVolumeClaim: Type.Optional(Type.String({ minLength: 1, description: 'PVC mounted at <musicRoot>/music' })),
      },
      { additionalProperties: false, default: {} },
    ),
    nats: Type.Object(
      {
        url: Type.Optional(
          Type.String({
            pattern: '^(nats|tls)://[^,\\s]+(,(nats|tls)://[^,\\s]+)*$',
            description:
              'External NATS (tls:// for TLS); several servers of one NATS cluster comma-separated (nats://a:4222,nats://b:4222): clients connect to any and reconnect to the others. When absent npm start runs an embedded nats-server that requires the credentials it generates',
          }),
        ),
        replicas: Type.Optional(
          Type.Integer({
            enum: [1, 3],
            description: 'JetStream replicas of the site\'s KV buckets (config, registrations, call state); unset: 1. 3 needs a NATS cluster of at least 3 servers and survives the loss of one',
          }),
        ),
        embedded: Type.Optional(
          Type.Object(
            {
              servers: Type.Integer({ enum: [1, 3], default: 1, description: 'npm start without nats.url: nats-servers it runs as one JetStream cluster on loopback (3: a server may die)' }),
            },
            { additionalProperties: false },
          ),
        ),
        credentialsSecret: Type.Optional(Type.String({ minLength: 1, description: 'Secret holding a NATS creds file (key "creds")' })),
        users: Type.Optional(
          Type.Object(
            {
              signaling: Type.String({ minLength: 1 }),
              mediaController: Type.String({ minLength: 1 }),
              gateway: Type.String({ minLength: 1 }),
            },
            { additionalProperties: false, description: 'Per component, a Secret with keys "user" and "password": its own NATS user (npm run nats-config prints the users and their permissions)' },
          ),
        ),
        tls: Type.Optional(
          Type.Object(
            {
              caSecret: Type.Optional(Type.String({ minLength: 1, description: 'Secret whose "ca.crt" signed the NATS server certificate, mounted in every pod' })),
              clientSecret: Type.Optional(Type.String({ minLength: 1, description: 'kubernetes.io/tls Secret ("tls.crt", "tls.key") for NATS servers that ask for a client certificate' })),
              caFile: Type.Optional(Type.String({ minLength: 1, description: 'npm start: CA file that signed the NATS server certificate' })),
              certFile: Type.Optional(Type.String({ minLength: 1, description: 'npm start: client certificate file' })),
              keyFile: Type.Optional(Type.String({ minLength: 1, description: 'npm start: client key file' })),
            },
            { additionalProperties: false },
          ),
        ),
        configBucket: Type.String({ pattern: '^[A-Za-z0-9_-]+$', default: 'huddle-config' }),
      },
      { additionalProperties: false, default: {} },
    ),
    media: Type.Object(
      {
        rtpengine: Type.Array(
          Type.Object({ ng: HostPort }, { additionalProperties: false }),
          { default: [], description: 'rtpengine ng control addresses; empty: npm start runs an embedded rtpengine' },
        ),
        portMin: Type.Integer({ minimum: 1024, maximum: 65535, default: 40000 }),
        portMax: Type.Integer({ minimum: 1024, maximum: 65535, default: 40999 }),
        bridgeHost: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address the conference bridge binds RTP to (faces rtpengine)' }),
        replicas: Type.Integer({ minimum: 1, default: 1, description: 'Media pods (rtpengine + media-controller)' }),
        rtpengineImage: Type.String({ minLength: 1, default: 'ghcr.io/huddle-sip/rtpengine:10.5' }),
        rtpengineThreads: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 256,
            description: 'rtpengine worker threads (--num-threads); unset: one per CPU. 1 relays most where rtpengine shares few cores with other busy processes',
          }),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    gateway: Type.Object(
      {
        listen: Type.String({ pattern: '^[^\\s:]+:[0-9]{1,5}$', default: '127.0.0.1:7000' }),
        replicas: Type.Integer({ minimum: 1, default: 1 }),
        tokens: Type.Array(AgentToken, { default: [] }),
        tls: Type.Optional(GatewayTls),
        tokensSecret: Type.Optional(Type.String({ minLength: 1, description: 'Secret whose key "tokens.yaml" lists more agent tokens (a YAML list of {name, token, dns}), read again when it changes' })),
        jwt: Type.Optional(
          Type.Object(
            {
              hs256Secret: Type.Optional(SecretKeyRef),
              rs256PublicKey: Type.Optional(SecretKeyRef),
              dnsClaim: Type.String({ minLength: 1, default: 'dns' }),
            },
            { additionalProperties: false },
          ),
        ),
        clientLimits: Type.Object(
          {
            maxInFlight: Type.Integer({ minimum: 1, maximum: 10000, default: 16, description: 'Requests of one client being answered at once; more get EventError 1429, never queued' }),
            requestsPerSecond: Type.Integer({ minimum: 1, maximum: 100000, default: 50, description: 'Sustained request rate of one client (token bucket); more get EventError 1429' }),
            burst: Type.Integer({ minimum: 1, maximum: 100000, default: 100, description: 'Requests one client may send at once above its rate (the bucket size)' }),
            maxFrameBytes: Type.Integer({ minimum: 1024, maximum: 16777216, default: 65536, description: 'Largest WebSocket frame accepted from a client; a larger one closes the connection (1009)' }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    cdr: Type.Object(
      {
        maxAgeHours: Type.Integer({
          minimum: 1,
          maximum: 87600,
          default: 720,
          description: 'How long call detail records are kept in the site\'s JetStream stream (huddle-cdr-<location>); a change applies to the stream at once, older records are dropped',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Call detail records: one per ended call (ConnID), read with `tlib cdr` through the gateway by tokens with `cdr: true`' },
    ),
    metrics: Type.Object(
      { listen: Type.String({ pattern: '^[^\\s:]+:[0-9]{1,5}$', default: '127.0.0.1:9464' }) },
      { additionalProperties: false, default: {} },
    ),
    image: Type.String({ minLength: 1, default: 'ghcr.io/huddle-sip/huddle:0.1.0', description: 'Platform image (signaling, media-controller, gateway)' }),
    dataDir: Type.String({ minLength: 1, default: '.data', description: 'State of embedded processes (local runs)' }),
    security: Type.Object(
      {
        requireSecretRefs: Type.Boolean({
          default: false,
          description: 'Refuse secrets written into the resources: inline spec.gateway.tokens (rejected on admission) and SipDN password.value (the operator marks the SipDN not Ready and never publishes it)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    networkPolicy: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'The operator renders an ingress NetworkPolicy per component' }),
        sipFrom: AllowedSources('SIP'),
        rtpFrom: AllowedSources('RTP'),
        tlibFrom: AllowedSources('T-Library clients'),
        monitoringNamespaceLabels: Type.Record(Type.String(), Type.String(), {
          default: { 'kubernetes.io/metadata.name': 'monitoring' },
          description: 'Labels of the namespaces allowed to scrape metrics',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export const SipClusterSpec = withRules(SipClusterFields, [
  {
    // CEL here cannot see SipDNs: their inline passwords are refused by the operator (operator/plan.ts).
    rule: '!self.security.requireSecretRefs || size(self.gateway.tokens) == 0',
    message: 'security.requireSecretRefs: give agent tokens in gateway.tokensSecret, not inline in gateway.tokens',
    fieldPath: '.gateway.tokens',
  },
]);
export type SipClusterSpec = Static<typeof SipClusterSpec>;

export const Condition = Type.Object(
  {
    type: Type.String(),
    status: StringEnum(['True', 'False', 'Unknown'] as const),
    reason: Type.String(),
    message: Type.String(),
    lastTransitionTime: Type.String({ format: 'date-time' }),
    observedGeneration: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type Condition = Static<typeof Condition>;

export const SipClusterStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer()),
    conditions: Type.Optional(Type.Array(Condition)),
    readySignaling: Type.Optional(Type.Integer()),
    readyMedia: Type.Optional(Type.Integer()),
    readyGateways: Type.Optional(Type.Integer()),
    dnCount: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type SipClusterStatus = Static<typeof SipClusterStatus>;

export const DNTypes = ['Extension', 'ACDPosition', 'ACDQueue', 'RoutingPoint', 'Trunk', 'VoIPService'] as const;
export type DNType = (typeof DNTypes)[number];

/** What the config bucket carries instead of a DN's password: H(number:realm:password) per algorithm (RFC 7616 §3.4.2). */
export const DigestVerifier = Type.Object(
  {
    realm: Type.String({ minLength: 1, description: 'The realm hashed in: the SipCluster location' }),
    md5: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false, description: 'Digest HA1 verifiers, written by npm start and the operator in place of password.value' },
);

export const DNOptions = Type.Object(
  {
    'sip-enable-moh': Type.Boolean({ default: true, description: 'Play music to a party reached through this DN; false: silence' }),
    'sip-server-inter-trunk': Type.Boolean({ default: false, description: 'A Trunk that joins two SIP Server sites' }),
    contact: Type.Optional(
      Type.String({ pattern: '^(sips?:)?[^\\s]+$', description: 'Trunk peer (sip:host:port[;transport=tcp]) or a fixed contact for a DN' }),
    ),
    prefix: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9*#+]+$' }), { description: 'Dialled numbers starting with one of these route to this Trunk' })),
    password: Type.Optional(
      Type.Object(
        {
          value: Type.Optional(Type.String({ minLength: 1, description: 'Digest password (local configs only; refused where the SipCluster requires Secret references)' })),
          secretKeyRef: Type.Optional({ ...SecretKeyRef, description: 'Secret key holding the password; the operator mounts the Secret in signaling pods at /etc/huddle/secrets/<name>' }),
          ha1: Type.Optional(DigestVerifier),
        },
        { additionalProperties: false },
      ),
    ),
    'sip-allow-unauthenticated-insecure': Type.Optional(
      Type.Boolean({
        description: 'INSECURE: this Extension/ACDPosition registers and calls without digest credentials (anyone on the network can take its calls); signaling logs a warning naming it',
      }),
    ),
    'sip-digest-algorithms': Type.Optional(
      Type.Array(StringEnum(['MD5', 'SHA-256'] as const), {
        minItems: 1,
        description: 'Digest challenges offered to this DN, in order; unset: MD5 alone (sipp answers only the first challenge, baresip refuses any list naming another algorithm); ["SHA-256", "MD5"] offers both, ["SHA-256"] refuses MD5',
      }),
    ),
    'sip-trunk-sources': Type.Optional(
      Type.Array(Type.String({ pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' }), {
        minItems: 1,
        description: 'A Trunk: the source addresses its requests come from (IP, IP:port or CIDR); only the packet source counts, never Via/From. Unset: the host and port of contact',
      }),
    ),
    'sip-trunk-access': Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Trunks (DN numbers) this DN may call out through; unset: none. Inter-trunks to our other sites are open to every DN',
      }),
    ),
    'music-on-hold': Type.Optional(Type.String({ minLength: 1 })),
    'remote-answer': Type.Boolean({ default: false, description: 'The phone accepts a remote answer (TAnswerCall)' }),
  },
  { additionalProperties: false, default: {} },
);
export type DNOptions = Static<typeof DNOptions>;

export const SipDNSpec = withRules(
  Type.Object(
    {
      cluster: Type.String({ minLength: 1, description: 'Name of the SipCluster this DN belongs to' }),
      number: Type.String({ pattern: '^[0-9A-Za-z_+*#.-]{1,64}$', description: 'The DN (also its LCTParty alias)' }),
      type: StringEnum(DNTypes, { description: 'DN type' }),
      options: DNOptions,
    },
    { additionalProperties: false },
  ),
  [
    { rule: "self.type != 'Trunk' || has(self.options.contact)", message: 'a Trunk needs options.contact (its peer address)', fieldPath: '.options.contact' },
    {
      // Kubernetes CEL reaches object properties as fields only; "-" in a name is escaped as __dash__.
      rule: "self.type == 'Trunk' || !self.options.sip__dash__server__dash__inter__dash__trunk",
      message: 'sip-server-inter-trunk is only valid on a Trunk',
      fieldPath: ".options['sip-server-inter-trunk']",
    },
  ],
);
export type SipDNSpec = Static<typeof SipDNSpec>;

export const SipDNStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer()),
    conditions: Type.Optional(Type.Array(Condition)),
  },
  { additionalProperties: false },
);

const ObjectMeta = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }),
    namespace: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);

export const SipCluster = Type.Object({
  apiVersion: Type.Literal(API_GROUP_VERSION),
  kind: Type.Literal('SipCluster'),
  metadata: ObjectMeta,
  spec: SipClusterSpec,
  status: Type.Optional(SipClusterStatus),
});
export type SipCluster = Static<typeof SipCluster>;

export const SipDN = Type.Object({
  apiVersion: Type.Literal(API_GROUP_VERSION),
  kind: Type.Literal('SipDN'),
  metadata: ObjectMeta,
  spec: SipDNSpec,
  status: Type.Optional(SipDNStatus),
});
export type SipDN = Static<typeof SipDN>;
