// NIMService rules beyond the schema: the autoscaling conflicts, the CRD's own CEL rules (so that the
// offline CLI gives the cluster's verdict), the upstream operator's immutability rules, and the HPA
// spec held to Kubernetes' HPA validation.
import type { Cause, JsonObject } from './types.js'
import { arr, at, has, isObject, jsonEqual, obj, str } from './json.js'
import { index, rule } from './field.js'
import { validateHpaSpec } from './hpa-validation.js'

export const MSG_REPLICAS = 'spec.replicas cannot be set when spec.scale.enabled is true'
export const MSG_MULTINODE = 'autoScaling must be nil or disabled when multiNode is set'

/** True when `spec.scale.enabled` is the boolean true (the CRD's `has(...) && self.scale.enabled`). */
export function autoscalingEnabled (spec: JsonObject): boolean {
  return at(spec, 'scale', 'enabled') === true
}

function autoscalingRules (spec: JsonObject): Cause[] {
  if (!autoscalingEnabled(spec)) return []
  const causes: Cause[] = []
  if (has(spec, 'replicas')) causes.push(rule('spec.replicas', MSG_REPLICAS, 'NIM010'))
  if (has(spec, 'multiNode')) causes.push(rule('spec.scale.enabled', MSG_MULTINODE, 'NIM011'))
  const hpa = obj(at(spec, 'scale', 'hpa'))
  if (hpa === undefined) {
    causes.push(rule('spec.scale.hpa', 'Required value: spec.scale.hpa (with maxReplicas) must be set when spec.scale.enabled is true', 'NIM012'))
  } else {
    for (const c of validateHpaSpec(hpa, 'spec.scale.hpa')) causes.push(c)
  }
  return causes
}

// x-kubernetes-validations of the upstream CRD, word for word.
function celRules (spec: JsonObject): Cause[] {
  const causes: Cause[] = []
  const multiNode = obj(spec.multiNode)
  if (multiNode !== undefined) {
    if (has(multiNode, 'mpi') && has(multiNode, 'ray')) {
      causes.push(rule('spec.multiNode', 'mpi and ray are mutually exclusive', 'NIM040'))
    }
    const cd = obj(multiNode.computeDomain)
    if (cd !== undefined) {
      const ok = cd.create === true ? !has(cd, 'name') : (str(cd.name) ?? '').length > 0
      if (!ok) causes.push(rule('spec.multiNode.computeDomain', 'if create is true, name must not be set; otherwise name is required.', 'NIM041'))
    }
  }
  const expose = obj(spec.expose)
  const router = obj(expose?.router)
  if (at(expose, 'ingress', 'enabled') === true && has(router, 'ingress')) {
    causes.push(rule('spec.expose.router.ingress',
      '.spec.expose.ingress is deprecated, and will be removed in a future release. If .spec.expose.ingress is set, please do not set .spec.expose.router.ingress.', 'NIM042'))
  }
  if (has(router, 'gateway') && has(router, 'ingress')) {
    causes.push(rule('spec.expose.router', 'ingress and gateway cannot be specified together', 'NIM043'))
  }
  const epp = obj(router?.eppConfig)
  if (has(epp, 'configMapRef') && has(epp, 'config')) {
    causes.push(rule('spec.expose.router.eppConfig', 'specify either configMapRef or config, not both', 'NIM044'))
  }
  const backendRef = obj(at(router, 'gateway', 'backendRef'))
  if (backendRef !== undefined) {
    // The CRD defaults group to "" and kind to Service before the rule runs.
    const group = str(backendRef.group) ?? ''
    const kind = str(backendRef.kind) ?? 'Service'
    if (group === '' && kind === 'Service' && !has(backendRef, 'port')) {
      causes.push(rule('spec.expose.router.gateway.backendRef', 'Must have port for Service reference', 'NIM045'))
    }
  }
  arr(spec.draResources)?.forEach((entry, i) => {
    const e = obj(entry)
    if (e === undefined) return
    const path = index('spec.draResources', i)
    const sources = ['resourceClaimName', 'resourceClaimTemplateName', 'claimCreationSpec'].filter((k) => has(e, k))
    if (sources.length !== 1) {
      causes.push(rule(path, 'exactly one of spec.resourceClaimName, spec.resourceClaimTemplateName, or spec.claimCreationSpec must be set.', 'NIM046'))
    }
    arr(at(e, 'claimCreationSpec', 'devices'))?.forEach((device, j) => {
      const d = obj(device)
      if (has(d, 'celExpressions') && (has(d, 'attributeSelectors') || has(d, 'capacitySelectors'))) {
        causes.push(rule(index(`${path}.claimCreationSpec.devices`, j), 'celExpressions must not be set if attributeSelectors or capacitySelectors are set', 'NIM047'))
      }
    })
  })
  return causes
}

// On UPDATE: the operator cannot reshape a running multi-node group or its DRA claims in place.
function immutabilityRules (spec: JsonObject, oldSpec: JsonObject): Cause[] {
  const causes: Cause[] = []
  if (!jsonEqual(spec.multiNode ?? null, oldSpec.multiNode ?? null)) {
    causes.push(rule('spec.multiNode', 'spec.multiNode is immutable', 'NIM050'))
  }
  if (!jsonEqual(spec.draResources ?? null, oldSpec.draResources ?? null)) {
    causes.push(rule('spec.draResources', 'spec.draResources is immutable', 'NIM051'))
  }
  return causes
}

/** Rule causes for a spec; `oldSpec` is given on UPDATE. */
export function ruleCauses (spec: JsonObject, oldSpec?: JsonObject): Cause[] {
  return [
    ...autoscalingRules(spec),
    ...celRules(spec),
    ...(oldSpec !== undefined && isObject(oldSpec) ? immutabilityRules(spec, oldSpec) : [])
  ]
}
