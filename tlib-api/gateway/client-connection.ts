/**
 * One desktop connected to the gateway. Its send queue is the WebSocket's buffered bytes: past
 * `maxQueuedBytes` the client is too slow to keep up and is dropped with a close reason, so a
 * stalled desktop never grows the gateway's memory without bound. What it may ask is bounded too:
 * a token bucket on its request rate and a cap on its requests in flight; a request over either is
 * refused at once (EventError 1429), never queued, so one client cannot fill the gateway's memory
 * nor signaling's queue ahead of the others.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import type { TEvent } from '../../common/tlib/messages.js';
import type { Principal } from './auth.js';

/** Close codes the gateway uses (sent with a human-readable reason). */
export const CloseCodes = {
  stopping: 1001,
  slowClient: 1008,
  tooManyRequests: 1008,
} as const;

const TERMINATE_AFTER_CLOSE_MS = 5000;

/** spec.gateway.clientLimits, but the frame size (the WebSocket server enforces it). */
export interface ClientLimits {
  maxInFlight: number;
  requestsPerSecond: number;
  burst: number;
}

export class ClientConnection {
  readonly id = randomUUID();
  /** DNs this client registered through this gateway. */
  readonly registered = new Set<string>();
  /** Answered a ping since the last heartbeat. */
  alive = true;
  private closing = false;
  private inFlight = 0;
  /** Frames refused for the rate since the last one let through. */
  private refusedInRow = 0;
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
    private readonly maxQueuedBytes: number,
    private readonly limits: ClientLimits,
    private readonly onDrop: (client: ClientConnection, reason: string) => void,
  ) {
    this.tokens = limits.burst;
    this.refilledAt = performance.now();
  }

  /** Closing or closed: what it still sends is not read. */
  get gone(): boolean {
    return this.closing || this.ws.readyState !== WebSocket.OPEN;
  }

  /**
   * Spends a token of the rate for one frame at `now` (ms); why it may not go on, or undefined.
   * A client that sends another `burst` frames after being refused is not slowing down: it is cut
   * off, and its socket no longer read, so a flood costs the gateway a bounded amount of work.
   */
  spend(now: number): string | undefined {
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.refilledAt) * this.limits.requestsPerSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.refusedInRow = 0;
      return undefined;
    }
    if (++this.refusedInRow > this.limits.burst) {
      this.ws.pause();
      this.close(CloseCodes.tooManyRequests, `too many requests: kept sending over ${this.limits.requestsPerSecond} requests/s after EventError 1429`);
      this.onDrop(this, 'too many requests');
    }
    return `Too many requests: over ${this.limits.requestsPerSecond} requests/s (burst ${this.limits.burst}); slow down`;
  }

  /** Takes an in-flight place, held until `requestDone()`; why it may not, or undefined. */
  enter(): string | undefined {
    if (this.inFlight >= this.limits.maxInFlight) return `Too many requests: ${this.limits.maxInFlight} already in flight; wait for their answers`;
    this.inFlight++;
    return undefined;
  }

  requestDone(): void {
    this.inFlight--;
  }

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
