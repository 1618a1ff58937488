// autoscaling/v2 defaulting (k8s.io/kubernetes pkg/apis/autoscaling/v2/defaults.go), applied to a
// copy: what the apiserver stores for an HPA is this function's output, so validating and rendering
// from it keeps nim-admission's view and the cluster's view the same.
import type { JsonObject } from './types.js'
import { obj } from './json.js'

export const DEFAULT_METRIC: JsonObject = Object.freeze({
  type: 'Resource',
  resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } }
}) as JsonObject

function scaleUpDefaults (): JsonObject {
  return {
    stabilizationWindowSeconds: 0,
    selectPolicy: 'Max',
    policies: [
      { type: 'Pods', value: 4, periodSeconds: 15 },
      { type: 'Percent', value: 100, periodSeconds: 15 }
    ]
  }
}

function scaleDownDefaults (): JsonObject {
  return { selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] }
}

// copyHPAScalingRules: the user's fields, where set (a JSON null counts as unset), win over the defaults.
function scalingRules (from: JsonObject | undefined, defaults: JsonObject): JsonObject {
  if (from === undefined) return defaults
  const out: JsonObject = { ...defaults }
  for (const field of ['selectPolicy', 'stabilizationWindowSeconds', 'policies', 'tolerance']) {
    if (from[field] !== undefined && from[field] !== null) out[field] = from[field]
  }
  return out
}

export function defaultBehavior (behavior: JsonObject): JsonObject {
  return {
    scaleUp: scalingRules(obj(behavior.scaleUp), scaleUpDefaults()),
    scaleDown: scalingRules(obj(behavior.scaleDown), scaleDownDefaults())
  }
}

/** SetDefaults_HorizontalPodAutoscaler on the spec: minReplicas, metrics and behavior. */
export function defaultHpaSpec (spec: JsonObject): JsonObject {
  const out: JsonObject = { ...spec }
  if (out.minReplicas === undefined || out.minReplicas === null) out.minReplicas = 1
  if (!Array.isArray(out.metrics) || out.metrics.length === 0) out.metrics = [structuredClone(DEFAULT_METRIC)]
  const behavior = obj(out.behavior)
  if (behavior !== undefined) out.behavior = defaultBehavior(behavior)
  else delete out.behavior
  return out
}
