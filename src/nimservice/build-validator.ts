// Writes ajv's standalone validator for the split spec schema next to spec-validator.js, stamped with
// SCHEMA_SHA256 (schema text and split bound) so that a stale file is never used. Run by `npm run build`
// after tsc.
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import standaloneCode from 'ajv/dist/standalone/index.js'

// Remove the previous output first: spec-validator.js would otherwise load it while being imported here.
rmSync(fileURLToPath(new URL('./spec-validator.generated.mjs', import.meta.url)), { force: true })
const { GENERATED, SCHEMA_SHA256 } = await import('./spec-validator.js')
const { createAjv } = await import('./spec-compiler.js')
const { compiledSchema } = await import('./schema-split.js')

const ajv = createAjv({ standalone: true })
const code = standaloneCode.default(ajv, ajv.compile(compiledSchema()))
// ajv's ESM output still require()s its runtime helpers (ucs2length for maxLength): give it a require.
const prelude = "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n"
writeFileSync(GENERATED, `${prelude}${code}\nexport const schemaSha256 = ${JSON.stringify(SCHEMA_SHA256)};\n`)
console.log(`wrote ${GENERATED}`)
