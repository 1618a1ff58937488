// Plain-HTTP probes and metrics for the applier: /healthz (the process runs), /readyz (the NIMService
// watch has synced), /metrics (its own registry).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

export interface HealthServer {
  server: Server
  port: number
  close (): Promise<void>
}

export async function startHealthServer (opts: { host: string, port: number, registry: Registry, notReadyReason: () => string | undefined }): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const json = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
      res.end(JSON.stringify(body))
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { status: 'method not allowed' })
    if (path === '/healthz') return json(200, { status: 'ok' })
    if (path === '/readyz') {
      const reason = opts.notReadyReason()
      return reason === undefined ? json(200, { status: 'ready' }) : json(503, { status: 'not ready', reason })
    }
    if (path === '/metrics') {
      opts.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': opts.registry.contentType })
        res.end(body)
      }, (err: unknown) => json(500, { status: 'error', reason: err instanceof Error ? err.message : String(err) }))
      return
    }
    json(404, { status: 'not found' })
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
