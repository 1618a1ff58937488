// The applier's control loop: a client-node informer on NIMServices per watched scope (all namespaces,
// or each --namespace), a de-duplicating work queue keyed namespace/name, workers that read the HPA,
// decide (reconcile.ts) and act (apply.ts) only while this replica leads.
//
// Watch failures: client-node's ListWatch relists by itself on 410 Gone, but stops on any other error.
// Then this controller drops that informer, waits an exponential backoff, and relists with a fresh one,
// diffing the new list against the old cache so deletions missed during the outage are still seen.
import type { Logger } from 'pino'
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../nimservice/hpa-render.js'
import { reconcile, type KubeObject } from './reconcile.js'
import { EventRecorder, apiMessage, apiStatus, execute, kubeApplierClient, type ApplierKube } from './apply.js'
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

export interface ControllerOptions {
  kubeConfig: KubeConfig
  /** Namespaces to watch; empty watches all. */
  namespaces: string[]
  takeOver: boolean
  dryRun: boolean
  /** Leader election; undefined: this replica always writes. */
  leaderElection?: LeaderElectionConfig
  /** Lease holder identity and Event reportingInstance (hostname_pid by default in the CLI). */
  identity: string
  /** Every period, every NIMService is reconciled again, healing drift (default 5 min; 0 disables). */
  resyncPeriodMs?: number
  workers?: number
  /** Backoff before relisting after a watch error (default 1 s doubling to 30 s). */
  watchBackoff?: { initialMs: number, maxMs: number }
  /** Backoff of a failing key (default 500 ms doubling to 60 s). */
  retryBackoff?: { initialMs: number, maxMs: number }
  logger: Logger
  metrics: ApplierMetrics
  /** Dry-run output (default: stdout). */
  print?: (line: string) => void
  /** Tests: the API calls, instead of the apiserver's. */
  kube?: ApplierKube
  /** Tests: how to list NIMServices and make an informer, instead of the apiserver and client-node. */
  informers?: InformerSource
}

export interface InformerSource {
  list (namespace: string | undefined): Promise<KubernetesListObject<NimObject>>
  make (path: string, list: () => Promise<KubernetesListObject<NimObject>>): ListWatchLike
}

export type NimObject = KubernetesObject & KubeObject

interface Scope {
  namespace: string | undefined
  /** The informer running now (or the one that failed last, until the next relist). */
  informer: ListWatchLike | undefined
  /** The informer that completed the last successful list: what the controller knows, stale or not. */
  cache: ListWatchLike | undefined
  generation: number
  synced: boolean
  failures: number
  lastError: string | undefined
  timer: NodeJS.Timeout | undefined
}

/** The part of client-node's ListWatch the controller uses. */
export interface ListWatchLike {
  on (verb: 'add' | 'update' | 'delete', cb: (obj: NimObject) => void): void
  on (verb: 'error', cb: (err?: unknown) => void): void
  start (): Promise<void>
  stop (): Promise<void>
  get (name: string, namespace?: string): NimObject | undefined
  list (namespace?: string): ReadonlyArray<NimObject>
}

const keyOf = (obj: KubeObject): string => `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`

/** What a reconcile depends on: an UPDATE that changes none of these (status, say) needs no reconcile. */
function fingerprint (obj: KubeObject): string {
  const m = obj.metadata ?? {}
  const a = m.annotations ?? {}
  return JSON.stringify([m.uid, a[HPA_SHA_ANNOTATION], HPA_ANNOTATION in a, m.deletionTimestamp !== undefined && m.deletionTimestamp !== null])
}

export class ApplierController {
  private readonly opts: ControllerOptions
  private readonly log: Logger
  private readonly queue: WorkQueue
  private readonly scopes: Scope[]
  /** uid of NIMServices deleted but not yet reconciled, so their HPA can be matched to them. */
  private readonly tombstones = new Map<string, string>()
  private readonly fingerprints = new Map<string, string>()
  private kube: ApplierKube | undefined
  private events: EventRecorder | undefined
  private elector: LeaderElector | undefined
  private leading = false
  private leadWaiters: Array<() => void> = []
  private stopped = false
  private started = false
  private workers: Array<Promise<void>> = []
  private resyncTimer: NodeJS.Timeout | undefined
  private informerSource: InformerSource | undefined

  constructor (opts: ControllerOptions) {
    this.opts = opts
    this.log = opts.logger
    const retry = opts.retryBackoff ?? { initialMs: 500, maxMs: 60_000 }
    this.queue = new WorkQueue({ baseDelayMs: retry.initialMs, maxDelayMs: retry.maxMs, onDepth: (d) => opts.metrics.queueDepth.set(d) })
    const namespaces = [...new Set(opts.namespaces)]
    const scope = (namespace: string | undefined): Scope => ({ namespace, informer: undefined, cache: undefined, generation: 0, synced: false, failures: 0, lastError: undefined, timer: undefined })
    this.scopes = namespaces.length === 0 ? [scope(undefined)] : namespaces.map(scope)
    opts.metrics.watchSynced.set(0)
    opts.metrics.leader.set(opts.leaderElection === undefined ? 1 : 0)
  }

  /** Undefined once every watched scope has listed and its watch runs; otherwise why not. */
  notReadyReason (): string | undefined {
    if (this.stopped) return 'stopping'
    const pending = this.scopes.filter((s) => !s.synced)
    if (pending.length === 0) return undefined
    return pending.map((s) => `NIMService watch ${s.namespace === undefined ? '(all namespaces)' : `in ${s.namespace}`} not synced${s.lastError !== undefined ? `: ${s.lastError}` : ''}`).join('; ')
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

  async start (): Promise<void> {
    if (this.started) throw new Error('controller already started')
    this.started = true
    const k8s = await import('@kubernetes/client-node')
    const kc = this.opts.kubeConfig
    this.kube = this.opts.kube ?? await kubeApplierClient(kc, { instance: this.opts.identity })
    this.events = new EventRecorder(this.kube, { logger: this.log, metrics: this.opts.metrics })
    this.informerSource = this.opts.informers ?? ((): InformerSource => {
      const custom = kc.makeApiClient(k8s.CustomObjectsApi)
      return {
        list: async (namespace) => (namespace === undefined
          ? await custom.listClusterCustomObject({ group: 'apps.nvidia.com', version: NIM_VERSION, plural: NIM_PLURAL })
          : await custom.listNamespacedCustomObject({ group: 'apps.nvidia.com', version: NIM_VERSION, namespace, plural: NIM_PLURAL })) as KubernetesListObject<NimObject>,
        make: (path, list) => k8s.makeInformer<NimObject>(kc, path, list) as unknown as ListWatchLike
      }
    })()

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
          this.log.info({ lease: store.describe(), identity: this.opts.identity }, 'became leader: applying')
          this.setLeading(true)
        },
        onStoppedLeading: () => {
          if (this.stopped) this.log.info({ lease: store.describe(), identity: this.opts.identity }, 'stopped leading')
          else this.log.warn({ lease: store.describe(), identity: this.opts.identity }, 'lost the lease: writes stopped until it is won again')
          this.setLeading(false)
        },
        onNewLeader: (holder) => { if (holder !== this.opts.identity) this.log.info({ leader: holder }, 'another replica leads') },
        onError: (err) => this.log.warn({ err: apiMessage(err), lease: store.describe() }, 'lease request failed')
      })
      this.elector.start()
    }

    for (const scope of this.scopes) this.startScope(scope)
    const workers = Math.max(1, this.opts.workers ?? 2)
    for (let i = 0; i < workers; i++) this.workers.push(this.work())
    const resync = this.opts.resyncPeriodMs ?? 5 * 60_000
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.enqueueAll(), resync)
      this.resyncTimer.unref()
    }
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
    for (const scope of this.scopes) {
      for (const obj of scope.cache?.list() ?? []) this.queue.add(keyOf(obj))
    }
    for (const key of this.tombstones.keys()) this.queue.add(key)
  }

  private path (namespace: string | undefined): string {
    return namespace === undefined
      ? `/apis/apps.nvidia.com/${NIM_VERSION}/${NIM_PLURAL}`
      : `/apis/apps.nvidia.com/${NIM_VERSION}/namespaces/${encodeURIComponent(namespace)}/${NIM_PLURAL}`
  }

  private startScope (scope: Scope): void {
    if (this.stopped) return
    const generation = ++scope.generation
    const current = (): boolean => generation === scope.generation && !this.stopped
    const self: { informer?: ListWatchLike } = {}
    const list = async (): Promise<KubernetesListObject<NimObject>> => {
      const result = await (this.informerSource as InformerSource).list(scope.namespace)
      // The informer adds the items right after this resolves; look at its cache on the next turn.
      setImmediate(() => {
        const informer = self.informer
        if (!current() || informer === undefined) return
        // What the last good list knew and this one lacks was deleted while the watch was down.
        const previous = scope.cache !== undefined && scope.cache !== informer ? [...scope.cache.list()] : []
        scope.cache = informer
        const now = new Set(informer.list().map(keyOf))
        for (const gone of previous) if (!now.has(keyOf(gone))) this.onDelete(gone)
        if (!scope.synced) this.log.info({ namespace: scope.namespace ?? '(all)', items: result.items?.length ?? 0 }, 'NIMService watch synced')
        scope.synced = true
        scope.failures = 0
        scope.lastError = undefined
        this.updateSynced()
      })
      return result
    }
    const active = (this.informerSource as InformerSource).make(this.path(scope.namespace), list)
    self.informer = active
    scope.informer = active
    active.on('add', (obj) => { if (current()) this.onAdd(obj) })
    active.on('update', (obj) => { if (current()) this.onUpdate(obj) })
    active.on('delete', (obj) => { if (current()) this.onDelete(obj) })
    active.on('error', (err) => { if (current()) this.onWatchError(scope, active, err) })
    void active.start().catch((err: unknown) => { if (current()) this.onWatchError(scope, active, err) })
  }

  private onWatchError (scope: Scope, informer: ListWatchLike, err: unknown): void {
    const status = apiStatus(err)
    scope.synced = false
    const hint = status === 404 ? ' (is the NIMService CRD installed?)' : status === 403 ? ' (RBAC: list and watch nimservices.apps.nvidia.com)' : ''
    scope.lastError = status === undefined ? apiMessage(err) : `HTTP ${status}${hint}: ${apiMessage(err)}`
    this.updateSynced()
    const { initialMs, maxMs } = this.opts.watchBackoff ?? { initialMs: 1000, maxMs: 30_000 }
    const delay = Math.min(maxMs, initialMs * 2 ** scope.failures)
    scope.failures++
    this.opts.metrics.watchRestarts.inc({ reason: status === 410 ? 'gone' : 'error' })
    this.log.warn({ namespace: scope.namespace ?? '(all)', err: scope.lastError, retryInMs: delay }, 'NIMService watch failed: relisting after backoff')
    // Stop this informer for good; the last synced cache stays readable (lookups meanwhile, and the diff on relist).
    scope.generation++
    void informer.stop()
    clearTimeout(scope.timer)
    scope.timer = setTimeout(() => {
      scope.timer = undefined
      this.startScope(scope)
    }, delay)
  }

  private updateSynced (): void {
    this.opts.metrics.watchSynced.set(this.scopes.every((s) => s.synced) ? 1 : 0)
  }

  private onAdd (obj: NimObject): void {
    const key = keyOf(obj)
    const fp = fingerprint(obj)
    if (this.fingerprints.get(key) === fp) return // a relist handing back what we saw already
    this.fingerprints.set(key, fp)
    this.tombstones.delete(key)
    this.queue.add(key)
  }

  private onUpdate (obj: NimObject): void {
    const key = keyOf(obj)
    const fp = fingerprint(obj)
    if (this.fingerprints.get(key) === fp) return
    this.fingerprints.set(key, fp)
    this.queue.add(key)
  }

  private onDelete (obj: NimObject): void {
    const key = keyOf(obj)
    this.fingerprints.delete(key)
    const uid = obj.metadata?.uid
    if (uid !== undefined) this.tombstones.set(key, uid)
    this.queue.add(key)
  }

  private lookup (namespace: string, name: string): NimObject | undefined {
    for (const scope of this.scopes) {
      if (scope.namespace !== undefined && scope.namespace !== namespace) continue
      // The running informer first (it may be relisting: what it has is newest), then the last synced cache.
      const found = scope.informer?.get(name, namespace) ?? scope.cache?.get(name, namespace)
      if (found !== undefined) return found
    }
    return undefined
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

  private async process (key: string): Promise<void> {
    const slash = key.indexOf('/')
    const namespace = key.slice(0, slash)
    const name = key.slice(slash + 1)
    const kube = this.kube as ApplierKube
    const nim = this.lookup(namespace, name)
    let hpa: KubeObject | undefined
    try {
      hpa = await kube.getHpa(namespace, name)
    } catch (err) {
      this.opts.metrics.errors.inc({ reason: 'api' })
      const delay = this.queue.addRateLimited(key)
      this.queue.done(key)
      this.log.warn({ namespace, name, err: apiMessage(err), retryInMs: delay }, 'cannot read the HPA: retrying')
      return
    }
    const lastUid = this.tombstones.get(key)
    const action = reconcile({ namespace, name, nim, hpa, takeOver: this.opts.takeOver, ...(lastUid !== undefined ? { lastUid } : {}) })
    const uid = nim?.metadata?.uid
    const owner = nim !== undefined && uid !== undefined
      ? { namespace, name, uid, ...(nim.metadata?.resourceVersion !== undefined ? { resourceVersion: nim.metadata.resourceVersion } : {}) }
      : undefined
    const outcome = await execute(action, {
      namespace,
      name,
      ...(owner !== undefined ? { owner } : {}),
      kube,
      events: this.events as EventRecorder,
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
    if (nim === undefined) this.tombstones.delete(key)
  }

  /**
   * Stops watching and writing. With `release`, a leader hands its Lease back so another replica takes
   * over at once; without, the Lease expires as after a crash.
   */
  async stop (opts: { release?: boolean } = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.resyncTimer)
    for (const scope of this.scopes) {
      clearTimeout(scope.timer)
      scope.generation++
      await scope.informer?.stop()
    }
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
