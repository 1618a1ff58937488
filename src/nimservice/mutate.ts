// Mutation: defaults plus the rendered HPA in annotations, as a pure function of the review's input.
// Each change is written as a JSON Patch operation and, at the same time, into a copy of the object
// that shares every untouched part with the input (which is never written): no deep clone, no diff.
import type { JsonObject, ReviewInput, Warning } from './types.js'
import { at, has, obj, str } from './json.js'
import { child, warning } from './field.js'
import { autoscalingEnabled } from './rules.js'
import { beingDeleted, checksOperation, denialCauses } from './validate.js'
import { DEFAULT_METRIC } from './hpa-defaults.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION, hpaAnnotations, renderHpa } from './hpa-render.js'

export const DEFAULT_SERVICE_PORT = 8000

/**
 * The apiserver's limit on all of an object's annotations together, keys plus values in bytes
 * (apimachinery ValidateAnnotationsSize, TotalAnnotationSizeLimitB): one byte more and the write fails.
 */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

/** An RFC 6902 operation, of the three kinds a mutation writes. */
export type PatchOperation = { op: 'add' | 'replace', path: string, value: unknown } | { op: 'remove', path: string }

export interface MutationInput extends ReviewInput {
  /** The request's namespace; the object's own metadata.namespace may be empty on CREATE. */
  namespace?: string
}

export interface Mutation {
  /** The object as the apiserver will store it once the patch is applied. */
  object: JsonObject
  patch: PatchOperation[]
  warnings: Warning[]
  /** The rendered HPA, when autoscaling applies. */
  hpa?: JsonObject
}

/** A JSON Pointer (RFC 6901) to `keys`: `~` and `/` in a key are escaped as `~0` and `~1`. */
export function pointer (keys: readonly string[]): string {
  let out = ''
  for (const k of keys) out += `/${k.includes('~') || k.includes('/') ? k.replace(/~/g, '~0').replace(/\//g, '~1') : k}`
  return out
}

/** The patch and the patched object, built together. Paths go through objects only. */
class Patch {
  readonly ops: PatchOperation[] = []
  readonly object: JsonObject

  constructor (original: JsonObject) {
    this.object = { ...original }
  }

  /** `add`, or `replace` when the key is there (even as null); the parent object must exist. */
  set (keys: readonly string[], value: unknown): void {
    const [parent, last] = this.parentOf(keys)
    this.ops.push({ op: Object.hasOwn(parent, last) ? 'replace' : 'add', path: pointer(keys), value })
    parent[last] = value
  }

  remove (keys: readonly string[]): void {
    const [parent, last] = this.parentOf(keys)
    this.ops.push({ op: 'remove', path: pointer(keys) })
    delete parent[last]
  }

  // Copies each object on the way down (copy on write), so that the input is never changed.
  private parentOf (keys: readonly string[]): [JsonObject, string] {
    let cur = this.object
    for (const k of keys.slice(0, -1)) {
      const copy = { ...(obj(cur[k]) ?? {}) }
      cur[k] = copy
      cur = copy
    }
    return [cur, keys[keys.length - 1] as string]
  }
}

function fillDefaults (spec: JsonObject, hpa: JsonObject, patch: Patch, warnings: Warning[]): void {
  if (!has(hpa, 'minReplicas')) patch.set(['spec', 'scale', 'hpa', 'minReplicas'], 1)
  if (!Array.isArray(hpa.metrics) || hpa.metrics.length === 0) {
    patch.set(['spec', 'scale', 'hpa', 'metrics'], [structuredClone(DEFAULT_METRIC)])
    warnings.push(warning('spec.scale.hpa.metrics',
      'no metrics given: defaulted to Kubernetes\' Resource cpu Utilization 80%; for NIM prefer an Object metric on gpu_cache_usage_perc', 'NIM109'))
  }
  const expose = obj(spec.expose)
  if (!has(expose, 'service')) {
    const service = { port: DEFAULT_SERVICE_PORT }
    if (expose === undefined) patch.set(['spec', 'expose'], { service })
    else patch.set(['spec', 'expose', 'service'], service)
    warnings.push(warning(child('spec.expose', 'service'),
      `spec.expose.service was absent: defaulted to port ${DEFAULT_SERVICE_PORT} (the operator reads that port)`, 'NIM111'))
  }
}

/** Keys plus values in UTF-8 bytes, as Go's len() counts them. */
function annotationsSize (annotations: JsonObject | undefined, extra: Record<string, string>): number {
  let total = 0
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (Object.hasOwn(extra, k)) continue
    total += Buffer.byteLength(k) + (typeof v === 'string' ? Buffer.byteLength(v) : 0)
  }
  for (const [k, v] of Object.entries(extra)) total += Buffer.byteLength(k) + Buffer.byteLength(v)
  return total
}

export function mutateNIMService (input: MutationInput): Mutation {
  const original = obj(input.object) ?? {}
  const unchanged: Mutation = { object: original, patch: [], warnings: [] }
  if (!checksOperation(input.operation) || beingDeleted(input)) return unchanged
  // Denying is /validate's job; /mutate leaves an invalid object alone so the denial names the user's fields.
  if (denialCauses(input).length > 0) return unchanged

  const spec = obj(original.spec) ?? {}
  const metadata = obj(original.metadata)
  const annotations = obj(metadata?.annotations)
  const patch = new Patch(original)
  const warnings: Warning[] = []
  let hpa: JsonObject | undefined

  const hpaSpec = obj(at(spec, 'scale', 'hpa'))
  if (autoscalingEnabled(spec) && !has(spec, 'multiNode') && hpaSpec !== undefined) {
    fillDefaults(spec, hpaSpec, patch, warnings)
    const rendered = renderInto(original, metadata, input.namespace)
    if ('skipped' in rendered) {
      warnings.push(rendered.skipped)
      removeRendered(annotations, patch)
    } else {
      hpa = rendered.hpa
      const wanted = rendered.annotations
      // Rendered, so metadata has a name: it exists.
      if (annotations === undefined) {
        patch.set(['metadata', 'annotations'], wanted)
      } else {
        for (const [k, v] of Object.entries(wanted)) if (annotations[k] !== v) patch.set(['metadata', 'annotations', k], v)
      }
    }
  } else {
    removeRendered(annotations, patch)
  }
  return { object: patch.object, patch: patch.ops, warnings, ...(hpa !== undefined ? { hpa } : {}) }
}

/**
 * The rendered HPA and its annotations, or the warning that says why it cannot be rendered into this
 * object now. renderHpa applies the HPA defaults itself, so it reads the input as the patched object would be.
 */
function renderInto (original: JsonObject, metadata: JsonObject | undefined, namespace: string | undefined):
{ hpa: JsonObject, annotations: Record<string, string> } | { skipped: Warning } {
  // Mutating admission runs before the apiserver generates a name from generateName.
  if ((str(metadata?.name) ?? '') === '') {
    return { skipped: warning('metadata.name', 'the name is not known yet (generateName: the apiserver picks it after mutating admission), so the HPA annotation is not rendered now: it is rendered at the next UPDATE of this NIMService', 'NIM112') }
  }
  const hpa = renderHpa(original, str(metadata?.namespace) ?? namespace ?? '')
  const annotations = hpaAnnotations(hpa)
  const size = annotationsSize(obj(metadata?.annotations), annotations)
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) {
    return { skipped: warning('metadata.annotations', `with the rendered HPA, metadata.annotations would be ${size} bytes (keys plus values), over the apiserver's limit of ${TOTAL_ANNOTATION_SIZE_LIMIT}: the HPA annotation is not rendered; shrink spec.annotations, spec.scale.annotations or the object's own annotations`, 'NIM113') }
  }
  return { hpa, annotations }
}

/** A rendered HPA that is not (or no longer) this object's: never left behind stale. */
function removeRendered (annotations: JsonObject | undefined, patch: Patch): void {
  for (const k of [HPA_ANNOTATION, HPA_SHA_ANNOTATION]) {
    if (annotations !== undefined && Object.hasOwn(annotations, k)) patch.remove(['metadata', 'annotations', k])
  }
}
