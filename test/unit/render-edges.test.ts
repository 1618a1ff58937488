import { test } from 'node:test'
import assert from 'node:assert/strict'
import fastJsonPatch from 'fast-json-patch'
import { mutateNIMService, validateNIMService, renderHpa, HPA_ANNOTATION, HPA_SHA_ANNOTATION, TOTAL_ANNOTATION_SIZE_LIMIT } from '../../src/nimservice/index.js'
import { autoscaled } from '../helpers/nimservice.js'

type Json = Record<string, unknown>
const apply = (object: Json, patch: fastJsonPatch.Operation[]): Json =>
  fastJsonPatch.applyPatch(structuredClone(object), patch, true, false).newDocument
const annotationsOf = (o: Json): Json => ((o.metadata as Json).annotations ?? {}) as Json
const meta = (o: Json): Json => o.metadata as Json

// --- generateName ---------------------------------------------------------------------------------

/** A CREATE as the apiserver sends it to mutating admission for `generateName: llm-`: no name yet. */
function generated (): Json {
  const o = autoscaled()
  o.metadata = { generateName: 'llm-', namespace: 'nim' }
  return o
}

test('generateName: the CREATE gets no HPA annotation (not one with an empty name) and warning NIM112', () => {
  const m = mutateNIMService({ operation: 'CREATE', object: generated(), namespace: 'nim' })
  assert.equal(m.hpa, undefined)
  assert.ok(!m.patch.some((p) => p.path.startsWith('/metadata')), JSON.stringify(m.patch))
  const w = m.warnings.find((x) => x.code === 'NIM112')
  assert.equal(w?.field, 'metadata.name')
  assert.match(w?.message ?? '', /rendered at the next UPDATE/)
  // The spec defaults do not depend on the name: still filled.
  assert.ok(m.patch.some((p) => p.path === '/spec/expose'))
})

test('generateName: the next UPDATE, once the apiserver named it, renders the HPA for that name', () => {
  const created = apply(generated(), mutateNIMService({ operation: 'CREATE', object: generated(), namespace: 'nim' }).patch)
  meta(created).name = 'llm-x7k2p'
  const updated = structuredClone(created)
  meta(updated).finalizers = ['finalizer.nim']
  const m = mutateNIMService({ operation: 'UPDATE', object: updated, oldObject: created, namespace: 'nim' })
  assert.ok(!m.warnings.some((x) => x.code === 'NIM112'))
  const hpa = JSON.parse(annotationsOf(m.object)[HPA_ANNOTATION] as string)
  assert.equal(hpa.metadata.name, 'llm-x7k2p')
  assert.equal(hpa.spec.scaleTargetRef.name, 'llm-x7k2p')
})

test('generateName: a rendered annotation copied in from elsewhere is removed, not left stale', () => {
  const o = generated()
  meta(o).annotations = { [HPA_ANNOTATION]: '{"stale":true}', [HPA_SHA_ANNOTATION]: 'x', keep: 'me' }
  const m = mutateNIMService({ operation: 'CREATE', object: o, namespace: 'nim' })
  assert.deepEqual(annotationsOf(apply(o, m.patch)), { keep: 'me' })
})

// --- __proto__ and friends are ordinary keys ---------------------------------------------------------

// JSON.parse makes `__proto__` an own property, as the apiserver's body does.
const userKeys = (value: string, keys: readonly string[]): Json => JSON.parse(JSON.stringify(Object.fromEntries(keys.map((k) => [k, `${value}-${k}`]))))
// Valid label and annotation keys that are also names on Object.prototype.
const KEYS = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']

test('labels and annotations named constructor, toString... reach the rendered HPA', () => {
  const object = autoscaled(undefined, { labels: userKeys('l', KEYS), annotations: userKeys('a', KEYS) })
  assert.equal(validateNIMService({ operation: 'CREATE', object }).allowed, true)
  const m = mutateNIMService({ operation: 'CREATE', object, namespace: 'nim' })
  const rendered = JSON.parse(annotationsOf(m.object)[HPA_ANNOTATION] as string)
  for (const k of KEYS) {
    assert.equal(Object.getOwnPropertyDescriptor(rendered.metadata.labels, k)?.value, `l-${k}`, `label ${k}`)
    assert.equal(Object.getOwnPropertyDescriptor(rendered.metadata.annotations, k)?.value, `a-${k}`, `annotation ${k}`)
  }
})

test('the first map still wins for these keys: spec.annotations over spec.scale.annotations', () => {
  const object = autoscaled(undefined, { annotations: userKeys('spec', KEYS) })
  ;((object.spec as Json).scale as Json).annotations = userKeys('scale', [...KEYS, 'only-scale'])
  const annotations = (mutateNIMService({ operation: 'CREATE', object, namespace: 'nim' }).hpa?.metadata as Json).annotations as Json
  for (const k of KEYS) assert.equal(Object.getOwnPropertyDescriptor(annotations, k)?.value, `spec-${k}`, k)
  assert.equal(annotations['only-scale'], 'scale-only-scale')
})

test('a __proto__ key is an ordinary key: rendered as one, without touching the prototype', () => {
  // Not a valid label key (validation judges it as a key like any other), but rendering never loses or obeys it.
  const object = autoscaled(undefined, { labels: userKeys('l', ['__proto__', 'team']) })
  const labels = (renderHpa(object, 'nim').metadata as Json).labels as Json
  assert.equal(Object.getPrototypeOf(labels), Object.prototype)
  assert.equal(Object.getOwnPropertyDescriptor(labels, '__proto__')?.value, 'l-__proto__')
  assert.equal(JSON.parse(JSON.stringify(labels)).team, 'l-team')
  assert.match(JSON.stringify(labels), /"__proto__":"l-__proto__"/)
})

test('a metadata.annotations map with constructor and toString keys keeps them through the patch', () => {
  const object = autoscaled()
  meta(object).annotations = JSON.parse('{"toString":"x","constructor":"y"}')
  const m = mutateNIMService({ operation: 'CREATE', object, namespace: 'nim' })
  const annotations = annotationsOf(m.object)
  assert.equal(Object.getOwnPropertyDescriptor(annotations, 'toString')?.value, 'x')
  assert.equal(Object.getOwnPropertyDescriptor(annotations, 'constructor')?.value, 'y')
  assert.ok(typeof annotations[HPA_ANNOTATION] === 'string')
})

// --- the total annotation size limit ------------------------------------------------------------------

/** The total the apiserver checks: keys plus values, in bytes. */
const total = (a: Json): number => Object.entries(a).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(String(v)), 0)

test('spec.annotations large enough to push the object past 256 KiB: NIM113, and no annotation the apiserver would refuse', () => {
  // 140 KB copied into the HPA, plus a last-applied-configuration that already holds them once.
  const big = { 'example.com/blob': 'x'.repeat(140_000) }
  const object = autoscaled(undefined, { annotations: big })
  meta(object).annotations = { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(object.spec) }
  const m = mutateNIMService({ operation: 'CREATE', object, namespace: 'nim' })
  assert.equal(m.hpa, undefined)
  const w = m.warnings.find((x) => x.code === 'NIM113')
  assert.equal(w?.field, 'metadata.annotations')
  assert.match(w?.message ?? '', /over the apiserver's limit of 262144/)
  assert.equal(annotationsOf(m.object)[HPA_ANNOTATION], undefined)
  assert.ok(total(annotationsOf(m.object)) <= TOTAL_ANNOTATION_SIZE_LIMIT)
})

test('a stale rendered annotation is removed when the new one would not fit', () => {
  const object = autoscaled(undefined, { annotations: { blob: 'x'.repeat(200_000) } })
  meta(object).annotations = { [HPA_ANNOTATION]: '{}', [HPA_SHA_ANNOTATION]: 'old', pad: 'y'.repeat(70_000) }
  const m = mutateNIMService({ operation: 'UPDATE', object, oldObject: structuredClone(object), namespace: 'nim' })
  assert.ok(m.warnings.some((x) => x.code === 'NIM113'))
  assert.deepEqual(Object.keys(annotationsOf(apply(object, m.patch))), ['pad'])
})

test('the limit is the apiserver\'s, byte for byte: exactly 262144 bytes renders, one more does not', () => {
  const withPad = (pad: string): Json => { const o = autoscaled(); meta(o).annotations = { pad }; return o }
  // The total with an empty pad, then a pad that brings it exactly to the limit.
  const base = total(annotationsOf(mutateNIMService({ operation: 'CREATE', object: withPad(''), namespace: 'nim' }).object))
  const fits = mutateNIMService({ operation: 'CREATE', object: withPad('p'.repeat(TOTAL_ANNOTATION_SIZE_LIMIT - base)), namespace: 'nim' })
  assert.equal(total(annotationsOf(fits.object)), TOTAL_ANNOTATION_SIZE_LIMIT)
  assert.ok(fits.hpa !== undefined && !fits.warnings.some((x) => x.code === 'NIM113'))
  const over = mutateNIMService({ operation: 'CREATE', object: withPad('p'.repeat(TOTAL_ANNOTATION_SIZE_LIMIT - base + 1)), namespace: 'nim' })
  assert.ok(over.hpa === undefined && over.warnings.some((x) => x.code === 'NIM113'))
  // Bytes, not UTF-16 units: 'é' is two bytes, so half as many of them go over.
  const half = Math.ceil((TOTAL_ANNOTATION_SIZE_LIMIT - base + 1) / 2)
  assert.ok(mutateNIMService({ operation: 'CREATE', object: withPad('é'.repeat(half)), namespace: 'nim' }).warnings.some((x) => x.code === 'NIM113'))
})

test('a huge stale rendered annotation is replaced, not counted twice', () => {
  const object = autoscaled()
  meta(object).annotations = { [HPA_ANNOTATION]: 'z'.repeat(250_000), [HPA_SHA_ANNOTATION]: 'old' }
  const m = mutateNIMService({ operation: 'UPDATE', object, oldObject: structuredClone(object), namespace: 'nim' })
  assert.ok(m.hpa !== undefined)
  assert.ok(!m.warnings.some((x) => x.code === 'NIM113'))
})

// --- deletion -------------------------------------------------------------------------------------

test('an object being deleted is never mutated', () => {
  const object = autoscaled({ maxReplicas: 4 })
  meta(object).deletionTimestamp = '2026-01-01T00:00:00Z'
  const oldObject = structuredClone(object)
  meta(object).finalizers = []
  const m = mutateNIMService({ operation: 'UPDATE', object, oldObject, namespace: 'nim' })
  assert.deepEqual(m.patch, [])
  assert.deepEqual(m.warnings, [])
})
