// The compiled validator of `spec`. Compiling the 140 KB schema takes ~300 ms and ~40 MB at start-up,
// so `npm run build` also writes ajv's standalone code for it next to this module
// (spec-validator.generated.mjs, see build-validator.ts); when that file is there and was made from
// the same schema (same SHA-256), it is loaded instead of compiling. Running from src/ compiles.
//
// ajv inlines a schema without $refs into ONE function; for this CRD that is ~700 KB of code, past the
// bytecode size V8's optimising compiler accepts, so it ran unoptimised and cost ~30 µs per review in
// the server. splitSchema moves large subschemas behind $refs, and ajv compiles each to its own small
// function (inlineRefs: false), which V8 optimises.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ValidateFunction } from 'ajv'
import { SCHEMA_DIR } from '../paths.js'

type Json = Record<string, unknown>

/** A subschema bigger than this (as JSON text) becomes a function of its own. */
export const SPLIT_BYTES = 1024

/**
 * The schema with subschemas moved into `definitions` behind `$ref`s until no schema (the root included)
 * is larger than `maxBytes` of JSON without its referenced parts: bottom-up, the largest child first.
 * Only the places where a subschema sits are visited (properties, items, additionalProperties, anyOf),
 * so enum values and defaults are never mistaken for schemas. The meaning is unchanged.
 */
export function splitSchema (schema: Json, maxBytes = SPLIT_BYTES): Json {
  const definitions: Json = {}
  const extract = (sub: Json): Json => {
    const name = `s${Object.keys(definitions).length}`
    definitions[name] = sub
    return { $ref: `#/definitions/${name}` }
  }
  const visit = (node: Json): Json => {
    const out: Json = { ...node }
    // Each child as [get, set], so that the largest can be replaced by a $ref.
    const slots: Array<[() => Json, (v: Json) => void]> = []
    if (isPlainObject(out.properties)) {
      const props: Json = { ...out.properties }
      out.properties = props
      for (const k of Object.keys(props)) if (isPlainObject(props[k])) slots.push([() => props[k] as Json, (v) => { props[k] = v }])
    }
    for (const k of ['items', 'additionalProperties']) {
      if (isPlainObject(out[k])) slots.push([() => out[k] as Json, (v) => { out[k] = v }])
    }
    if (Array.isArray(out.anyOf)) {
      const list = [...out.anyOf] as unknown[]
      out.anyOf = list
      list.forEach((v, i) => { if (isPlainObject(v)) slots.push([() => list[i] as Json, (n) => { list[i] = n }]) })
    }
    for (const [get, set] of slots) set(visit(get()))
    const size = (v: unknown): number => JSON.stringify(v).length
    let candidates = slots.filter(([get]) => !('$ref' in get())).sort((a, b) => size(b[0]()) - size(a[0]()))
    while (size(out) > maxBytes && candidates.length > 0) {
      const [[get, set], ...rest] = candidates as [[() => Json, (v: Json) => void], ...typeof candidates]
      set(extract(get()))
      candidates = rest
    }
    return out
  }
  return { ...visit(schema), definitions }
}

function isPlainObject (v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

export const SCHEMA_TEXT = readFileSync(join(SCHEMA_DIR, 'nimservice-spec.schema.json'), 'utf8')
/** What ajv compiles: the schema of schemas/, split (see splitSchema). Made only when compiling. */
export function compiledSchema (): Json {
  return splitSchema(JSON.parse(SCHEMA_TEXT) as Json)
}
// The stamp of what compiledSchema() makes, without making it (~10 ms at start-up): the split is a
// function of the schema text and the bound, and `npm run build` rewrites the generated file anyway.
export const SCHEMA_SHA256 = createHash('sha256').update(`split ${SPLIT_BYTES}\n${SCHEMA_TEXT}`).digest('hex')
export const GENERATED = fileURLToPath(new URL('./spec-validator.generated.mjs', import.meta.url))

async function load (): Promise<ValidateFunction> {
  if (existsSync(GENERATED)) {
    try {
      const mod = await import(pathToFileURL(GENERATED).href) as { default: ValidateFunction, schemaSha256?: string }
      if (mod.schemaSha256 === SCHEMA_SHA256) return mod.default
    } catch {
      // A broken generated file is only a lost shortcut: compile instead.
    }
  }
  // ajv itself (~40 ms to load) is needed only here, when there is no prebuilt validator.
  const { createAjv } = await import('./spec-compiler.js')
  return createAjv().compile(compiledSchema())
}

export const validateSpec: ValidateFunction = await load()
