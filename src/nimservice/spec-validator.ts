// The compiled validator of `spec`. Compiling the 140 KB schema takes ~300 ms and ~40 MB at start-up,
// so `npm run build` also writes ajv's standalone code for it next to this module
// (spec-validator.generated.mjs, see build-validator.ts); when that file is there and was made from
// the same schema (same SHA-256), it is loaded instead of compiling. Running from src/ compiles.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Ajv, type ValidateFunction } from 'ajv'
import { SCHEMA_DIR } from '../paths.js'

const K8S_KEYWORDS = [
  'x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource'
]

export const SCHEMA_TEXT = readFileSync(join(SCHEMA_DIR, 'nimservice-spec.schema.json'), 'utf8')
export const SCHEMA_SHA256 = createHash('sha256').update(SCHEMA_TEXT).digest('hex')
export const GENERATED = fileURLToPath(new URL('./spec-validator.generated.mjs', import.meta.url))

export function createAjv (opts: { standalone?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictRequired: false,
    useDefaults: false,
    // The CRD's patterns are Go RE2 expressions; some are not valid under JavaScript's `u` flag.
    unicodeRegExp: false,
    ...(opts.standalone === true ? { code: { source: true, esm: true } } : {})
  })
  ajv.addVocabulary(K8S_KEYWORDS)
  return ajv
}

async function load (): Promise<ValidateFunction> {
  if (existsSync(GENERATED)) {
    try {
      const mod = await import(pathToFileURL(GENERATED).href) as { default: ValidateFunction, schemaSha256?: string }
      if (mod.schemaSha256 === SCHEMA_SHA256) return mod.default
    } catch {
      // A broken generated file is only a lost shortcut: compile instead.
    }
  }
  return createAjv().compile(JSON.parse(SCHEMA_TEXT) as object)
}

export const validateSpec: ValidateFunction = await load()
