// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection: a candidate
// takes the Lease only when the holder has not renewed it for a lease duration, measured on the
// candidate's own clock from when it last saw the record change (no clock-skew assumptions); the leader
// renews every retry period and gives up writing when it could not renew within the renew deadline,
// which is shorter than the lease duration, so two replicas never both believe they lead.
// Every local expiry is measured on the monotonic clock (performance.now, as client-go's observedTime
// carries Go's monotonic reading): a step of the wall clock (NTP, a VM resumed) can neither expire a
// holder's Lease early nor keep a leader writing past its deadline. The wall clock only fills in the
// Lease's acquireTime and renewTime, which other candidates never compare with their own clocks.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node'

export interface LeaseRecord {
  holderIdentity?: string
  leaseDurationSeconds?: number
  acquireTime?: string
  renewTime?: string
  leaseTransitions?: number
}

export interface StoredLease {
  record: LeaseRecord
  /** Optimistic-concurrency token (the Lease's resourceVersion). */
  version: string
}

/** Where the Lease lives. create and update reject with LeaseConflictError when someone else wrote first. */
export interface LeaseStore {
  get (): Promise<StoredLease | undefined>
  create (record: LeaseRecord): Promise<StoredLease>
  update (record: LeaseRecord, version: string): Promise<StoredLease>
  describe (): string
}

export class LeaseConflictError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'LeaseConflictError'
  }
}

export interface LeaderElectionOptions {
  store: LeaseStore
  identity: string
  /** How long a Lease holds without renewal before another candidate may take it (default 15 s). */
  leaseDurationMs?: number
  /** How long the leader keeps trying to renew before it stops writing (default 10 s). */
  renewDeadlineMs?: number
  /** Interval between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number
  /** Monotonic milliseconds (default performance.now); tests pass a fake. */
  monotonic?: () => number
  /** Wall-clock milliseconds, only for the Lease's timestamps (default Date.now). */
  wallClock?: () => number
  onStartedLeading?: () => void
  onStoppedLeading?: () => void
  onNewLeader?: (identity: string) => void
  onError?: (err: unknown) => void
}

export const LEADER_DEFAULTS = Object.freeze({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 })

/** RFC 3339 with microseconds, the format of a metav1.MicroTime. */
export function microTime (ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

export function validateLeaderTimings (o: { leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number }): void {
  if (!(o.leaseDurationMs > o.renewDeadlineMs)) throw new Error(`--lease-duration (${o.leaseDurationMs} ms) must be greater than --renew-deadline (${o.renewDeadlineMs} ms)`)
  if (!(o.renewDeadlineMs > o.retryPeriodMs * 1.2)) throw new Error(`--renew-deadline (${o.renewDeadlineMs} ms) must be greater than 1.2 x --retry-period (${o.retryPeriodMs} ms)`)
  if (o.leaseDurationMs < 1000) throw new Error(`--lease-duration must be at least 1s, got ${o.leaseDurationMs} ms`)
  if (o.retryPeriodMs < 1) throw new Error('--retry-period must be positive')
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  if (signal.aborted) return resolve()
  const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
  const timer = setTimeout(done, ms)
  signal.addEventListener('abort', done, { once: true })
})

function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`lease request took longer than ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

export class LeaderElector {
  readonly identity: string
  private readonly store: LeaseStore
  private readonly leaseDurationMs: number
  private readonly renewDeadlineMs: number
  private readonly retryPeriodMs: number
  private readonly now: () => number
  private readonly wall: () => number
  private readonly opts: LeaderElectionOptions
  private observed: LeaseRecord | undefined
  private observedRaw = ''
  private observedAt = 0
  /** When the last successful acquire/renew was sent; writes are safe until this + renew deadline. */
  private renewedAt = -Infinity
  private leading = false
  private lastLeader: string | undefined
  private readonly abort = new AbortController()
  private running: Promise<void> | undefined

  constructor (opts: LeaderElectionOptions) {
    this.opts = opts
    this.store = opts.store
    this.identity = opts.identity
    this.leaseDurationMs = opts.leaseDurationMs ?? LEADER_DEFAULTS.leaseDurationMs
    this.renewDeadlineMs = opts.renewDeadlineMs ?? LEADER_DEFAULTS.renewDeadlineMs
    this.retryPeriodMs = opts.retryPeriodMs ?? LEADER_DEFAULTS.retryPeriodMs
    this.now = opts.monotonic ?? (() => performance.now())
    this.wall = opts.wallClock ?? Date.now
    validateLeaderTimings({ leaseDurationMs: this.leaseDurationMs, renewDeadlineMs: this.renewDeadlineMs, retryPeriodMs: this.retryPeriodMs })
  }

  /** True while this candidate holds the Lease and renewed it within the renew deadline: safe to write. */
  isLeader (): boolean {
    return this.leading && this.now() - this.renewedAt < this.renewDeadlineMs
  }

  /** The holder of the Lease as last observed. */
  leader (): string | undefined {
    return this.observed?.holderIdentity === '' ? undefined : this.observed?.holderIdentity
  }

  /** As client-go's observedRecord; the resourceVersion also counts, so a renewal is seen even if the holder's wall clock stood still. */
  private observe (record: LeaseRecord, version: string, at: number): void {
    const raw = JSON.stringify([version, record.holderIdentity, record.leaseDurationSeconds, record.acquireTime, record.renewTime, record.leaseTransitions])
    if (raw !== this.observedRaw) {
      this.observed = record
      this.observedRaw = raw
      this.observedAt = at
    }
    const holder = record.holderIdentity ?? ''
    if (holder !== '' && holder !== this.lastLeader) {
      this.lastLeader = holder
      this.opts.onNewLeader?.(holder)
    }
  }

  private observedHolderIsMe (): boolean {
    return this.observed?.holderIdentity === this.identity
  }

  private leaseValid (now: number): boolean {
    const seconds = this.observed?.leaseDurationSeconds ?? Math.ceil(this.leaseDurationMs / 1000)
    return this.observedAt + seconds * 1000 > now
  }

  /**
   * One attempt, as client-go's tryAcquireOrRenew: create the Lease if there is none; renew it if we hold
   * it; take it if its holder let it expire; otherwise leave it. Resolves true when we hold it afterwards.
   */
  async tryAcquireOrRenew (): Promise<boolean> {
    const start = this.now()
    const stamp = microTime(this.wall())
    const leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000)
    const fresh: LeaseRecord = { holderIdentity: this.identity, leaseDurationSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 }
    const current = await this.store.get()
    if (current === undefined) {
      try {
        const created = await this.store.create(fresh)
        this.observe(created.record, created.version, this.now())
        this.renewedAt = start
        return true
      } catch (err) {
        if (err instanceof LeaseConflictError) return false
        throw err
      }
    }
    this.observe(current.record, current.version, this.now())
    const holder = current.record.holderIdentity ?? ''
    if (holder !== '' && holder !== this.identity && this.leaseValid(start)) return false

    const next: LeaseRecord = this.observedHolderIsMe()
      ? { ...fresh, acquireTime: current.record.acquireTime ?? fresh.acquireTime, leaseTransitions: current.record.leaseTransitions ?? 0 }
      : { ...fresh, leaseTransitions: (current.record.leaseTransitions ?? 0) + 1 }
    try {
      const updated = await this.store.update(next, current.version)
      this.observe(updated.record, updated.version, this.now())
      this.renewedAt = start
      return true
    } catch (err) {
      if (err instanceof LeaseConflictError) return false
      throw err
    }
  }

  private async attempt (timeoutMs: number): Promise<boolean> {
    try {
      return await withTimeout(this.tryAcquireOrRenew(), Math.max(1, timeoutMs))
    } catch (err) {
      this.opts.onError?.(err)
      return false
    }
  }

  /** Campaigns, leads until renewal fails past the deadline, then campaigns again; until stop(). */
  start (): void {
    this.running ??= this.loop()
  }

  private async loop (): Promise<void> {
    const signal = this.abort.signal
    while (!signal.aborted) {
      // Campaign: a jittered retry period between attempts, as client-go's wait.JitterUntil.
      while (!signal.aborted && !(await this.attempt(this.retryPeriodMs))) {
        await sleep(this.retryPeriodMs * (1 + Math.random() * 0.2), signal)
      }
      if (signal.aborted) break
      this.leading = true
      this.opts.onStartedLeading?.()
      // Lead: renew every retry period; give up when no renewal succeeded within the renew deadline.
      while (!signal.aborted) {
        await sleep(this.retryPeriodMs, signal)
        if (signal.aborted) break
        const remaining = this.renewedAt + this.renewDeadlineMs - this.now()
        if (remaining <= 0 || !(await this.attempt(remaining))) {
          if (this.now() - this.renewedAt >= this.renewDeadlineMs) break
        }
      }
      const wasLeading = this.leading
      this.leading = false
      if (wasLeading) this.opts.onStoppedLeading?.()
    }
  }

  /**
   * Stops campaigning. With `release`, a leader hands the Lease back (holder cleared, duration 1 s) so the
   * next candidate need not wait for it to expire; without, the Lease simply expires (as after a crash).
   */
  async stop (opts: { release?: boolean } = {}): Promise<void> {
    const wasLeading = this.isLeader()
    this.abort.abort()
    await this.running
    this.leading = false
    if (opts.release === true && wasLeading) {
      try {
        const current = await withTimeout(this.store.get(), this.retryPeriodMs)
        if (current !== undefined && current.record.holderIdentity === this.identity) {
          const at = microTime(this.wall())
          await withTimeout(this.store.update({ ...current.record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: at, acquireTime: at }, current.version), this.retryPeriodMs)
        }
      } catch (err) {
        this.opts.onError?.(err)
      }
    }
  }
}

/** The Lease `namespace/name` through the Kubernetes API; needs get, create and update on leases. */
export function kubeLeaseStore (api: Pick<CoordinationV1Api, 'readNamespacedLease' | 'createNamespacedLease' | 'replaceNamespacedLease'>, namespace: string, name: string): LeaseStore {
  const status = (err: unknown): number | undefined => {
    const code = (err as { code?: unknown } | null)?.code
    return typeof code === 'number' ? code : undefined
  }
  const asString = (v: unknown): string | undefined => v instanceof Date ? microTime(v.getTime()) : typeof v === 'string' ? v : undefined
  const toStored = (lease: V1Lease): StoredLease => {
    const s = lease.spec ?? {}
    const record: LeaseRecord = {}
    if (s.holderIdentity !== undefined) record.holderIdentity = s.holderIdentity
    if (s.leaseDurationSeconds !== undefined) record.leaseDurationSeconds = s.leaseDurationSeconds
    const acquire = asString(s.acquireTime)
    if (acquire !== undefined) record.acquireTime = acquire
    const renew = asString(s.renewTime)
    if (renew !== undefined) record.renewTime = renew
    if (s.leaseTransitions !== undefined) record.leaseTransitions = s.leaseTransitions
    return { record, version: lease.metadata?.resourceVersion ?? '' }
  }
  // MicroTime fields go out as strings: client-node would print a Date with milliseconds only.
  const body = (record: LeaseRecord, version?: string): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(version !== undefined ? { resourceVersion: version } : {}) },
    spec: record as unknown as V1Lease['spec']
  })
  return {
    describe: () => `Lease ${namespace}/${name}`,
    async get () {
      try {
        return toStored(await api.readNamespacedLease({ name, namespace }))
      } catch (err) {
        if (status(err) === 404) return undefined
        throw err
      }
    },
    async create (record) {
      try {
        return toStored(await api.createNamespacedLease({ namespace, body: body(record) }))
      } catch (err) {
        if (status(err) === 409) throw new LeaseConflictError(`Lease ${namespace}/${name} was created by another candidate`)
        throw err
      }
    },
    async update (record, version) {
      try {
        return toStored(await api.replaceNamespacedLease({ name, namespace, body: body(record, version) }))
      } catch (err) {
        if (status(err) === 409) throw new LeaseConflictError(`Lease ${namespace}/${name} changed meanwhile`)
        throw err
      }
    }
  }
}
