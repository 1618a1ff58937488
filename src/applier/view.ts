// What the applier keeps of each watched object: the few fields its decisions read, computed once as an
// object arrives, so that 10,000 NIMServices fit in a small heap (no managedFields, no status, no spec
// beyond what the HPA is rendered from). The HPA a NIMService should have is rendered here, from the
// spec, by the domain's own functions: the nim-admission.io/hpa annotation is kept only as a hint to
// compare against, never as the thing to apply.
import { hash } from 'node:crypto'
import type { JsonObject } from '../nimservice/types.js'
import { at, has, isObject, obj, str } from '../nimservice/json.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION, renderHpa } from '../nimservice/hpa-render.js'
import { autoscalingEnabled } from '../nimservice/rules.js'
import { denialCauses } from '../nimservice/validate.js'

/** The operator's finalizer (internal/controller/nimservice_controller.go, NIMServiceFinalizer). */
export const OPERATOR_FINALIZER = 'finalizer.nimservice.apps.nvidia.com'
/** The operator's managed-by value (NIMService.GetStandardLabels); its caches see only objects with it. */
export const OPERATOR_MANAGED_BY = 'k8s-nim-operator'
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const NIM_GROUP = 'apps.nvidia.com'
export const NIM_API_VERSION = 'apps.nvidia.com/v1alpha1'
export const NIM_KIND = 'NIMService'
/** An annotation longer than this is not kept (only its hash): a hint never costs more memory than this. */
export const MAX_HINT_BYTES = 8 * 1024

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

/** The nim-admission.io/hpa annotation pair as found on the NIMService. */
export interface AnnotationHint {
  /** SHA-256 of the annotation's text, computed here. */
  contentSha: string
  /** What nim-admission.io/hpa-sha256 claims, if present. */
  claimedSha?: string
  /** The parsed annotation, when it is JSON and at most MAX_HINT_BYTES long (to name the differing fields). */
  manifest?: unknown
}

export interface NimView {
  namespace: string
  name: string
  uid: string
  resourceVersion: string
  labels: Record<string, string>
  deleting: boolean
  /** Signs that the NIM operator reconciles this NIMService (its finalizer, a status it wrote). */
  operatorSignals: string[]
  /** spec.inferencePlatform, "standalone" when absent. */
  platform: string
  /** spec.scale.enabled is true. */
  autoscaled: boolean
  /** The HPA the operator renders from this spec (GetHPAParams), when autoscaled and renderable. */
  desired?: JsonObject
  /** SHA-256 of JSON.stringify(desired): what the webhook's annotation carries for this spec. */
  desiredSha?: string
  /** Why an autoscaled NIMService renders no HPA, or fails the webhook's rules (one line per cause). */
  invalid: string[]
  hint?: AnnotationHint
}

export interface HpaView {
  namespace: string
  name: string
  uid: string
  resourceVersion: string
  labels: Record<string, string>
  annotations: Record<string, string>
  ownerReferences: OwnerReference[]
  spec: JsonObject
}

export interface NamespaceView {
  name: string
  resourceVersion: string
  labels: Record<string, string>
}

function stringMap (v: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (!isObject(v)) return out
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val
  return out
}

const sha256 = (text: string): string => hash('sha256', text, 'hex')

function ownerRefs (v: unknown): OwnerReference[] {
  if (!Array.isArray(v)) return []
  const out: OwnerReference[] = []
  for (const r of v) {
    const o = obj(r)
    if (o === undefined) continue
    const ref: OwnerReference = { apiVersion: str(o.apiVersion) ?? '', kind: str(o.kind) ?? '', name: str(o.name) ?? '', uid: str(o.uid) ?? '' }
    if (o.controller === true) ref.controller = true
    if (o.blockOwnerDeletion === true) ref.blockOwnerDeletion = true
    out.push(ref)
  }
  return out
}

function hintOf (annotations: JsonObject | undefined): AnnotationHint | undefined {
  const text = str(annotations?.[HPA_ANNOTATION])
  const claimed = str(annotations?.[HPA_SHA_ANNOTATION])
  if (text === undefined && claimed === undefined) return undefined
  const hint: AnnotationHint = { contentSha: text === undefined ? '' : sha256(text) }
  if (claimed !== undefined) hint.claimedSha = claimed
  if (text !== undefined && text.length <= MAX_HINT_BYTES) {
    try { hint.manifest = JSON.parse(text) } catch { /* not JSON: the hash says enough */ }
  }
  return hint
}

/** The operator's fingerprints on a NIMService: its finalizer, or a status it has written. */
export function operatorSignalsOf (metadata: JsonObject | undefined, status: unknown): string[] {
  const signals: string[] = []
  const finalizers = metadata?.finalizers
  if (Array.isArray(finalizers) && finalizers.includes(OPERATOR_FINALIZER)) signals.push(`finalizer ${OPERATOR_FINALIZER}`)
  const state = str(at(status, 'state'))
  if (state !== undefined && state !== '') signals.push(`status.state ${state}`)
  else if (Array.isArray(at(status, 'conditions')) && (at(status, 'conditions') as unknown[]).length > 0) signals.push('status.conditions')
  return signals
}

/** A NIMService as the applier keeps it; undefined for something that is not one (no name or uid). */
export function nimView (raw: unknown): NimView | undefined {
  const o = obj(raw)
  const metadata = obj(o?.metadata)
  const name = str(metadata?.name)
  const namespace = str(metadata?.namespace)
  const uid = str(metadata?.uid)
  if (o === undefined || name === undefined || namespace === undefined || uid === undefined) return undefined
  const spec = obj(o.spec) ?? {}
  const deletion = metadata?.deletionTimestamp
  const view: NimView = {
    namespace,
    name,
    uid,
    resourceVersion: str(metadata?.resourceVersion) ?? '',
    labels: stringMap(metadata?.labels),
    deleting: deletion !== undefined && deletion !== null,
    operatorSignals: operatorSignalsOf(metadata, o.status),
    platform: str(spec.inferencePlatform) ?? 'standalone',
    autoscaled: autoscalingEnabled(spec),
    invalid: []
  }
  const hint = hintOf(obj(metadata?.annotations))
  if (hint !== undefined) view.hint = hint
  if (!view.autoscaled) return view
  // The webhook's rules on the whole object, as on a CREATE: an UPDATE's ratchet is the webhook's business.
  for (const c of denialCauses({ operation: 'CREATE', object: o })) view.invalid.push(`${c.field}: ${c.message} (${c.code})`)
  // The same condition mutateNIMService renders under.
  if (!has(spec, 'multiNode') && obj(at(spec, 'scale', 'hpa')) !== undefined) {
    const desired = renderHpa(o, namespace)
    const target = obj(at(desired, 'spec', 'scaleTargetRef'))
    if (target?.apiVersion !== 'apps/v1' || target.kind !== 'Deployment' || target.name !== name) {
      // Never reached with today's render; if it ever were, the HPA would scale someone else's workload.
      view.invalid.push(`spec.scale: the rendered scaleTargetRef ${JSON.stringify(target)} is not Deployment/${name}`)
      return view
    }
    view.desired = desired
    view.desiredSha = sha256(JSON.stringify(desired))
    // The usual case, an annotation that is the render: its parsed copy would only cost memory.
    if (view.hint?.contentSha === view.desiredSha) delete view.hint.manifest
  }
  return view
}

export function hpaView (raw: unknown): HpaView | undefined {
  const o = obj(raw)
  const metadata = obj(o?.metadata)
  const name = str(metadata?.name)
  const namespace = str(metadata?.namespace)
  if (o === undefined || name === undefined || namespace === undefined) return undefined
  return {
    namespace,
    name,
    uid: str(metadata?.uid) ?? '',
    resourceVersion: str(metadata?.resourceVersion) ?? '',
    labels: stringMap(metadata?.labels),
    annotations: stringMap(metadata?.annotations),
    ownerReferences: ownerRefs(metadata?.ownerReferences),
    spec: obj(o.spec) ?? {}
  }
}

export function namespaceView (raw: unknown): NamespaceView | undefined {
  const metadata = obj(obj(raw)?.metadata)
  const name = str(metadata?.name)
  if (name === undefined) return undefined
  return { name, resourceVersion: str(metadata?.resourceVersion) ?? '', labels: stringMap(metadata?.labels) }
}
