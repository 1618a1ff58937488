// The compiled validator of `spec` (the schema split into small parts, see schema-split.ts). Compiling
// it takes ~300 ms and ~40 MB at start-up, so `npm run build` also writes ajv's standalone code for it
// next to this module (spec-validator.generated.mjs, see build-validator.ts); when that file is there
// and carries the same stamp, it is loaded instead of compiling. Running from src/ compiles.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ValidateFunction } from 'ajv'
import { SCHEMA_TEXT, SPLIT_BYTES, compiledSchema } from './schema-split.js'

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
