// A CRD's `default`s applied to an object as the apiserver does when it decodes a custom resource,
// before any admission webhook or schema validation sees it (apiextensions-apiserver
// pkg/apiserver/schema/defaulting: PruneNonNullableNullsWithoutDefaults, then Default). Pure: the
// schema is an argument (the `openAPIV3Schema` of one served version), the object is copied, not written.

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

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)

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
 * PruneNonNullableNullsWithoutDefaults: `field: null` where the schema has neither `nullable: true`
 * nor a default is dropped, as if it were absent (so `count: null` is defaulted, `foo: null` passes).
 */
function pruneNulls (x: unknown, s: StructuralSchema | undefined): void {
  if (s === undefined) return
  if (Array.isArray(x)) {
    for (const v of x) pruneNulls(v, s.items)
    return
  }
  if (!isObject(x)) return
  for (const k of Object.keys(x)) {
    const prop = childSchema(s, k)
    if (prop === undefined) continue
    if (x[k] === null && prop.default === undefined && prop.nullable !== true) delete x[k]
    else pruneNulls(x[k], prop)
  }
}

/**
 * Default: every absent property with a default gets a copy of it (a null one too, unless nullable),
 * then each present value is defaulted by its own schema: inside objects and array items that exist,
 * and inside a default just placed.
 */
function applyDefaults (x: unknown, s: StructuralSchema | undefined): void {
  if (s === undefined) return
  if (Array.isArray(x)) {
    for (const v of x) applyDefaults(v, s.items)
    return
  }
  if (!isObject(x)) return
  if (s.properties !== undefined) {
    for (const k of Object.keys(s.properties)) {
      const prop = s.properties[k] as StructuralSchema
      if (prop.default === undefined) continue
      if (!Object.hasOwn(x, k) || (x[k] === null && prop.nullable !== true)) x[k] = deepCopy(prop.default)
    }
  }
  for (const k of Object.keys(x)) applyDefaults(x[k], childSchema(s, k))
}

/** A copy of `object` as the apiserver stores it before validation: nulls pruned, defaults set. */
export function withCrdDefaults<T> (object: T, schema: StructuralSchema | undefined): T {
  const copy = deepCopy(object) as T
  pruneNulls(copy, schema)
  applyDefaults(copy, schema)
  return copy
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
