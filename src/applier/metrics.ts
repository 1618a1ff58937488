// The applier's Prometheus metrics, on a registry of its own. Labels are bounded: an action, a reason or a
// code; never names, namespaces or uids.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

export interface ApplierMetrics {
  registry: Registry
  /** Server-side applies that reached the apiserver (or would have, in dry-run), by create/update. */
  applies: Counter<'action' | 'dry_run'>
  deletes: Counter<'dry_run'>
  /** Reconciles that found an HPA of that name owned by someone else (or a field-manager conflict). */
  conflicts: Counter<'reason'>
  /** Failed reconciles: api (retried with backoff), malformed (reported, not retried until the object changes). */
  errors: Counter<'reason'>
  /** Reconciles that found nothing to do, because the HPA already carries the rendered sha. */
  unchanged: Counter
  queueDepth: Gauge
  /** 1 while this replica holds the Lease (or leader election is off), 0 otherwise. */
  leader: Gauge
  /** 1 once the NIMService list/watch has synced, 0 while (re)listing. */
  watchSynced: Gauge
  watchRestarts: Counter<'reason'>
}

export function createApplierMetrics (opts: { defaultMetrics?: boolean } = {}): ApplierMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
    applies: new Counter({ name: 'nim_admission_applier_applies_total', help: 'HPA server-side applies, by action (create, update).', labelNames: ['action', 'dry_run'], registers }),
    deletes: new Counter({ name: 'nim_admission_applier_deletes_total', help: 'HPAs deleted because their NIMService no longer renders one.', labelNames: ['dry_run'], registers }),
    conflicts: new Counter({ name: 'nim_admission_applier_conflicts_total', help: 'HPAs left alone because someone else owns them.', labelNames: ['reason'], registers }),
    errors: new Counter({ name: 'nim_admission_applier_errors_total', help: 'Failed reconciles, by reason (api, malformed, event).', labelNames: ['reason'], registers }),
    unchanged: new Counter({ name: 'nim_admission_applier_unchanged_total', help: 'Reconciles skipped because the HPA already carries the rendered sha256.', registers }),
    queueDepth: new Gauge({ name: 'nim_admission_applier_queue_depth', help: 'NIMService keys waiting to be reconciled.', registers }),
    leader: new Gauge({ name: 'nim_admission_applier_leader', help: '1 while this replica may write (holds the Lease, or leader election is off).', registers }),
    watchSynced: new Gauge({ name: 'nim_admission_applier_watch_synced', help: '1 once the NIMService list/watch has synced.', registers }),
    watchRestarts: new Counter({ name: 'nim_admission_applier_watch_restarts_total', help: 'NIMService watch restarts after an error, by reason (error, gone).', labelNames: ['reason'], registers })
  }
}
