/** Gateway metrics on the registry the component is given. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  clients: Gauge;
  registeredDns: Gauge;
  events: Counter<'result'>;
  requestDuration: Histogram<'request'>;
  requests: Counter<'request' | 'result'>;
}

/** `collect` reads the live sizes at scrape time, so nothing has to keep the gauges in step. */
export function gatewayMetrics(registry: Registry, sizes: { clients: () => number; registeredDns: () => number }): GatewayMetrics {
  return {
    clients: new Gauge({
      name: 'huddle_gateway_clients',
      help: 'WebSocket clients connected to this gateway',
      registers: [registry],
      collect() {
        this.set(sizes.clients());
      },
    }),
    registeredDns: new Gauge({
      name: 'huddle_gateway_registered_dns',
      help: 'Distinct DNs registered by the clients of this gateway',
      registers: [registry],
      collect() {
        this.set(sizes.registeredDns());
      },
    }),
    events: new Counter({
      name: 'huddle_gateway_events_total',
      help: 'T-Library events handed to clients (delivered) or not (dropped: client gone or over its send queue)',
      labelNames: ['result'],
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'huddle_tlib_request_duration_seconds',
      help: 'Time from a client request to the answer through the gateway (NATS round trip to signaling)',
      labelNames: ['request'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'huddle_tlib_requests_total',
      help: 'T-Library requests received by the gateway, by name and result (ok, error, invalid, forbidden, limited, timeout, unavailable)',
      labelNames: ['request', 'result'],
      registers: [registry],
    }),
  };
}
