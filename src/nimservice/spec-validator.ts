// The compiled validator of `spec` (the schema split into small parts, see schema-split.ts; the code
// edited so that errors cost linear time and stop at a cap, see spec-compiler.ts). Compiling it takes
// ~300 ms and ~40 MB at start-up, so `npm run build` also writes its code next to this module
// (spec-validator.generated.mjs, see build-validator.ts); when that file is there and carries the same
// stamp, it is loaded instead of compiling. Running from src/ compiles.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { SCHEMA_TEXT, SPLIT_BYTES } from './schema-split.js'

/** Bumped whenever spec-compiler.ts changes the code it makes, so that an older built file is not used. */
const CODEGEN = 2

// The stamp of what validatorSource() makes, without making it (~10 ms at start-up): the code is a
// function of the schema text, the split bound and CODEGEN, and `npm run build` rewrites the file anyway.
export const SCHEMA_SHA256 = createHash('sha256').update(`split ${SPLIT_BYTES} codegen ${CODEGEN}\n${SCHEMA_TEXT}`).digest('hex')
export const GENERATED = fileURLToPath(new URL('./spec-validator.generated.mjs', import.meta.url))

/** null when `spec` is valid; else ajv's errors in order (anyOf branch errors too), at most `maxErrors`. */
export type SpecCheck = (spec: unknown, maxErrors: number) => ErrorObject[] | null

interface Validator { default: ValidateFunction, check: SpecCheck }

async function load (): Promise<Validator> {
  if (existsSync(GENERATED)) {
    try {
      const mod = await import(pathToFileURL(GENERATED).href) as Validator & { schemaSha256?: string }
      if (mod.schemaSha256 === SCHEMA_SHA256 && typeof mod.check === 'function') return mod
    } catch {
      // A broken generated file is only a lost shortcut: compile instead.
    }
  }
  // ajv itself (~40 ms to load) is needed only here, when there is no prebuilt validator.
  const { validatorSource } = await import('./spec-compiler.js')
  const { re2Engine } = await import('./re2-engine.js')
  const module = { exports: {} as Validator }
  // The same code the build writes to GENERATED, evaluated in place.
  new Function('module', 'require', 're2Engine', validatorSource())(module, createRequire(import.meta.url), re2Engine)
  return module.exports
}

const validator = await load()
/** ajv's validate function itself (V8 must optimise it: see the spec-validator test). */
export const validateSpec: ValidateFunction = validator.default
export const checkSpec: SpecCheck = validator.check
