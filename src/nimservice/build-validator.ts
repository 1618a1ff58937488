// Writes the spec validator's code (spec-compiler.ts) as an ES module next to spec-validator.js,
// stamped with SCHEMA_SHA256 so that a stale file is never used. Run by `npm run build` after tsc.
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// Remove the previous output first: spec-validator.js would otherwise load it while being imported here.
rmSync(fileURLToPath(new URL('./spec-validator.generated.mjs', import.meta.url)), { force: true })
const { GENERATED, SCHEMA_SHA256 } = await import('./spec-validator.js')
const { validatorSource } = await import('./spec-compiler.js')

// The code is a CommonJS body (it require()s ajv's runtime helpers, such as ucs2length for maxLength):
// give it a module, a require and the RE2 engine its patterns are compiled with.
const prelude = [
  "import { createRequire } from 'node:module';",
  "import { re2Engine } from './re2-engine.js';",
  'const require = createRequire(import.meta.url);',
  'const module = { exports: {} };'
].join('\n')
const exports = [
  'export default module.exports.default;',
  'export const check = module.exports.check;',
  `export const schemaSha256 = ${JSON.stringify(SCHEMA_SHA256)};`
].join('\n')
writeFileSync(GENERATED, `${prelude}\n${validatorSource()}\n${exports}\n`)
console.log(`wrote ${GENERATED}`)
