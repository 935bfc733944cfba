/**
 * T-Library requests on a site with several signaling replicas. The gateway's request reaches any
 * replica (NATS queue group); one naming a ConnID this replica does not own is handed to the other
 * live replicas on their own subjects (Subjects.tlibReplica), and the owner answers. When none
 * owns it and a replica has gone silent, its calls are being taken over (within 2 s): the request
 * waits for that, then is handled here. Requests without a ConnID are handled where they arrive.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { call, RpcNoResponders, RpcTimeout, serve, type Served } from '../common/nats/rpc.js';
import { Subjects } from '../common/nats/subjects.js';
import { TlibForwardRpc, type TlibOrigin } from '../common/nats/tlib-contract.js';
import { ErrorCodes, errorEvent } from '../common/tlib/errors.js';
import type { TEvent, TRequest } from '../common/tlib/messages.js';
import { NotOwner } from './call-model-shell.js';
import { afterTakeover } from './call-replication.js';

/** How long a replica waits for another's answer (a paused one never answers), and for all its tries. */
const ForwardTimeoutMs = 1000;
const ForwardDeadlineMs = 4000;
/** How long a liveness probe waits: a loaded peer may not answer, its subscription is what counts. */
const ProbeTimeoutMs = 300;

/** How long, and for how many requests at most, an answer is kept for the gateway's later attempts of the same request. */
const AnswerKeptMs = 60_000;
const AnswersKeptMax = 20_000;

export interface TlibRouterOptions {
  nc: NatsConnection;
  location: string;
  replica: string;
  /** Whether this replica owns the call. */
  owns(connId: string): boolean;
  /** The other replicas with a lease, and whether one of them went silent (its calls about to be claimed). */
  peers(): string[];
  takeoverPending(): boolean;
  /** Hands the request to the call model here. */
  handle(request: TRequest, origin: TlibOrigin): Promise<TEvent[]>;
  log: Logger;
}

export class TlibRouter {
  private served: Served | undefined;
  /** Requests by the gateway's id, in arrival order: a later attempt gets the first one's answer. */
  private readonly answers = new Map<string, { events: Promise<TEvent[]>; at: number }>();

  constructor(private readonly o: TlibRouterOptions) {}

  /** Answers the requests other replicas hand us: only for calls we own. */
  start(): void {
    this.served = serve(
      this.o.nc,
      Subjects.tlibReplica(this.o.location, this.o.replica),
      {
        contract: TlibForwardRpc,
        badRequest: (error) => ({ owned: true, events: [errorEvent(ErrorCodes.InvalidAttribute, error.problem)] }),
        onError: (err) => this.o.log.error({ err: err.stack }, 'forwarded T-Library request failed'),
      },
      async ({ request, origin, id }) => {
        const connId = connIdOf(request as TRequest);
        if (connId !== undefined && !this.o.owns(connId)) return { owned: false, events: [] };
        try {
          return { owned: true, events: await this.once(id, () => this.o.handle(request as TRequest, origin)) };
        } catch (err) {
          if (err instanceof NotOwner) return { owned: false, events: [] };
          throw err;
        }
      },
    );
  }

  /** A request from a gateway, answered here or by the replica that owns its call; `id` the gateway's, the same on each attempt. */
  route(request: TRequest, origin: TlibOrigin, id?: string): Promise<TEvent[]> {
    return this.once(id, () => this.routeOnce(request, origin, id));
  }

  /** Runs `job` for the first attempt of request `id`; later attempts get its outcome. */
  private once(id: string | undefined, job: () => Promise<TEvent[]>): Promise<TEvent[]> {
    if (id === undefined) return job();
    const earlier = this.answers.get(id);
    if (earlier) return earlier.events;
    const now = Date.now();
    for (const [oldId, answer] of this.answers) {
      if (now - answer.at < AnswerKeptMs && this.answers.size < AnswersKeptMax) break;
      this.answers.delete(oldId);
    }
    const events = job();
    this.answers.set(id, { events, at: now });
    // A request that failed may be tried again by the gateway: only answers are kept.
    events.catch(() => this.answers.delete(id));
    return events;
  }

  private async routeOnce(request: TRequest, origin: TlibOrigin, id: string | undefined): Promise<TEvent[]> {
    const connId = connIdOf(request);
    if (connId === undefined) return this.o.handle(request, origin);
    if (this.o.owns(connId)) {
      try {
        return await this.o.handle(request, origin);
      } catch (err) {
        // We were away (paused) and another replica took the call meanwhile: it answers.
        if (!(err instanceof NotOwner)) throw err;
      }
    }
    const message = { request, origin, ...(id !== undefined ? { id } : {}) };
    // A loaded peer may answer late: one that said nothing (but is not being taken over) is asked
    // again, so that a call it owns is not reported unknown.
    const deadline = Date.now() + ForwardDeadlineMs;
    let silent: string[] = [];
    for (let peers = this.o.peers(); peers.length > 0 && !this.o.owns(connId); ) {
      const answers = await Promise.all(
        peers.map((peer) =>
          call(this.o.nc, Subjects.tlibReplica(this.o.location, peer), TlibForwardRpc, message, { timeoutMs: ForwardTimeoutMs }).then(
            (answer) => ({ peer, answer }),
            (err: unknown) => ({ peer, answer: err instanceof RpcTimeout ? ('silent' as const) : undefined }),
          ),
        ),
      );
      const owner = answers.find((a) => typeof a.answer === 'object' && a.answer.owned);
      if (owner && typeof owner.answer === 'object') return owner.answer.events as TEvent[];
      silent = answers.filter((a) => a.answer === 'silent').map((a) => a.peer);
      if (Date.now() > deadline || silent.length === 0) break;
      // Only a request with an id is asked again: the peer carries it out once however often asked.
      peers = id === undefined ? [] : silent;
    }
    await afterTakeover(() => this.o.takeoverPending(), () => this.o.owns(connId));
    // A live peer that never answered may own the call: "no such call" would be a guess.
    if (silent.length > 0 && !this.o.owns(connId)) {
      return [errorEvent(ErrorCodes.Timeout, `Timeout: signaling replica ${silent.join(', ')} did not answer in time`, { ReferenceID: request.ReferenceID, ThisDN: request.ThisDN })];
    }
    return this.o.handle(request, origin);
  }

  /**
   * Whether a peer's process still holds its subscription here: NATS answers "no responders" at
   * once for a process that was killed or crashed (its connection closed); one that is loaded or
   * paused still has it. The question is a lookup of a ConnID nobody has.
   */
  async probe(peer: string): Promise<'gone' | 'present'> {
    const request = { request: 'QueryCall', ReferenceID: 0, ThisDN: '', ConnID: 'liveness-probe' } as unknown as TRequest;
    try {
      await call(this.o.nc, Subjects.tlibReplica(this.o.location, peer), TlibForwardRpc, { request, origin: { gateway: 'replica-probe', client: this.o.replica } }, { timeoutMs: ProbeTimeoutMs });
      return 'present';
    } catch (err) {
      return err instanceof RpcNoResponders ? 'gone' : 'present';
    }
  }

  async drain(): Promise<void> {
    await this.served?.drain();
  }
}

function connIdOf(request: TRequest): string | undefined {
  const connId = (request as { ConnID?: unknown }).ConnID;
  return typeof connId === 'string' ? connId : undefined;
}
