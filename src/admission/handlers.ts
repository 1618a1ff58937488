// From a decoded review to a response: which requests are checked, and with which domain function.
import { beingDeleted, checksOperation, validateNIMService, mutateNIMService } from '../nimservice/index.js'
import type { Cause, Warning } from '../nimservice/types.js'
import { denial, formatWarnings, WARNING_CHARS, type AdmissionRequest, type AdmissionResponse } from './review.js'

export type Endpoint = 'validate' | 'mutate'

export interface Outcome {
  response: AdmissionResponse
  /** Why the request was not checked at all (`delete`, `subresource`, `other_kind`, `deleting`), for logs. */
  skipped?: string
  causes: Cause[]
  warnings: Warning[]
  /** On UPDATE: causes allowed because the old object already had them unchanged (also in warnings). */
  ratcheted?: Cause[]
}

const GROUP = 'apps.nvidia.com'
const KIND = 'NIMService'

function skipReason (req: AdmissionRequest): string | undefined {
  if (req.kind.group !== GROUP || req.kind.kind !== KIND) return 'other_kind'
  if (req.subResource !== undefined) return 'subresource'
  if (!checksOperation(req.operation)) return req.operation.toLowerCase()
  // The domain allows (and leaves) these too, for any caller; named here for the log line.
  if (beingDeleted({ operation: req.operation, object: req.object, oldObject: req.oldObject })) return 'deleting'
  return undefined
}

/** The object's name, or the request's (empty on a CREATE with generateName). */
export function objectName (req: AdmissionRequest): string | undefined {
  const meta = (req.object as { metadata?: { name?: unknown } } | undefined)?.metadata
  return typeof meta?.name === 'string' ? meta.name : req.name
}

export function validateRequest (req: AdmissionRequest): Outcome {
  const skipped = skipReason(req)
  if (skipped !== undefined) return { response: { uid: req.uid, allowed: true }, skipped, causes: [], warnings: [] }
  const verdict = validateNIMService({ operation: req.operation, object: req.object, oldObject: req.oldObject })
  const name = objectName(req)
  const response: AdmissionResponse = verdict.allowed
    ? { uid: req.uid, allowed: true }
    : denial(req.uid, verdict.causes, { ...(name !== undefined ? { name } : {}), group: GROUP, kind: KIND })
  if (verdict.warnings.length > 0) response.warnings = formatWarnings(verdict.warnings)
  return { response, causes: verdict.causes, warnings: verdict.warnings, ...(verdict.ratcheted !== undefined ? { ratcheted: verdict.ratcheted } : {}) }
}

export function mutateRequest (req: AdmissionRequest): Outcome {
  const skipped = skipReason(req)
  if (skipped !== undefined) return { response: { uid: req.uid, allowed: true }, skipped, causes: [], warnings: [] }
  const mutation = mutateNIMService({
    operation: req.operation,
    object: req.object,
    oldObject: req.oldObject,
    ...(req.namespace !== undefined ? { namespace: req.namespace } : {})
  })
  const response: AdmissionResponse = { uid: req.uid, allowed: true }
  if (mutation.patch.length > 0) {
    response.patchType = 'JSONPatch'
    response.patch = Buffer.from(JSON.stringify(mutation.patch)).toString('base64')
  }
  if (mutation.warnings.length > 0) response.warnings = formatWarnings(mutation.warnings, WARNING_CHARS.mutate)
  return { response, causes: [], warnings: mutation.warnings }
}

export const HANDLERS: Record<Endpoint, (req: AdmissionRequest) => Outcome> = {
  validate: validateRequest,
  mutate: mutateRequest
}
