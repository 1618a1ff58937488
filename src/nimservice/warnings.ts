// Best-practice findings on an autoscaled NIMService: allowed, but said.
import type { JsonObject, Warning } from './types.js'
import { arr, at, has, int, obj, str } from './json.js'
import { child, index, warning } from './field.js'
import { autoscalingEnabled } from './rules.js'

const HPA = 'spec.scale.hpa'
const CUSTOM_METRIC_TYPES = new Set(['Pods', 'Object', 'External'])
/** Warnings made at most: a response keeps the first 100 (validate.ts), so looking further is waste. */
export const MAX_WARNINGS = 100

/** Each sidecar's resources by its name (the first sidecar of a name), made once per review. */
function sidecarResources (spec: JsonObject): Map<string, JsonObject | undefined> {
  const out = new Map<string, JsonObject | undefined>()
  for (const c of arr(spec.sidecarContainers) ?? []) {
    const name = obj(c)?.name
    if (typeof name === 'string' && !out.has(name)) out.set(name, obj(obj(c)?.resources))
  }
  return out
}

/** Whether a container requests `resource`; Kubernetes copies limits into absent requests. */
function requests (spec: JsonObject, sidecars: Map<string, JsonObject | undefined>, container: string | undefined, resource: string): boolean {
  const resources = container !== undefined && sidecars.has(container) ? sidecars.get(container) : obj(spec.resources)
  return has(obj(resources?.requests), resource) || has(obj(resources?.limits), resource)
}

function metricWarnings (spec: JsonObject, sidecars: Map<string, JsonObject | undefined>, metric: JsonObject, path: string, name: string): Warning[] {
  const out: Warning[] = []
  const type = str(metric.type) ?? ''
  const source = obj(metric[type.charAt(0).toLowerCase() + type.slice(1)])
  const target = obj(source?.target)
  const targetType = str(target?.type)

  if ((type === 'Resource' || type === 'ContainerResource') && targetType === 'Utilization') {
    const resource = str(source?.name) ?? ''
    const container = type === 'ContainerResource' ? str(source?.container) : undefined
    if (resource !== '' && !requests(spec, sidecars, container, resource)) {
      out.push(warning(child(path, `${type === 'Resource' ? 'resource' : 'containerResource'}.target.averageUtilization`),
        `a Utilization target on ${resource} needs a ${resource} request, and spec.resources.requests sets none: the HPA cannot compute utilization`, 'NIM104'))
    }
  }
  if (CUSTOM_METRIC_TYPES.has(type) && at(spec, 'metrics', 'enabled') !== true) {
    out.push(warning(child(path, 'type'),
      `a ${type} metric comes from Prometheus, but spec.metrics.enabled is not true, so the NIM is not scraped and the metric will be missing`, 'NIM105'))
  }
  if (type === 'Object') {
    const ref = obj(source?.describedObject)
    if (ref !== undefined && !(ref.apiVersion === 'v1' && ref.kind === 'Service' && ref.name === name)) {
      out.push(warning(child(path, 'object.describedObject'),
        `describes ${str(ref.apiVersion) ?? ''}/${str(ref.kind) ?? ''} "${str(ref.name) ?? ''}", not this NIMService's own Service (v1/Service "${name}") that serves its metrics`, 'NIM106'))
    }
  }
  const field = targetType === 'Utilization' ? 'averageUtilization' : targetType === 'Value' ? 'value' : targetType === 'AverageValue' ? 'averageValue' : undefined
  if (target !== undefined && field !== undefined && !has(target, field)) {
    out.push(warning(child(path, `${type.charAt(0).toLowerCase() + type.slice(1)}.target`),
      `target type ${String(targetType)} reads ${field}, which is not set`, 'NIM110'))
  }
  return out
}

/** The first MAX_WARNINGS warnings for a NIMService; none unless autoscaling is enabled with an HPA spec. */
export function warningsFor (object: JsonObject): Warning[] {
  const spec = obj(object.spec) ?? {}
  const hpa = obj(at(spec, 'scale', 'hpa'))
  if (!autoscalingEnabled(spec) || hpa === undefined) return []
  const name = str(at(object, 'metadata', 'name')) ?? ''
  const out: Warning[] = []

  const minReplicas = int(hpa.minReplicas) ?? 1
  const maxReplicas = int(hpa.maxReplicas)
  if (minReplicas < 2) {
    out.push(warning(child(HPA, 'minReplicas'), `minReplicas is ${minReplicas}: one pod failure or eviction takes the model offline`, 'NIM101'))
  }
  if (maxReplicas !== undefined && minReplicas === maxReplicas) {
    out.push(warning(child(HPA, 'maxReplicas'), `minReplicas equals maxReplicas (${maxReplicas}): the HPA can never scale`, 'NIM108'))
  }
  const down = int(at(hpa, 'behavior', 'scaleDown', 'stabilizationWindowSeconds'))
  if (down !== undefined && down < 300) {
    out.push(warning(child(HPA, 'behavior.scaleDown.stabilizationWindowSeconds'), `a scale-down window of ${down}s lets replicas flap on short dips`, 'NIM102'))
  }
  const up = int(at(hpa, 'behavior', 'scaleUp', 'stabilizationWindowSeconds'))
  if (up !== undefined && up > 300) {
    out.push(warning(child(HPA, 'behavior.scaleUp.stabilizationWindowSeconds'), `a scale-up window of ${up}s reacts slowly to traffic spikes`, 'NIM103'))
  }

  const metrics = arr(hpa.metrics) ?? []
  if (metrics.length === 0) {
    out.push(warning(child(HPA, 'metrics'), 'no metrics: Kubernetes defaults to CPU utilization 80%, which does not follow GPU load', 'NIM109'))
  }
  const kserve = spec.inferencePlatform === 'kserve'
  let kserveMetricSeen = false
  const sidecars = sidecarResources(spec)
  for (let i = 0; i < metrics.length && out.length < MAX_WARNINGS; i++) {
    const metric = obj(metrics[i])
    if (metric === undefined) continue
    const path = index(child(HPA, 'metrics'), i)
    for (const w of metricWarnings(spec, sidecars, metric, path, name)) out.push(w)
    if (kserve) {
      const resource = str(at(metric, 'resource', 'name'))
      const usable = metric.type === 'Resource' && (resource === 'cpu' || resource === 'memory')
      if (usable && !kserveMetricSeen) kserveMetricSeen = true
      else out.push(warning(path, 'inferencePlatform kserve only uses the first cpu or memory Resource metric; this one is ignored', 'NIM107'))
    }
  }
  return out.slice(0, MAX_WARNINGS)
}
