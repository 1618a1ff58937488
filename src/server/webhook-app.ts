// The HTTPS admission endpoints as a fastify app: parse, decode, answer, count, log one line. Small
// bodies are judged here, in the event loop; large ones in the review pool, under a time budget.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { ServerOptions as HttpsOptions } from 'node:https'
import type { ResourceLimits, Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { BadReview, decodeReview, encodeReview } from '../admission/review.js'
import { budgetResponse, internalErrorResponse, refusalBody, type BudgetFailurePolicy } from '../admission/refusal.js'
import { HANDLERS, type Endpoint, type Outcome } from '../admission/handlers.js'
import type { Metrics } from './metrics.js'
import { defaultOptions } from './options.js'
import { LargeBody, Slots, jsonBodyReader, reasonOf } from './body.js'
import { scanReviewHeader } from './review-header.js'
import { ReviewPool } from './review-pool.js'
import { clip, headerOf, reviewLine, summarize, type ReviewHeader, type ReviewSummary } from './review-line.js'
import { closeSilentConnections, limitConnectionsPerIp } from './connections.js'

export interface WebhookAppOptions {
  logger: Logger
  metrics: Metrics
  https?: HttpsOptions
  bodyLimitBytes: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  maxConnections?: number
  maxConnectionsPerIp?: number
  /**
   * True once shutdown has begun. Every answer then carries `Connection: close`, so kept-alive clients
   * leave this replica one by one after a complete response, instead of losing a request written to a
   * socket that the final close destroys (the apiserver does not replay a POST).
   */
  draining?: () => boolean
  /** Bodies above this go to the review pool (see options.ts for these five). */
  largeBodyBytes?: number
  maxLargeBodies?: number
  reviewWorkers?: number
  reviewBudgetMs?: number
  budgetFailurePolicy?: BudgetFailurePolicy
  reviewWorkerHeapMb?: number
  /** Makes the pool's workers; tests give their own. */
  createWorker?: (resourceLimits: ResourceLimits) => Worker
  /** A pool made by the caller (its budget is then the pool's); closed with the app. */
  pool?: ReviewPool
}

/** A 4xx's reason label: fastify's error code without its prefix, as before the body reader was ours. */

/** An error as logged: its message and stack clipped (a message may quote what a caller sent). */
function loggedError (err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: clip(String(err), 1024) }
  return { type: err.name, message: clip(err.message, 1024), ...(err.stack !== undefined ? { stack: clip(err.stack, 4096) } : {}) }
}

/** How often Node looks for requests past their deadline: a quarter of the timeout, within 100 ms..1 s. */
export function connectionsCheckingInterval (requestTimeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 4)))
}

export function buildWebhookApp (opts: WebhookAppOptions): FastifyInstance {
  const { logger, metrics } = opts
  const budgetMs = opts.pool?.budgetMs ?? opts.reviewBudgetMs ?? defaultOptions.reviewBudgetMs
  const policy = opts.budgetFailurePolicy ?? defaultOptions.budgetFailurePolicy
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
  // AdmissionReviews are JSON, read by our own reader (body.ts); anything else is a 415.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', jsonBodyReader({
    limitBytes: opts.bodyLimitBytes,
    largeBytes: opts.largeBodyBytes ?? defaultOptions.largeBodyBytes,
    largeSlots: new Slots(opts.maxLargeBodies ?? defaultOptions.maxLargeBodies)
  }) as never)
  const pool = opts.pool ?? new ReviewPool({
    workers: opts.reviewWorkers ?? defaultOptions.reviewWorkers,
    budgetMs,
    heapMb: opts.reviewWorkerHeapMb ?? defaultOptions.reviewWorkerHeapMb,
    log: logger,
    ...(opts.createWorker !== undefined ? { createWorker: opts.createWorker } : {})
  })
  app.addHook('onClose', async () => { await pool.close() })
  if (opts.maxConnections !== undefined) app.server.maxConnections = opts.maxConnections
  if (opts.maxConnectionsPerIp !== undefined) {
    limitConnectionsPerIp(app.server, opts.maxConnectionsPerIp, () => metrics.connectionsRefused.inc({ reason: 'per_ip_limit' }))
  }
  if (opts.https !== undefined) {
    app.server.on('tlsClientError', () => metrics.connectionsRefused.inc({ reason: 'tls_handshake' }))
    closeSilentConnections(app.server, opts.requestTimeoutMs, () => metrics.connectionsRefused.inc({ reason: 'no_request' }))
  }
  // Slow clients: the whole request, headers included, must arrive within requestTimeout.
  app.server.headersTimeout = Math.min(opts.requestTimeoutMs, 60_000)

  const draining = opts.draining

  const badRequest = (reply: FastifyReply, statusCode: number, reason: string, message: string): FastifyReply => {
    metrics.badRequests.inc({ reason })
    // Logged (clipped): a review the apiserver sent and we refused shows there only as "unknown reason".
    logger.warn({ statusCode, reason, message: clip(message, 256) }, 'request refused before review')
    if (draining?.() === true) void reply.header('connection', 'close')
    return reply.code(statusCode).send(refusalBody(statusCode, reason, message))
  }

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400
    if (err.statusCode === undefined || err.statusCode >= 500) logger.warn({ err }, 'request failed before review')
    return badRequest(reply, status, reasonOf(err.code), err.message)
  })

  const record = (endpoint: Endpoint, s: ReviewSummary, seconds: number, extra?: Record<string, unknown>): void => {
    metrics.requests.inc({ endpoint, operation: s.header.operation, allowed: s.allowed ? 'true' : 'false', dry_run: s.header.dryRun ? 'true' : 'false' })
    metrics.duration.observe({ endpoint }, seconds)
    for (const c of s.causes) metrics.violations.inc({ rule: c.code })
    for (const w of s.warnings) metrics.warnings.inc({ code: w })
    if (extra === undefined) logger.info(reviewLine(endpoint, s, seconds), 'review')
    else logger.warn(reviewLine(endpoint, s, seconds, extra), 'review')
  }

  const send = (reply: FastifyReply, payload: unknown): FastifyReply => {
    if (draining?.() === true) void reply.header('connection', 'close')
    if (typeof payload === 'string') void reply.type('application/json; charset=utf-8')
    return reply.send(payload)
  }

  /** A large body: judged by the pool; answered by the budget when the pool had to stop it. */
  const judgeLarge = async (endpoint: Endpoint, body: LargeBody, reply: FastifyReply, started: number): Promise<FastifyReply> => {
    const result = await pool.run(endpoint, body.bytes, started)
    if (result.kind === 'bad') return badRequest(reply, result.statusCode, result.reason ?? reasonOf(result.code), result.message)
    if (result.kind === 'done') {
      if (result.failure !== undefined) {
        logger.error({ err: result.failure, uid: result.summary.header.uid, endpoint }, 'review failed')
        metrics.internalErrors.inc({ endpoint })
      }
      record(endpoint, result.summary, (performance.now() - started) / 1000)
      return send(reply, result.json)
    }
    let header: ReviewHeader | undefined = result.header
    // Stopped before the worker decoded it (queued, or a worker still starting): scan the bytes for who
    // it is for, without building the object in this thread.
    header ??= scanReviewHeader(body.bytes)
    if (header === undefined) {
      return badRequest(reply, 400, 'not_a_review', 'the body was not decoded within the review budget, and it has no AdmissionReview header (apiVersion, request.uid, request.operation, request.kind)')
    }
    let response
    if (result.why === 'crash') {
      logger.error({ err: loggedError(result.error), uid: header.uid, endpoint }, 'review failed')
      metrics.internalErrors.inc({ endpoint })
      response = internalErrorResponse(header.uid)
    } else {
      metrics.budgetExceeded.inc({ endpoint, reason: result.why })
      response = budgetResponse({ endpoint, uid: header.uid, policy, budgetMs, resource: result.why })
    }
    const summary: ReviewSummary = { header, allowed: response.allowed, causes: [], warnings: response.warnings !== undefined ? ['NIM114'] : [], patched: false }
    record(endpoint, summary, (performance.now() - started) / 1000, { stopped: result.why })
    return send(reply, encodeReview(header.apiVersion, response))
  }

  const route = (endpoint: Endpoint) => async (request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now()
    const body = request.body
    if (body instanceof LargeBody) {
      try {
        return await judgeLarge(endpoint, body, reply, body.startedAt)
      } finally {
        body.release()
      }
    }
    let review
    try {
      review = decodeReview(body)
    } catch (err) {
      if (err instanceof BadReview) return badRequest(reply, err.statusCode, err.reason, err.message)
      throw err
    }
    const req = review.request
    let outcome: Outcome
    try {
      outcome = HANDLERS[endpoint](req)
    } catch (err) {
      logger.error({ err: loggedError(err), uid: req.uid, endpoint }, 'review failed')
      metrics.internalErrors.inc({ endpoint })
      outcome = { response: internalErrorResponse(req.uid), causes: [], warnings: [] }
    }
    const seconds = (performance.now() - started) / 1000
    const summary = summarize(headerOf(review.apiVersion, req), outcome)
    if (seconds * 1000 > budgetMs) {
      // Judged inline, so it could not be stopped: answered late (the apiserver may have given up).
      metrics.budgetExceeded.inc({ endpoint, reason: 'inline' })
      record(endpoint, summary, seconds, { overBudget: true })
    } else {
      record(endpoint, summary, seconds)
    }
    return send(reply, encodeReview(review.apiVersion, outcome.response))
  }

  app.post('/validate', route('validate'))
  app.post('/mutate', route('mutate'))
  return app
}
