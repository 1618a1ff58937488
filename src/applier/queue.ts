// A work queue with client-go's guarantees: a key is queued at most once however often it is added; a
// key being processed is not handed to a second worker, and if it is added meanwhile it is queued again
// once done; failed keys come back after an exponential, per-key backoff.

export interface WorkQueueOptions {
  /** First retry delay after a failure (default 500 ms). */
  baseDelayMs?: number
  /** Ceiling of the retry delay (default 60 s). */
  maxDelayMs?: number
  /** Called with the number of queued keys whenever it changes. */
  onDepth?: (depth: number) => void
}

export class WorkQueue {
  private readonly queue: string[] = []
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly failures = new Map<string, number>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private waiters: Array<(key: string | undefined) => void> = []
  private closed = false
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly onDepth: (depth: number) => void

  constructor (opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 500
    this.maxDelayMs = opts.maxDelayMs ?? 60_000
    this.onDepth = opts.onDepth ?? (() => {})
  }

  /** Keys waiting for a worker (not counting those being processed). */
  get length (): number {
    return this.queue.length
  }

  add (key: string): void {
    if (this.closed || this.dirty.has(key)) return
    this.dirty.add(key)
    if (this.processing.has(key)) return
    const waiter = this.waiters.shift()
    if (waiter !== undefined) {
      this.dirty.delete(key)
      this.processing.add(key)
      waiter(key)
      return
    }
    this.queue.push(key)
    this.onDepth(this.queue.length)
  }

  /** The next key, once there is one; undefined after shutdown. Call done(key) when finished with it. */
  get (): Promise<string | undefined> {
    if (this.closed) return Promise.resolve(undefined)
    const key = this.queue.shift()
    if (key !== undefined) {
      this.dirty.delete(key)
      this.processing.add(key)
      this.onDepth(this.queue.length)
      return Promise.resolve(key)
    }
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  done (key: string): void {
    this.processing.delete(key)
    if (this.dirty.has(key) && !this.closed) {
      this.queue.push(key)
      this.onDepth(this.queue.length)
      // A worker may be waiting while the key was held back: hand it over.
      const waiter = this.waiters.shift()
      if (waiter !== undefined) {
        const next = this.queue.shift() as string
        this.dirty.delete(next)
        this.processing.add(next)
        this.onDepth(this.queue.length)
        waiter(next)
      }
    }
  }

  /** Adds `key` again after its backoff: base x 2^failures, capped. Returns the delay. */
  addRateLimited (key: string): number {
    const n = this.failures.get(key) ?? 0
    this.failures.set(key, n + 1)
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n)
    this.addAfter(key, delay)
    return delay
  }

  addAfter (key: string, delayMs: number): void {
    if (this.closed) return
    if (this.timers.has(key)) return
    const timer = setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, delayMs)
    timer.unref()
    this.timers.set(key, timer)
  }

  /** Clears the failure count of `key` (after a success). */
  forget (key: string): void {
    this.failures.delete(key)
  }

  failureCount (key: string): number {
    return this.failures.get(key) ?? 0
  }

  shutdown (): void {
    this.closed = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w(undefined)
    this.queue.length = 0
    this.dirty.clear()
    this.onDepth(0)
  }
}
