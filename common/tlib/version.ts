/**
 * The version of the T-Library wire protocol (tlib-api/README.md). It changes when a client written
 * against the previous one could break: an attribute renamed, removed or made required, an event
 * sequence reordered. Additions (a new optional attribute, a new request or event) keep it.
 */
export const TlibProtocolVersion = 1;

/** The WebSocket subprotocol that names this version: a client that offers it gets it back, or no connection. */
export const TlibSubprotocol = `huddle.tlib.v${TlibProtocolVersion}`;

/** The response header of the WebSocket handshake that carries the version, for clients that offer no subprotocol. */
export const TlibVersionHeader = 'Huddle-TLib-Protocol';
