// The compiled spec validator: the split schema means what the committed one means, and V8 optimises it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { compiledSchema, SPLIT_BYTES, splitSchema } from '../../src/nimservice/schema-split.js'
import { SCHEMA_DIR, PACKAGE_ROOT } from '../../src/paths.js'

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
