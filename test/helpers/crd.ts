// NIMService CRDs for the end-to-end suite: the vendored upstream one, and one generated from
// schemas/ with no CEL rules at all, so that only the webhook can reject what CEL would.
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

type Json = Record<string, unknown>
const root = new URL('../../', import.meta.url)

export function upstreamCrd (): Json {
  return parse(readFileSync(new URL('schemas/upstream/apps.nvidia.com_nimservices.yaml', root), 'utf8')) as Json
}

// A structural CRD schema may not carry additionalProperties beside properties; the apiserver
// prunes unknown fields instead (and kubectl's strict field validation reports them).
function toStructural (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural)
  if (node === null || typeof node !== 'object') return node
  const out: Json = {}
  for (const [k, v] of Object.entries(node as Json)) {
    if ((k === 'additionalProperties' && v === false) || k === 'x-kubernetes-validations') continue
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, toStructural(s)]))
    else out[k] = toStructural(v)
  }
  return out
}

export function crdWithoutCel (): Json {
  const crd = upstreamCrd()
  const schema = JSON.parse(readFileSync(new URL('schemas/nimservice-spec.schema.json', root), 'utf8')) as Json
  delete schema.$schema
  delete schema.$id
  delete schema.title
  const version = ((crd.spec as Json).versions as Json[])[0] as Json
  const openAPIV3Schema = ((version.schema as Json).openAPIV3Schema as Json)
  const properties = openAPIV3Schema.properties as Json
  properties.spec = toStructural(schema)
  properties.status = toStructural(properties.status)
  delete openAPIV3Schema['x-kubernetes-validations']
  const text = JSON.stringify(crd)
  if (text.includes('x-kubernetes-validations')) throw new Error('the generated CRD still has CEL rules')
  return crd
}
