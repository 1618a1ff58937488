// The AdmissionReview protocol (admission.k8s.io/v1, and v1beta1 answered in kind): decoding a review
// from untrusted JSON and encoding a response. It knows nothing about NIMService.
import type { Cause, Operation, Warning } from '../nimservice/types.js'
import { isObject } from '../nimservice/json.js'

export const API_VERSIONS = ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1'] as const
export type ApiVersion = typeof API_VERSIONS[number]
const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']

export interface GroupVersionKind { group: string, version: string, kind: string }

export interface AdmissionRequest {
  uid: string
  kind: GroupVersionKind
  operation: Operation
  subResource?: string
  name?: string
  namespace?: string
  dryRun: boolean
  object?: unknown
  oldObject?: unknown
  userInfo?: unknown
}

export interface AdmissionReview { apiVersion: ApiVersion, request: AdmissionRequest }

export interface StatusCause { field: string, message: string, reason: string }

export interface AdmissionResponse {
  uid: string
  allowed: boolean
  status?: {
    metadata: Record<string, never>
    status: 'Failure'
    code: number
    reason: string
    message: string
    details?: { name?: string, group: string, kind: string, causes: StatusCause[] }
  }
  warnings?: string[]
  patchType?: 'JSONPatch'
  patch?: string
}

/** A request the server refuses before it is a review: answered with HTTP `statusCode`, never 5xx. */
export class BadReview extends Error {
  constructor (message: string, readonly reason: string, readonly statusCode = 400) { super(message) }
}

function optionalString (req: Record<string, unknown>, key: string): string | undefined {
  const v = req[key]
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw new BadReview(`request.${key} must be a string`, 'invalid_field')
  return v
}

/** Decodes a parsed JSON body into a review, or throws BadReview saying what is wrong. */
export function decodeReview (body: unknown): AdmissionReview {
  if (!isObject(body)) throw new BadReview('body must be a JSON object (an AdmissionReview)', 'not_an_object')
  if (body.kind !== 'AdmissionReview') {
    throw new BadReview(`kind must be "AdmissionReview", got ${JSON.stringify(body.kind ?? null)}`, 'not_a_review')
  }
  if (!(API_VERSIONS as readonly unknown[]).includes(body.apiVersion)) {
    throw new BadReview(`apiVersion must be one of ${API_VERSIONS.join(', ')}, got ${JSON.stringify(body.apiVersion ?? null)}`, 'unsupported_version')
  }
  const req = body.request
  if (!isObject(req)) throw new BadReview('request is missing or not an object', 'missing_request')
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReview('request.uid is missing or empty', 'missing_uid')
  if (typeof req.operation !== 'string' || !OPERATIONS.includes(req.operation)) {
    throw new BadReview(`request.operation must be one of ${OPERATIONS.join(', ')}`, 'invalid_operation')
  }
  const kind = req.kind
  if (!isObject(kind) || typeof kind.kind !== 'string') throw new BadReview('request.kind must be an object with a kind', 'invalid_kind')
  if (req.dryRun !== undefined && req.dryRun !== null && typeof req.dryRun !== 'boolean') {
    throw new BadReview('request.dryRun must be a boolean', 'invalid_field')
  }
  const subResource = optionalString(req, 'subResource')
  const name = optionalString(req, 'name')
  const namespace = optionalString(req, 'namespace')
  return {
    apiVersion: body.apiVersion as ApiVersion,
    request: {
      uid: req.uid,
      kind: { group: typeof kind.group === 'string' ? kind.group : '', version: typeof kind.version === 'string' ? kind.version : '', kind: kind.kind },
      operation: req.operation as Operation,
      ...(subResource !== undefined ? { subResource } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      dryRun: req.dryRun === true,
      object: req.object ?? undefined,
      oldObject: req.oldObject ?? undefined,
      userInfo: req.userInfo
    }
  }
}

// The apiserver drops warnings with control characters and caps their total size (4 KiB); keep within.
const MAX_WARNINGS_BYTES = 4096
const MAX_WARNING_CHARS = 512

export function formatWarnings (warnings: readonly Warning[]): string[] {
  const out: string[] = []
  let total = 0
  for (let i = 0; i < warnings.length; i++) {
    const w = warnings[i] as Warning
    // eslint-disable-next-line no-control-regex -- stripping control characters is the point
    let text = `${w.code} ${w.field}: ${w.message}`.replace(/[\u0000-\u001f\u007f]+/g, ' ')
    if (text.length > MAX_WARNING_CHARS) text = text.slice(0, MAX_WARNING_CHARS - 3) + '...'
    const size = Buffer.byteLength(text)
    const rest = warnings.length - i
    const note = `${rest} more warnings not shown`
    if (total + size > MAX_WARNINGS_BYTES - (rest > 1 ? note.length + 8 : 0)) {
      out.push(note)
      break
    }
    out.push(text)
    total += size
  }
  return out
}

export function causeLine (c: Cause): string {
  return `${c.field}: ${c.message}`
}

export interface DenialTarget { name?: string, group: string, kind: string }

/** A 422 Invalid status in the shape the apiserver itself returns, one line of message. */
export function denial (uid: string, causes: readonly Cause[], target: DenialTarget): AdmissionResponse {
  const subject = target.name !== undefined ? `${target.kind} "${target.name}"` : target.kind
  const message = `${subject} is invalid: ${causes.map(causeLine).join('; ')}`.replace(/[\r\n]+/g, ' ')
  return {
    uid,
    allowed: false,
    status: {
      metadata: {},
      status: 'Failure',
      code: 422,
      reason: 'Invalid',
      message,
      details: {
        ...(target.name !== undefined ? { name: target.name } : {}),
        group: target.group,
        kind: target.kind,
        causes: causes.map((c) => ({ field: c.field, message: c.message, reason: c.code }))
      }
    }
  }
}

export function encodeReview (apiVersion: ApiVersion, response: AdmissionResponse): { apiVersion: ApiVersion, kind: 'AdmissionReview', response: AdmissionResponse } {
  return { apiVersion, kind: 'AdmissionReview', response }
}
