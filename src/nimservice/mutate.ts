// Mutation: defaults plus the rendered HPA in annotations, as a pure function of the review's input.
// The JSON Patch is computed by diffing the input against the mutated copy (fast-json-patch), which
// escapes `/` and `~` in keys and never replaces a path that does not exist.
import fastJsonPatch from 'fast-json-patch'
import type { Operation as PatchOperation } from 'fast-json-patch'
import type { JsonObject, ReviewInput, Warning } from './types.js'
import { has, obj, str } from './json.js'
import { child, warning } from './field.js'
import { autoscalingEnabled } from './rules.js'
import { validateNIMService } from './validate.js'
import { DEFAULT_METRIC } from './hpa-defaults.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION, hpaAnnotations, renderHpa } from './hpa-render.js'

export const DEFAULT_SERVICE_PORT = 8000

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

function fillDefaults (spec: JsonObject, warnings: Warning[]): void {
  const scale = obj(spec.scale) ?? {}
  const hpa = obj(scale.hpa) ?? {}
  if (hpa.minReplicas === undefined || hpa.minReplicas === null) hpa.minReplicas = 1
  if (!Array.isArray(hpa.metrics) || hpa.metrics.length === 0) {
    hpa.metrics = [structuredClone(DEFAULT_METRIC)]
    warnings.push(warning('spec.scale.hpa.metrics',
      'no metrics given: defaulted to Kubernetes\' Resource cpu Utilization 80%; for NIM prefer an Object metric on gpu_cache_usage_perc', 'NIM109'))
  }
  const expose = obj(spec.expose) ?? {}
  if (!has(expose, 'service')) {
    expose.service = { port: DEFAULT_SERVICE_PORT }
    spec.expose = expose
    warnings.push(warning(child('spec.expose', 'service'),
      `spec.expose.service was absent: defaulted to port ${DEFAULT_SERVICE_PORT} (the operator reads that port)`, 'NIM111'))
  }
}

export function mutateNIMService (input: MutationInput): Mutation {
  const original = obj(input.object) ?? {}
  const unchanged: Mutation = { object: original, patch: [], warnings: [] }
  if (input.operation !== 'CREATE' && input.operation !== 'UPDATE') return unchanged
  // Denying is /validate's job; /mutate leaves an invalid object alone so the denial names the user's fields.
  if (!validateNIMService(input).allowed) return unchanged

  const object = structuredClone(original)
  const spec = obj(object.spec) ?? {}
  const warnings: Warning[] = []
  const metadata = obj(object.metadata) ?? {}
  object.metadata = metadata
  let hpa: JsonObject | undefined

  if (autoscalingEnabled(spec) && !has(spec, 'multiNode')) {
    fillDefaults(spec, warnings)
    const namespace = str(metadata.namespace) ?? input.namespace ?? ''
    hpa = renderHpa(object, namespace)
    metadata.annotations = { ...obj(metadata.annotations), ...hpaAnnotations(hpa) }
  } else {
    const annotations = obj(metadata.annotations)
    if (annotations !== undefined && (HPA_ANNOTATION in annotations || HPA_SHA_ANNOTATION in annotations)) {
      const rest = { ...annotations }
      delete rest[HPA_ANNOTATION]
      delete rest[HPA_SHA_ANNOTATION]
      metadata.annotations = rest
    }
  }
  const patch = fastJsonPatch.compare(original, object)
  return { object, patch, warnings, ...(hpa !== undefined ? { hpa } : {}) }
}

