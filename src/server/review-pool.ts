// The review pool: large bodies are parsed and judged in worker threads, so the event loop (other
// reviews, /healthz, /readyz) never waits on them, and each review has a time budget enforced by
// construction: a worker still busy when the budget runs out is terminated and replaced.
//
// Why only large bodies: the domain's work is linear in the object's size, so a small body is cheap and
// judged inline, where a review costs no thread hand-off (the benchmark's path); a superlinear cost
// needs a big input to hurt, and big inputs are what come here. Why threads and not yield points: a
// budget checked at yield points only holds where someone remembered to put one; terminating a thread
// holds everywhere, including inside a regular expression or JSON.parse.
import { Worker, type ResourceLimits } from 'node:worker_threads'
import type { Endpoint } from '../admission/handlers.js'
import type { ReviewHeader, ReviewSummary } from './review-line.js'

export interface ToWorker { id: number, endpoint: Endpoint, bytes: Uint8Array }
export type FromWorker =
  | { type: 'ready' }
  | { type: 'decoded', id: number, header: ReviewHeader }
  | { type: 'done', id: number, json: string, summary: ReviewSummary, failure?: { message: string, stack?: string } }
  | { type: 'bad', id: number, statusCode: number, code?: string, reason?: string, message: string }

/** Why a review was stopped: its time budget, its worker's heap, or a worker that died of a bug. */
export type StopReason = 'time' | 'memory' | 'crash'

export type PoolResult =
  | { kind: 'done', json: string, summary: ReviewSummary, failure?: { message: string, stack?: string } }
  | { kind: 'bad', statusCode: number, code?: string, reason?: string, message: string }
  /** `header` is missing when the worker never decoded the review (it was still queued, or parsing). */
  | { kind: 'stopped', why: StopReason, header?: ReviewHeader, error?: Error }

export interface PoolLog { warn: (obj: object, msg: string) => void }

export interface ReviewPoolOptions {
  workers: number
  budgetMs: number
  log: PoolLog
  /** Old-generation heap of each worker, in MB. */
  heapMb?: number
  /** An idle worker is stopped after this long, giving its memory back (default 30 s). */
  idleMs?: number
  /** Makes a worker; tests give one of their own. */
  createWorker?: (resourceLimits: ResourceLimits) => Worker
}

interface Job {
  id: number
  endpoint: Endpoint
  bytes: Uint8Array
  resolve: (r: PoolResult) => void
  timer?: NodeJS.Timeout
  header?: ReviewHeader
  slot?: Slot
  settled: boolean
  /** Already given to a second worker after its first one crashed. */
  retried?: boolean
}

interface Slot { worker: Worker, job?: Job, idleTimer?: NodeJS.Timeout, dead: boolean, ready: Promise<void>, setReady: () => void }

export function defaultCreateWorker (resourceLimits: ResourceLimits): Worker {
  const here = import.meta.url
  if (here.endsWith('.ts')) {
    // Run from source (tests, under tsx): a worker's entry does not go through the parent's loader
    // hooks, so the worker registers tsx itself. The built server (.js) never takes this branch.
    const entry = new URL('./review-worker.ts', here).href
    return new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(entry)}) })`, { eval: true, resourceLimits })
  }
  return new Worker(new URL('./review-worker.js', here), { resourceLimits })
}

export class ReviewPool {
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []
  private seq = 0
  private closed = false
  /** Workers told to terminate that have not exited yet: they still hold their heap. */
  private exiting = 0
  /** Workers started, and those terminated at a budget or lost to a crash (for tests and the report). */
  readonly stats = { started: 0, stopped: 0 }

  constructor (private readonly opts: ReviewPoolOptions) {}

  get workerCount (): number { return this.slots.length }
  get budgetMs (): number { return this.opts.budgetMs }

  /**
   * Starts every worker now and resolves once each has loaded the domain. Workers otherwise start on
   * the first large body, whose budget then includes the start (~0.2-0.7 s built; seconds under tsx).
   */
  async warm (): Promise<void> {
    while (this.slots.length < this.opts.workers) this.idle(this.spawn())
    await Promise.all(this.slots.map(async (s) => await s.ready))
  }

  /** Judges `bytes` as a review for `endpoint`; the budget counts from `startedAt` (performance.now()). */
  async run (endpoint: Endpoint, bytes: Uint8Array, startedAt = performance.now()): Promise<PoolResult> {
    return await new Promise((resolve) => {
      const job: Job = { id: ++this.seq, endpoint, bytes, resolve, settled: false }
      if (this.closed) {
        this.settle(job, { kind: 'stopped', why: 'crash', error: new Error('review pool closed') })
        return
      }
      job.timer = setTimeout(() => this.expire(job), Math.max(0, startedAt + this.opts.budgetMs - performance.now()))
      this.queue.push(job)
      this.pump()
    })
  }

  async close (): Promise<void> {
    this.closed = true
    for (const job of this.queue.splice(0)) this.settle(job, { kind: 'stopped', why: 'crash', error: new Error('review pool closed') })
    await Promise.all(this.slots.splice(0).map(async (slot) => {
      slot.dead = true
      if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
      if (slot.job !== undefined) this.settle(slot.job, { kind: 'stopped', why: 'crash', ...(slot.job.header !== undefined ? { header: slot.job.header } : {}), error: new Error('review pool closed') })
      await slot.worker.terminate()
    }))
  }

  private pump (): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined)
      if (slot === undefined) {
        // A replacement starts only once the worker it replaces has exited, so that two heaps never
        // coexist: memory stays bounded by `workers` heaps even under a stream of stopped reviews.
        if (this.slots.length + this.exiting >= this.opts.workers) return
        slot = this.spawn()
      }
      const job = this.queue.shift() as Job
      if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
      slot.idleTimer = undefined
      slot.job = job
      job.slot = slot
      slot.worker.postMessage({ id: job.id, endpoint: job.endpoint, bytes: job.bytes } satisfies ToWorker)
    }
  }

  private spawn (): Slot {
    const heapMb = this.opts.heapMb ?? 160
    const worker = (this.opts.createWorker ?? defaultCreateWorker)({ maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.min(32, Math.max(4, Math.floor(heapMb / 8))) })
    let setReady = (): void => {}
    const ready = new Promise<void>((resolve) => { setReady = resolve })
    const slot: Slot = { worker, dead: false, ready, setReady }
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m))
    worker.on('error', (err: Error & { code?: string }) => this.lose(slot, err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'crash', err))
    worker.on('exit', (code) => this.lose(slot, 'crash', new Error(`review worker exited with code ${code}`)))
    this.slots.push(slot)
    this.stats.started++
    return slot
  }

  private onMessage (slot: Slot, m: FromWorker): void {
    if (m.type === 'ready') {
      slot.setReady()
      return
    }
    const job = slot.job
    if (slot.dead || job === undefined || job.id !== m.id) return
    if (m.type === 'decoded') {
      job.header = m.header
      return
    }
    slot.job = undefined
    if (m.type === 'done') this.settle(job, { kind: 'done', json: m.json, summary: m.summary, ...(m.failure !== undefined ? { failure: m.failure } : {}) })
    else this.settle(job, { kind: 'bad', statusCode: m.statusCode, message: m.message, ...(m.code !== undefined ? { code: m.code } : {}), ...(m.reason !== undefined ? { reason: m.reason } : {}) })
    this.idle(slot)
    this.pump()
  }

  private idle (slot: Slot): void {
    if (this.queue.length > 0) return
    slot.idleTimer = setTimeout(() => {
      if (slot.job !== undefined || slot.dead) return
      this.stop(slot)
    }, this.opts.idleMs ?? 30_000)
    slot.idleTimer.unref()
  }

  /** The budget ran out: a queued job leaves the queue; a running one takes its worker down with it. */
  private expire (job: Job): void {
    if (job.settled) return
    const slot = job.slot
    if (slot === undefined) {
      const i = this.queue.indexOf(job)
      if (i !== -1) this.queue.splice(i, 1)
      this.settle(job, { kind: 'stopped', why: 'time' })
      return
    }
    this.stats.stopped++
    this.stop(slot)
    this.settle(job, { kind: 'stopped', why: 'time', ...(job.header !== undefined ? { header: job.header } : {}) })
  }

  /** A worker died on its own (out of heap, or a bug): its review is stopped, a new worker takes the queue. */
  private lose (slot: Slot, why: StopReason, error: Error): void {
    if (slot.dead) return
    slot.setReady()
    this.stop(slot)
    this.stats.stopped++
    const job = slot.job
    this.opts.log.warn({ err: error, why }, 'review worker stopped')
    if (job === undefined) return
    if (why === 'crash' && job.retried !== true && !job.settled && !this.closed) {
      // A worker lost to something other than this review's cost (it failed to start, or died): the review
      // is not to blame, so it gets one fresh worker, within its own budget, before it becomes an error.
      job.retried = true
      job.slot = undefined
      this.queue.unshift(job)
      return
    }
    this.settle(job, { kind: 'stopped', why, error, ...(job.header !== undefined ? { header: job.header } : {}) })
  }

  /** Terminates a worker; the queue moves on once it has exited. */
  private stop (slot: Slot): void {
    this.remove(slot)
    this.exiting++
    void slot.worker.terminate().finally(() => {
      this.exiting--
      this.pump()
    })
  }

  private remove (slot: Slot): void {
    slot.dead = true
    if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer)
    const i = this.slots.indexOf(slot)
    if (i !== -1) this.slots.splice(i, 1)
  }

  private settle (job: Job, result: PoolResult): void {
    if (job.settled) return
    job.settled = true
    if (job.timer !== undefined) clearTimeout(job.timer)
    job.resolve(result)
  }
}
