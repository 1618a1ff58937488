// Server options: one defaults object, validated once at start (ajv), so a bad option fails fast with
// a message that names it.
import { Ajv } from 'ajv'

export interface ServeOptions {
  host: string
  port: number
  metricsHost: string
  metricsPort: number
  certDir: string
  /** Extra DNS names for self-generated development certificates. */
  dnsNames: string[]
  /** When set, clients must present a certificate signed by this CA (mutual TLS). */
  clientCaFile?: string
  /** How long to keep answering reviews after SIGTERM while /readyz fails. */
  shutdownDelayMs: number
  /** Whole-request deadline; below the apiserver's webhook timeoutSeconds (5 s in the chart). */
  requestTimeoutMs: number
  /** Idle keep-alive; above the apiserver client's 90 s idle timeout so it closes first. */
  keepAliveTimeoutMs: number
  /**
   * Body limit. The apiserver never sends a request over 3 MiB on to a webhook, and an UPDATE review
   * carries object and oldObject: about 2 x 3 MiB, plus the review around them.
   */
  bodyLimitBytes: number
  /** Bodies above this are parsed and judged in a worker thread (the review pool), never in the event loop. */
  largeBodyBytes: number
  /** Large bodies read, parsed or judged at once; more wait, unread, held by TCP (memory is what they bound). */
  maxLargeBodies: number
  /**
   * Worker threads judging large bodies (started on first use, stopped when idle). One: large bodies are
   * rare, a second worker would not keep an attacker from filling both, and each costs its heap in memory.
   */
  reviewWorkers: number
  /**
   * Time from a body received to its answer, under the webhook's timeoutSeconds (5 s in the chart): a
   * large review still running then is stopped (its worker replaced) and answered by the budget.
   */
  reviewBudgetMs: number
  /**
   * What /validate answers for a review stopped by its budget, named after the webhook's failurePolicy:
   * Fail denies it (the default: otherwise an object made slow enough would skip validation), Ignore
   * allows it with warning NIM114. /mutate always allows it, unchanged, with NIM114.
   */
  budgetFailurePolicy: 'Fail' | 'Ignore'
  /** Old-generation heap of a review worker; a review that needs more is answered like one over its time. */
  reviewWorkerHeapMb: number
  /** A TCP connection must finish its TLS handshake within this (Node's default is 120 s). */
  tlsHandshakeTimeoutMs: number
  /** Connections from one source address at once; above it new ones are closed at once. */
  maxConnectionsPerIp: number
  /**
   * Event-loop delay (mean over the last few seconds) above which /readyz reports overload. Reviews are
   * decided synchronously, so a saturated event loop, not a request count, is what overload looks like.
   */
  maxEventLoopDelayMs: number
  /** The window over which that delay is averaged. */
  overloadWindowMs: number
  maxConnections: number
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
}

export const defaultOptions: Readonly<ServeOptions> = Object.freeze({
  host: '0.0.0.0',
  port: 8443,
  metricsHost: '0.0.0.0',
  metricsPort: 9090,
  certDir: 'certs',
  dnsNames: [],
  shutdownDelayMs: 10_000,
  requestTimeoutMs: 4_000,
  keepAliveTimeoutMs: 95_000,
  bodyLimitBytes: 7 * 1024 * 1024,
  largeBodyBytes: 256 * 1024,
  maxLargeBodies: 3,
  reviewWorkers: 1,
  reviewBudgetMs: 2000,
  budgetFailurePolicy: 'Fail',
  reviewWorkerHeapMb: 160,
  tlsHandshakeTimeoutMs: 5000,
  maxConnectionsPerIp: 512,
  maxEventLoopDelayMs: 1000,
  overloadWindowMs: 5000,
  maxConnections: 2048,
  logLevel: 'info'
})

const port = { type: 'integer', minimum: 0, maximum: 65535 }
const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1 },
    port,
    metricsHost: { type: 'string', minLength: 1 },
    metricsPort: port,
    certDir: { type: 'string', minLength: 1 },
    dnsNames: { type: 'array', items: { type: 'string', minLength: 1 } },
    clientCaFile: { type: 'string', minLength: 1 },
    shutdownDelayMs: { type: 'integer', minimum: 0 },
    requestTimeoutMs: { type: 'integer', minimum: 100 },
    keepAliveTimeoutMs: { type: 'integer', minimum: 0 },
    bodyLimitBytes: { type: 'integer', minimum: 1024 },
    largeBodyBytes: { type: 'integer', minimum: 0 },
    maxLargeBodies: { type: 'integer', minimum: 1 },
    reviewWorkers: { type: 'integer', minimum: 1, maximum: 16 },
    reviewBudgetMs: { type: 'integer', minimum: 10 },
    budgetFailurePolicy: { enum: ['Fail', 'Ignore'] },
    reviewWorkerHeapMb: { type: 'integer', minimum: 16 },
    tlsHandshakeTimeoutMs: { type: 'integer', minimum: 100 },
    maxConnectionsPerIp: { type: 'integer', minimum: 1 },
    maxEventLoopDelayMs: { type: 'integer', minimum: 1 },
    overloadWindowMs: { type: 'integer', minimum: 50 },
    maxConnections: { type: 'integer', minimum: 1 },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }
  }
}
const check = new Ajv({ allErrors: true }).compile(schema)

export class OptionsError extends Error {}

export function normalizeOptions (partial: Partial<ServeOptions> = {}): ServeOptions {
  const opts = { ...defaultOptions, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) }
  if (!check(opts)) {
    const msg = (check.errors ?? []).map((e) => `option ${e.instancePath.slice(1) || (e.params as { additionalProperty?: string }).additionalProperty || ''} ${e.message ?? ''}`).join('; ')
    throw new OptionsError(`invalid serve options: ${msg}`)
  }
  return opts as ServeOptions
}
