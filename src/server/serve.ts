// Lifecycle of `nim-admission serve`: certificates, both listeners, live certificate reload, drain.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { AddressInfo } from 'node:net'
import type { Server as HttpsServer } from 'node:https'
import type { FastifyInstance } from 'fastify'
import { pino, type Logger } from 'pino'
import { TlsReloader } from './tls-reloader.js'
import { createMetrics, type Metrics } from './metrics.js'
import { normalizeOptions, type ServeOptions } from './options.js'
import { buildWebhookApp } from './webhook-app.js'
import { buildHealthApp } from './health-app.js'
import { secureContextOptions } from './connections.js'

export interface RunningServer {
  options: ServeOptions
  webhook: FastifyInstance
  health: FastifyInstance
  metrics: Metrics
  logger: Logger
  /** Ports actually bound (useful with port 0). */
  port: number
  metricsPort: number
  caPath: string
  /** Flip readiness, keep serving for the drain delay, then finish in-flight reviews and close. */
  shutdown (): Promise<void>
}

export function createLogger (level: ServeOptions['logLevel']): Logger {
  const options = {
    level,
    base: { service: 'nim-admission' },
    // The review line is built field by field and never includes userInfo or headers; this guards the
    // few places that log an object whole (errors), at no cost per review.
    redact: { paths: ['userInfo', 'headers.authorization'], remove: true }
  }
  // pino's default stdout stream writes asynchronously through libuv's thread pool: one hand-off and
  // one wake-up per review line, ~20 µs of a review's CPU in the bench. A synchronous write is one
  // cheap syscall, and the line is out before the review is answered.
  return pino(options, pino.destination({ dest: 1, sync: true }))
}

export async function startServer (partial: Partial<ServeOptions> = {}, logger?: Logger): Promise<RunningServer> {
  const options = normalizeOptions(partial)
  const log = logger ?? createLogger(options.logLevel)
  const certDir = resolve(options.certDir)
  const certPath = join(certDir, 'tls.crt')
  const keyPath = join(certDir, 'tls.key')
  const caPath = join(certDir, 'ca.crt')

  if (!existsSync(certPath) || !existsSync(keyPath)) {
    // Loaded only here: generating certificates needs node-forge, serving mounted ones does not.
    const { ensureServingCerts } = await import('../certs/index.js')
    const made = await ensureServingCerts({ dir: certDir, dnsNames: options.dnsNames })
    log.info({ caPath: made.caPath, certPath: made.certPath }, `generated development certificates; the CA to trust (caBundle) is ${made.caPath}`)
  }
  const reloader = new TlsReloader({ certPath, keyPath, ...(existsSync(caPath) ? { caPath } : {}), ...(options.clientCaFile !== undefined ? { clientCaPath: options.clientCaFile } : {}), log })
  const pair = reloader.current()

  const metrics = createMetrics()
  let draining = false
  // Overload is judged by how late the event loop runs, sampled over a window.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 })
  loopDelay.enable()
  let loopDelayMs = 0
  const loopTimer = setInterval(() => {
    loopDelayMs = loopDelay.count > 0 ? loopDelay.mean / 1e6 : 0
    loopDelay.reset()
  }, options.overloadWindowMs).unref()
  const readiness = {
    notReadyReason (): string | undefined {
      if (draining) return 'shutting down'
      if (reloader.isServingExpired()) return 'serving certificate has expired'
      if (loopDelayMs > options.maxEventLoopDelayMs) return `overloaded: event loop ${Math.round(loopDelayMs)} ms late`
      return undefined
    }
  }
  const servingExpiry = metrics.certExpiry.labels({ cert: 'serving' })
  const caExpiry = metrics.certExpiry.labels({ cert: 'ca' })
  const updateExpiry = (): void => {
    const current = reloader.current()
    servingExpiry.set((current.notAfter.getTime() - Date.now()) / 1000)
    if (current.caNotAfter !== undefined) caExpiry.set((current.caNotAfter.getTime() - Date.now()) / 1000)
  }
  updateExpiry()

  const webhook = buildWebhookApp({
    logger: log,
    metrics,
    bodyLimitBytes: options.bodyLimitBytes,
    requestTimeoutMs: options.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    largeBodyBytes: options.largeBodyBytes,
    maxLargeBodies: options.maxLargeBodies,
    reviewWorkers: options.reviewWorkers,
    reviewBudgetMs: options.reviewBudgetMs,
    budgetFailurePolicy: options.budgetFailurePolicy,
    reviewWorkerHeapMb: options.reviewWorkerHeapMb,
    // While draining, answers carry `Connection: close` so kept-alive clients reconnect to a ready replica.
    draining: () => draining,
    https: {
      ...secureContextOptions(pair),
      // A socket that never finishes its handshake (or never sends a ClientHello) is closed after this.
      handshakeTimeout: options.tlsHandshakeTimeoutMs,
      ...(pair.clientCa !== undefined ? { requestCert: true, rejectUnauthorized: true } : {})
    }
  })
  const health = buildHealthApp({ logger: log, metrics, readiness })

  await webhook.listen({ host: options.host, port: options.port })
  await health.listen({ host: options.metricsHost, port: options.metricsPort })
  // The whole context is replaced on reload (ciphers and client CA included), from the same options.
  reloader.start((next) => {
    ;(webhook.server as unknown as HttpsServer).setSecureContext(secureContextOptions(next))
    updateExpiry()
    log.info({ notAfter: next.notAfter }, 'TLS context reloaded')
  })
  const expiryTimer = setInterval(updateExpiry, 60_000).unref()

  const port = (webhook.server.address() as AddressInfo).port
  const metricsPort = (health.server.address() as AddressInfo).port
  log.info({ port, metricsPort, certDir }, 'nim-admission serving /validate and /mutate')

  let closing: Promise<void> | undefined
  const shutdown = async (): Promise<void> => {
    closing ??= (async () => {
      draining = true
      log.info({ delayMs: options.shutdownDelayMs }, 'shutting down: readiness off, still answering reviews while endpoints drain')
      await sleep(options.shutdownDelayMs)
      clearInterval(expiryTimer)
      clearInterval(loopTimer)
      loopDelay.disable()
      reloader.stop()
      await webhook.close()
      await health.close()
      log.info('stopped')
    })()
    return await closing
  }
  return { options, webhook, health, metrics, logger: log, port, metricsPort, caPath, shutdown }
}
