// TLS test helpers: a kubelet-style Secret volume writer, handshakes and HTTPS requests that report the
// peer certificate. Everything talks to 127.0.0.1 only.
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { request, type Agent } from 'node:https'
import { connect, type PeerCertificate } from 'node:tls'
import { join } from 'node:path'

/**
 * Writes files the way the kubelet updates a Secret volume (pkg/volume/util/atomic_writer.go): a new
 * `..<timestamp>` directory, a `..data_tmp` symlink to it renamed over `..data`, user-visible
 * `name -> ..data/name` symlinks, then the old directory removed.
 */
export class KubeletVolume {
  private generation = 0
  constructor (readonly dir: string) {}

  async write (files: Record<string, string>): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    const stamp = `..${new Date().toISOString().replace(/[-:.TZ]/g, '_')}${++this.generation}`
    await mkdir(join(this.dir, stamp))
    for (const [name, text] of Object.entries(files)) await writeFile(join(this.dir, stamp, name), text, { mode: 0o600 })
    let old: string | undefined
    try { old = await readlink(join(this.dir, '..data')) } catch { old = undefined }
    await rm(join(this.dir, '..data_tmp'), { force: true })
    await symlink(stamp, join(this.dir, '..data_tmp'))
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'))
    for (const name of Object.keys(files)) {
      try { await symlink(join('..data', name), join(this.dir, name)) } catch { /* already there */ }
    }
    if (old !== undefined) await rm(join(this.dir, old), { recursive: true, force: true })
  }
}

export interface HandshakeResult { authorized: boolean; authorizationError?: string; serialNumber: string }

/** One TLS handshake; `rejectUnauthorized: false` so the verdict (not an exception) is returned. */
export async function handshake (port: number, opts: { ca: string; servername?: string; host?: string }): Promise<HandshakeResult> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: opts.host ?? '127.0.0.1', port, ca: opts.ca, ...(opts.servername === undefined ? {} : { servername: opts.servername }), rejectUnauthorized: false }, () => {
      const result: HandshakeResult = { authorized: socket.authorized, serialNumber: socket.getPeerCertificate().serialNumber }
      if (socket.authorizationError !== undefined && socket.authorizationError !== null) result.authorizationError = String((socket.authorizationError as unknown as { code?: string }).code ?? socket.authorizationError)
      socket.end()
      resolve(result)
    })
    socket.on('error', reject)
  })
}

export interface HttpsResult { status: number; serialNumber: string; reusedSocket: boolean; body: string }

/** A POST over HTTPS to 127.0.0.1 with hostname verification against `servername`. */
export async function post (port: number, opts: { ca: string; servername: string; agent: Agent | false; body?: string }): Promise<HttpsResult> {
  return await new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: '/validate', method: 'POST', ca: opts.ca, servername: opts.servername, agent: opts.agent,
      headers: { 'content-type': 'application/json' }, timeout: 5000
    }, (res) => {
      const peer = (res.socket as unknown as { getPeerCertificate: () => PeerCertificate }).getPeerCertificate()
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serialNumber: peer.serialNumber, reusedSocket: req.reusedSocket, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end(opts.body ?? '{"kind":"AdmissionReview"}')
  })
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually (check: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await sleep(stepMs)
  }
}

/** A log that records calls, shaped like the pino methods the reloader uses. */
export function recordingLog (): { entries: Array<{ level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string }>; info: (obj: object, msg: string) => void; warn: (obj: object, msg: string) => void; error: (obj: object, msg: string) => void } {
  const entries: Array<{ level: 'info' | 'warn' | 'error'; obj: Record<string, unknown>; msg: string }> = []
  const at = (level: 'info' | 'warn' | 'error') => (obj: object, msg: string): void => { entries.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { entries, info: at('info'), warn: at('warn'), error: at('error') }
}
