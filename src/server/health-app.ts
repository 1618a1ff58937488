// Plain-HTTP probes and metrics on their own port, so the kubelet and Prometheus never need TLS.
import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Metrics } from './metrics.js'

export interface Readiness {
  /** Undefined when ready; otherwise why not (draining, serving certificate expired, overloaded). */
  notReadyReason (): string | undefined
}

export function buildHealthApp (opts: { logger: Logger, metrics: Metrics, readiness: Readiness }): FastifyInstance {
  const app = Fastify({ loggerInstance: opts.logger, logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    const reason = opts.readiness.notReadyReason()
    if (reason === undefined) return { status: 'ready' }
    return reply.code(503).send({ status: 'not ready', reason })
  })
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.metrics.registry.metrics()
    return reply.type(opts.metrics.registry.contentType).send(body)
  })
  return app
}
