// The applier's decision, as a pure function: given a NIMService (or its absence) and the HPA of the same
// name (or none), what to do. No I/O here, so every case is a table row in the unit tests.
import { createHash } from 'node:crypto'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION, MANAGED_BY } from '../nimservice/hpa-render.js'

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const NIM_API_VERSION = 'apps.nvidia.com/v1alpha1'
export const NIM_GROUP = 'apps.nvidia.com'
export const NIM_KIND = 'NIMService'

/** Published codes for an annotation the applier refuses to apply. Never reuse or renumber one. */
export const MALFORMED_CODES = {
  NIMAPPLY_SHA_MISSING: `${HPA_ANNOTATION} present without ${HPA_SHA_ANNOTATION}`,
  NIMAPPLY_SHA_MISMATCH: `${HPA_SHA_ANNOTATION} is not the SHA-256 of ${HPA_ANNOTATION} (edited by hand?)`,
  NIMAPPLY_BAD_JSON: `${HPA_ANNOTATION} is not a JSON object`,
  NIMAPPLY_BAD_KIND: 'the rendered manifest is not an autoscaling/v2 HorizontalPodAutoscaler',
  NIMAPPLY_NAME_MISMATCH: 'the rendered HPA name differs from the NIMService name',
  NIMAPPLY_NAMESPACE_MISMATCH: 'the rendered HPA namespace differs from the NIMService namespace',
  NIMAPPLY_BAD_SPEC: 'the rendered HPA spec lacks scaleTargetRef or maxReplicas'
} as const
export type MalformedCode = keyof typeof MALFORMED_CODES

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface ObjectMeta {
  name?: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: OwnerReference[]
  deletionTimestamp?: unknown
}

/** The fields of a NIMService or an HPA the decision reads; anything else rides along untouched. */
export interface KubeObject {
  apiVersion?: string
  kind?: string
  metadata?: ObjectMeta
  spec?: unknown
}

export interface ReconcileInput {
  namespace: string
  name: string
  /** The NIMService as last seen by the watch; undefined once it is gone. */
  nim?: KubeObject
  /** When the NIMService is gone: the uid it had, if the watch saw it. */
  lastUid?: string
  /** The HPA of the same name in the same namespace, as read from the apiserver. */
  hpa?: KubeObject
  /** `--take-over`: adopt an HPA of that name that someone else owns. */
  takeOver?: boolean
}

export type Action =
  | { kind: 'create', manifest: KubeObject, sha: string }
  | { kind: 'update', manifest: KubeObject, sha: string, previousSha?: string, force: boolean, reason: 'changed' | 'adopt' | 'take-over' }
  | { kind: 'unchanged', sha: string }
  | { kind: 'delete', uid: string, resourceVersion?: string, reason: string }
  | { kind: 'conflict', reason: string }
  | { kind: 'malformed', code: MalformedCode, message: string }
  | { kind: 'none', reason: string }

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex')

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

function stringMap (v: unknown): Record<string, string> {
  if (!isRecord(v)) return {}
  const out: Record<string, string> = {}
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val
  return out
}

const isNimOwner = (ref: OwnerReference, name: string): boolean =>
  ref.kind === NIM_KIND && typeof ref.apiVersion === 'string' && ref.apiVersion.split('/')[0] === NIM_GROUP && ref.name === name

/** The controller ownerReference of `hpa`, if any. */
function controllerRef (hpa: KubeObject): OwnerReference | undefined {
  return (hpa.metadata?.ownerReferences ?? []).find((r) => r.controller === true)
}

function describeOwner (hpa: KubeObject): string {
  const labels = hpa.metadata?.labels ?? {}
  const ctrl = controllerRef(hpa)
  const manager = labels[MANAGED_BY_LABEL]
  const parts = [manager === undefined ? 'no managed-by label' : `managed-by ${manager}`]
  parts.push(ctrl === undefined ? 'no controller owner' : `controller ${ctrl.kind}/${ctrl.name}`)
  return parts.join(', ')
}

export type Ownership =
  | { owned: true }
  /** Ours by label, owned by an earlier NIMService of the same name (deleted and recreated). */
  | { owned: false, stale: true }
  | { owned: false, stale: false }

/**
 * Whether `hpa` belongs to the NIMService `name` (uid `uid`): it carries our managed-by label AND a
 * controller ownerReference to that NIMService. Without a uid (the NIMService is gone and was never
 * seen), any NIMService owner of that name counts.
 */
export function ownership (hpa: KubeObject, name: string, uid: string | undefined): Ownership {
  if (hpa.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) return { owned: false, stale: false }
  const ctrl = controllerRef(hpa)
  if (ctrl === undefined || !isNimOwner(ctrl, name)) return { owned: false, stale: false }
  if (uid === undefined || ctrl.uid === uid) return { owned: true }
  return { owned: false, stale: true }
}

/** The NIMService's rendered HPA, checked; or why it cannot be applied. */
export function parseAnnotation (nim: KubeObject, namespace: string, name: string):
  | { ok: true, manifest: Record<string, unknown>, sha: string }
  | { ok: false, code: MalformedCode, message: string }
  | undefined {
  const annotations = nim.metadata?.annotations ?? {}
  const json = annotations[HPA_ANNOTATION]
  if (json === undefined) return undefined
  const bad = (code: MalformedCode, detail = ''): { ok: false, code: MalformedCode, message: string } =>
    ({ ok: false, code, message: `${code}: ${MALFORMED_CODES[code]}${detail === '' ? '' : ` (${detail})`}` })
  const sha = annotations[HPA_SHA_ANNOTATION]
  if (sha === undefined) return bad('NIMAPPLY_SHA_MISSING')
  const actual = sha256Hex(json)
  if (sha !== actual) return bad('NIMAPPLY_SHA_MISMATCH', `annotation says ${sha.slice(0, 12)}…, content hashes to ${actual.slice(0, 12)}…`)
  let manifest: unknown
  try {
    manifest = JSON.parse(json)
  } catch (err) {
    return bad('NIMAPPLY_BAD_JSON', (err as Error).message)
  }
  if (!isRecord(manifest)) return bad('NIMAPPLY_BAD_JSON', `got ${Array.isArray(manifest) ? 'an array' : typeof manifest}`)
  if (manifest.apiVersion !== 'autoscaling/v2' || manifest.kind !== 'HorizontalPodAutoscaler') {
    return bad('NIMAPPLY_BAD_KIND', `got ${String(manifest.apiVersion)} ${String(manifest.kind)}`)
  }
  const meta = isRecord(manifest.metadata) ? manifest.metadata : {}
  if (meta.name !== name) return bad('NIMAPPLY_NAME_MISMATCH', `got ${JSON.stringify(meta.name)}, expected ${JSON.stringify(name)}`)
  if (meta.namespace !== namespace) return bad('NIMAPPLY_NAMESPACE_MISMATCH', `got ${JSON.stringify(meta.namespace)}, expected ${JSON.stringify(namespace)}`)
  const spec = manifest.spec
  if (!isRecord(spec) || !isRecord(spec.scaleTargetRef) || typeof spec.maxReplicas !== 'number') return bad('NIMAPPLY_BAD_SPEC')
  return { ok: true, manifest, sha }
}

/**
 * The object to server-side apply: the rendered spec verbatim; from the rendered metadata only name,
 * namespace, labels and annotations (an annotation cannot smuggle in finalizers or owners); our managed-by
 * label, the sha annotation, and the controller ownerReference to the NIMService.
 */
export function desiredHpa (manifest: Record<string, unknown>, sha: string, owner: { name: string, uid: string }): KubeObject {
  const meta = isRecord(manifest.metadata) ? manifest.metadata : {}
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: {
      name: meta.name as string,
      namespace: meta.namespace as string,
      labels: { ...stringMap(meta.labels), [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { ...stringMap(meta.annotations), [HPA_SHA_ANNOTATION]: sha },
      ownerReferences: [{ apiVersion: NIM_API_VERSION, kind: NIM_KIND, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }]
    },
    spec: manifest.spec
  }
}

/** Delete `hpa` only if it is ours; otherwise leave it. */
function deleteIfOurs (input: ReconcileInput, uid: string | undefined, why: string): Action {
  const { hpa, name } = input
  if (hpa === undefined) return { kind: 'none', reason: `${why}; no HPA` }
  const own = ownership(hpa, name, uid)
  const hpaUid = hpa.metadata?.uid
  if (!own.owned || hpaUid === undefined) return { kind: 'none', reason: `${why}; HPA ${name} is not ours (${describeOwner(hpa)}): left alone` }
  return { kind: 'delete', uid: hpaUid, ...(hpa.metadata?.resourceVersion !== undefined ? { resourceVersion: hpa.metadata.resourceVersion } : {}), reason: why }
}

export function reconcile (input: ReconcileInput): Action {
  const { nim, hpa, namespace, name } = input
  if (nim === undefined) return deleteIfOurs(input, input.lastUid, 'NIMService is gone')
  const uid = nim.metadata?.uid
  if (nim.metadata?.deletionTimestamp !== undefined && nim.metadata.deletionTimestamp !== null) {
    return deleteIfOurs(input, uid, 'NIMService is being deleted')
  }
  const parsed = parseAnnotation(nim, namespace, name)
  if (parsed === undefined) return deleteIfOurs(input, uid, `no ${HPA_ANNOTATION} annotation`)
  if (!parsed.ok) return { kind: 'malformed', code: parsed.code, message: parsed.message }
  if (uid === undefined) return { kind: 'none', reason: 'NIMService has no uid yet' }

  const { sha } = parsed
  const manifest = desiredHpa(parsed.manifest, sha, { name, uid })
  if (hpa === undefined) return { kind: 'create', manifest, sha }
  const previous = hpa.metadata?.annotations?.[HPA_SHA_ANNOTATION]
  const prev = previous !== undefined ? { previousSha: previous } : {}
  const own = ownership(hpa, name, uid)
  if (own.owned) {
    return previous === sha ? { kind: 'unchanged', sha } : { kind: 'update', manifest, sha, ...prev, force: false, reason: 'changed' }
  }
  if (own.stale) return { kind: 'update', manifest, sha, ...prev, force: input.takeOver === true, reason: 'adopt' }
  if (input.takeOver === true) return { kind: 'update', manifest, sha, ...prev, force: true, reason: 'take-over' }
  return { kind: 'conflict', reason: `HorizontalPodAutoscaler ${namespace}/${name} already exists and is not managed by ${MANAGED_BY} for this NIMService (${describeOwner(hpa)}); left untouched (use --take-over to adopt it)` }
}
