// The spec schema as ajv compiles it. ajv inlines a schema without $refs into ONE function; for this
// CRD that was ~700 KB of code, past the bytecode size V8's optimising compilers accept, so validation
// ran unoptimised (~30 µs per review in the server instead of ~8). splitSchema moves subschemas behind
// $refs, which ajv (inlineRefs: false) compiles to small functions of their own that V8 optimises.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { JsonObject } from './types.js'
import { isObject } from './json.js'
import { SCHEMA_DIR } from '../paths.js'

/** A schema bigger than this (as JSON text, its $refs not followed) has its largest parts moved out. */
export const SPLIT_BYTES = 1024

export const SCHEMA_TEXT = readFileSync(join(SCHEMA_DIR, 'nimservice-spec.schema.json'), 'utf8')

/** What ajv compiles: the committed schema, split. */
export function compiledSchema (): JsonObject {
  return splitSchema(JSON.parse(SCHEMA_TEXT) as JsonObject)
}

type Holder = Record<PropertyKey, unknown>

/**
 * The schema with subschemas moved into `definitions` behind `$ref`s, bottom-up and the largest first,
 * until every schema is within `maxBytes` or holds nothing but $refs. Only the places where a subschema
 * sits are visited (properties, items, additionalProperties, anyOf), so enum values and defaults are
 * never mistaken for schemas. The meaning, and the order of keys, are unchanged.
 */
export function splitSchema (schema: JsonObject, maxBytes = SPLIT_BYTES): JsonObject {
  const definitions: JsonObject = {}
  const size = (v: unknown): number => JSON.stringify(v).length
  const visit = (node: JsonObject): JsonObject => {
    const out: JsonObject = { ...node }
    // Where the subschemas sit, as [holder, key]: holder[key] is a subschema.
    const slots: Array<[Holder, PropertyKey]> = [[out, 'items'], [out, 'additionalProperties']]
    if (isObject(out.properties)) {
      const properties = { ...out.properties }
      out.properties = properties
      for (const k of Object.keys(properties)) slots.push([properties, k])
    }
    if (Array.isArray(out.anyOf)) {
      const anyOf = [...out.anyOf as unknown[]]
      out.anyOf = anyOf
      anyOf.forEach((_, i) => slots.push([anyOf as unknown as Holder, i]))
    }
    const subschemas = slots.filter(([holder, key]) => isObject(holder[key]))
    for (const [holder, key] of subschemas) holder[key] = visit(holder[key] as JsonObject)
    subschemas.sort(([h1, k1], [h2, k2]) => size(h2[k2]) - size(h1[k1]))
    for (const [holder, key] of subschemas) {
      if (size(out) <= maxBytes) break
      const name = `s${Object.keys(definitions).length}`
      definitions[name] = holder[key]
      holder[key] = { $ref: `#/definitions/${name}` }
    }
    return out
  }
  return { ...visit(schema), definitions }
}
