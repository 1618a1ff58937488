// A list/watch cache as client-go's Reflector keeps one, sized for 10,000 objects: the list is read in
// pages (limit/continue), each object is cut down by `transform` as it arrives (managedFields, status and
// everything else the applier does not read never reach the cache), and the watch carries
// timeoutSeconds (randomised, as client-go's 5-10 min) plus a client-side deadline. A 410 Gone relists at
// once; any other failure relists after an exponential backoff, keeping the last cache readable, and the
// relist reports as deleted whatever vanished meanwhile.
import type { Logger } from 'pino'
import { obj, str } from '../nimservice/json.js'
import { ApiError, apiMessage, apiStatus, type KubeHttp } from './http.js'

export interface ListPage { items: unknown[], resourceVersion: string, continue?: string }
export interface WatchEvent { type: string, object: unknown }

/** Where a reflector lists and watches; the apiserver's (kubeSource) or a test's. */
export interface ListWatchSource {
  list (opts: { limit: number, continue?: string }): Promise<ListPage>
  /** Resolves when the server ends the watch; rejects on failure; `signal` ends it early. */
  watch (opts: { resourceVersion: string, timeoutSeconds: number }, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void>
}

export interface ReflectorOptions<T> {
  /** What is watched, for logs and readiness ("NIMServices", "HorizontalPodAutoscalers"). */
  what: string
  source: ListWatchSource
  transform: (raw: unknown) => T | undefined
  keyOf: (item: T) => string
  versionOf: (item: T) => string
  pageSize?: number
  /** Lower bound of the server-side watch timeout; the actual one is 1-2x this (default 300 s). */
  minWatchTimeoutSeconds?: number
  backoff?: { initialMs: number, maxMs: number }
  logger: Logger
  onAdd?: (item: T) => void
  onUpdate?: (item: T, old: T) => void
  onDelete?: (item: T) => void
  onSynced?: () => void
  onError?: (err: unknown, willRetryInMs: number) => void
  /** Called after every page with the number of objects read so far (benchmarks). */
  onPage?: (read: number) => void
}

class Gone extends Error {}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  if (signal.aborted) return resolve()
  const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
  const timer = setTimeout(done, ms)
  signal.addEventListener('abort', done, { once: true })
})

export class Reflector<T> {
  readonly what: string
  readonly cache = new Map<string, T>()
  synced = false
  lastError: string | undefined
  lists = 0
  private readonly opts: ReflectorOptions<T>
  private readonly abort = new AbortController()
  private running: Promise<void> | undefined

  constructor (opts: ReflectorOptions<T>) {
    this.opts = opts
    this.what = opts.what
  }

  start (): void {
    this.running ??= this.loop()
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.running
  }

  private async loop (): Promise<void> {
    const signal = this.abort.signal
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 1000, maxMs: 30_000 }
    let failures = 0
    while (!signal.aborted) {
      try {
        let rv = await this.relist(signal)
        if (signal.aborted) return
        failures = 0
        this.lastError = undefined
        if (!this.synced) this.opts.logger.info({ what: this.opts.what, items: this.cache.size }, 'list synced')
        this.synced = true
        this.opts.onSynced?.()
        while (!signal.aborted) rv = await this.watchOnce(rv, signal)
      } catch (err) {
        if (signal.aborted) return
        // A 410 on a list is an expired continue token: start the list again.
        if (err instanceof Gone || apiStatus(err) === 410) {
          this.opts.logger.debug({ what: this.opts.what }, 'watch expired (410 Gone): relisting')
          continue
        }
        const delay = Math.min(maxMs, initialMs * 2 ** failures)
        failures++
        const status = apiStatus(err)
        this.synced = false
        this.lastError = status === undefined ? apiMessage(err) : `HTTP ${status}: ${apiMessage(err)}`
        this.opts.onError?.(err, delay)
        await sleep(delay, signal)
      }
    }
  }

  private async relist (signal: AbortSignal): Promise<string> {
    const seen = new Set<string>()
    let token: string | undefined
    let rv = ''
    do {
      const page = await this.opts.source.list({ limit: this.opts.pageSize ?? 500, ...(token !== undefined ? { continue: token } : {}) })
      if (signal.aborted) return rv
      rv = page.resourceVersion
      token = page.continue === '' ? undefined : page.continue
      for (const raw of page.items) {
        const item = this.opts.transform(raw)
        if (item === undefined) continue
        const key = this.opts.keyOf(item)
        seen.add(key)
        this.put(key, item)
      }
      this.opts.onPage?.(seen.size)
    } while (token !== undefined)
    for (const [key, item] of this.cache) {
      if (seen.has(key)) continue
      this.cache.delete(key)
      this.opts.onDelete?.(item)
    }
    this.lists++
    return rv
  }

  private put (key: string, item: T): void {
    const old = this.cache.get(key)
    this.cache.set(key, item)
    if (old === undefined) this.opts.onAdd?.(item)
    else if (this.opts.versionOf(old) !== this.opts.versionOf(item)) this.opts.onUpdate?.(item, old)
  }

  /** One watch from `rv`; resolves with the last resourceVersion seen when the server ends it. */
  private async watchOnce (rv: string, signal: AbortSignal): Promise<string> {
    const min = this.opts.minWatchTimeoutSeconds ?? 300
    const timeoutSeconds = Math.floor(min * (1 + Math.random()))
    // The server ends the watch after timeoutSeconds; if the connection died silently, this does.
    const deadline = AbortSignal.timeout((timeoutSeconds + 30) * 1000)
    let last = rv
    let failure: unknown
    const local = new AbortController()
    const both = AbortSignal.any([signal, deadline, local.signal])
    try {
      await this.opts.source.watch({ resourceVersion: rv, timeoutSeconds }, (e) => {
        if (failure !== undefined) return
        const meta = obj(obj(e.object)?.metadata)
        if (e.type === 'ERROR') {
          const status = obj(e.object)
          failure = status?.code === 410 ? new Gone() : new ApiError(typeof status?.code === 'number' ? status.code : 500, status, `watch ${this.opts.what}`)
          local.abort()
          return
        }
        const version = str(meta?.resourceVersion)
        if (version !== undefined) last = version
        if (e.type === 'BOOKMARK') return
        const item = this.opts.transform(e.object)
        if (item === undefined) return
        const key = this.opts.keyOf(item)
        if (e.type === 'DELETED') {
          const old = this.cache.get(key)
          this.cache.delete(key)
          this.opts.onDelete?.(old ?? item)
        } else {
          this.put(key, item)
        }
      }, both)
    } catch (err) {
      if (failure === undefined && !signal.aborted && !deadline.aborted) throw err
    }
    if (failure !== undefined) throw failure
    return last
  }
}

/** Lists and watches `path` (a collection URL) on the apiserver, with an optional label or field selector. */
export function kubeSource (http: KubeHttp, path: string, selectors: { labelSelector?: string, fieldSelector?: string } = {}): ListWatchSource {
  const query = (params: Record<string, string | number | boolean | undefined>): string => {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries({ ...selectors, ...params })) if (v !== undefined) q.set(k, String(v))
    return `${path}?${q.toString()}`
  }
  return {
    async list ({ limit, continue: token }) {
      const body = obj(await http.request('GET', query({ limit, continue: token }), { timeoutMs: 60_000 })) ?? {}
      const meta = obj(body.metadata) ?? {}
      return {
        items: Array.isArray(body.items) ? body.items : [],
        resourceVersion: str(meta.resourceVersion) ?? '',
        ...(str(meta.continue) !== undefined ? { continue: str(meta.continue) as string } : {})
      }
    },
    async watch ({ resourceVersion, timeoutSeconds }, onEvent, signal) {
      await http.stream(query({ watch: 1, resourceVersion, timeoutSeconds, allowWatchBookmarks: true }), (o) => {
        const e = obj(o)
        if (e !== undefined) onEvent({ type: str(e.type) ?? '', object: e.object })
      }, signal)
    }
  }
}
