// Renders the HorizontalPodAutoscaler the upstream operator would create for a NIMService, in the form
// the apiserver stores it (v2 defaults applied, quantities canonical), so that an applier's server-side
// apply of the rendered manifest is a no-op once applied.
import { hash } from 'node:crypto'
import type { JsonObject } from './types.js'
import { arr, at, obj, str } from './json.js'
import { defaultHpaSpec } from './hpa-defaults.js'
import { canonicalQuantity } from './quantity.js'

export const HPA_ANNOTATION = 'nim-admission.io/hpa'
export const HPA_SHA_ANNOTATION = 'nim-admission.io/hpa-sha256'
export const MANAGED_BY = 'nim-admission'

/**
 * The operator's utils.MergeMaps: keys of the first map win on a clash. User keys such as `__proto__`,
 * `constructor` or `toString` are ordinary keys: merged in a Map, then made own properties.
 */
function mergeFirstWins (...maps: Array<JsonObject | undefined>): Record<string, string> {
  const out = new Map<string, string>()
  for (const m of maps) {
    for (const [k, v] of Object.entries(m ?? {})) if (!out.has(k) && typeof v === 'string') out.set(k, v)
  }
  return Object.fromEntries(out)
}

function canonicalTarget (target: unknown): unknown {
  const t = obj(target)
  if (t === undefined) return target
  const out: JsonObject = { ...t }
  for (const k of ['value', 'averageValue']) {
    if (out[k] !== undefined) out[k] = canonicalQuantity(out[k]) ?? out[k]
  }
  return out
}

function canonicalMetric (metric: unknown): unknown {
  const m = obj(metric)
  if (m === undefined) return metric
  const out: JsonObject = { ...m }
  for (const source of ['resource', 'containerResource', 'pods', 'object', 'external']) {
    const s = obj(out[source])
    if (s !== undefined) out[source] = { ...s, target: canonicalTarget(s.target) }
  }
  return out
}

function canonicalBehavior (behavior: JsonObject): JsonObject {
  const out: JsonObject = {}
  for (const dir of ['scaleUp', 'scaleDown']) {
    const rules = obj(behavior[dir])
    if (rules === undefined) continue
    out[dir] = rules.tolerance === undefined ? rules : { ...rules, tolerance: canonicalQuantity(rules.tolerance) ?? rules.tolerance }
  }
  return out
}

/**
 * Metrics ordered by type name, byte by byte as Go compares strings (localeCompare would ask ICU, at
 * ~1 µs a comparison); Array.prototype.sort is stable, so equal types keep their order.
 */
function sortedMetrics (metrics: unknown[]): unknown[] {
  const type = (m: unknown): string => str(obj(m)?.type) ?? ''
  return [...metrics].sort((a, b) => {
    const [x, y] = [type(a), type(b)]
    return x < y ? -1 : x > y ? 1 : 0
  })
}

export function renderHpa (nim: JsonObject, namespace: string): JsonObject {
  const name = str(at(nim, 'metadata', 'name')) ?? ''
  const spec = obj(nim.spec) ?? {}
  const hpa = defaultHpaSpec(obj(at(spec, 'scale', 'hpa')) ?? {})
  const labels = mergeFirstWins({
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/part-of': 'nim-service',
    'app.kubernetes.io/managed-by': MANAGED_BY
  }, obj(spec.labels))
  const annotations = mergeFirstWins(obj(spec.annotations), obj(at(spec, 'scale', 'annotations')))

  const metadata: JsonObject = { name, namespace, labels }
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations
  const hpaSpec: JsonObject = {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
    minReplicas: hpa.minReplicas,
    maxReplicas: hpa.maxReplicas,
    metrics: sortedMetrics(arr(hpa.metrics) ?? []).map(canonicalMetric)
  }
  const behavior = obj(hpa.behavior)
  if (behavior !== undefined) hpaSpec.behavior = canonicalBehavior(behavior)
  return { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata, spec: hpaSpec }
}

/** The annotation pair: the manifest as compact JSON and the SHA-256 (hex) of that exact string. */
export function hpaAnnotations (manifest: JsonObject): Record<string, string> {
  const json = JSON.stringify(manifest)
  return { [HPA_ANNOTATION]: json, [HPA_SHA_ANNOTATION]: hash('sha256', json, 'hex') }
}
