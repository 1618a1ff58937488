// Kubernetes' own autoscaling/v2 HorizontalPodAutoscalerSpec validation, ported rule for rule and in
// the same order from k8s.io/kubernetes pkg/apis/autoscaling/validation/validation.go (v1.36), with the
// options the HPA registry strategy uses for a new object. The spec is defaulted first, as the
// apiserver does (pkg/apis/autoscaling/v2/defaults.go), so an absent `policies` key is filled in while
// an explicit empty list is an error.
import type { Cause, JsonObject } from './types.js'
import { arr, has, int, obj, str } from './json.js'
import { child, forbidden, index, invalid, notSupported, required } from './field.js'
import { canonicalQuantity, parseQuantity } from './quantity.js'
import { defaultHpaSpec } from './hpa-defaults.js'

const MAX_PERIOD_SECONDS = 1800
/**
 * Causes made per list at most: a response keeps 100, so a list of thousands of bad metrics or
 * policies is checked until it has given this many (a bound on a review's work).
 */
export const MAX_HPA_CAUSES = 1000
const MAX_STABILIZATION_WINDOW_SECONDS = 3600
const METRIC_SOURCE_TYPES = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource'] as const
const SELECT_POLICIES = ['Disabled', 'Max', 'Min'] as const
const POLICY_TYPES = ['Percent', 'Pods'] as const
const SOURCE_FIELD: Record<string, string> = {
  Object: 'object', Pods: 'pods', Resource: 'resource', External: 'external', ContainerResource: 'containerResource'
}

/** Validates `hpa` (a HorizontalPodAutoscalerSpec without scaleTargetRef) found at `path`. */
export function validateHpaSpec (hpa: unknown, path: string): Cause[] {
  const spec = defaultHpaSpec(obj(hpa) ?? {})
  const errs: Cause[] = []
  const minReplicas = int(spec.minReplicas)
  const maxReplicas = int(spec.maxReplicas) ?? 0

  if (minReplicas !== undefined && minReplicas < 1) {
    errs.push(invalid(child(path, 'minReplicas'), minReplicas, 'must be greater than or equal to 1', 'NIM020'))
  }
  if (maxReplicas === 0) {
    errs.push(required(child(path, 'maxReplicas'), 'must be set and greater than 0', 'NIM021'))
  } else if (maxReplicas < 0) {
    errs.push(invalid(child(path, 'maxReplicas'), maxReplicas, 'must be greater than or equal to 1', 'NIM021'))
  }
  if (minReplicas !== undefined && maxReplicas < minReplicas) {
    errs.push(invalid(child(path, 'maxReplicas'), maxReplicas, 'must be greater than or equal to `minReplicas`', 'NIM021'))
  }
  // concat, not push(...): a list of thousands of metrics would overflow the argument stack.
  return errs.concat(
    validateMetrics(arr(spec.metrics) ?? [], child(path, 'metrics'), minReplicas),
    validateBehavior(obj(spec.behavior), child(path, 'behavior'))
  )
}

function validateMetrics (metrics: unknown[], path: string, minReplicas: number | undefined): Cause[] {
  const errs: Cause[] = []
  let scalesFromObjectOrExternal = false
  for (let i = 0; i < metrics.length; i++) {
    const metric = obj(metrics[i]) ?? {}
    if (metric.type === 'Object' || metric.type === 'External') scalesFromObjectOrExternal = true
    // Past the cap only the scan for Object/External metrics goes on (it decides NIM025).
    if (errs.length < MAX_HPA_CAUSES) for (const c of validateMetricSpec(metric, index(path, i))) errs.push(c)
  }
  if (minReplicas === 0 && !scalesFromObjectOrExternal) {
    errs.push(forbidden(path, 'must specify at least one Object or External metric to support scaling to zero replicas', 'NIM025'))
  }
  return errs
}

function validateMetricSpec (spec: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  const type = str(spec.type) ?? ''
  if (type === '') errs.push(required(child(path, 'type'), 'must specify a metric source type', 'NIM022'))
  const known = (METRIC_SOURCE_TYPES as readonly string[]).includes(type)
  if (!known) errs.push(notSupported(child(path, 'type'), type, METRIC_SOURCE_TYPES, 'NIM022'))

  // Only the first source present is validated; the others are reported as forbidden below.
  const present: string[] = []
  for (const [name, validate] of SOURCES) {
    if (!has(spec, name)) continue
    present.push(name)
    if (present.length === 1) errs.push(...validate(obj(spec[name]) ?? {}, child(path, name)))
  }

  const expected = Object.hasOwn(SOURCE_FIELD, type) ? SOURCE_FIELD[type] : undefined
  if (expected !== undefined) {
    if (!has(spec, expected)) {
      errs.push(required(child(path, expected), 'must populate information for the given metric source', 'NIM022'))
    }
  } else {
    errs.push(notSupported(child(path, 'type'), type, METRIC_SOURCE_TYPES, 'NIM022'))
  }
  if (present.length !== 1) {
    for (const name of present) {
      if (name !== expected) errs.push(forbidden(child(path, name), 'must populate the given metric source only', 'NIM022'))
    }
  }
  return errs
}

// The metric sources in the order Kubernetes checks them (function declarations are hoisted).
const SOURCES: ReadonlyArray<readonly [string, (src: JsonObject, path: string) => Cause[]]> = [
  ['object', validateObjectSource],
  ['external', validateExternalSource],
  ['pods', validatePodsSource],
  ['resource', validateResourceSource],
  ['containerResource', validateContainerResourceSource]
]

function target (src: JsonObject): JsonObject {
  return obj(src.target) ?? {}
}

function validateObjectSource (src: JsonObject, path: string): Cause[] {
  const t = target(src)
  const errs = [
    ...validateObjectReference(obj(src.describedObject) ?? {}, child(path, 'describedObject')),
    ...validateMetricIdentifier(obj(src.metric) ?? {}, child(path, 'metric')),
    ...validateMetricTarget(t, child(path, 'target'))
  ]
  if (!has(t, 'value') && !has(t, 'averageValue')) {
    errs.push(required(child(child(path, 'target'), 'averageValue'), 'must set either a target value or averageValue', 'NIM024'))
  }
  return errs
}

function validateExternalSource (src: JsonObject, path: string): Cause[] {
  const t = target(src)
  const errs = [
    ...validateMetricIdentifier(obj(src.metric) ?? {}, child(path, 'metric')),
    ...validateMetricTarget(t, child(path, 'target'))
  ]
  if (!has(t, 'value') && !has(t, 'averageValue')) {
    errs.push(required(child(child(path, 'target'), 'averageValue'), 'must set either a target value for metric or a per-pod target', 'NIM024'))
  }
  if (has(t, 'value') && has(t, 'averageValue')) {
    errs.push(forbidden(child(child(path, 'target'), 'value'), 'may not set both a target value for metric and a per-pod target', 'NIM024'))
  }
  return errs
}

function validatePodsSource (src: JsonObject, path: string): Cause[] {
  const t = target(src)
  const errs = [
    ...validateMetricIdentifier(obj(src.metric) ?? {}, child(path, 'metric')),
    ...validateMetricTarget(t, child(path, 'target'))
  ]
  if (!has(t, 'averageValue')) {
    errs.push(required(child(child(path, 'target'), 'averageValue'), 'must specify a positive target averageValue', 'NIM024'))
  }
  return errs
}

function validateResourceSource (src: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  if ((str(src.name) ?? '') === '') errs.push(required(child(path, 'name'), 'must specify a resource name', 'NIM023'))
  errs.push(...validateMetricTarget(target(src), child(path, 'target')))
  errs.push(...requireOneOfUtilizationOrValue(target(src), child(path, 'target')))
  return errs
}

function validateContainerResourceSource (src: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  const name = str(src.name) ?? ''
  if (name === '') {
    errs.push(required(child(path, 'name'), 'must specify a resource name', 'NIM023'))
  } else {
    errs.push(...validateContainerResourceName(name, child(path, 'name')))
  }
  const container = str(src.container) ?? ''
  if (container === '') {
    errs.push(required(child(path, 'container'), 'must specify a container', 'NIM023'))
  } else if (!isDns1123Label(container)) {
    errs.push(invalid(child(path, 'container'), container, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character", 'NIM023'))
  }
  errs.push(...validateMetricTarget(target(src), child(path, 'target')))
  errs.push(...requireOneOfUtilizationOrValue(target(src), child(path, 'target')))
  return errs
}

function requireOneOfUtilizationOrValue (t: JsonObject, path: string): Cause[] {
  if (!has(t, 'averageUtilization') && !has(t, 'averageValue')) {
    return [required(child(path, 'averageUtilization'), 'must set either a target raw value or a target utilization', 'NIM024')]
  }
  if (has(t, 'averageUtilization') && has(t, 'averageValue')) {
    return [forbidden(child(path, 'averageValue'), 'may not set both a target raw value and a target utilization', 'NIM024')]
  }
  return []
}

function validateMetricTarget (t: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  const type = str(t.type) ?? ''
  if (type === '') errs.push(required(child(path, 'type'), 'must specify a metric target type', 'NIM024'))
  if (type !== 'Utilization' && type !== 'Value' && type !== 'AverageValue') {
    errs.push(invalid(child(path, 'type'), type, 'must be either Utilization, Value, or AverageValue', 'NIM024'))
  }
  for (const name of ['value', 'averageValue']) {
    if (!has(t, name)) continue
    const q = parseQuantity(t[name])
    if (q !== undefined && q.sign !== 1) errs.push(invalid(child(path, name), canonicalQuantity(t[name]), 'must be positive', 'NIM024'))
  }
  const utilization = int(t.averageUtilization)
  if (utilization !== undefined && utilization < 1) {
    errs.push(invalid(child(path, 'averageUtilization'), utilization, 'must be greater than 0', 'NIM024'))
  }
  return errs
}

function validateMetricIdentifier (id: JsonObject, path: string): Cause[] {
  const name = str(id.name) ?? ''
  if (name === '') return [required(child(path, 'name'), 'must specify a metric name', 'NIM023')]
  return pathSegmentErrors(name).map((msg) => invalid(child(path, 'name'), name, msg, 'NIM023'))
}

// ValidateCrossVersionObjectReference with the Object-metric options: an empty API group is allowed,
// an unparseable apiVersion is not.
function validateObjectReference (ref: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  for (const field of ['kind', 'name']) {
    const value = str(ref[field]) ?? ''
    if (value === '') {
      errs.push(required(child(path, field), '', 'NIM023'))
    } else {
      for (const msg of pathSegmentErrors(value)) errs.push(invalid(child(path, field), value, msg, 'NIM023'))
    }
  }
  const apiVersion = str(ref.apiVersion) ?? ''
  if (apiVersion !== '/' && apiVersion.split('/').length > 2) {
    errs.push(invalid(child(path, 'apiVersion'), apiVersion, `unexpected GroupVersion string: ${apiVersion}`, 'NIM023'))
  }
  return errs
}

function validateBehavior (behavior: JsonObject | undefined, path: string): Cause[] {
  if (behavior === undefined) return []
  return [
    ...validateScalingRules(obj(behavior.scaleUp), child(path, 'scaleUp')),
    ...validateScalingRules(obj(behavior.scaleDown), child(path, 'scaleDown'))
  ]
}

function validateScalingRules (rules: JsonObject | undefined, path: string): Cause[] {
  if (rules === undefined) return []
  const errs: Cause[] = []
  const window = int(rules.stabilizationWindowSeconds)
  if (window !== undefined && window < 0) {
    errs.push(invalid(child(path, 'stabilizationWindowSeconds'), window, 'must be greater than or equal to zero', 'NIM026'))
  }
  if (window !== undefined && window > MAX_STABILIZATION_WINDOW_SECONDS) {
    errs.push(invalid(child(path, 'stabilizationWindowSeconds'), window, `must be less than or equal to ${MAX_STABILIZATION_WINDOW_SECONDS}`, 'NIM026'))
  }
  if (has(rules, 'selectPolicy') && !(SELECT_POLICIES as readonly unknown[]).includes(rules.selectPolicy)) {
    errs.push(notSupported(child(path, 'selectPolicy'), rules.selectPolicy, SELECT_POLICIES, 'NIM028'))
  }
  const policiesPath = child(path, 'policies')
  const policies = arr(rules.policies) ?? []
  if (policies.length === 0) errs.push(required(policiesPath, 'must specify at least one Policy', 'NIM027'))
  for (let i = 0; i < policies.length && errs.length < MAX_HPA_CAUSES; i++) for (const c of validateScalingPolicy(obj(policies[i]) ?? {}, index(policiesPath, i))) errs.push(c)
  if (has(rules, 'tolerance')) {
    const q = parseQuantity(rules.tolerance)
    if (q !== undefined && q.sign < 0) {
      errs.push(invalid(child(path, 'tolerance'), canonicalQuantity(rules.tolerance), 'must be greater than or equal to 0', 'NIM029'))
    }
  }
  return errs
}

function validateScalingPolicy (policy: JsonObject, path: string): Cause[] {
  const errs: Cause[] = []
  if (!(POLICY_TYPES as readonly unknown[]).includes(policy.type)) {
    errs.push(notSupported(child(path, 'type'), policy.type ?? '', POLICY_TYPES, 'NIM027'))
  }
  const value = int(policy.value) ?? 0
  if (value <= 0) errs.push(invalid(child(path, 'value'), value, 'must be greater than zero', 'NIM027'))
  const period = int(policy.periodSeconds) ?? 0
  if (period <= 0) errs.push(invalid(child(path, 'periodSeconds'), period, 'must be greater than zero', 'NIM027'))
  if (period > MAX_PERIOD_SECONDS) {
    errs.push(invalid(child(path, 'periodSeconds'), period, `must be less than or equal to ${MAX_PERIOD_SECONDS}`, 'NIM027'))
  }
  return errs
}

// --- name grammars from k8s.io/apimachinery/pkg/util/validation ---------------------------------

function pathSegmentErrors (name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`]
  const errs: string[] = []
  for (const bad of ['/', '%']) if (name.includes(bad)) errs.push(`may not contain '${bad}'`)
  return errs
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/

function isDns1123Label (v: string): boolean {
  return v.length <= 63 && DNS1123_LABEL.test(v)
}

function isQualifiedName (v: string): boolean {
  const parts = v.split('/')
  if (parts.length > 2) return false
  const name = parts[parts.length - 1] ?? ''
  if (parts.length === 2) {
    const prefix = parts[0] ?? ''
    if (prefix === '' || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) return false
  }
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME_PART.test(name)
}

const STANDARD_RESOURCES = new Set([
  'cpu', 'memory', 'ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage',
  'limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'pods', 'resourcequotas', 'services',
  'replicationcontrollers', 'secrets', 'persistentvolumeclaims', 'storage', 'requests.storage',
  'services.nodeports', 'services.loadbalancers', 'configmaps'
])
const STANDARD_CONTAINER_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage'])

// core/v1 validation.ValidateContainerResourceName.
function validateContainerResourceName (name: string, path: string): Cause[] {
  if (!isQualifiedName(name)) {
    return [invalid(path, name, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", 'NIM023')]
  }
  const errs: Cause[] = []
  if (!name.includes('/')) {
    const hugePages = name.startsWith('hugepages-')
    if (!STANDARD_RESOURCES.has(name) && !name.startsWith('requests.hugepages-') && !hugePages) {
      errs.push(invalid(path, name, 'must be a standard resource type or fully qualified', 'NIM023'))
    }
    if (!STANDARD_CONTAINER_RESOURCES.has(name) && !hugePages) {
      errs.push(invalid(path, name, 'must be a standard resource for containers', 'NIM023'))
    }
  } else if (!name.includes('kubernetes.io/') && (name.startsWith('requests.') || !isQualifiedName(`requests.${name}`))) {
    errs.push(invalid(path, name, "doesn't follow extended resource name standard", 'NIM023'))
  }
  return errs
}

