/**
 * Tracing for every process. W3C trace context is always propagated (so traces cross NATS);
 * spans are exported when the standard OpenTelemetry environment asks for it
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, protocol from
 * OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL: http/protobuf, http/json or grpc; sampler from
 * OTEL_TRACES_SAMPLER[_ARG]; batching from OTEL_BSP_*; resource from OTEL_RESOURCE_ATTRIBUTES).
 *
 * Each component reports its own service.name (`<OTEL_SERVICE_NAME or huddle>-<component>`) even
 * where several share one process (npm start): one tracer provider per component, each with its
 * own Resource, behind one global provider that picks the component from the context. A component
 * is known by its NATS connection (`traceAs`); the rpc layer puts it in the context of every span
 * it starts, and the spans started under those inherit it.
 */
import { context, createContextKey, propagation, trace, SpanStatusCode, type Context, type Span, type SpanOptions, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';

/** The components as traces name them: the suffix of their service.name. */
export type TracedComponent = 'gateway' | 'signaling' | 'media-controller' | 'launcher';

const ComponentKey = createContextKey('huddle.component');
const components = new WeakMap<object, TracedComponent>();
let router: ComponentRouter | undefined;
let contextReady = false;

/** True when the environment asks for spans to be exported. */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Sets up propagation, and exporting when requested. `fallback`: the component of spans started
 * outside any component's context. Safe to call more than once in a process (the first wins).
 */
export async function initTracing(fallback: TracedComponent): Promise<() => Promise<void>> {
  if (!contextReady) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    contextReady = true;
  }
  if (router || !tracingRequested()) return async () => undefined;
  // The SDK is large: loaded only when spans are exported.
  const newProvider = await providerFactory();
  const own = new ComponentRouter(fallback, newProvider);
  router = own;
  trace.setGlobalTracerProvider(own);
  return async () => {
    await own.shutdown();
    trace.disable();
    router = undefined;
  };
}

/** Names the component whose spans start from work on `nc` (its own NATS connection). */
export function traceAs(nc: object, component: TracedComponent): void {
  components.set(nc, component);
}

/** `ctx` with the component of `nc`, so spans started in it are that component's (a no-op when not exporting). */
export function componentContext(nc: object, ctx: Context = context.active()): Context {
  if (!router) return ctx;
  const component = components.get(nc);
  return component ? ctx.setValue(ComponentKey, component) : ctx;
}

/**
 * Runs `work` in a span (child of the active one) ended when the work settles; a thrown error
 * marks it failed. `ctx` names the parent context (e.g. a component's, from componentContext).
 */
export function inSpan<T>(tracer: Tracer, name: string, options: SpanOptions, work: (span: Span) => Promise<T>, ctx: Context = context.active()): Promise<T> {
  return tracer.startActiveSpan(name, options, ctx, (span) =>
    work(span).then(
      (result) => {
        span.end();
        return result;
      },
      (err: unknown) => {
        failSpan(span, err as Error);
        span.end();
        throw err;
      },
    ),
  );
}

export function failSpan(span: Span, err: Error): void {
  if (!span.isRecording()) return;
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

type ProviderFactory = (component: TracedComponent) => BasicTracerProvider;

async function providerFactory(): Promise<ProviderFactory> {
  const [{ BasicTracerProvider, BatchSpanProcessor }, { detectResources, envDetector, resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  const env = process.env;
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf';
  const { OTLPTraceExporter } =
    protocol === 'grpc'
      ? await import('@opentelemetry/exporter-trace-otlp-grpc')
      : protocol === 'http/json'
        ? await import('@opentelemetry/exporter-trace-otlp-http')
        : await import('@opentelemetry/exporter-trace-otlp-proto');
  // OTEL_RESOURCE_ATTRIBUTES (and OTEL_SERVICE_NAME, overridden below by the component's name).
  const fromEnv = detectResources({ detectors: [envDetector] });
  const prefix = env.OTEL_SERVICE_NAME || 'huddle';
  return (component) =>
    new BasicTracerProvider({
      resource: fromEnv.merge(resourceFromAttributes({ 'service.name': `${prefix}-${component}`, 'service.namespace': env.OTEL_SERVICE_NAMESPACE || 'huddle', 'huddle.component': component })),
      // The exporter reads the endpoint, headers, timeout; the batch processor OTEL_BSP_*; the provider the sampler.
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    });
}

/** The global provider: hands each span to its component's provider. */
class ComponentRouter implements TracerProvider {
  private readonly providers = new Map<TracedComponent, BasicTracerProvider>();

  constructor(
    private readonly fallback: TracedComponent,
    private readonly newProvider: ProviderFactory,
  ) {}

  getTracer(name: string, version?: string): Tracer {
    return new ComponentTracer(this, name, version);
  }

  tracerFor(ctx: Context, name: string, version?: string): Tracer {
    const component = (ctx.getValue(ComponentKey) as TracedComponent | undefined) ?? this.fallback;
    let provider = this.providers.get(component);
    if (!provider) this.providers.set(component, (provider = this.newProvider(component)));
    return provider.getTracer(name, version);
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.shutdown()));
  }
}

class ComponentTracer implements Tracer {
  constructor(
    private readonly router: ComponentRouter,
    private readonly name: string,
    private readonly version: string | undefined,
  ) {}

  startSpan(name: string, options?: SpanOptions, ctx: Context = context.active()): Span {
    return this.router.tracerFor(ctx, this.name, this.version).startSpan(name, options, ctx);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, options: SpanOptions, ctx: Context, fn: F): ReturnType<F>;
  startActiveSpan<F extends (span: Span) => unknown>(name: string, a: SpanOptions | F, b?: Context | F, c?: F): ReturnType<F> {
    const fn = (c ?? (typeof b === 'function' ? b : a)) as F;
    const options = typeof a === 'function' ? {} : a;
    const ctx = typeof b === 'object' ? b : context.active();
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn as (span: Span) => ReturnType<F>, undefined, span);
  }
}
