// The compiled spec validator: the split schema means what the committed one means, V8 optimises it,
// and the edited code (RE2 patterns, errors pushed and capped) reports what plain ajv reports.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import fc from 'fast-check'
import { compiledSchema, SPLIT_BYTES, splitSchema } from '../../src/nimservice/schema-split.js'
import { checkSpec, SCHEMA_SHA256 } from '../../src/nimservice/spec-validator.js'
import { MAX_SCHEMA_ERRORS } from '../../src/nimservice/schema.js'
import { re2Engine } from '../../src/nimservice/re2-engine.js'
import { SCHEMA_DIR, PACKAGE_ROOT } from '../../src/paths.js'
import { SEED_EXAMPLES } from '../fixtures/seed-examples.js'
import { wrongType } from '../helpers/fuzz-arbitraries.js'

type Json = Record<string, unknown>
const committed = JSON.parse(readFileSync(join(SCHEMA_DIR, 'nimservice-spec.schema.json'), 'utf8')) as Json

/** Puts every `$ref` back in place: the inverse of splitSchema. */
function inline (node: unknown, definitions: Json): unknown {
  if (Array.isArray(node)) return node.map((n) => inline(n, definitions))
  if (node === null || typeof node !== 'object') return node
  const ref = (node as Json).$ref
  if (typeof ref === 'string') return inline(definitions[ref.slice('#/definitions/'.length)], definitions)
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inline(v, definitions)]))
}

test('the split schema, with its $refs put back, is the committed schema, key order included', () => {
  const { definitions, ...root } = compiledSchema()
  assert.ok(Object.keys(definitions as Json).length > 10)
  assert.equal(JSON.stringify(inline(root, definitions as Json)), JSON.stringify(committed))
})

/** The subschemas a schema holds directly (where splitSchema looks for them). */
function children (schema: Json): unknown[] {
  return [...Object.values((schema.properties ?? {}) as Json), schema.items, schema.additionalProperties, ...((schema.anyOf ?? []) as unknown[])]
    .filter((c) => c !== null && typeof c === 'object')
}

test('every schema of the split is within the bound, or holds nothing but $refs', () => {
  const { definitions, ...root } = compiledSchema()
  for (const schema of [root, ...Object.values(definitions as Json)] as Json[]) {
    const size = JSON.stringify(schema).length
    if (size <= SPLIT_BYTES) continue
    assert.ok(children(schema).every((c) => '$ref' in (c as Json)), `a ${size}-byte schema still inlines a subschema`)
  }
})

test('splitSchema leaves enum values and defaults alone, and a small schema whole', () => {
  const schema = { type: 'object', properties: { a: { type: 'string', enum: ['x'.repeat(300)] }, b: { type: 'object', default: { k: 'v'.repeat(100) } } } }
  assert.deepEqual(splitSchema(schema, 10_000), { ...schema, definitions: {} })
  const split = splitSchema(schema, 400)
  const defs = split.definitions as Json
  assert.equal(Object.keys(defs).length, 1)
  assert.deepEqual(Object.values(defs)[0], schema.properties.a, 'the largest child moves first')
  assert.deepEqual((split.properties as Json).b, schema.properties.b)
})

test('V8 optimises the built validator (it ran unoptimised when it was one 700 KB function)', () => {
  // Runs the validator as `npm run build` wrote it, in a child with V8's natives syntax enabled.
  const script = `
    const { default: v } = await import(${JSON.stringify(join(PACKAGE_ROOT, 'dist/src/nimservice/spec-validator.generated.mjs'))})
    const spec = { image: { repository: 'r', tag: '1' }, authSecret: 's', scale: { enabled: true, hpa: { maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] } }, resources: { requests: { cpu: '2' } } }
    for (let i = 0; i < 50000; i++) v(structuredClone(spec))
    process.stdout.write(String(%GetOptimizationStatus(v)))`
  const status = Number(execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8' }))
  // Bit 4 of V8's OptimizationStatus: optimised code (Maglev or TurboFan) is attached to the function.
  assert.equal(status & 0b10000, 0b10000, `status ${status.toString(2)}`)
})

// ---- the built code: what it must still mean after spec-compiler.ts's edits ----------------------

/** Every `pattern` of the committed schema, with where it sits. */
function patterns (node: unknown, path = '', out: Array<[string, string]> = []): Array<[string, string]> {
  if (Array.isArray(node)) node.forEach((n, i) => patterns(n, `${path}/${i}`, out))
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'pattern' && typeof v === 'string') out.push([path, v])
      else if (k !== 'enum' && k !== 'default') patterns(v, `${path}/${k}`, out)
    }
  }
  return out
}

test('every pattern of the CRD compiles with RE2 and judges strings as a JavaScript RegExp does', () => {
  const all = patterns(committed)
  assert.ok(all.length >= 30, `${all.length} patterns`)
  const distinct = [...new Set(all.map(([, p]) => p))]
  // Short strings over the patterns' alphabets and a few others: long enough to reach every branch,
  // short enough for the backtracking RegExp (42 characters took it 41 s on hostDomainName).
  const alphabet = fc.constantFrom(...'az09AZ.-+_:/ ymsdhwkKMGTPEinu'.split(''), '\u00e9', '\n')
  for (const p of distinct) {
    const re2 = re2Engine(p, '')
    const js = new RegExp(p)
    fc.assert(fc.property(fc.string({ unit: alphabet, maxLength: 14 }), (s) => re2.test(s) === js.test(s)), { numRuns: 3000, seed: 21 })
  }
})

test('hostDomainName\'s pattern takes linear time under RE2 (as a RegExp 42 characters took 41 s)', () => {
  const [, p] = patterns(committed).find(([path]) => path.endsWith('/hostDomainName')) as [string, string]
  const re2 = re2Engine(p, '')
  assert.equal(re2.test('a'.repeat(100_000) + '!'), false)
  assert.equal(re2.test('example.com'), true)
  assert.equal(re2.test('xn--bcher-kva.example'), true)
})

/** The causes the code before spec-compiler.ts's edits made: plain ajv, JavaScript RegExps, every error. */
const plainAjv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false, useDefaults: false, inlineRefs: false, unicodeRegExp: false })
plainAjv.addVocabulary(['x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource'])
const plainValidate = plainAjv.compile(compiledSchema())
function plainFields (spec: unknown): string[] {
  if (plainValidate(spec)) return []
  const errors = plainValidate.errors ?? []
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath))
  const fields: string[] = []
  for (const e of errors) {
    if (anyOfPaths.has(e.instancePath) && e.keyword !== 'anyOf' && e.keyword !== 'pattern') continue
    fields.push(`${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`)
  }
  return fields
}
const fieldsOf = (errors: ErrorObject[] | null): string[] => (errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${JSON.stringify(e.params)}`)

test('checkSpec reports plain ajv\'s errors, in its order, for the seed examples and broken variants of them', () => {
  const specs = SEED_EXAMPLES.map(({ object }) => (object as Json).spec)
  assert.ok(specs.length > 3)
  for (const spec of specs) assert.deepEqual(fieldsOf(checkSpec(spec, MAX_SCHEMA_ERRORS)), plainFields(spec))
  let invalid = 0
  fc.assert(fc.property(wrongType, (b) => {
    const spec = (JSON.parse(b.bytes.toString('utf8')) as { request?: { object?: Json } }).request?.object?.spec
    const mine = fieldsOf(checkSpec(spec, MAX_SCHEMA_ERRORS))
    if (mine.length > 0) invalid++
    assert.deepEqual(mine, plainFields(spec))
  }), { numRuns: 2000, seed: 21 })
  assert.ok(invalid > 200, `${invalid} invalid variants`)
})

test('checkSpec stops at maxErrors, and what it read is the start of plain ajv\'s list', () => {
  const specs = [
    { scale: { enabled: true, hpa: { maxReplicas: 2, metrics: Array.from({ length: 2000 }, () => ({})) } } },
    { resources: { requests: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`r${i}`, i % 3 === 0 ? '1Gi' : i % 3 === 1 ? 'x' : true])) } },
    { env: Array.from({ length: 800 }, (_, i) => ({ name: i, valueFrom: { resourceFieldRef: { divisor: i % 3 === 0 ? true : '1e' } } })) }
  ]
  for (const spec of specs) {
    const all = plainFields(spec)
    assert.ok(all.length > 1000, `${all.length} errors`)
    const mine = fieldsOf(checkSpec(spec, 1000))
    assert.equal(mine.length, 1000)
    assert.deepEqual(mine, all.slice(0, 1000))
  }
  // A valid quantity string fails the anyOf's integer branch: such taken-back errors never count.
  const many = { resources: { requests: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`r${i}`, '1Gi'])) } }
  assert.equal(checkSpec({ image: { repository: 'r', tag: '1' }, authSecret: 's', ...many }, 10), null)
})

test('the built module is the code spec-validator uses, with its stamp', async () => {
  const built = await import(join(PACKAGE_ROOT, 'dist/src/nimservice/spec-validator.generated.mjs')) as { check?: unknown, schemaSha256?: unknown }
  assert.equal(typeof built.check, 'function')
  assert.equal(built.schemaSha256, SCHEMA_SHA256)
})
