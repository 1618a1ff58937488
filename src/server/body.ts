// Reading a review's body: the JSON parser of the webhook app. Small bodies are parsed here, in the
// event loop, as fastify would; a large one is only collected, into shared memory, for the review pool
// (a worker thread parses and judges it), and only a few large bodies are read at once: a 7 MiB body
// becomes ~50-100 MB of objects when parsed, so their number, not the connection count, bounds memory.
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'

/** A 4xx before review; `code` keeps fastify's names, so the bad-request reasons stay what they were. */
export class BodyError extends Error {
  constructor (message: string, readonly code: string, readonly statusCode: number) { super(message) }
}

/** The `reason` a refusal reports: fastify's code without its prefix (`FST_ERR_CTP_EMPTY_JSON_BODY` -> `empty_json_body`). */
export const reasonOf = (code: string | undefined): string => (code ?? 'bad_request').replace(/^FST_ERR_CTP_/, '').toLowerCase()

export const tooLarge = (): BodyError => new BodyError('Request body is too large', 'FST_ERR_CTP_BODY_TOO_LARGE', 413)
const badLength = (): BodyError => new BodyError('Request body size did not match Content-Length', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400)
const emptyBody = (): BodyError => new BodyError("Body cannot be empty when content-type is set to 'application/json'", 'FST_ERR_CTP_EMPTY_JSON_BODY', 400)

/**
 * JSON.parse of the body. `__proto__` and `constructor` are ordinary keys: JSON.parse makes them own
 * properties (it defines, never assigns), so they cannot reach a prototype; fastify's default parser
 * refused them with a 400 that the apiserver reports as "unknown reason".
 */
export function parseJsonBytes (bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw emptyBody()
  // A UTF-8 byte-order mark is skipped, as fastify's parser (and the CLI's `review`) did.
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + bom, bytes.length - bom).toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    throw new BodyError("Body is not valid JSON but content-type is set to 'application/json'", 'FST_ERR_CTP_INVALID_JSON_BODY', 400)
  }
}

/** A body too large to judge in the event loop, in memory the review pool's worker reads without a copy. */
export class LargeBody {
  private released = false
  /** `startedAt`: when its headers were in (performance.now()); its budget counts from there, wait and upload included. */
  constructor (readonly bytes: Uint8Array, private readonly onRelease: () => void, readonly startedAt: number = performance.now()) {}
  /** Frees its slot; idempotent. */
  release (): void {
    if (this.released) return
    this.released = true
    this.onRelease()
  }
}

/** A counting semaphore whose waiters can give up (a client that disconnects while it waits). */
export class Slots {
  private used = 0
  private readonly waiters: Array<() => void> = []
  constructor (readonly size: number) {}

  get inUse (): number { return this.used }
  get waiting (): number { return this.waiters.length }

  /** Resolves with a release function once a slot is free; `cancel` (if it fires first) rejects. */
  async acquire (onCancel: (cancel: (err: Error) => void) => void): Promise<() => void> {
    if (this.used < this.size) {
      this.used++
      return this.releaser()
    }
    return await new Promise((resolve, reject) => {
      const grant = (): void => resolve(this.releaser())
      this.waiters.push(grant)
      onCancel((err) => {
        const i = this.waiters.indexOf(grant)
        if (i === -1) return
        this.waiters.splice(i, 1)
        reject(err)
      })
    })
  }

  private releaser (): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = this.waiters.shift()
      if (next !== undefined) next() // the slot passes straight to the next waiter
      else this.used--
    }
  }
}

export interface BodyReaderOptions {
  limitBytes: number
  /** Bodies above this many bytes (or of unknown length) go to the review pool. */
  largeBytes: number
  /** Large bodies being read, parsed or judged at once. */
  largeSlots: Slots
}

type Done = (err: Error | null, body?: unknown) => void

/** The fastify content-type parser for application/json (called with the raw request stream). */
export function jsonBodyReader (opts: BodyReaderOptions): (request: { raw: IncomingMessage, headers: IncomingMessage['headers'] }, payload: Readable, done: Done) => void {
  return (request, payload, done) => {
    const startedAt = performance.now()
    const header = request.headers['content-length']
    const length = header === undefined ? undefined : Number(header)
    if (length !== undefined && length > opts.limitBytes) {
      done(tooLarge())
      return
    }
    if (length !== undefined && length <= opts.largeBytes) {
      readSmall(payload, length, opts.limitBytes, done)
      return
    }
    // Large, or chunked (no length: only direct callers send that; the apiserver always sets it). The
    // stream stays paused until a slot is ours, so a waiting body is held by TCP, not in memory.
    let cancel: ((err: Error) => void) | undefined
    const onClose = (): void => cancel?.(new BodyError('client went away while waiting to send a large body', 'client_closed', 400))
    request.raw.once('close', onClose)
    opts.largeSlots.acquire((c) => { cancel = c }).then((release) => {
      request.raw.removeListener('close', onClose)
      if (request.raw.destroyed) {
        release()
        done(new BodyError('client went away', 'client_closed', 400))
        return
      }
      readLarge(request.raw, payload, length, opts.limitBytes, (err, bytes) => {
        if (err !== null || bytes === undefined) {
          release()
          done(err ?? badLength())
          return
        }
        done(null, new LargeBody(bytes, release, startedAt))
      })
    }, (err: Error) => { done(err) })
  }
}

/** Chunks, concatenated once at the end: what fastify's own reader does, on the hot path. */
function readSmall (payload: Readable, length: number, limit: number, done: Done): void {
  const chunks: Buffer[] = []
  let received = 0
  const onData = (chunk: Buffer): void => {
    received += chunk.length
    if (received > limit || received > length) {
      cleanup()
      done(received > limit ? tooLarge() : badLength())
      return
    }
    chunks.push(chunk)
  }
  const onEnd = (err?: Error): void => {
    cleanup()
    if (err !== undefined) {
      done(Object.assign(err, { statusCode: 400 }))
      return
    }
    if (received !== length) {
      done(badLength())
      return
    }
    let body: unknown
    try {
      body = parseJsonBytes(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, received))
    } catch (e) {
      done(e as Error)
      return
    }
    done(null, body)
  }
  const cleanup = (): void => {
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onEnd)
  }
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onEnd)
  payload.resume()
}

/**
 * Into a SharedArrayBuffer: posted to a worker it is shared, not copied, and the event loop can still
 * read it (to answer by the budget when the worker never got to it). With a Content-Length it is
 * allocated once at its final size.
 */
function readLarge (raw: IncomingMessage, payload: Readable, length: number | undefined, limit: number, done: (err: Error | null, bytes?: Uint8Array) => void): void {
  let target = length !== undefined ? new Uint8Array(new SharedArrayBuffer(length)) : undefined
  const chunks: Buffer[] = []
  let received = 0
  let finished = false
  const finish = (err: Error | null, bytes?: Uint8Array): void => {
    if (finished) return
    finished = true
    payload.removeListener('data', onData)
    payload.removeListener('end', onEnd)
    payload.removeListener('error', onEnd)
    raw.removeListener('close', onClose)
    done(err, bytes)
  }
  const onData = (chunk: Buffer): void => {
    if (received + chunk.length > limit || (length !== undefined && received + chunk.length > length)) {
      finish(received + chunk.length > limit ? tooLarge() : badLength())
      payload.resume() // let the rest drain; the error answers the request
      return
    }
    if (target !== undefined) target.set(chunk, received)
    else chunks.push(chunk)
    received += chunk.length
  }
  const onEnd = (err?: Error): void => {
    if (err !== undefined) {
      finish(Object.assign(err, { statusCode: 400 }))
      return
    }
    if (length !== undefined && received !== length) {
      finish(badLength())
      return
    }
    if (target === undefined) {
      target = new Uint8Array(new SharedArrayBuffer(received))
      let at = 0
      for (const c of chunks) { target.set(c, at); at += c.length }
    }
    finish(null, target)
  }
  // A connection cut mid-body (the request timeout, a client gone) may end the stream with neither
  // 'end' nor 'error': the slot must come back all the same.
  const onClose = (): void => finish(new BodyError('client went away while sending a large body', 'client_closed', 400))
  payload.on('data', onData)
  payload.on('end', onEnd)
  payload.on('error', onEnd)
  raw.once('close', onClose)
  payload.resume()
}
