// Prometheus metrics on their own registry. Labels are bounded: endpoint, operation, a rule or warning
// code, a bad-request reason; never names, namespaces or uids.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../paths.js'

export interface Metrics {
  registry: Registry
  requests: Counter<'endpoint' | 'operation' | 'allowed' | 'dry_run'>
  duration: Histogram<'endpoint'>
  violations: Counter<'rule'>
  warnings: Counter<'code'>
  badRequests: Counter<'reason'>
  internalErrors: Counter<'endpoint'>
  budgetExceeded: Counter<'endpoint' | 'reason'>
  connectionsRefused: Counter<'reason'>
  certExpiry: Gauge<'cert'>
}

export function packageVersion (): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

export function createMetrics (opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  const build = new Gauge({ name: 'nim_admission_build_info', help: 'Build information; always 1.', labelNames: ['version', 'node_version'], registers: [registry] })
  build.set({ version: packageVersion(), node_version: process.version }, 1)
  return {
    registry,
    requests: new Counter({ name: 'nim_admission_requests_total', help: 'Admission reviews answered.', labelNames: ['endpoint', 'operation', 'allowed', 'dry_run'], registers: [registry] }),
    duration: new Histogram({
      name: 'nim_admission_request_duration_seconds',
      help: 'Time to decide an admission review, from body parsed to verdict encoded.',
      labelNames: ['endpoint'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry]
    }),
    violations: new Counter({ name: 'nim_admission_rule_violations_total', help: 'Denial causes, by rule code.', labelNames: ['rule'], registers: [registry] }),
    warnings: new Counter({ name: 'nim_admission_warnings_total', help: 'Warnings returned, by code.', labelNames: ['code'], registers: [registry] }),
    badRequests: new Counter({ name: 'nim_admission_bad_requests_total', help: 'Requests refused before review (4xx), by reason.', labelNames: ['reason'], registers: [registry] }),
    internalErrors: new Counter({ name: 'nim_admission_internal_errors_total', help: 'Reviews denied because checking them failed (a bug); also counted in requests_total as allowed="false".', labelNames: ['endpoint'], registers: [registry] }),
    budgetExceeded: new Counter({
      name: 'nim_admission_budget_exceeded_total',
      help: 'Reviews over their budget: reason="time" or "memory", stopped in a worker and answered by the budget (NIM114, or denied by --budget-failure-policy Fail); reason="inline", judged in the event loop and answered late.',
      labelNames: ['endpoint', 'reason'],
      registers: [registry]
    }),
    connectionsRefused: new Counter({ name: 'nim_admission_connections_refused_total', help: 'Connections closed before any request: reason="per_ip_limit" (too many from one address), "tls_handshake" (no finished TLS handshake in time, or a failed one) or "no_request" (no request within the request timeout of the handshake).', labelNames: ['reason'], registers: [registry] }),
    certExpiry: new Gauge({ name: 'nim_admission_certificate_expiry_seconds', help: 'Seconds until the certificate expires (serving, ca).', labelNames: ['cert'], registers: [registry] })
  }
}
