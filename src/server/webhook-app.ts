// The HTTPS admission endpoints as a fastify app: parse, decode, answer, count, log one line.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { ServerOptions as HttpsOptions } from 'node:https'
import type { Logger } from 'pino'
import { BadReview, decodeReview, encodeReview, type AdmissionRequest } from '../admission/review.js'
import { internalErrorResponse, refusalBody } from '../admission/refusal.js'
import { HANDLERS, objectName, type Endpoint, type Outcome } from '../admission/handlers.js'
import type { Metrics } from './metrics.js'

export interface WebhookAppOptions {
  logger: Logger
  metrics: Metrics
  https?: HttpsOptions
  bodyLimitBytes: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  maxConnections?: number
  /**
   * True once shutdown has begun. Every answer then carries `Connection: close`, so kept-alive clients
   * leave this replica one by one after a complete response, instead of losing a request written to a
   * socket that the final close destroys (the apiserver does not replay a POST).
   */
  draining?: () => boolean
}

function badRequest (reply: FastifyReply, metrics: Metrics, statusCode: number, reason: string, message: string, draining?: () => boolean): FastifyReply {
  metrics.badRequests.inc({ reason })
  if (draining?.() === true) void reply.header('connection', 'close')
  return reply.code(statusCode).send(refusalBody(statusCode, reason, message))
}

/** How often Node looks for requests past their deadline: a quarter of the timeout, within 100 ms..1 s. */
export function connectionsCheckingInterval (requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 4)))
}

/** The one log line per review: who asked for what, and the verdict. Never userInfo, never the object. */
function reviewLine (endpoint: Endpoint, req: AdmissionRequest, outcome: Outcome, seconds: number): Record<string, unknown> {
  const line: Record<string, unknown> = {
    uid: req.uid,
    endpoint,
    kind: req.kind.kind,
    namespace: req.namespace,
    name: objectName(req),
    operation: req.operation,
    subResource: req.subResource,
    dryRun: req.dryRun,
    allowed: outcome.response.allowed
  }
  if (outcome.skipped !== undefined) line.skipped = outcome.skipped
  if (outcome.causes.length > 0) line.causes = outcome.causes.map((c) => `${c.code} ${c.field}`)
  if (outcome.warnings.length > 0) line.warnings = outcome.warnings.map((w) => w.code)
  if (outcome.response.patch !== undefined) line.patched = true
  line.durationMs = Math.round(seconds * 1e6) / 1e3
  return line
}

export function buildWebhookApp (opts: WebhookAppOptions): FastifyInstance {
  const { logger, metrics } = opts
  // No logger for fastify itself: the route logs one line per review through `logger`, and the error
  // handler logs what fails before a review. Given a logger, fastify would also time every response
  // and attach and remove two listeners per request (a child logger per request cost ~6 µs too).
  const app = Fastify({
    bodyLimit: opts.bodyLimitBytes,
    requestTimeout: opts.requestTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    // Reviews arriving on a kept-alive connection while we drain are still answered, never 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Node enforces requestTimeout/headersTimeout from a timer that runs every 30 s by default, so a
    // slowloris client would be held up to 30 s past the deadline: check at a quarter of the timeout.
    ...(opts.https !== undefined ? { https: { connectionsCheckingInterval: connectionsCheckingInterval(opts.requestTimeoutMs), ...opts.https } } : {})
  }) as unknown as FastifyInstance
  // AdmissionReviews are JSON; anything else is a 415, not a body we try to read.
  app.removeContentTypeParser(['text/plain'])
  if (opts.maxConnections !== undefined) app.server.maxConnections = opts.maxConnections
  // Slow clients: the whole request, headers included, must arrive within requestTimeout.
  app.server.headersTimeout = Math.min(opts.requestTimeoutMs, 60_000)

  const draining = opts.draining

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400
    const reason = (err.code ?? 'bad_request').replace(/^FST_ERR_CTP_/, '').toLowerCase()
    if (err.statusCode === undefined || err.statusCode >= 500) logger.warn({ err }, 'request failed before review')
    return badRequest(reply, metrics, status, reason, err.message, draining)
  })

  const route = (endpoint: Endpoint) => async (request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now()
    let review
    try {
      review = decodeReview(request.body)
    } catch (err) {
      if (err instanceof BadReview) return badRequest(reply, metrics, err.statusCode, err.reason, err.message, draining)
      throw err
    }
    const req = review.request
    let outcome: Outcome
    try {
      outcome = HANDLERS[endpoint](req)
    } catch (err) {
      logger.error({ err, uid: req.uid, endpoint }, 'review failed')
      metrics.internalErrors.inc({ endpoint })
      outcome = { response: internalErrorResponse(req.uid), causes: [], warnings: [] }
    }
    const { response } = outcome
    const seconds = (performance.now() - started) / 1000
    metrics.requests.inc({ endpoint, operation: req.operation, allowed: response.allowed ? 'true' : 'false', dry_run: req.dryRun ? 'true' : 'false' })
    metrics.duration.observe({ endpoint }, seconds)
    for (const c of outcome.causes) metrics.violations.inc({ rule: c.code })
    for (const w of outcome.warnings) metrics.warnings.inc({ code: w.code })
    logger.info(reviewLine(endpoint, req, outcome, seconds), 'review')
    if (draining?.() === true) void reply.header('connection', 'close')
    return reply.send(encodeReview(review.apiVersion, response))
  }

  app.post('/validate', route('validate'))
  app.post('/mutate', route('mutate'))
  return app
}
