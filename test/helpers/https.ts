// Minimal HTTPS/HTTP clients for tests: a real TLS handshake against the server's own CA.
import { request as httpsRequest, Agent } from 'node:https'
import { request as httpRequest } from 'node:http'

export interface Reply { status: number, body: string, json<T = any>(): T } // eslint-disable-line @typescript-eslint/no-explicit-any

function collect (res: import('node:http').IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('error', reject)
    res.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body) })
    })
  })
}

export function postReview (url: string, body: unknown, opts: { ca: string, agent?: Agent, servername?: string, contentType?: string }): Promise<Reply> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: 'POST',
      ca: opts.ca,
      ...(opts.agent !== undefined ? { agent: opts.agent } : { agent: false }),
      ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      headers: { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) }
    }, (res) => { collect(res).then(resolve, reject) })
    req.on('error', reject)
    req.end(payload)
  })
}

export function get (url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (res) => { collect(res).then(resolve, reject) }).on('error', reject).end()
  })
}
