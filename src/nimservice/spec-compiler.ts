// The ajv instance that compiles the spec schema: at `npm run build` into standalone code
// (build-validator.ts), or at start-up when that code is missing (spec-validator.ts).
import { Ajv } from 'ajv'

const K8S_KEYWORDS = [
  'x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource'
]

export function createAjv (opts: { standalone?: boolean } = {}): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictRequired: false,
    useDefaults: false,
    // Each $ref of the split schema (schema-split.ts) becomes a function of its own.
    inlineRefs: false,
    // The CRD's patterns are Go RE2 expressions; some are not valid under JavaScript's `u` flag.
    unicodeRegExp: false,
    ...(opts.standalone === true ? { code: { source: true, esm: true } } : {})
  })
  ajv.addVocabulary(K8S_KEYWORDS)
  return ajv
}
