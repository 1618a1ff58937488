// Turns the upstream NIMService CRD's openAPIV3Schema into the JSON Schema that ajv compiles.
// Pure and deterministic: scripts/generate-schema.ts writes its output to schemas/, and a test
// fails when the committed file drifts from what this function makes of the vendored CRD.

type Json = Record<string, unknown>

const DROPPED = new Set(['description', 'format', 'x-kubernetes-validations'])

function convert (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convert)
  if (node === null || typeof node !== 'object') return node
  const src = node as Json
  const out: Json = {}
  for (const [key, value] of Object.entries(src)) {
    if (DROPPED.has(key)) continue
    // Kubernetes list and map markers carry no JSON Schema meaning; keep the ones a CRD needs.
    if (key === 'properties' || key === 'patternProperties') {
      out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, convert(v)]))
    } else {
      out[key] = convert(value)
    }
  }
  // kubectl applies with strict field validation by default, so an unknown field is an error
  // there; say so here too instead of letting a typo such as `maxReplica` pass silently.
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined &&
      out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false
  }
  return out
}

/** The JSON Schema of `spec` for one served version of the NIMService CRD. */
export function specSchemaFromCrd (crd: unknown, version = 'v1alpha1'): Json {
  const versions = ((crd as Json).spec as Json | undefined)?.versions as Json[] | undefined
  const served = versions?.find((v) => v.name === version)
  const root = (served?.schema as Json | undefined)?.openAPIV3Schema as Json | undefined
  const spec = (root?.properties as Json | undefined)?.spec
  if (spec === undefined) throw new Error(`CRD has no openAPIV3Schema.properties.spec for version ${version}`)
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://nim-admission.io/schemas/nimservice-spec.json',
    title: `NIMService spec (apps.nvidia.com/${version}), generated from the upstream CRD`,
    ...(convert(spec) as Json)
  }
}
