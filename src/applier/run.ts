// `nim-admission apply` as a function: options checked once against one defaults object, the kubeconfig,
// the controller and the probe/metrics server, and an orderly stop.
import { hostname } from 'node:os'
import { pino, type Logger } from 'pino'
import { ApplierController } from './controller.js'
import { createApplierMetrics, type ApplierMetrics } from './metrics.js'
import { startHealthServer } from './health.js'
import { LEADER_DEFAULTS, validateLeaderTimings } from './leader.js'
import { MODES, type Mode } from './reconcile.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface ApplierOptions {
  /** Kubeconfig file; default: $KUBECONFIG, ~/.kube/config or in-cluster. */
  kubeconfig?: string
  /** verify (default): report drift, never write; write: write HPAs where the NIM operator does not. */
  mode: Mode
  /** Namespaces to watch; empty watches all. */
  namespaces: string[]
  /** Act only where this MutatingWebhookConfiguration's NIMService webhooks select (fail closed until read). */
  webhookConfiguration?: string
  /** verify: how long an HPA may be missing before it is reported; write: how long a new NIMService is left to the operator. */
  graceMs: number
  /** --mode write: print the planned writes, write nothing. */
  dryRun: boolean
  leaderElect: boolean
  leaseName: string
  /** Default: $POD_NAMESPACE, else the kubeconfig context's namespace, else "default". */
  leaseNamespace?: string
  leaseDurationMs: number
  renewDeadlineMs: number
  retryPeriodMs: number
  metricsHost: string
  metricsPort: number
  resyncPeriodMs: number
  workers: number
  logLevel: LogLevel
  /** Lease holder identity; default hostname_pid. */
  identity?: string
}

export const applierDefaults: Readonly<Omit<ApplierOptions, 'kubeconfig' | 'leaseNamespace' | 'identity' | 'webhookConfiguration'>> = Object.freeze({
  mode: 'verify',
  namespaces: [],
  graceMs: 30_000,
  dryRun: false,
  leaderElect: false,
  leaseName: 'nim-admission-applier',
  leaseDurationMs: LEADER_DEFAULTS.leaseDurationMs,
  renewDeadlineMs: LEADER_DEFAULTS.renewDeadlineMs,
  retryPeriodMs: LEADER_DEFAULTS.retryPeriodMs,
  metricsHost: '0.0.0.0',
  metricsPort: 9091,
  resyncPeriodMs: 5 * 60_000,
  workers: 2,
  logLevel: 'info'
})

/** A bad option or kubeconfig: NIMAPPLY_OPTIONS or NIMAPPLY_KUBECONFIG. */
export class ApplierOptionsError extends Error {
  readonly code: 'NIMAPPLY_OPTIONS' | 'NIMAPPLY_KUBECONFIG'
  constructor (message: string, code: 'NIMAPPLY_OPTIONS' | 'NIMAPPLY_KUBECONFIG' = 'NIMAPPLY_OPTIONS') {
    super(message)
    this.name = 'ApplierOptionsError'
    this.code = code
  }
}

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

export function normalizeApplierOptions (partial: Partial<ApplierOptions> = {}): ApplierOptions {
  const o: ApplierOptions = { ...applierDefaults, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) }
  const fail = (msg: string): never => { throw new ApplierOptionsError(`invalid apply options: ${msg}`) }
  if ('takeOver' in partial) fail('--take-over was removed: nim-admission never takes over an HPA someone else manages')
  if (!(MODES as readonly string[]).includes(o.mode)) fail(`--mode must be verify or write, got "${String(o.mode)}"`)
  if (o.webhookConfiguration !== undefined && (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.webhookConfiguration) || o.webhookConfiguration.length > 253)) fail(`--webhook-configuration "${o.webhookConfiguration}" is not a valid object name`)
  if (!Number.isFinite(o.graceMs) || o.graceMs < 0) fail('--grace must be 0 or a positive duration')
  for (const ns of o.namespaces) if (!DNS1123.test(ns) || ns.length > 63) fail(`--namespace "${ns}" is not a valid namespace name`)
  if (!DNS1123.test(o.leaseName) || o.leaseName.length > 253) fail(`--lease-name "${o.leaseName}" is not a valid object name`)
  if (o.leaseNamespace !== undefined && !DNS1123.test(o.leaseNamespace)) fail(`--lease-namespace "${o.leaseNamespace}" is not a valid namespace name`)
  if (!Number.isInteger(o.metricsPort) || o.metricsPort < 0 || o.metricsPort > 65535) fail(`--metrics-port must be an integer in 0..65535, got ${o.metricsPort}`)
  if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 64) fail(`--workers must be an integer in 1..64, got ${o.workers}`)
  if (!Number.isFinite(o.resyncPeriodMs) || o.resyncPeriodMs < 0) fail('--resync-period must be 0 (off) or a positive duration')
  if (!(LOG_LEVELS as readonly string[]).includes(o.logLevel)) fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${o.logLevel}"`)
  if (o.leaderElect) {
    try {
      validateLeaderTimings(o)
    } catch (err) {
      fail((err as Error).message)
    }
  }
  return o
}

export function defaultIdentity (): string {
  return `${hostname()}_${process.pid}`
}

export interface RunningApplier {
  options: ApplierOptions
  controller: ApplierController
  metrics: ApplierMetrics
  logger: Logger
  metricsPort: number
  /** Stops watching and writing; `release` hands the Lease to the next replica at once. */
  stop (opts?: { release?: boolean }): Promise<void>
}

export interface StartExtras {
  logger?: Logger
  /** Dry-run output; default stdout. */
  print?: (line: string) => void
  /** prom-client's process metrics (default on; off when several appliers share a process, in tests). */
  defaultMetrics?: boolean
  /** Passed to the controller, for tests and benchmarks. */
  watchBackoff?: { initialMs: number, maxMs: number }
  pageSize?: number
  minWatchTimeoutSeconds?: number
}

export async function startApplier (partial: Partial<ApplierOptions>, extras: StartExtras = {}): Promise<RunningApplier> {
  const options = normalizeApplierOptions(partial)
  // In dry-run, stdout carries the plan; the log goes to stderr.
  const logger = extras.logger ?? pino({ level: options.logLevel, base: { service: 'nim-admission', component: 'applier' } }, pino.destination(options.dryRun ? 2 : 1))
  const k8s = await import('@kubernetes/client-node')
  const kc = new k8s.KubeConfig()
  try {
    if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig)
    else kc.loadFromDefault()
  } catch (err) {
    throw new ApplierOptionsError(`cannot load kubeconfig ${options.kubeconfig ?? '(default: $KUBECONFIG, ~/.kube/config or in-cluster)'}: ${(err as Error).message}; pass --kubeconfig PATH`, 'NIMAPPLY_KUBECONFIG')
  }
  if (kc.getCurrentCluster() === null) throw new ApplierOptionsError(`kubeconfig ${options.kubeconfig ?? '(default)'} has no current cluster; pass --kubeconfig PATH or set a current-context`, 'NIMAPPLY_KUBECONFIG')
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace
  const leaseNamespace = options.leaseNamespace ?? process.env.POD_NAMESPACE ?? contextNamespace ?? 'default'
  const identity = options.identity ?? defaultIdentity()

  const metrics = createApplierMetrics({ defaultMetrics: extras.defaultMetrics !== false })
  const controller = new ApplierController({
    kubeConfig: kc,
    mode: options.mode,
    namespaces: options.namespaces,
    ...(options.webhookConfiguration !== undefined ? { webhookConfiguration: options.webhookConfiguration } : {}),
    graceMs: options.graceMs,
    dryRun: options.dryRun,
    identity,
    resyncPeriodMs: options.resyncPeriodMs,
    workers: options.workers,
    logger,
    metrics,
    ...(extras.print !== undefined ? { print: extras.print } : {}),
    ...(extras.watchBackoff !== undefined ? { watchBackoff: extras.watchBackoff } : {}),
    ...(extras.pageSize !== undefined ? { pageSize: extras.pageSize } : {}),
    ...(extras.minWatchTimeoutSeconds !== undefined ? { minWatchTimeoutSeconds: extras.minWatchTimeoutSeconds } : {}),
    ...(options.leaderElect
      ? { leaderElection: { leaseName: options.leaseName, leaseNamespace, leaseDurationMs: options.leaseDurationMs, renewDeadlineMs: options.renewDeadlineMs, retryPeriodMs: options.retryPeriodMs } }
      : {})
  })
  const health = await startHealthServer({ host: options.metricsHost, port: options.metricsPort, registry: metrics.registry, notReadyReason: () => controller.notReadyReason() })
  try {
    await controller.start()
  } catch (err) {
    await health.close()
    throw err
  }
  logger.info({
    mode: options.mode,
    namespaces: options.namespaces.length === 0 ? '(all)' : options.namespaces,
    webhookConfiguration: options.webhookConfiguration ?? '(none: every watched namespace)',
    dryRun: options.dryRun,
    leaderElection: options.leaderElect ? { lease: `${leaseNamespace}/${options.leaseName}`, identity } : false,
    metricsPort: health.port
  }, 'applier started')

  let stopping: Promise<void> | undefined
  return {
    options,
    controller,
    metrics,
    logger,
    metricsPort: health.port,
    stop: (opts = {}) => {
      stopping ??= (async () => {
        await controller.stop(opts)
        await health.close()
      })()
      return stopping
    }
  }
}
