/**
 * The SipStack facade: the RFC 3261 layers stacked bottom-up, transport (§18, transport-layer.ts)
 * <- transactions (§17, transaction-layer.ts) <- UA core (§8, user-agent-core.ts) with its
 * dialogs (§12, dialog.ts), and the stack's lifecycle (listen, drain, close).
 */
import { systemClock } from './clock.js';
import { SipMetrics } from './metrics.js';
import { timerConfig } from './timers.js';
import { TransportLayer } from './transport-layer.js';
import type { Endpoint, TransportProtocol } from './transport/transport.js';
import type { SipResponse } from './message.js';
import type { Dialog, DialogState, InviteOptions, ListenAddress, OutgoingInvite, RequestOptions, ServerRequest, SipStack, SipStackOptions, SubscribeOptions } from './types.js';
import { UserAgentCore } from './user-agent-core.js';

export class SipStackImpl implements SipStack {
  private readonly transport: TransportLayer;
  private readonly core: UserAgentCore;

  constructor(opts: SipStackOptions) {
    const metrics = new SipMetrics(opts.registry);
    this.transport = new TransportLayer(opts, metrics, opts.logger);
    this.core = new UserAgentCore(opts, this.transport, opts.clock ?? systemClock, timerConfig(opts.timers), metrics, opts.logger);
  }

  listen(): Promise<void> {
    return this.transport.listen(this.core.transactions);
  }

  get addresses(): readonly ListenAddress[] {
    return this.transport.addresses;
  }

  contact(user?: string, transport?: TransportProtocol): string {
    return this.transport.contact(user, transport);
  }

  onRequest(handler: (req: ServerRequest) => void): void {
    this.core.onRequest(handler);
  }

  onUnknownDialog(handler: (req: ServerRequest) => void): void {
    this.core.onUnknownDialog(handler);
  }

  onFlowClosed(handler: (flow: Endpoint) => void): void {
    this.transport.watchFlows(handler);
  }

  deliver(req: ServerRequest): boolean {
    return this.core.deliver(req);
  }

  relay(req: ServerRequest, to: Endpoint): boolean {
    return this.core.relay(req, to);
  }

  invite(target: string, opts?: InviteOptions): OutgoingInvite {
    return this.core.invite(target, opts);
  }

  request(method: string, target: string, opts?: RequestOptions): Promise<SipResponse> {
    return this.core.request(method, target, opts);
  }

  subscribe(target: string, opts: SubscribeOptions): Promise<{ response: SipResponse; dialog?: Dialog }> {
    return this.core.subscribe(target, opts);
  }

  restoreDialog(state: DialogState): Dialog {
    return this.core.restoreDialog(state);
  }

  async close(drainMs = 2000): Promise<void> {
    this.core.stopAccepting();
    const deadline = Date.now() + drainMs;
    while (this.core.transactions.busy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.core.transactions.terminateAll();
    this.core.terminateDialogs();
    await this.transport.close();
  }
}
