/**
 * Tracing for every process: W3C trace context is always propagated (so traces cross NATS), and
 * spans are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';

let sdk: NodeSDK | undefined;

export function initTracing(serviceName: string): () => Promise<void> {
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    sdk = new NodeSDK({ serviceName, resourceDetectors: [] });
    sdk.start();
  } else {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  }
  return async () => {
    await sdk?.shutdown();
  };
}
