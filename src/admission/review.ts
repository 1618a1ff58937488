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
    throw new BadReview(`kind must be "AdmissionReview", got ${shown(body.kind)}`, 'not_a_review')
  }
  if (!(API_VERSIONS as readonly unknown[]).includes(body.apiVersion)) {
    throw new BadReview(`apiVersion must be one of ${API_VERSIONS.join(', ')}, got ${shown(body.apiVersion)}`, 'unsupported_version')
  }
  const req = body.request
  if (!isObject(req)) throw new BadReview('request is missing or not an object', 'missing_request')
  if (typeof req.uid !== 'string' || req.uid === '') throw new BadReview('request.uid is missing or empty', 'missing_uid')
  if (req.uid.length > MAX_UID_CHARS) throw new BadReview(`request.uid is longer than ${MAX_UID_CHARS} characters (Kubernetes sends a 36-character UID)`, 'invalid_field')
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

// The apiserver drops a warning that has a control character (Go's unicode.IsControl: C0, DEL and C1),
// and counts the warnings of one request together, all webhooks and itself: over 4,096 characters it cuts
// every warning to 256 and drops the ones after. /mutate's and /validate's warnings land in the same
// response, so each endpoint keeps to its share, leaving room for the others.
export const WARNING_CHARS: Readonly<Record<'mutate' | 'validate', number>> = Object.freeze({ mutate: 1024, validate: 2560 })
const MAX_WARNING_CHARS = 512
// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g

const moreNote = (n: number): string => `${n} more warnings not shown`

/**
 * Warnings as response text, within `maxChars` in all (UTF-16 units, never fewer than the apiserver's
 * runes). When they do not all fit, the last line says how many are left out: room for it is kept.
 */
export function formatWarnings (warnings: readonly Warning[], maxChars: number = WARNING_CHARS.validate): string[] {
  const out: string[] = []
  let total = 0
  for (let i = 0; i < warnings.length; i++) {
    const w = warnings[i] as Warning
    let text = `${w.code} ${w.field}: ${w.message}`.replace(CONTROL, ' ')
    if (text.length > MAX_WARNING_CHARS) text = clipText(text, MAX_WARNING_CHARS - 3) + '...'
    const left = warnings.length - i - 1
    if (total + text.length + (left > 0 ? moreNote(left).length : 0) > maxChars) {
      out.push(moreNote(warnings.length - i))
      break
    }
    out.push(text)
    total += text.length
  }
  return out
}

/** At most `max` UTF-16 units, never ending in half a surrogate pair. */
function clipText (s: string, max: number): string {
  if (s.length <= max) return s
  const c = s.charCodeAt(max - 1)
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max)
}

/** A value from the request, shown in an error message: short, whatever the caller sent. */
function shown (v: unknown): string {
  const text = JSON.stringify(v ?? null) ?? 'null'
  return text.length > 64 ? `${clipText(text, 61)}...` : text
}

// What a denial may carry per cause, and in its one-line message: a direct caller's 8 MB map key must
// not come back four times over (message and causes, field and message in each).
export const MAX_CAUSE_FIELD_CHARS = 512
export const MAX_CAUSE_MESSAGE_CHARS = 1024
export const MAX_STATUS_MESSAGE_CHARS = 16 * 1024
export const MAX_CAUSES_SHOWN = 100
/** Kubernetes UIDs are 36 characters; room for other clients, never megabytes echoed back. */
export const MAX_UID_CHARS = 256

const ellipsis = (s: string, max: number): string => s.length <= max ? s : `${clipText(s, max - 3)}...`

export function causeLine (c: Cause): string {
  return `${ellipsis(c.field, MAX_CAUSE_FIELD_CHARS)}: ${ellipsis(c.message, MAX_CAUSE_MESSAGE_CHARS)}`
}

export interface DenialTarget { name?: string, group: string, kind: string }

/** A 422 Invalid status in the shape the apiserver itself returns, one line of message. */
export function denial (uid: string, causes: readonly Cause[], target: DenialTarget): AdmissionResponse {
  const name = target.name !== undefined ? ellipsis(target.name, 256) : undefined
  const subject = name !== undefined ? `${target.kind} "${name}"` : target.kind
  const shownCauses = causes.length > MAX_CAUSES_SHOWN ? causes.slice(0, MAX_CAUSES_SHOWN) : causes
  const message = ellipsis(`${subject} is invalid: ${shownCauses.map(causeLine).join('; ')}`.replace(/[\r\n]+/g, ' '), MAX_STATUS_MESSAGE_CHARS)
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
        ...(name !== undefined ? { name } : {}),
        group: target.group,
        kind: target.kind,
        causes: shownCauses.map((c) => ({ field: ellipsis(c.field, MAX_CAUSE_FIELD_CHARS), message: ellipsis(c.message, MAX_CAUSE_MESSAGE_CHARS), reason: c.code }))
      }
    }
  }
}

export function encodeReview (apiVersion: ApiVersion, response: AdmissionResponse): { apiVersion: ApiVersion, kind: 'AdmissionReview', response: AdmissionResponse } {
  return { apiVersion, kind: 'AdmissionReview', response }
}
