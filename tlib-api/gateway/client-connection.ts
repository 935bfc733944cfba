/**
 * One desktop connected to the gateway. Its send queue is the WebSocket's buffered bytes: past
 * `maxQueuedBytes` the client is too slow to keep up and is dropped with a close reason, so a
 * stalled desktop never grows the gateway's memory without bound.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import type { TEvent } from '../../common/tlib/messages.js';
import type { Principal } from './auth.js';

/** Close codes the gateway uses (sent with a human-readable reason). */
export const CloseCodes = {
  stopping: 1001,
  slowClient: 1008,
} as const;

const TERMINATE_AFTER_CLOSE_MS = 5000;

export class ClientConnection {
  readonly id = randomUUID();
  /** DNs this client registered through this gateway. */
  readonly registered = new Set<string>();
  /** Answered a ping since the last heartbeat. */
  alive = true;
  private closing = false;

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
    private readonly maxQueuedBytes: number,
    private readonly onDrop: (client: ClientConnection, reason: string) => void,
  ) {}

  /**
   * Sends one event already encoded as UTF-8 JSON (encoded once for every client that gets it);
   * false when it could not be (client gone or dropped as too slow).
   */
  send(frame: Buffer): boolean {
    if (this.closing || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.ws.bufferedAmount + frame.length > this.maxQueuedBytes) {
      this.close(CloseCodes.slowClient, `slow client: send queue over ${this.maxQueuedBytes} bytes`);
      this.onDrop(this, 'slow client');
      return false;
    }
    // A text frame: desktops read JSON text, never binary.
    this.ws.send(frame, { binary: false });
    return true;
  }

  sendEvent(event: TEvent): boolean {
    return this.send(Buffer.from(JSON.stringify(event)));
  }

  /** Close handshake first so the client learns why; a client that does not read it is cut off. */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), TERMINATE_AFTER_CLOSE_MS).unref();
  }
}
