// The rule catalogue. Codes are published (users grep them, the README lists them): never reuse
// or renumber one; retire it instead.

export interface RuleInfo {
  code: string
  kind: 'deny' | 'warn'
  /** What the rule guards, in a few words. */
  title: string
  /** What to do about it. */
  fix: string
}

const rules: RuleInfo[] = [
  { code: 'NIM001', kind: 'deny', title: 'value does not match the CRD schema (type, pattern, enum, range)', fix: 'use the type and format the NIMService CRD declares for this field' },
  { code: 'NIM002', kind: 'deny', title: 'required field missing (CRD schema)', fix: 'add the field' },
  { code: 'NIM003', kind: 'deny', title: 'unknown field (CRD schema; kubectl applies with strict field validation)', fix: 'check the spelling against the NIMService CRD, or remove the field' },
  { code: 'NIM004', kind: 'deny', title: 'object nested deeper than 100 levels', fix: 'flatten the object; no NIMService field nests that deep' },
  { code: 'NIM005', kind: 'deny', title: 'metadata invalid: name, namespace, labels or annotations (apiserver ObjectMeta validation; offline gate)', fix: 'use a lowercase DNS name, label keys and values of letters, digits, -, _ and . (63 at most), string values' },
  { code: 'NIM006', kind: 'deny', title: 'a spec label or annotation the operator copies onto a created object is invalid there', fix: 'use label and annotation keys [prefix/]name and label values of letters, digits, -, _ and . (63 at most)' },
  { code: 'NIM010', kind: 'deny', title: 'spec.replicas set while autoscaling is enabled', fix: 'remove spec.replicas: the HPA owns the replica count' },
  { code: 'NIM011', kind: 'deny', title: 'autoscaling enabled on a multi-node NIMService', fix: 'set spec.scale.enabled to false, or remove spec.multiNode' },
  { code: 'NIM012', kind: 'deny', title: 'autoscaling enabled without spec.scale.hpa', fix: 'add spec.scale.hpa with at least maxReplicas' },
  { code: 'NIM020', kind: 'deny', title: 'HPA minReplicas out of range', fix: 'set spec.scale.hpa.minReplicas to 1 or more' },
  { code: 'NIM021', kind: 'deny', title: 'HPA maxReplicas missing, not positive, or below minReplicas', fix: 'set spec.scale.hpa.maxReplicas to at least minReplicas' },
  { code: 'NIM022', kind: 'deny', title: 'HPA metric type missing, unknown, or not matching its source', fix: 'set type to Resource, Pods, Object, External or ContainerResource and fill only the matching field' },
  { code: 'NIM023', kind: 'deny', title: 'HPA metric source incomplete (name, container, describedObject)', fix: 'fill the required fields of the metric source' },
  { code: 'NIM024', kind: 'deny', title: 'HPA metric target invalid', fix: 'give target.type Utilization, Value or AverageValue with a positive matching value' },
  { code: 'NIM025', kind: 'deny', title: 'HPA scale-to-zero without an Object or External metric', fix: 'add an Object or External metric, or raise minReplicas' },
  { code: 'NIM026', kind: 'deny', title: 'HPA behavior stabilizationWindowSeconds out of 0..3600', fix: 'use a window between 0 and 3600 seconds' },
  { code: 'NIM027', kind: 'deny', title: 'HPA behavior policy invalid', fix: 'give each policy type Pods or Percent, a value above 0 and periodSeconds in 1..1800' },
  { code: 'NIM028', kind: 'deny', title: 'HPA behavior selectPolicy unsupported', fix: 'use Max, Min or Disabled' },
  { code: 'NIM029', kind: 'deny', title: 'HPA behavior tolerance negative', fix: 'use a tolerance of 0 or more, e.g. "0.05"' },
  { code: 'NIM040', kind: 'deny', title: 'multiNode.mpi and multiNode.ray both set (CRD rule)', fix: 'keep one of mpi or ray' },
  { code: 'NIM041', kind: 'deny', title: 'multiNode.computeDomain create/name conflict (CRD rule)', fix: 'either create: true without name, or a non-empty name' },
  { code: 'NIM042', kind: 'deny', title: 'expose.ingress (deprecated) and expose.router.ingress both set (CRD rule)', fix: 'move the ingress to expose.router.ingress and drop expose.ingress' },
  { code: 'NIM043', kind: 'deny', title: 'expose.router.ingress and expose.router.gateway both set (CRD rule)', fix: 'keep one of ingress or gateway' },
  { code: 'NIM044', kind: 'deny', title: 'expose.router.eppConfig has both configMapRef and config (CRD rule)', fix: 'keep one of configMapRef or config' },
  { code: 'NIM045', kind: 'deny', title: 'gateway backendRef to a Service without a port (CRD rule)', fix: 'set expose.router.gateway.backendRef.port' },
  { code: 'NIM046', kind: 'deny', title: 'draResources entry must name exactly one claim source (CRD rule)', fix: 'set exactly one of resourceClaimName, resourceClaimTemplateName or claimCreationSpec' },
  { code: 'NIM047', kind: 'deny', title: 'DRA device celExpressions mixed with selectors (CRD rule)', fix: 'use celExpressions alone, or attributeSelectors/capacitySelectors alone' },
  { code: 'NIM050', kind: 'deny', title: 'spec.multiNode changed on update (immutable)', fix: 'delete and recreate the NIMService to change multiNode' },
  { code: 'NIM051', kind: 'deny', title: 'spec.draResources changed on update (immutable)', fix: 'delete and recreate the NIMService to change draResources' },
  { code: 'NIM101', kind: 'warn', title: 'minReplicas below 2: no high availability', fix: 'set minReplicas to 2 or more' },
  { code: 'NIM102', kind: 'warn', title: 'scale-down stabilization window under 300 s: flapping', fix: 'use 300-600 s for scaleDown.stabilizationWindowSeconds' },
  { code: 'NIM103', kind: 'warn', title: 'scale-up stabilization window over 300 s: slow reaction to spikes', fix: 'use 30-60 s for scaleUp.stabilizationWindowSeconds' },
  { code: 'NIM104', kind: 'warn', title: 'Utilization target for a resource without a request', fix: 'set spec.resources.requests for that resource, or use an AverageValue target' },
  { code: 'NIM105', kind: 'warn', title: 'custom metric while spec.metrics.enabled is not true', fix: 'set spec.metrics.enabled: true so Prometheus scrapes the NIM' },
  { code: 'NIM106', kind: 'warn', title: "Object metric not describing the NIMService's own Service", fix: 'describe apiVersion v1, kind Service, name = the NIMService name' },
  { code: 'NIM107', kind: 'warn', title: 'KServe ignores metrics other than the first cpu/memory Resource metric', fix: 'keep one cpu or memory Resource metric for inferencePlatform kserve' },
  { code: 'NIM108', kind: 'warn', title: 'minReplicas equals maxReplicas: the HPA never scales', fix: 'raise maxReplicas, or disable autoscaling and set spec.replicas' },
  { code: 'NIM109', kind: 'warn', title: 'no metrics: Kubernetes defaults to CPU 80%', fix: 'add an Object metric on gpu_cache_usage_perc, the metric the NIM guide recommends' },
  { code: 'NIM110', kind: 'warn', title: 'metric target type does not match the value it sets', fix: 'set averageUtilization for Utilization, value for Value, averageValue for AverageValue' },
  { code: 'NIM111', kind: 'warn', title: 'spec.expose.service absent: defaulted to port 8000 by /mutate', fix: 'set spec.expose.service.port explicitly' },
  { code: 'NIM112', kind: 'warn', title: 'name not known yet (generateName): HPA annotation rendered at the next UPDATE', fix: 'nothing to do: any later update (the operator adds its finalizer with one) renders it; or create with metadata.name' },
  { code: 'NIM113', kind: 'warn', title: 'HPA annotation not rendered: metadata.annotations would exceed 256 KiB', fix: 'shrink spec.annotations, spec.scale.annotations or the object\'s own annotations' },
  { code: 'NIM114', kind: 'warn', title: 'review not finished within its time budget', fix: 'make the object smaller (fewer or shorter list items and map entries); /mutate left it unchanged, /validate answers by --budget-failure-policy' },
  { code: 'NIM120', kind: 'warn', title: 'looks like a NIMService but is not one (kind spelled differently, or an apps.nvidia.com version the CRD does not serve): not checked (offline gate)', fix: 'use apiVersion apps.nvidia.com/v1alpha1 and kind NIMService' },
  { code: 'NIM121', kind: 'warn', title: 'the same NIMService (namespace/name) twice in the input: the last one wins (offline gate)', fix: 'rename one of them, or remove the duplicate' }
]

export const RULES: ReadonlyMap<string, RuleInfo> = new Map(rules.map((r) => [r.code, r]))

export function ruleInfo (code: string): RuleInfo {
  const info = RULES.get(code)
  if (info === undefined) throw new Error(`unknown rule code ${code}`)
  return info
}
