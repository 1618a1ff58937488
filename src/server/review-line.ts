// What the event loop keeps of a review, wherever it was judged (inline or in a review worker): the
// request's identity, to answer it and to log it, and the verdict's summary, for metrics and the log
// line. Every string is clipped: a direct caller's 8 MB name or field path must not become an 8 MB line.
import type { AdmissionRequest, ApiVersion } from '../admission/review.js'
import { objectName, type Endpoint, type Outcome } from '../admission/handlers.js'
import type { Operation } from '../nimservice/types.js'

/** Longest string kept from a request in a log line (names are 253 at most in Kubernetes). */
export const MAX_LOGGED_CHARS = 256
/** Causes and warning codes listed in a log line (the response keeps 100 causes). */
export const MAX_LOGGED_ITEMS = 100

export function clip (s: string, max: number): string {
  if (s.length <= max) return s
  let end = max - 1
  const c = s.charCodeAt(end - 1)
  if (c >= 0xd800 && c <= 0xdbff) end-- // never split a surrogate pair
  return `${s.slice(0, end)}…`
}

export interface ReviewHeader {
  apiVersion: ApiVersion
  uid: string
  kind: string
  namespace?: string
  name?: string
  operation: Operation
  subResource?: string
  dryRun: boolean
}

export interface ReviewSummary {
  header: ReviewHeader
  allowed: boolean
  skipped?: string
  /** Field paths clipped. */
  causes: Array<{ code: string, field: string }>
  warnings: string[]
  /** On UPDATE, causes let through because the old object had them already. */
  ratcheted?: string[]
  patched: boolean
}

export function headerOf (apiVersion: ApiVersion, req: AdmissionRequest): ReviewHeader {
  const header: ReviewHeader = { apiVersion, uid: req.uid, kind: clip(req.kind.kind, MAX_LOGGED_CHARS), operation: req.operation, dryRun: req.dryRun }
  if (req.namespace !== undefined) header.namespace = clip(req.namespace, MAX_LOGGED_CHARS)
  const name = objectName(req)
  if (name !== undefined) header.name = clip(name, MAX_LOGGED_CHARS)
  if (req.subResource !== undefined) header.subResource = clip(req.subResource, MAX_LOGGED_CHARS)
  return header
}

export function summarize (header: ReviewHeader, outcome: Outcome): ReviewSummary {
  const summary: ReviewSummary = {
    header,
    allowed: outcome.response.allowed,
    causes: outcome.causes.slice(0, MAX_LOGGED_ITEMS).map((c) => ({ code: clip(c.code, 16), field: clip(c.field, MAX_LOGGED_CHARS) })),
    warnings: outcome.warnings.slice(0, MAX_LOGGED_ITEMS).map((w) => clip(w.code, 16)),
    patched: outcome.response.patch !== undefined
  }
  if (outcome.skipped !== undefined) summary.skipped = outcome.skipped
  if (outcome.ratcheted !== undefined && outcome.ratcheted.length > 0) {
    summary.ratcheted = outcome.ratcheted.slice(0, MAX_LOGGED_ITEMS).map((c) => `${clip(c.code, 16)} ${clip(c.field, MAX_LOGGED_CHARS)}`)
  }
  return summary
}

/** The one log line per review: who asked for what, and the verdict. Never userInfo, never the object. */
export function reviewLine (endpoint: Endpoint, s: ReviewSummary, seconds: number, extra?: Record<string, unknown>): Record<string, unknown> {
  const h = s.header
  const line: Record<string, unknown> = {
    uid: h.uid,
    endpoint,
    kind: h.kind,
    namespace: h.namespace,
    name: h.name,
    operation: h.operation,
    subResource: h.subResource,
    dryRun: h.dryRun,
    allowed: s.allowed
  }
  if (s.skipped !== undefined) line.skipped = s.skipped
  if (s.causes.length > 0) line.causes = s.causes.map((c) => `${c.code} ${c.field}`)
  if (s.warnings.length > 0) line.warnings = s.warnings
  if (s.ratcheted !== undefined) line.ratcheted = s.ratcheted
  if (s.patched) line.patched = true
  if (extra !== undefined) Object.assign(line, extra)
  line.durationMs = Math.round(seconds * 1e6) / 1e3
  return line
}
