/**
 * Tracing for every process: W3C trace context is always propagated (so traces cross NATS), and
 * spans are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { NodeSDK } from '@opentelemetry/sdk-node';

let sdk: NodeSDK | undefined;

export async function initTracing(serviceName: string): Promise<() => Promise<void>> {
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    // The SDK is large: loaded only when spans are exported.
    const { NodeSDK } = await import('@opentelemetry/sdk-node');
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
