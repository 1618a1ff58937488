// A CRD's `default`s applied to an object as the apiserver does when it decodes a custom resource,
// before any admission webhook or schema validation sees it (apiextensions-apiserver
// pkg/apiserver/schema/defaulting: PruneNonNullableNullsWithoutDefaults, then Default). Pure: the
// schema is an argument (the `openAPIV3Schema` of one served version), the object is never written.
import { isObject } from './json.js'

/** One node of a structural schema (only what defaulting reads). */
export interface StructuralSchema {
  type?: string
  nullable?: boolean
  default?: unknown
  properties?: Record<string, StructuralSchema>
  additionalProperties?: StructuralSchema | boolean
  items?: StructuralSchema
}

type Json = Record<string, unknown>

/** runtime.DeepCopyJSONValue: a default is never shared between objects. */
function deepCopy (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(deepCopy)
  if (isObject(v)) {
    // fromEntries defines own properties: a `__proto__` key stays a key (`out[k] =` would set the prototype).
    return Object.fromEntries(Object.keys(v).map((k) => [k, deepCopy(v[k])]))
  }
  return v
}

/** The schema of a map's entry `key`: its property, else additionalProperties when it is a schema. */
function childSchema (s: StructuralSchema, key: string): StructuralSchema | undefined {
  if (s.properties !== undefined && Object.hasOwn(s.properties, key)) return s.properties[key]
  return isObject(s.additionalProperties) ? s.additionalProperties : undefined
}

/**
 * One node, as PruneNonNullableNullsWithoutDefaults then Default leave it: a `field: null` where the
 * schema has neither `nullable: true` nor a default is dropped, as if absent (so `count: null` is
 * defaulted, `foo: null` passes); every absent property with a default gets a copy of it (a null one
 * too, unless nullable); then each value is defaulted by its own schema, inside objects and array items
 * that exist and inside a default just placed (whose nulls were never pruned: `prune` false).
 * Copy on write: a node is copied only when something in it changes, and the input is never written.
 */
function defaulted (x: unknown, s: StructuralSchema | undefined, prune: boolean): unknown {
  if (s === undefined) return x
  if (Array.isArray(x)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < x.length; i++) {
      const v = defaulted(x[i], s.items, prune)
      if (v !== x[i]) (copy ??= x.slice())[i] = v
    }
    return copy ?? x
  }
  if (!isObject(x)) return x
  let out: Json | undefined
  const placed = new Set<string>()
  if (prune) {
    for (const k of Object.keys(x)) {
      const prop = childSchema(s, k)
      if (prop !== undefined && x[k] === null && prop.default === undefined && prop.nullable !== true) delete (out ??= { ...x })[k]
    }
  }
  if (s.properties !== undefined) {
    for (const k of Object.keys(s.properties)) {
      const prop = s.properties[k] as StructuralSchema
      if (prop.default === undefined) continue
      const cur = out ?? x
      if (!Object.hasOwn(cur, k) || (cur[k] === null && prop.nullable !== true)) {
        (out ??= { ...x })[k] = deepCopy(prop.default)
        placed.add(k)
      }
    }
  }
  const cur = out ?? x
  for (const k of Object.keys(cur)) {
    const v = defaulted(cur[k], childSchema(s, k), prune && !placed.has(k))
    if (v !== cur[k]) (out ??= { ...x })[k] = v
  }
  return out ?? x
}

/** `object` as the apiserver stores it before validation: nulls pruned, defaults set (a copy where changed). */
export function withCrdDefaults<T> (object: T, schema: StructuralSchema | undefined): T {
  return defaulted(object, schema, true) as T
}

/** The `openAPIV3Schema` of one version of a CRD (a parsed CustomResourceDefinition). */
export function crdVersionSchema (crd: unknown, version: string): StructuralSchema | undefined {
  const versions = (isObject(crd) && isObject(crd.spec) ? crd.spec.versions : undefined)
  if (!Array.isArray(versions)) return undefined
  const v = versions.find((x: unknown) => isObject(x) && x.name === version) as Json | undefined
  const schema = isObject(v?.schema) ? v.schema.openAPIV3Schema : undefined
  return isObject(schema) ? schema as StructuralSchema : undefined
}

/** The versions a CRD serves (`served: true`), in its order. */
export function servedVersions (crd: unknown): string[] {
  const versions = (isObject(crd) && isObject(crd.spec) ? crd.spec.versions : undefined)
  if (!Array.isArray(versions)) return []
  return versions.filter((x: unknown): x is Json => isObject(x) && x.served === true && typeof x.name === 'string').map((x) => x.name as string)
}
