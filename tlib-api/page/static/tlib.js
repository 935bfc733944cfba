/* global WebSocket, URL, setTimeout, clearTimeout */
/**
 * A small browser client for the T-Library wire protocol (tlib-api/README.md): requests with
 * automatic ReferenceIDs resolved by their answering event, every event to `onEvent`, and
 * reconnection with re-registration of the DNs.
 */
export class TlibError extends Error {
  constructor(code, message, event) {
    super(`T-Library error ${code}: ${message}`);
    this.ErrorCode = code;
    this.ErrorMessage = message;
    this.event = event;
  }
}

export class BrowserTlibClient {
  constructor(url, token, { onEvent = () => {}, onStatus = () => {}, requestTimeoutMs = 10000 } = {}) {
    const target = new URL(url);
    target.searchParams.set('token', token);
    this.url = target.toString();
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.requestTimeoutMs = requestTimeoutMs;
    this.nextReference = 1;
    this.pending = new Map();
    this.dns = new Set();
    this.closed = false;
    this.delay = 250;
  }

  /** Resolves when connected; rejects when the gateway refuses (browsers only say "closed"). */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.ws = ws;
        this.delay = 250;
        this.onStatus('connected');
        resolve();
      };
      ws.onmessage = (msg) => this.onFrame(msg.data);
      ws.onclose = (close) => {
        if (!opened) {
          reject(new Error('the gateway refused the connection (check the token)'));
          return;
        }
        this.ws = undefined;
        for (const [, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(new TlibError(58, 'connection lost'));
        }
        this.pending.clear();
        if (this.closed) return;
        this.onStatus(`connection lost (${close.code}${close.reason ? ` ${close.reason}` : ''}); reconnecting`);
        this.reconnect();
      };
    });
  }

  reconnect() {
    setTimeout(() => {
      this.connect()
        .then(async () => {
          for (const dn of this.dns) await this.request('RegisterAddress', { ThisDN: dn }).catch(() => undefined);
          this.onStatus('reconnected');
        })
        .catch(() => {
          this.delay = Math.min(this.delay * 2, 5000);
          this.reconnect();
        });
    }, this.delay);
  }

  request(name, attributes) {
    if (!this.ws) return Promise.reject(new TlibError(58, 'not connected'));
    const ReferenceID = this.nextReference++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ReferenceID);
        reject(new TlibError(57, `no answer to ${name}`));
      }, this.requestTimeoutMs);
      this.pending.set(ReferenceID, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ request: name, ReferenceID, ...attributes }));
    });
  }

  async register(dn) {
    const answer = await this.request('RegisterAddress', { ThisDN: dn });
    this.dns.add(dn);
    return answer;
  }

  close() {
    this.closed = true;
    this.ws?.close(1000, 'signed out');
  }

  onFrame(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    const pending = this.pending.get(event.ReferenceID);
    if (pending) {
      this.pending.delete(event.ReferenceID);
      clearTimeout(pending.timer);
      if (event.event === 'EventError') pending.reject(new TlibError(event.ErrorCode, event.ErrorMessage, event));
      else pending.resolve(event);
    }
    this.onEvent(event);
  }
}
