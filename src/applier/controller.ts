// The applier's control loop: paginated list/watch caches (reflector.ts) of NIMServices and of HPAs per
// watched scope (all namespaces, or each --namespace), and with --webhook-configuration of that
// MutatingWebhookConfiguration and of Namespaces; a de-duplicating work queue keyed namespace/name; workers
// that decide (reconcile.ts) from the caches alone, with no request per object, and act (apply.ts) only
// while this replica leads.
import type { Logger } from 'pino'
import type { KubeConfig } from '@kubernetes/client-node'
import { obj, str } from '../nimservice/json.js'
import { decide, DRIFT_PENDING, type Decision, type Mode, type State } from './reconcile.js'
import { coverage, webhookScopes, type CoverageSource, type WebhookScope } from './coverage.js'
import { hpaView, namespaceView, nimView, type HpaView, type NamespaceView, type NimView } from './view.js'
import { EventRecorder, ForbiddenTracker, execute, kubeApplierClient, type ApplierKube } from './apply.js'
import { apiMessage, apiStatus, kubeHttp, type KubeHttp } from './http.js'
import { Reflector, kubeSource, type ListWatchSource } from './reflector.js'
import { LeaderElector, kubeLeaseStore, type LeaseStore } from './leader.js'
import type { ApplierMetrics } from './metrics.js'
import { WorkQueue } from './queue.js'

export const NIM_PLURAL = 'nimservices'
export const NIM_VERSION = 'v1alpha1'

export interface LeaderElectionConfig {
  leaseName: string
  leaseNamespace: string
  leaseDurationMs: number
  renewDeadlineMs: number
  retryPeriodMs: number
  /** Tests: a Lease store other than the apiserver's. */
  store?: LeaseStore
}

/** Where each list/watch comes from: the apiserver (default) or a test's fakes. */
export interface Sources {
  nimServices (namespace: string | undefined): ListWatchSource
  hpas (namespace: string | undefined): ListWatchSource
  webhookConfiguration (name: string): ListWatchSource
  namespaces (): ListWatchSource
}

export interface ControllerOptions {
  kubeConfig: KubeConfig
  mode: Mode
  /** Namespaces to watch; empty watches all. */
  namespaces: string[]
  /** Act only where this MutatingWebhookConfiguration's NIMService webhooks select. */
  webhookConfiguration?: string
  dryRun: boolean
  /** verify: how long an autoscaled NIMService may lack its HPA before it is reported; write: how long a new NIMService is left to the operator. */
  graceMs: number
  leaderElection?: LeaderElectionConfig
  /** Lease holder identity and Event reportingInstance. */
  identity: string
  /** Every period, every NIMService is decided again from the caches (default 5 min; 0 disables). */
  resyncPeriodMs?: number
  workers?: number
  /** Backoff before relisting after a list/watch error (default 1 s doubling to 30 s). */
  watchBackoff?: { initialMs: number, maxMs: number }
  /** Backoff of a failing key (default 500 ms doubling to 60 s). */
  retryBackoff?: { initialMs: number, maxMs: number }
  /** List page size (default 500). */
  pageSize?: number
  /** Lower bound of watch timeoutSeconds (default 300). */
  minWatchTimeoutSeconds?: number
  logger: Logger
  metrics: ApplierMetrics
  print?: (line: string) => void
  /** Monotonic clock (default performance.now). */
  monotonic?: () => number
  /** Tests: the API calls, instead of the apiserver's. */
  kube?: ApplierKube
  /** Tests: the lists and watches, instead of the apiserver's. */
  sources?: Sources
}

interface WebhookView { name: string, resourceVersion: string, scopes: WebhookScope[] }

const keyOf = (o: { namespace: string, name: string }): string => `${o.namespace}/${o.name}`

export function kubeSources (http: KubeHttp): Sources {
  const scoped = (group: string, plural: string) => (namespace: string | undefined): ListWatchSource =>
    kubeSource(http, namespace === undefined ? `${group}/${plural}` : `${group}/namespaces/${encodeURIComponent(namespace)}/${plural}`)
  return {
    nimServices: scoped(`/apis/apps.nvidia.com/${NIM_VERSION}`, NIM_PLURAL),
    hpas: scoped('/apis/autoscaling/v2', 'horizontalpodautoscalers'),
    webhookConfiguration: (name) => kubeSource(http, '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { fieldSelector: `metadata.name=${name}` }),
    namespaces: () => kubeSource(http, '/api/v1/namespaces')
  }
}

export class ApplierController {
  private readonly opts: ControllerOptions
  private readonly log: Logger
  private readonly queue: WorkQueue
  private readonly now: () => number
  private readonly nims: Array<{ namespace: string | undefined, r: Reflector<NimView> }> = []
  private readonly hpas: Array<{ namespace: string | undefined, r: Reflector<HpaView> }> = []
  private webhook: Reflector<WebhookView> | undefined
  private namespaceCache: Reflector<NamespaceView> | undefined
  private readonly all: Array<Reflector<unknown>> = []
  /** uid of NIMServices deleted but not yet reconciled, so their HPA can be matched to them. */
  private readonly tombstones = new Map<string, string>()
  private readonly firstSeen = new Map<string, number>()
  private readonly missingSince = new Map<string, number>()
  private readonly driftSince = new Map<string, number>()
  private readonly lastState = new Map<string, { state: State, reasons: string[] }>()
  private readonly stateCounts = new Map<string, number>()
  private readonly findingCounts = new Map<string, number>()
  readonly forbidden: ForbiddenTracker
  private kube: ApplierKube | undefined
  private events: EventRecorder | undefined
  private elector: LeaderElector | undefined
  private leading = false
  private leadWaiters: Array<() => void> = []
  private stopped = false
  private started = false
  private workers: Array<Promise<void>> = []
  private resyncTimer: NodeJS.Timeout | undefined

  constructor (opts: ControllerOptions) {
    this.opts = opts
    this.log = opts.logger
    this.now = opts.monotonic ?? (() => performance.now())
    const retry = opts.retryBackoff ?? { initialMs: 500, maxMs: 60_000 }
    this.queue = new WorkQueue({ baseDelayMs: retry.initialMs, maxDelayMs: retry.maxMs, onDepth: (d) => opts.metrics.queueDepth.set(d) })
    this.forbidden = new ForbiddenTracker(opts.metrics)
    opts.metrics.watchSynced.set(0)
    opts.metrics.leader.set(opts.leaderElection === undefined ? 1 : 0)
  }

  /** Undefined once every list/watch has synced and no request is answered 403; otherwise why not. */
  notReadyReason (): string | undefined {
    if (this.stopped) return 'stopping'
    const reasons: string[] = []
    if (!this.started) reasons.push('not started')
    for (const r of this.all) {
      if (!r.synced) reasons.push(`${r.what} watch not synced${r.lastError !== undefined ? `: ${r.lastError}` : ''}`)
    }
    const scopes = this.coverageSource()
    if (scopes.kind === 'webhook' && scopes.scopes === null) reasons.push(`MutatingWebhookConfiguration ${scopes.configuration} not found: the applier acts nowhere`)
    const forbidden = this.forbidden.reason()
    if (forbidden !== undefined) reasons.push(forbidden)
    return reasons.length === 0 ? undefined : reasons.join('; ')
  }

  /** True when this replica may write: it leads, or leader election is off. */
  canWrite (): boolean {
    if (this.opts.leaderElection === undefined) return !this.stopped
    return !this.stopped && this.elector !== undefined && this.elector.isLeader()
  }

  isLeading (): boolean {
    return this.leading
  }

  get identity (): string {
    return this.opts.identity
  }

  /** The caches' sizes, for benchmarks and debugging. */
  cacheSizes (): { nimServices: number, hpas: number, namespaces: number } {
    return {
      nimServices: this.nims.reduce((n, s) => n + s.r.cache.size, 0),
      hpas: this.hpas.reduce((n, s) => n + s.r.cache.size, 0),
      namespaces: this.namespaceCache?.cache.size ?? 0
    }
  }

  /** The last decided state of a NIMService (tests). */
  stateOf (namespace: string, name: string): State | undefined {
    return this.lastState.get(`${namespace}/${name}`)?.state
  }

  private coverageSource (): CoverageSource {
    const name = this.opts.webhookConfiguration
    if (name === undefined) return { kind: 'namespaces', namespaces: this.opts.namespaces.length === 0 ? undefined : new Set(this.opts.namespaces) }
    const wc = this.webhook
    const scopes = wc === undefined || !wc.synced ? undefined : (wc.cache.get(name)?.scopes ?? null)
    const namespaces = this.namespaceCache?.synced === true ? this.namespaceCache.cache : undefined
    return { kind: 'webhook', configuration: name, scopes, namespaces }
  }

  async start (): Promise<void> {
    if (this.started) throw new Error('controller already started')
    this.started = true
    const k8s = await import('@kubernetes/client-node')
    const kc = this.opts.kubeConfig
    const http = kubeHttp(kc)
    this.kube = this.opts.kube ?? kubeApplierClient(http, { instance: this.opts.identity })
    this.events = new EventRecorder(this.kube, { logger: this.log, metrics: this.opts.metrics, forbidden: this.forbidden })
    const sources = this.opts.sources ?? kubeSources(http)

    const le = this.opts.leaderElection
    if (le === undefined) {
      this.setLeading(true)
    } else {
      const store = le.store ?? kubeLeaseStore(kc.makeApiClient(k8s.CoordinationV1Api), le.leaseNamespace, le.leaseName)
      this.elector = new LeaderElector({
        store,
        identity: this.opts.identity,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        onStartedLeading: () => {
          this.log.info({ lease: store.describe(), identity: this.opts.identity }, 'became leader: acting')
          this.setLeading(true)
        },
        onStoppedLeading: () => {
          if (this.stopped) this.log.info({ lease: store.describe(), identity: this.opts.identity }, 'stopped leading')
          else this.log.warn({ lease: store.describe(), identity: this.opts.identity }, 'lost the lease: stopped until it is won again')
          this.setLeading(false)
        },
        onNewLeader: (holder) => { if (holder !== this.opts.identity) this.log.info({ leader: holder }, 'another replica leads') },
        onError: (err) => {
          if (apiStatus(err) === 403) this.forbidden.failed('update leases', err)
          this.log.warn({ err: apiMessage(err), lease: store.describe() }, 'lease request failed')
        }
      })
      this.elector.start()
    }

    const scopes = this.opts.namespaces.length === 0 ? [undefined] : [...new Set(this.opts.namespaces)]
    for (const namespace of scopes) {
      const where = namespace === undefined ? '(all namespaces)' : `in ${namespace}`
      const nims = this.reflector<NimView>(`NIMServices ${where}`, sources.nimServices(namespace), nimView, {
        onAdd: (n) => { const k = keyOf(n); this.firstSeen.set(k, this.now()); this.tombstones.delete(k); this.queue.add(k) },
        onUpdate: (n) => this.queue.add(keyOf(n)),
        onDelete: (n) => { const k = keyOf(n); this.tombstones.set(k, n.uid); this.queue.add(k) }
      }, 'list and watch nimservices.apps.nvidia.com')
      this.nims.push({ namespace, r: nims })
      const onHpa = (h: HpaView): void => { const k = keyOf(h); if (this.knows(k)) this.queue.add(k) }
      const hpas = this.reflector<HpaView>(`HorizontalPodAutoscalers ${where}`, sources.hpas(namespace), hpaView, { onAdd: onHpa, onUpdate: onHpa, onDelete: onHpa }, 'list and watch horizontalpodautoscalers.autoscaling')
      this.hpas.push({ namespace, r: hpas })
    }
    const wcName = this.opts.webhookConfiguration
    if (wcName !== undefined) {
      const again = (): void => this.enqueueAll()
      this.webhook = this.reflector<WebhookView>(`MutatingWebhookConfiguration ${wcName}`, sources.webhookConfiguration(wcName), (raw) => {
        const name = str(obj(obj(raw)?.metadata)?.name)
        return name === undefined ? undefined : { name, scopes: webhookScopes(raw), resourceVersion: str(obj(obj(raw)?.metadata)?.resourceVersion) ?? '' }
      }, { onAdd: again, onUpdate: again, onDelete: again, onSynced: again }, 'list and watch mutatingwebhookconfigurations.admissionregistration.k8s.io')
      this.namespaceCache = this.reflector<NamespaceView>('Namespaces', sources.namespaces(), namespaceView, { onAdd: again, onUpdate: again, onDelete: again, onSynced: again }, 'list and watch namespaces')
    }
    for (const r of this.all) r.start()

    const workers = Math.max(1, this.opts.workers ?? 2)
    for (let i = 0; i < workers; i++) this.workers.push(this.work())
    const resync = this.opts.resyncPeriodMs ?? 5 * 60_000
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), resync)
      this.resyncTimer.unref()
    }
  }

  private reflector<T> (what: string, source: ListWatchSource, transform: (raw: unknown) => T | undefined,
    handlers: { onAdd?: (t: T) => void, onUpdate?: (t: T) => void, onDelete?: (t: T) => void, onSynced?: () => void }, request: string): Reflector<T> {
    const versionOf = (t: T): string => (t as { resourceVersion?: string }).resourceVersion ?? ''
    const r = new Reflector<T>({
      what,
      source,
      transform,
      keyOf: (t) => { const o = t as { namespace?: string, name: string }; return o.namespace === undefined ? o.name : `${o.namespace}/${o.name}` },
      versionOf,
      ...(this.opts.pageSize !== undefined ? { pageSize: this.opts.pageSize } : {}),
      ...(this.opts.minWatchTimeoutSeconds !== undefined ? { minWatchTimeoutSeconds: this.opts.minWatchTimeoutSeconds } : {}),
      ...(this.opts.watchBackoff !== undefined ? { backoff: this.opts.watchBackoff } : {}),
      logger: this.log,
      ...handlers,
      onSynced: () => {
        this.forbidden.succeeded(request)
        this.updateSynced()
        handlers.onSynced?.()
      },
      onError: (err, retryInMs) => {
        const status = apiStatus(err)
        if (status === 403) this.forbidden.failed(request, err)
        this.updateSynced()
        this.opts.metrics.watchRestarts.inc({ what: what.split(' ')[0] ?? what })
        const hint = status === 404 ? ' (is the CRD installed?)' : status === 403 ? ` (RBAC: ${request})` : ''
        this.log.warn({ what, err: `${apiMessage(err)}${hint}`, retryInMs }, 'list/watch failed: relisting after backoff')
      }
    })
    this.all.push(r as Reflector<unknown>)
    return r
  }

  private updateSynced (): void {
    this.opts.metrics.watchSynced.set(this.all.every((r) => r.synced) ? 1 : 0)
  }

  private knows (key: string): boolean {
    return this.tombstones.has(key) || this.lookupNim(key) !== undefined
  }

  private setLeading (leading: boolean): void {
    this.leading = leading
    this.opts.metrics.leader.set(leading ? 1 : 0)
    if (leading) {
      const waiters = this.leadWaiters
      this.leadWaiters = []
      for (const w of waiters) w()
      this.enqueueAll()
    }
  }

  private whenLeading (): Promise<void> {
    if (this.leading || this.stopped) return Promise.resolve()
    return new Promise((resolve) => this.leadWaiters.push(resolve))
  }

  private enqueueAll (): void {
    for (const s of this.nims) for (const key of s.r.cache.keys()) this.queue.add(key)
    for (const key of this.tombstones.keys()) this.queue.add(key)
  }

  private lookupNim (key: string): NimView | undefined {
    return lookup(this.nims, key)
  }

  private lookupHpa (key: string): HpaView | undefined {
    return lookup(this.hpas, key)
  }

  private hpaSynced (namespace: string): boolean {
    return this.hpas.some((s) => (s.namespace === undefined || s.namespace === namespace) && s.r.synced)
  }

  private async work (): Promise<void> {
    for (;;) {
      await this.whenLeading()
      if (this.stopped) return
      const key = await this.queue.get()
      if (key === undefined) return
      try {
        await this.process(key)
      } catch (err) {
        this.log.error({ err, key }, 'reconcile crashed')
        this.opts.metrics.errors.inc({ reason: 'internal' })
        this.queue.done(key)
        this.queue.addRateLimited(key)
      }
    }
  }

  /** Counts states and findings for the gauges; new findings for the counter. */
  private record (key: string, decision: Decision | undefined): void {
    const bump = (m: Map<string, number>, k: string, d: number): number => { const v = (m.get(k) ?? 0) + d; if (v === 0) m.delete(k); else m.set(k, v); return v }
    const prev = this.lastState.get(key)
    if (prev !== undefined) {
      this.opts.metrics.states.set({ state: prev.state }, bump(this.stateCounts, prev.state, -1))
      for (const r of prev.reasons) this.opts.metrics.findings.set({ reason: r }, bump(this.findingCounts, r, -1))
    }
    if (decision === undefined) {
      this.lastState.delete(key)
      return
    }
    const reasons = [...new Set(decision.findings.map((f) => f.reason))]
    this.lastState.set(key, { state: decision.state, reasons })
    this.opts.metrics.states.set({ state: decision.state }, bump(this.stateCounts, decision.state, 1))
    for (const r of reasons) {
      this.opts.metrics.findings.set({ reason: r }, bump(this.findingCounts, r, 1))
      if (prev?.reasons.includes(r) !== true) this.opts.metrics.findingsTotal.inc({ reason: r })
    }
  }

  private async process (key: string): Promise<void> {
    const slash = key.indexOf('/')
    const namespace = key.slice(0, slash)
    const name = key.slice(slash + 1)
    const nim = this.lookupNim(key)
    if (!this.hpaSynced(namespace)) {
      // Deciding without the HPA cache would call every HPA missing: wait for it.
      this.queue.done(key)
      this.queue.addAfter(key, 1000)
      return
    }
    const hpa = this.lookupHpa(key)
    const now = this.now()
    if (nim?.autoscaled === true && hpa === undefined) {
      if (!this.missingSince.has(key)) this.missingSince.set(key, now)
    } else {
      this.missingSince.delete(key)
    }
    const lastUid = this.tombstones.get(key)
    const decision = decide({
      mode: this.opts.mode,
      namespace,
      name,
      ...(nim !== undefined ? { nim } : {}),
      ...(lastUid !== undefined ? { lastUid } : {}),
      ...(hpa !== undefined ? { hpa } : {}),
      coverage: coverage(this.coverageSource(), namespace, nim?.labels ?? {}),
      knownForMs: now - (this.firstSeen.get(key) ?? now),
      missingForMs: now - (this.missingSince.get(key) ?? now),
      driftForMs: now - (this.driftSince.get(key) ?? now),
      graceMs: this.opts.graceMs
    })
    if (decision.state === 'drift' || decision.detail === DRIFT_PENDING) {
      if (!this.driftSince.has(key)) this.driftSince.set(key, now)
    } else {
      this.driftSince.delete(key)
    }
    this.record(key, nim === undefined ? undefined : decision)
    const owner = nim !== undefined ? { namespace, name, uid: nim.uid, resourceVersion: nim.resourceVersion } : undefined
    const outcome = await execute(decision, {
      namespace,
      name,
      ...(owner !== undefined ? { owner } : {}),
      kube: this.kube as ApplierKube,
      events: this.events as EventRecorder,
      forbidden: this.forbidden,
      metrics: this.opts.metrics,
      logger: this.log,
      dryRun: this.opts.dryRun,
      canWrite: () => this.canWrite(),
      print: this.opts.print ?? ((line) => { process.stdout.write(`${line}\n`) })
    })
    this.queue.done(key)
    if (outcome.result === 'not-leader') {
      this.queue.add(key)
      return
    }
    if (outcome.result === 'retry') {
      const delay = this.queue.addRateLimited(key)
      this.log.warn({ namespace, name, err: outcome.error, retryInMs: delay }, 'reconcile failed: retrying')
      return
    }
    this.queue.forget(key)
    if (decision.requeueAfterMs !== undefined) this.queue.addAfter(key, Math.ceil(decision.requeueAfterMs))
    if (nim === undefined) {
      this.tombstones.delete(key)
      this.firstSeen.delete(key)
      this.missingSince.delete(key)
      this.driftSince.delete(key)
    }
  }

  /**
   * Stops watching and acting. With `release`, a leader hands its Lease back so another replica takes
   * over at once; without, the Lease expires as after a crash.
   */
  async stop (opts: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.resyncTimer)
    await Promise.all(this.all.map((r) => r.stop()))
    this.queue.shutdown()
    const waiters = this.leadWaiters
    this.leadWaiters = []
    for (const w of waiters) w()
    await Promise.all(this.workers)
    await this.elector?.stop(opts)
    this.leading = false
    this.opts.metrics.leader.set(0)
  }
}

/** The object under `namespace/name` in whichever cache watches its namespace (or all of them). */
function lookup<T> (sources: Array<{ namespace: string | undefined, r: Reflector<T> }>, key: string): T | undefined {
  const namespace = key.slice(0, key.indexOf('/'))
  for (const s of sources) {
    if (s.namespace !== undefined && s.namespace !== namespace) continue
    const found = s.r.cache.get(key)
    if (found !== undefined) return found
  }
  return undefined
}
