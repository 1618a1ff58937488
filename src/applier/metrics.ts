// The applier's Prometheus metrics, on a registry of its own. Labels are bounded: an action, a reason, a
// state or a request kind; never names, namespaces or uids.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

export interface ApplierMetrics {
  registry: Registry
  /** HPA writes that reached the apiserver (or would have, in dry-run), by create/update/delete. */
  writes: Counter<'action' | 'dry_run'>
  /** Failed reconciles: api (retried), forbidden (retried, and /readyz fails), rejected, event, internal. */
  errors: Counter<'reason'>
  /** Findings newly made for a NIMService (a drift, a forged annotation, ...), by Event reason. */
  findingsTotal: Counter<'reason'>
  /** NIMServices that have a finding now, by Event reason (HPADrift, HPAMissing, HPAAnnotationForged, ...). */
  findings: Gauge<'reason'>
  /** NIMServices by the state of their last reconcile (in-sync, drift, missing, refused, ...). */
  states: Gauge<'state'>
  /** 403 answers from the apiserver, by request (e.g. "create horizontalpodautoscalers"). */
  forbidden: Counter<'request'>
  /** Kinds of request currently answered 403 (non-zero fails /readyz). */
  forbiddenOpen: Gauge
  queueDepth: Gauge
  /** 1 while this replica holds the Lease (or leader election is off), 0 otherwise. */
  leader: Gauge
  /** 1 once every list/watch (NIMServices, HPAs, and with --webhook-configuration the configuration and namespaces) has synced. */
  watchSynced: Gauge
  watchRestarts: Counter<'what'>
}

export function createApplierMetrics (opts: { defaultMetrics?: boolean } = {}): ApplierMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
    writes: new Counter({ name: 'nim_admission_applier_writes_total', help: 'HPA writes in --mode write, by action (create, update, delete).', labelNames: ['action', 'dry_run'], registers }),
    errors: new Counter({ name: 'nim_admission_applier_errors_total', help: 'Failed reconciles, by reason (api, forbidden, rejected, event, internal).', labelNames: ['reason'], registers }),
    findingsTotal: new Counter({ name: 'nim_admission_applier_findings_total', help: 'Findings newly made for a NIMService, by Event reason (HPADrift, HPAMissing, HPAAnnotationForged, ...).', labelNames: ['reason'], registers }),
    findings: new Gauge({ name: 'nim_admission_applier_findings', help: 'NIMServices with a finding now, by Event reason.', labelNames: ['reason'], registers }),
    states: new Gauge({ name: 'nim_admission_applier_nimservices', help: 'NIMServices by the state of their last reconcile (in-sync, drift, missing, refused, ...).', labelNames: ['state'], registers }),
    forbidden: new Counter({ name: 'nim_admission_applier_forbidden_total', help: 'Requests the apiserver answered 403 Forbidden, by request.', labelNames: ['request'], registers }),
    forbiddenOpen: new Gauge({ name: 'nim_admission_applier_forbidden', help: 'Kinds of request the apiserver answers 403 now; non-zero fails /readyz.', registers }),
    queueDepth: new Gauge({ name: 'nim_admission_applier_queue_depth', help: 'NIMService keys waiting to be reconciled.', registers }),
    leader: new Gauge({ name: 'nim_admission_applier_leader', help: '1 while this replica may act (holds the Lease, or leader election is off).', registers }),
    watchSynced: new Gauge({ name: 'nim_admission_applier_watch_synced', help: '1 once every list/watch has synced.', registers }),
    watchRestarts: new Counter({ name: 'nim_admission_applier_watch_restarts_total', help: 'List/watch restarts after an error, by what is watched.', labelNames: ['what'], registers })
  }
}
