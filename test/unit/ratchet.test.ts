import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateNIMService, RULES } from '../../src/nimservice/index.js'
import { NEVER_RATCHETED, RATCHETED_CODES, parseField, ratchet } from '../../src/nimservice/ratchet.js'
import { autoscaled, nim } from '../helpers/nimservice.js'

type Json = Record<string, unknown>
const cpu = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }
const pods = (name: string, averageValue = '10') => ({ type: 'Pods', pods: { metric: { name }, target: { type: 'AverageValue', averageValue } } })

// Objects created before the webhook was registered, each invalid in one way.
const maxBelowMin = () => autoscaled({ minReplicas: 5, maxReplicas: 3, metrics: [cpu] })
const badMetricName = () => autoscaled({ minReplicas: 2, maxReplicas: 4, metrics: [pods('a/b'), cpu] }, { metrics: { enabled: true } })
const portAsString = () => nim({ expose: { service: { port: '8000' } } })
const noImageTag = () => nim({ image: { repository: 'nvcr.io/nim/meta/llama' } })
const replicasWithScale = () => autoscaled(undefined, { replicas: 2 })

const at = (o: Json, ...keys: string[]): Json => keys.reduce((cur, k) => cur[k] as Json, o)
const hpaOf = (o: Json): Json => at(o, 'spec', 'scale', 'hpa')

interface Row {
  name: string
  old: () => Json
  change: (o: Json) => void
  /** `CODE field` of every cause that denies; empty for allowed. */
  denied: string[]
  /** `CODE field` of the causes let through because the old object had them unchanged. */
  ratcheted: string[]
}

const rows: Row[] = [
  { name: 'a label change on a legacy maxReplicas < minReplicas passes', old: maxBelowMin, change: (o) => { at(o, 'metadata').labels = { team: 'a' } }, denied: [], ratcheted: ['NIM021 spec.scale.hpa.maxReplicas'] },
  { name: 'adding a finalizer (the operator does) passes', old: maxBelowMin, change: (o) => { at(o, 'metadata').finalizers = ['finalizer.nim'] }, denied: [], ratcheted: ['NIM021 spec.scale.hpa.maxReplicas'] },
  { name: 'an image bump passes: nothing NIM021 reads changed', old: maxBelowMin, change: (o) => { at(o, 'spec', 'image').tag = '1.1' }, denied: [], ratcheted: ['NIM021 spec.scale.hpa.maxReplicas'] },
  { name: 'a new metric target passes: the HPA bounds are unchanged', old: maxBelowMin, change: (o) => { hpaOf(o).metrics = [{ ...cpu, resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }] }, denied: [], ratcheted: ['NIM021 spec.scale.hpa.maxReplicas'] },
  { name: 'the broken field changed to a new invalid value is denied', old: maxBelowMin, change: (o) => { hpaOf(o).maxReplicas = 2 }, denied: ['NIM021 spec.scale.hpa.maxReplicas'], ratcheted: [] },
  { name: 'making it worse through the other field it reads is denied', old: maxBelowMin, change: (o) => { hpaOf(o).minReplicas = 6 }, denied: ['NIM021 spec.scale.hpa.maxReplicas'], ratcheted: [] },
  { name: 'fixing the broken field passes with nothing left to ratchet', old: maxBelowMin, change: (o) => { hpaOf(o).maxReplicas = 5 }, denied: [], ratcheted: [] },
  { name: 'a new cause elsewhere is denied, the old one still ratcheted', old: maxBelowMin, change: (o) => { (o.spec as Json).replicas = 2 }, denied: ['NIM010 spec.replicas'], ratcheted: ['NIM021 spec.scale.hpa.maxReplicas'] },
  { name: 'a broken metric: a label change passes', old: badMetricName, change: (o) => { at(o, 'metadata').labels = { a: 'b' } }, denied: [], ratcheted: ['NIM023 spec.scale.hpa.metrics[0].pods.metric.name'] },
  { name: 'a broken metric: changing its target is denied (the rule reads the whole metric)', old: badMetricName, change: (o) => { (hpaOf(o).metrics as Json[])[0] = pods('a/b', '20') }, denied: ['NIM023 spec.scale.hpa.metrics[0].pods.metric.name'], ratcheted: [] },
  { name: 'a broken metric: appending another metric passes (items correlate by index)', old: badMetricName, change: (o) => { (hpaOf(o).metrics as Json[]).push(pods('queue')) }, denied: [], ratcheted: ['NIM023 spec.scale.hpa.metrics[0].pods.metric.name'] },
  { name: 'a broken metric: inserting one before it moves it to a new index, denied', old: badMetricName, change: (o) => { (hpaOf(o).metrics as Json[]).unshift(pods('queue')) }, denied: ['NIM023 spec.scale.hpa.metrics[1].pods.metric.name'], ratcheted: [] },
  { name: 'a schema type error: a label change passes', old: portAsString, change: (o) => { at(o, 'metadata').labels = { a: 'b' } }, denied: [], ratcheted: ['NIM001 spec.expose.service.port'] },
  { name: 'a schema type error: a sibling change passes (the value check reads the field only)', old: portAsString, change: (o) => { at(o, 'spec', 'expose', 'service').type = 'ClusterIP' }, denied: [], ratcheted: ['NIM001 spec.expose.service.port'] },
  { name: 'a schema type error: a new invalid value is denied', old: portAsString, change: (o) => { at(o, 'spec', 'expose', 'service').port = '8001' }, denied: ['NIM001 spec.expose.service.port'], ratcheted: [] },
  { name: 'a required field missing: a label change passes', old: noImageTag, change: (o) => { at(o, 'metadata').labels = { a: 'b' } }, denied: [], ratcheted: ['NIM002 spec.image.tag'] },
  { name: 'a required field missing: a change beside its owning object passes', old: noImageTag, change: (o) => { (o.spec as Json).authSecret = 'ngc2' }, denied: [], ratcheted: ['NIM002 spec.image.tag'] },
  { name: 'a required field missing: a change to its owning object is denied, as Kubernetes ratchets required', old: noImageTag, change: (o) => { at(o, 'spec', 'image').repository = 'nvcr.io/nim/meta/llama-3' }, denied: ['NIM002 spec.image.tag'], ratcheted: [] },
  { name: 'replicas with autoscaling: a label change passes', old: replicasWithScale, change: (o) => { at(o, 'metadata').labels = { a: 'b' } }, denied: [], ratcheted: ['NIM010 spec.replicas'] },
  { name: 'replicas with autoscaling: a new replicas value is denied', old: replicasWithScale, change: (o) => { (o.spec as Json).replicas = 3 }, denied: ['NIM010 spec.replicas'], ratcheted: [] },
  { name: 'a valid object made invalid is denied (nothing to inherit)', old: () => autoscaled(), change: (o) => { hpaOf(o).maxReplicas = 1 }, denied: ['NIM021 spec.scale.hpa.maxReplicas'], ratcheted: [] },
  {
    name: 'nested scopes: a change inside multiNode denies the rule on multiNode, not the one on its unchanged computeDomain',
    old: () => nim({ replicas: 1, multiNode: { parallelism: { pipeline: 2 }, mpi: { mpiStartTimeout: 300 }, ray: { rayPort: 6379 }, computeDomain: { create: true, name: 'cd' } } }),
    change: (o) => { (at(o, 'spec', 'multiNode').parallelism as Json).pipeline = 4 },
    denied: ['NIM040 spec.multiNode', 'NIM050 spec.multiNode'],
    ratcheted: ['NIM041 spec.multiNode.computeDomain']
  },
  {
    name: 'an immutability rule (a transition rule) is never ratcheted',
    old: () => nim({ replicas: 1, multiNode: { parallelism: { pipeline: 2 }, mpi: { mpiStartTimeout: 300 }, ray: { rayPort: 6379 } } }),
    change: (o) => { (at(o, 'spec', 'multiNode').parallelism as Json).pipeline = 4 },
    denied: ['NIM040 spec.multiNode', 'NIM050 spec.multiNode'],
    ratcheted: []
  }
]

const show = (causes: Array<{ code: string, field: string }> | undefined): string[] => (causes ?? []).map((c) => `${c.code} ${c.field}`)

for (const row of rows) {
  test(row.name, () => {
    const oldObject = row.old()
    assert.equal(validateNIMService({ operation: 'CREATE', object: oldObject }).allowed, row.name.includes('valid object made invalid'), 'the old object is invalid on its own')
    const object = structuredClone(oldObject)
    row.change(object)
    const verdict = validateNIMService({ operation: 'UPDATE', object, oldObject })
    assert.deepEqual(show(verdict.causes), row.denied)
    assert.equal(verdict.allowed, row.denied.length === 0)
    assert.deepEqual(show(verdict.ratcheted), row.ratcheted)
    // Warnings still report everything: each ratcheted cause is said, first.
    assert.deepEqual(show(verdict.warnings.slice(0, row.ratcheted.length)), row.ratcheted)
    for (const w of verdict.warnings.slice(0, row.ratcheted.length)) assert.match(w.message, /already so before this update, and unchanged: allowed/)
  })
}

test('an UPDATE without an old object is judged whole', () => {
  const verdict = validateNIMService({ operation: 'UPDATE', object: maxBelowMin() })
  assert.deepEqual(show(verdict.causes), ['NIM021 spec.scale.hpa.maxReplicas'])
})

test('a body too deep is never ratcheted', () => {
  let deep: Json = {}
  const object = nim({ labels: deep })
  for (let i = 0; i < 120; i++) { const next: Json = {}; deep.x = next; deep = next }
  const verdict = validateNIMService({ operation: 'UPDATE', object, oldObject: structuredClone(object) })
  assert.equal(verdict.allowed, false)
  assert.equal(verdict.causes[0]?.code, 'NIM004')
})

test('every deny code of the catalogue is either ratcheted with a scope or named as never ratcheted', () => {
  for (const [code, info] of RULES) {
    if (info.kind !== 'deny') continue
    assert.ok(RATCHETED_CODES.has(code) !== NEVER_RATCHETED.has(code), `${code}: decide whether and how it ratchets (ratchet.ts)`)
  }
})

test('a cause of a code without a scope is never exempt, even with nothing changed', () => {
  const cause = { code: 'NIM999', field: 'spec.image', message: 'x' }
  const object = nim()
  assert.deepEqual(ratchet([cause], () => [cause], object, structuredClone(object)).denied, [cause])
})

test('field paths read back to keys, map keys with brackets and dots found in the object', () => {
  const object = { spec: { labels: { 'a].b': 1, 'app.kubernetes.io/name': 2 }, metrics: [{ pods: {} }] } }
  assert.deepEqual(parseField('spec.labels[a].b]', object), ['spec', 'labels', 'a].b'])
  assert.deepEqual(parseField('spec.labels[app.kubernetes.io/name]', object), ['spec', 'labels', 'app.kubernetes.io/name'])
  assert.deepEqual(parseField('spec.metrics[0].pods.metric.name', object), ['spec', 'metrics', 0, 'pods', 'metric', 'name'])
  // Two readings, neither in the object: ambiguous, so not ratcheted.
  assert.equal(parseField('spec.labels[x].y]', object), undefined)
})
