// The applier's decisions, as pure functions: given a NIMService as kept (view.ts), the live HPA of the
// same name, whether the webhook covers it and how long things have been so, what to report and what
// (in --mode write only) to write. No I/O here, so every case is a table row in the unit tests.
//
// verify (the default) never writes: it compares the live HPA, whoever owns it, with the HPA rendered from
// the NIMService's spec, field by field. write creates and keeps HPAs only where the NIM operator does not
// manage them, and steps aside (refuses, and hands back its own HPA) wherever it sees the operator.
import type { JsonObject } from '../nimservice/types.js'
import { isObject, jsonEqual } from '../nimservice/json.js'
import { MANAGED_BY } from '../nimservice/hpa-render.js'
import type { Coverage } from './coverage.js'
import { MANAGED_BY_LABEL, NIM_API_VERSION, NIM_GROUP, NIM_KIND, OPERATOR_MANAGED_BY, type HpaView, type NimView, type OwnerReference } from './view.js'

export type Mode = 'verify' | 'write'
export const MODES: readonly Mode[] = ['verify', 'write']

/** Published Event reasons on the NIMService. Never reuse or rename one. */
export const REASONS = {
  drift: 'HPADrift',
  missing: 'HPAMissing',
  forged: 'HPAAnnotationForged',
  invalid: 'HPASpecInvalid',
  kserve: 'HPAKServeSkipped',
  refused: 'HPAWriteRefused',
  handedOver: 'HPAHandedOver',
  conflict: 'HPAConflict',
  created: 'HPACreated',
  updated: 'HPAUpdated',
  deleted: 'HPADeleted',
  rejected: 'HPARejected',
  forbidden: 'HPAForbidden'
} as const
export type Reason = typeof REASONS[keyof typeof REASONS]

export interface Finding { type: 'Normal' | 'Warning', reason: Reason, message: string }

export type Write =
  | { kind: 'create', manifest: JsonObject }
  /** Server-side apply of our own HPA; `fields` are what differs now. */
  | { kind: 'update', manifest: JsonObject, fields: string[], adopt: boolean }
  /** Deletes only with the HPA's uid and resourceVersion as preconditions. */
  | { kind: 'delete', uid: string, resourceVersion: string, why: string, handover: boolean }

export type State = 'in-sync' | 'drift' | 'missing' | 'pending' | 'invalid' | 'kserve' | 'refused' | 'conflict' | 'not-autoscaled' | 'not-covered' | 'deleting' | 'gone' | 'write'

/** How long a difference may last before it is reported as drift (the operator's own update lag). */
export const DRIFT_GRACE_MS = 10_000
/** The detail of a decision that waits for a difference to outlast DRIFT_GRACE_MS. */
export const DRIFT_PENDING = 'HPA differs from the render: waiting for the operator to update it'

export interface Decision {
  state: State
  findings: Finding[]
  write?: Write
  /** Decide again after this long (an HPA not created yet, a NIMService too new to write for). */
  requeueAfterMs?: number
  /** Why nothing is done, for debug logs. */
  detail?: string
}

export interface DecideInput {
  mode: Mode
  namespace: string
  name: string
  /** The NIMService as kept; undefined once it is gone. */
  nim?: NimView
  /** When the NIMService is gone: the uid it had, if it was seen. */
  lastUid?: string
  /** The live HPA of the same name in the same namespace. */
  hpa?: HpaView
  coverage: Coverage
  /** How long (monotonic ms) the applier has known this NIMService. */
  knownForMs: number
  /** How long (monotonic ms) the HPA has been seen missing while it should exist. */
  missingForMs: number
  /** How long (monotonic ms) the live HPA has been seen differing from the render; 0 when it does not. */
  driftForMs?: number
  /** How long to give the operator to create an HPA (verify) or to claim a new NIMService (write). */
  graceMs: number
}

/** Labels and annotations the operator sets on its HPA itself, winning over the spec's (GetStandardLabels, GetStandardAnnotations, SyncResource). */
const OPERATOR_LABELS = new Set([MANAGED_BY_LABEL, 'app.kubernetes.io/operator-version'])
const OPERATOR_ANNOTATIONS = new Set(['openshift.io/required-scc', 'nvidia.com/parent-spec-hash', 'nvidia.com/last-applied-hash'])
const MAX_FIELDS = 12

function short (v: unknown): string {
  if (v === undefined) return '(absent)'
  const text = JSON.stringify(v)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const keyPath = (path: string, key: string): string => /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

/** The leaf fields where `have` differs from `want`, as `path: want X, have Y`. */
export function differences (path: string, want: unknown, have: unknown, out: string[] = []): string[] {
  if (out.length >= MAX_FIELDS || jsonEqual(want, have)) return out
  if (isObject(want) && isObject(have)) {
    const keys = [...new Set([...Object.keys(want), ...Object.keys(have)])].sort()
    for (const k of keys) differences(keyPath(path, k), want[k], have[k], out)
    return out
  }
  if (Array.isArray(want) && Array.isArray(have) && want.length === have.length) {
    want.forEach((w, i) => differences(`${path}[${i}]`, w, have[i], out))
    return out
  }
  out.push(`${path}: want ${short(want)}, have ${short(have)}`)
  return out
}

/**
 * Where the live HPA differs from the rendered one: its spec (scaleTargetRef, min/max, metrics, behavior)
 * field by field, and the labels and annotations the render sets (except the ones the operator sets
 * itself, and managed-by, which says who writes, not what).
 */
export function hpaDifferences (desired: JsonObject, live: HpaView, opts: { ignoreManagedBy: boolean }): string[] {
  const out: string[] = []
  differences('spec', desired.spec, live.spec, out)
  const meta = isObject(desired.metadata) ? desired.metadata : {}
  for (const [which, ignored] of [['labels', OPERATOR_LABELS], ['annotations', OPERATOR_ANNOTATIONS]] as const) {
    const want = isObject(meta[which]) ? meta[which] : {}
    const have = which === 'labels' ? live.labels : live.annotations
    for (const [k, v] of Object.entries(want)) {
      if (ignored.has(k) && (opts.ignoreManagedBy || k !== MANAGED_BY_LABEL)) continue
      if (have[k] !== v && out.length < MAX_FIELDS) out.push(`${keyPath(`metadata.${which}`, k)}: want ${short(v)}, have ${short(have[k])}`)
    }
  }
  return out
}

const isNimRef = (ref: OwnerReference, name: string): boolean =>
  ref.kind === NIM_KIND && ref.apiVersion.split('/')[0] === NIM_GROUP && ref.name === name

export type Ownership = 'ours' | 'ours-stale' | 'operator' | 'foreign'

/**
 * Who an HPA named after NIMService `name` (uid `uid`) belongs to: ours (our managed-by label and a
 * controller reference to that NIMService; stale when to an earlier one of the same name), the operator's
 * (its managed-by label, or a NIMService controller reference without our label), or someone else's.
 */
export function ownership (hpa: HpaView, name: string, uid: string | undefined): Ownership {
  const manager = hpa.labels[MANAGED_BY_LABEL]
  const ctrl = hpa.ownerReferences.find((r) => r.controller === true)
  const nimCtrl = ctrl !== undefined && isNimRef(ctrl, name)
  if (manager === OPERATOR_MANAGED_BY) return 'operator'
  if (manager === MANAGED_BY && nimCtrl) return uid === undefined || ctrl.uid === uid ? 'ours' : 'ours-stale'
  if (ctrl?.kind === NIM_KIND && ctrl.apiVersion.split('/')[0] === NIM_GROUP) return 'operator'
  return 'foreign'
}

export function describeOwner (hpa: HpaView): string {
  const manager = hpa.labels[MANAGED_BY_LABEL]
  const ctrl = hpa.ownerReferences.find((r) => r.controller === true)
  return `${manager === undefined ? 'no managed-by label' : `managed-by ${manager}`}, ${ctrl === undefined ? 'no controller owner' : `controller ${ctrl.kind}/${ctrl.name}`}`
}

/** What nim-admission writes in --mode write: the render, owned by the NIMService without blockOwnerDeletion. */
export function manifestFor (nim: NimView): JsonObject {
  const desired = nim.desired as JsonObject
  const meta = isObject(desired.metadata) ? desired.metadata : {}
  // No blockOwnerDeletion: setting it needs update on nimservices/finalizers under the
  // OwnerReferencesPermissionEnforcement admission plugin, and nothing here relies on foreground deletion.
  const owner: OwnerReference = { apiVersion: NIM_API_VERSION, kind: NIM_KIND, name: nim.name, uid: nim.uid, controller: true }
  return { ...desired, metadata: { ...meta, ownerReferences: [owner] } }
}

/**
 * The annotation compared with the render: as parsed JSON (the apiserver may hand the spec back with its
 * keys in another order, so the text of an honest annotation need not be the text of the render), or by
 * hash when it was too long to keep; and its sha annotation must be the hash of its text.
 */
function forged (nim: NimView): Finding | undefined {
  const hint = nim.hint
  if (hint === undefined) return undefined
  const shaOk = hint.claimedSha === undefined || hint.claimedSha === hint.contentSha
  let detail: string | undefined
  if (nim.desired === undefined) detail = 'the spec renders no HPA (autoscaling off, multiNode, or no spec.scale.hpa)'
  else if (hint.contentSha === nim.desiredSha || (hint.manifest !== undefined && jsonEqual(hint.manifest, nim.desired))) detail = shaOk ? undefined : 'nim-admission.io/hpa-sha256 is not the SHA-256 of nim-admission.io/hpa'
  else if (hint.manifest !== undefined) detail = `differs in ${differences('', nim.desired, hint.manifest).map((f) => f.replace(/^\./, '')).join('; ')}`
  else detail = 'its text is not JSON or too long to compare'
  if (detail === undefined) return undefined
  return { type: 'Warning', reason: REASONS.forged, message: `nim-admission.io/hpa is not what the spec renders (forged, or stale from an earlier spec): ${detail}; ignored, the HPA is judged from the spec alone` }
}

const secs = (ms: number): string => `${Math.round(ms / 1000)}s`

function kserve (nim: NimView): Finding {
  return { type: 'Warning', reason: REASONS.kserve, message: `inferencePlatform kserve: KServe scales this NIMService itself (an HPA ${nim.name}-predictor on Deployment ${nim.name}-predictor in RawDeployment mode, Knative otherwise); nim-admission neither verifies nor writes an HPA for it` }
}

function invalid (nim: NimView): Finding {
  const causes = nim.invalid.length > 0 ? nim.invalid.slice(0, 5).join('; ') : 'spec.scale.hpa is missing or multiNode is set'
  return { type: 'Warning', reason: REASONS.invalid, message: `spec.scale.enabled is true but the spec fails nim-admission's rules: ${causes}; no HPA is judged or written until it is fixed` }
}

function verify (input: DecideInput, nim: NimView): Decision {
  const ref = `${input.namespace}/${input.name}`
  if (nim.platform === 'kserve') return nim.autoscaled ? { state: 'kserve', findings: [kserve(nim)] } : { state: 'not-autoscaled', findings: [] }
  const findings: Finding[] = []
  const f = forged(nim)
  if (f !== undefined) findings.push(f)
  if (!nim.autoscaled) return { state: 'not-autoscaled', findings }
  if (nim.desired === undefined) return { state: 'invalid', findings: [...findings, invalid(nim)] }
  const hpa = input.hpa
  if (hpa === undefined) {
    if (input.missingForMs < input.graceMs) return { state: 'pending', findings, requeueAfterMs: input.graceMs - input.missingForMs, detail: 'HPA not created yet' }
    const why = nim.invalid.length > 0
      ? ` (the spec fails nim-admission's rules, so the operator's create was probably refused: ${nim.invalid.slice(0, 3).join('; ')})`
      : nim.operatorSignals.length === 0 ? ' (no sign of the NIM operator on this NIMService: no finalizer, no status)' : ''
    findings.push({ type: 'Warning', reason: REASONS.missing, message: `HorizontalPodAutoscaler ${ref} not found ${secs(input.missingForMs)} after spec.scale.enabled was seen true${why}` })
    return { state: 'missing', findings }
  }
  const fields = hpaDifferences(nim.desired, hpa, { ignoreManagedBy: true })
  if (fields.length === 0) return { state: 'in-sync', findings }
  // Right after a spec change the operator has not updated its HPA yet: a difference is drift only once it
  // outlasts that (at most 10 s, less with a shorter --grace).
  const driftGraceMs = Math.min(input.graceMs, DRIFT_GRACE_MS)
  const driftForMs = input.driftForMs ?? driftGraceMs
  if (driftForMs < driftGraceMs) return { state: 'pending', findings, requeueAfterMs: driftGraceMs - driftForMs, detail: DRIFT_PENDING }
  findings.push({ type: 'Warning', reason: REASONS.drift, message: `HorizontalPodAutoscaler ${ref} (${describeOwner(hpa)}) differs from the HPA rendered from the NIMService's spec: ${fields.join('; ')}` })
  return { state: 'drift', findings }
}

function deleteOurs (input: DecideInput, uid: string | undefined, why: string, state: State): Decision {
  const hpa = input.hpa
  if (hpa === undefined) return { state, findings: [], detail: `${why}; no HPA` }
  const own = ownership(hpa, input.name, uid)
  if (own !== 'ours') return { state, findings: [], detail: `${why}; HPA ${input.name} is not ours (${describeOwner(hpa)}): left alone` }
  return { state, findings: [], write: { kind: 'delete', uid: hpa.uid, resourceVersion: hpa.resourceVersion, why, handover: false } }
}

function write (input: DecideInput, nim: NimView): Decision {
  const ref = `${input.namespace}/${input.name}`
  const hpa = input.hpa
  const own = hpa === undefined ? undefined : ownership(hpa, nim.name, nim.uid)
  const signals = [...nim.operatorSignals, ...(own === 'operator' && hpa !== undefined ? [`its HPA is the operator's (${describeOwner(hpa)})`] : [])]
  if (signals.length > 0) {
    const findings: Finding[] = [{ type: 'Warning', reason: REASONS.refused, message: `--mode write refuses to write the HPA of NIMService ${ref}: the NIM operator manages it (${signals.join(', ')}); on clusters with the operator run the applier with --mode verify` }]
    if ((own === 'ours' || own === 'ours-stale') && hpa !== undefined) {
      // Our HPA would make the operator's create fail with AlreadyExists: hand the name back.
      findings.push({ type: 'Warning', reason: REASONS.handedOver, message: `HorizontalPodAutoscaler ${ref} written earlier by nim-admission is deleted so that the NIM operator can create its own` })
      return { state: 'refused', findings, write: { kind: 'delete', uid: hpa.uid, resourceVersion: hpa.resourceVersion, why: 'the NIM operator manages this NIMService', handover: true } }
    }
    return { state: 'refused', findings }
  }
  if (nim.platform === 'kserve') {
    const d = deleteOurs(input, nim.uid, 'inferencePlatform kserve', 'kserve')
    return nim.autoscaled ? { ...d, findings: [kserve(nim)] } : d
  }
  const findings: Finding[] = []
  const f = forged(nim)
  if (f !== undefined) findings.push(f)
  if (!nim.autoscaled) return { ...deleteOurs(input, nim.uid, 'autoscaling is off', 'not-autoscaled'), findings }
  if (nim.desired === undefined || nim.invalid.length > 0) return { state: 'invalid', findings: [...findings, invalid(nim)] }
  if (hpa === undefined) {
    // Give an operator that is about to reconcile a new NIMService the time to put its finalizer on it.
    if (input.knownForMs < input.graceMs) return { state: 'pending', findings, requeueAfterMs: input.graceMs - input.knownForMs, detail: 'NIMService too new to write for' }
    return { state: 'write', findings, write: { kind: 'create', manifest: manifestFor(nim) } }
  }
  if (own === 'foreign') {
    findings.push({ type: 'Warning', reason: REASONS.conflict, message: `HorizontalPodAutoscaler ${ref} already exists and is not nim-admission's (${describeOwner(hpa)}): left untouched` })
    return { state: 'conflict', findings }
  }
  const stale = own === 'ours-stale'
  const fields = hpaDifferences(nim.desired, hpa, { ignoreManagedBy: false })
  if (fields.length === 0 && !stale) return { state: 'in-sync', findings }
  return { state: 'write', findings, write: { kind: 'update', manifest: manifestFor(nim), fields, adopt: stale } }
}

export function decide (input: DecideInput): Decision {
  const { nim } = input
  if (nim === undefined) return input.mode === 'write' ? deleteOurs(input, input.lastUid, 'NIMService is gone', 'gone') : { state: 'gone', findings: [] }
  if (nim.deleting) return input.mode === 'write' ? deleteOurs(input, nim.uid, 'NIMService is being deleted', 'deleting') : { state: 'deleting', findings: [] }
  if (!input.coverage.covered) return { state: 'not-covered', findings: [], detail: input.coverage.reason }
  return input.mode === 'verify' ? verify(input, nim) : write(input, nim)
}
