// The applier's HTTP to the apiserver: plain JSON in and out (no generated model classes, so a list page
// is one JSON.parse and objects can be cut down at once), and watches read line by line with a deadline
// of their own, so that a silently dead connection cannot stall a watch forever.
import { request as httpsRequest, type RequestOptions } from 'node:https'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { createInterface } from 'node:readline'
import type { KubeConfig } from '@kubernetes/client-node'

/** A non-2xx answer: `code` is the HTTP status, `body` the apiserver's Status when it sent one. */
export class ApiError extends Error {
  readonly code: number
  readonly body: unknown
  constructor (code: number, body: unknown, what: string) {
    const message = (body as { message?: unknown } | null)?.message
    super(`${what}: HTTP ${code}${typeof message === 'string' ? `: ${message}` : ''}`)
    this.name = 'ApiError'
    this.code = code
    this.body = body
  }
}

export interface RequestOpts {
  body?: unknown
  contentType?: string
  /** Milliseconds before the request is abandoned (default 30 s). */
  timeoutMs?: number
}

export interface KubeHttp {
  request (method: string, path: string, opts?: RequestOpts): Promise<unknown>
  /** Streams a watch: one parsed JSON value per line; resolves when the server closes it. */
  stream (path: string, onObject: (o: unknown) => void, signal: AbortSignal): Promise<void>
}

async function options (kc: KubeConfig, method: string, headers: Record<string, string>): Promise<{ url: URL, opts: RequestOptions }> {
  const server = kc.getCurrentCluster()?.server
  if (server === undefined) throw new Error('kubeconfig has no current cluster')
  const opts: RequestOptions = { method, headers: { accept: 'application/json', ...headers } }
  await kc.applyToHTTPSOptions(opts)
  return { url: new URL(server), opts }
}

function send (url: URL, opts: RequestOptions, payload: string | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'http:' ? httpRequest : httpsRequest)(url, { ...opts, signal }, resolve)
    req.on('error', reject)
    req.end(payload)
  })
}

export function kubeHttp (kc: KubeConfig): KubeHttp {
  const base = (): string => (kc.getCurrentCluster()?.server ?? '').replace(/\/$/, '')
  return {
    async request (method, path, opts = {}) {
      const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body)
      const { opts: reqOpts } = await options(kc, method, payload === undefined ? {} : { 'content-type': opts.contentType ?? 'application/json' })
      const res = await send(new URL(base() + path), reqOpts, payload, AbortSignal.timeout(opts.timeoutMs ?? 30_000))
      const chunks: Buffer[] = []
      for await (const c of res) chunks.push(c as Buffer)
      const text = Buffer.concat(chunks).toString()
      let body: unknown = text
      try { body = text === '' ? undefined : JSON.parse(text) } catch { /* keep the text */ }
      const status = res.statusCode ?? 0
      if (status < 200 || status > 299) throw new ApiError(status, body, `${method} ${path.split('?')[0] ?? path}`)
      return body
    },
    async stream (path, onObject, signal) {
      const { opts } = await options(kc, 'GET', {})
      const res = await send(new URL(base() + path), opts, undefined, signal)
      const status = res.statusCode ?? 0
      if (status !== 200) {
        const chunks: Buffer[] = []
        for await (const c of res) chunks.push(c as Buffer)
        let body: unknown
        try { body = JSON.parse(Buffer.concat(chunks).toString()) } catch { body = undefined }
        throw new ApiError(status, body, `watch ${path.split('?')[0] ?? path}`)
      }
      const lines = createInterface({ input: res, crlfDelay: Infinity })
      try {
        for await (const line of lines) {
          if (line.trim() === '') continue
          onObject(JSON.parse(line))
        }
      } finally {
        lines.close()
        res.destroy()
      }
    }
  }
}

/** The HTTP status of a failed call (ApiError, or a client-node ApiException), if it is one. */
export function apiStatus (err: unknown): number | undefined {
  const e = err as { code?: unknown, statusCode?: unknown } | null
  if (typeof e?.code === 'number') return e.code
  if (typeof e?.statusCode === 'number') return e.statusCode
  return undefined
}

/** The apiserver's Status message of a failed call, or the error's own message; one line. */
export function apiMessage (err: unknown): string {
  const body = (err as { body?: unknown } | null)?.body
  let parsed: unknown = body
  if (typeof body === 'string') {
    try { parsed = JSON.parse(body) } catch { parsed = undefined }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message
  if (typeof message === 'string' && message !== '') return message.split('\n')[0] ?? message
  if (typeof body === 'string' && body.trim() !== '') return body.trim().split('\n')[0] ?? body
  const own = err instanceof Error ? err.message : String(err)
  // client-node's ApiException message is "HTTP-Code: 404\nMessage: ...\nBody: ...": keep the useful part.
  const m = /Message: (.*)/.exec(own)
  return m?.[1] ?? own.split('\n')[0] ?? own
}
