import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface OperatorMetrics {
  reconciles: Counter<'result'>;
  errors: Counter<'reason'>;
  queueDepth: Gauge;
  duration: Histogram;
  leader: Gauge;
  informerRestarts: Counter<'resource'>;
  applied: Counter<'kind' | 'action'>;
}

export function operatorMetrics(registry: Registry): OperatorMetrics {
  return {
    reconciles: new Counter({ name: 'huddle_operator_reconciles_total', help: 'Reconciles of a SipCluster by result', labelNames: ['result'], registers: [registry] }),
    errors: new Counter({ name: 'huddle_operator_reconcile_errors_total', help: 'Failed reconciles by reason', labelNames: ['reason'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'huddle_operator_queue_depth', help: 'SipCluster keys waiting in the work queue', registers: [registry] }),
    duration: new Histogram({
      name: 'huddle_operator_reconcile_duration_seconds',
      help: 'Time one reconcile takes',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    leader: new Gauge({ name: 'huddle_operator_leader', help: '1 while this replica holds the leader Lease', registers: [registry] }),
    informerRestarts: new Counter({ name: 'huddle_operator_informer_restarts_total', help: 'Informers restarted after they stopped on an error', labelNames: ['resource'], registers: [registry] }),
    applied: new Counter({ name: 'huddle_operator_objects_applied_total', help: 'Owned objects created, patched or deleted (pruned)', labelNames: ['kind', 'action'], registers: [registry] }),
  };
}
