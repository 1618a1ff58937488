import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { validateNIMService, RULES, MSG_REPLICAS, MSG_MULTINODE } from '../../src/nimservice/index.js'
import { specSchemaFromCrd } from '../../src/nimservice/schema-source.js'
import { SEED_EXAMPLES } from '../fixtures/seed-examples.js'
import { autoscaled, nim, nimServicesIn, review } from '../helpers/nimservice.js'
import { answerReview, decodedPatch } from '../../src/cli/review.js'

type Json = Record<string, unknown>
const create = (object: Json) => validateNIMService({ operation: 'CREATE', object })
const upstream = (p: string) => fileURLToPath(new URL(`../fixtures/upstream/${p}`, import.meta.url))

test('allows every example of the seed guide, completed into a whole NIMService', () => {
  for (const { name, object } of SEED_EXAMPLES) {
    const verdict = create(object)
    assert.equal(verdict.allowed, true, `${name}: ${JSON.stringify(verdict.causes)}`)
  }
})

test('denies the upstream samples that set both replicas and scale.enabled, with the exact message', () => {
  const samples = ['nim/serving/standalone/full/llm.yaml', 'nim/serving/standalone/autoscaling/llm.yaml',
    'nim/serving/standalone/autoscaling/multi-llm.yaml', 'nim/serving/kserve/standard/llm.yaml']
  for (const sample of samples) {
    for (const object of nimServicesIn(upstream(sample))) {
      const verdict = create(object)
      assert.equal(verdict.allowed, false, sample)
      assert.deepEqual(verdict.causes[0], { field: 'spec.replicas', message: MSG_REPLICAS, code: 'NIM010' }, sample)
    }
  }
})

test('allows the upstream multi-node samples, which do not autoscale', () => {
  for (const sample of ['nim/serving/advanced/multi-node/multi-node-nimservice.yaml', 'nim/serving/advanced/multi-node/multi-node-nimservice-rdma.yaml']) {
    for (const object of nimServicesIn(upstream(sample))) assert.equal(create(object).allowed, true, sample)
  }
})

test('the committed schema is what the generator makes of the vendored CRD (no drift)', () => {
  const crd = parse(readFileSync(new URL('../../schemas/upstream/apps.nvidia.com_nimservices.yaml', import.meta.url), 'utf8'))
  const committed = JSON.parse(readFileSync(new URL('../../schemas/nimservice-spec.schema.json', import.meta.url), 'utf8'))
  assert.deepEqual(committed, specSchemaFromCrd(crd), 'run `npx tsx scripts/generate-schema.ts` and commit the result')
})

interface Row { name: string, object: Json, operation?: 'CREATE' | 'UPDATE', oldObject?: Json, field: string, code: string, message?: string }

const mpi = { mpiStartTimeout: 300 }
const rows: Row[] = [
  { name: 'denies replicas when autoscaling is enabled', object: autoscaled(undefined, { replicas: 2 }), field: 'spec.replicas', code: 'NIM010', message: MSG_REPLICAS },
  { name: 'denies replicas: 0 too (the CRD rule tests presence)', object: autoscaled(undefined, { replicas: 0 }), field: 'spec.replicas', code: 'NIM010' },
  { name: 'denies autoscaling on a multi-node NIMService', object: autoscaled(undefined, { multiNode: { parallelism: { pipeline: 2, tensor: 8 } } }), field: 'spec.scale.enabled', code: 'NIM011', message: MSG_MULTINODE },
  { name: 'denies autoscaling without an hpa', object: nim({ scale: { enabled: true } }), field: 'spec.scale.hpa', code: 'NIM012' },
  { name: 'denies an hpa without maxReplicas', object: nim({ scale: { enabled: true, hpa: { minReplicas: 2 } } }), field: 'spec.scale.hpa.maxReplicas', code: 'NIM002' },
  { name: 'denies a wrong type with its full path', object: autoscaled({ minReplicas: 'two', maxReplicas: 3 }), field: 'spec.scale.hpa.minReplicas', code: 'NIM001' },
  { name: 'denies an unquoted decimal quantity (the CRD takes integers and strings only)', object: autoscaled({ maxReplicas: 3, metrics: [{ type: 'Pods', pods: { metric: { name: 'x' }, target: { type: 'AverageValue', averageValue: 0.7 } } }] }), field: 'spec.scale.hpa.metrics[0].pods.target.averageValue', code: 'NIM001' },
  { name: 'denies a quantity string outside the Kubernetes grammar', object: autoscaled({ maxReplicas: 3, metrics: [{ type: 'Pods', pods: { metric: { name: 'x' }, target: { type: 'AverageValue', averageValue: '1kb' } } }] }), field: 'spec.scale.hpa.metrics[0].pods.target.averageValue', code: 'NIM001' },
  { name: 'denies an unknown field (a typo)', object: autoscaled({ maxReplica: 3, maxReplicas: 3 }), field: 'spec.scale.hpa.maxReplica', code: 'NIM003' },
  { name: 'denies a missing image', object: { apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', metadata: { name: 'x' }, spec: { authSecret: 'a' } }, field: 'spec.image', code: 'NIM002' },
  { name: 'denies an HPA rule violation with the Kubernetes field', object: autoscaled({ minReplicas: 5, maxReplicas: 3 }), field: 'spec.scale.hpa.maxReplicas', code: 'NIM021' },
  { name: 'denies mpi and ray together', object: nim({ multiNode: { parallelism: { pipeline: 2 }, mpi, ray: { rayPort: 6379 } } }), field: 'spec.multiNode', code: 'NIM040', message: 'mpi and ray are mutually exclusive' },
  { name: 'denies computeDomain create with a name', object: nim({ multiNode: { parallelism: { pipeline: 2 }, computeDomain: { create: true, name: 'cd' } } }), field: 'spec.multiNode.computeDomain', code: 'NIM041' },
  { name: 'denies computeDomain without create and without a name', object: nim({ multiNode: { parallelism: { pipeline: 2 }, computeDomain: {} } }), field: 'spec.multiNode.computeDomain', code: 'NIM041' },
  { name: 'denies the deprecated ingress beside router.ingress', object: nim({ expose: { ingress: { enabled: true }, router: { ingress: { ingressClass: 'nginx' } } } }), field: 'spec.expose.router.ingress', code: 'NIM042' },
  { name: 'denies router ingress and gateway together', object: nim({ expose: { router: { ingress: { ingressClass: 'nginx' }, gateway: { namespace: 'gw', name: 'gw' } } } }), field: 'spec.expose.router', code: 'NIM043' },
  { name: 'denies eppConfig with configMapRef and config', object: nim({ expose: { router: { eppConfig: { configMapRef: { name: 'epp' }, config: { apiVersion: 'x', kind: 'EndpointPickerConfig', plugins: [], schedulingProfiles: [] } } } } }), field: 'spec.expose.router.eppConfig', code: 'NIM044' },
  { name: 'denies a Service backendRef without a port', object: nim({ expose: { router: { gateway: { namespace: 'gw', name: 'gw', backendRef: { name: 'svc' } } } } }), field: 'spec.expose.router.gateway.backendRef', code: 'NIM045' },
  { name: 'denies a draResources entry with two claim sources', object: nim({ draResources: [{ resourceClaimName: 'a', resourceClaimTemplateName: 'b' }] }), field: 'spec.draResources[0]', code: 'NIM046' },
  {
    name: 'denies DRA celExpressions beside attributeSelectors',
    object: nim({ draResources: [{ claimCreationSpec: { devices: [{ name: 'gpu', deviceClassName: 'gpu.nvidia.com', celExpressions: ['true'], attributeSelectors: [{ key: 'k', op: 'Equal', value: 'v' }] }] } }] }),
    field: 'spec.draResources[0].claimCreationSpec.devices[0]',
    code: 'NIM047'
  },
  {
    name: 'denies changing multiNode on update',
    operation: 'UPDATE',
    object: nim({ replicas: 1, multiNode: { parallelism: { pipeline: 4 } } }),
    oldObject: nim({ replicas: 1, multiNode: { parallelism: { pipeline: 2 } } }),
    field: 'spec.multiNode',
    code: 'NIM050'
  },
  {
    name: 'denies adding draResources on update',
    operation: 'UPDATE',
    object: nim({ draResources: [{ resourceClaimName: 'a' }] }),
    oldObject: nim({}),
    field: 'spec.draResources',
    code: 'NIM051'
  }
]

for (const row of rows) {
  test(row.name, () => {
    const verdict = validateNIMService({ operation: row.operation ?? 'CREATE', object: row.object, ...(row.oldObject !== undefined ? { oldObject: row.oldObject } : {}) })
    assert.equal(verdict.allowed, false)
    const cause = verdict.causes.find((c) => c.code === row.code)
    assert.ok(cause !== undefined, `expected ${row.code}, got ${JSON.stringify(verdict.causes)}`)
    assert.equal(cause.field, row.field)
    if (row.message !== undefined) assert.equal(cause.message, row.message)
    assert.ok(RULES.has(cause.code), `${cause.code} is in the rule catalogue`)
  })
}

test('allows an unchanged multiNode and draResources on update', () => {
  const object = nim({ replicas: 1, multiNode: { parallelism: { pipeline: 2 } }, draResources: [{ resourceClaimName: 'a' }] })
  assert.equal(validateNIMService({ operation: 'UPDATE', object, oldObject: structuredClone(object) }).allowed, true)
})

test('allows a Service backendRef with a port, and a non-Service backendRef without one', () => {
  assert.equal(create(nim({ expose: { router: { gateway: { namespace: 'g', name: 'g', backendRef: { name: 's', port: 8000 } } } } })).allowed, true)
  assert.equal(create(nim({ expose: { router: { gateway: { namespace: 'g', name: 'g', backendRef: { name: 's', kind: 'InferencePool', group: 'inference.networking.k8s.io' } } } } })).allowed, true)
})

test('does not check the HPA while autoscaling is disabled', () => {
  assert.equal(create(nim({ replicas: 2, scale: { enabled: false, hpa: { minReplicas: 3, maxReplicas: 1 } } })).allowed, true)
})

test('allows DELETE and CONNECT without checks', () => {
  assert.equal(validateNIMService({ operation: 'DELETE', object: { spec: 'garbage' } }).allowed, true)
  assert.equal(validateNIMService({ operation: 'CONNECT', object: null }).allowed, true)
})

// --- deletion is never blocked -------------------------------------------------------------------

/** A NIMService created invalid before the webhook existed, now Terminating with the operator's finalizer. */
function terminating (): { oldObject: Json, object: Json } {
  const oldObject = autoscaled({ minReplicas: 5, maxReplicas: 3 }, { replicas: 2 })
  Object.assign(oldObject.metadata as Json, { deletionTimestamp: '2026-11-30T06:00:00Z', finalizers: ['finalizer.nim'] })
  const object = structuredClone(oldObject)
  ;(object.metadata as Json).finalizers = []
  return { oldObject, object }
}

test('allows the finalizer removal of an invalid object being deleted, with nothing to say', () => {
  const { oldObject, object } = terminating()
  assert.equal(validateNIMService({ operation: 'CREATE', object: oldObject }).allowed, false, 'the object is invalid on its own')
  assert.deepEqual(validateNIMService({ operation: 'UPDATE', object, oldObject }), { allowed: true, causes: [], warnings: [] })
})

test('allows any UPDATE of an object being deleted, with deletionTimestamp on either side', () => {
  const { oldObject, object } = terminating()
  ;((object.spec as Json).scale as Json).hpa = { minReplicas: 9, maxReplicas: 1 }
  assert.equal(validateNIMService({ operation: 'UPDATE', object, oldObject }).allowed, true)
  delete (object.metadata as Json).deletionTimestamp
  assert.equal(validateNIMService({ operation: 'UPDATE', object, oldObject }).allowed, true, 'old object only')
  assert.equal(validateNIMService({ operation: 'UPDATE', object: oldObject, oldObject: object }).allowed, true, 'new object only')
})

test('a deletionTimestamp does not excuse a CREATE', () => {
  assert.equal(validateNIMService({ operation: 'CREATE', object: terminating().oldObject }).allowed, false)
})

test('the CLI review answers the finalizer removal as the server does: allowed, not checked (deleting)', () => {
  const { oldObject, object } = terminating()
  const answer = answerReview(Buffer.from(JSON.stringify(review(object, { operation: 'UPDATE', oldObject }))), 'validate')
  assert.equal(answer.statusCode, 200)
  assert.equal(answer.outcome?.response.allowed, true)
  assert.equal(answer.outcome?.skipped, 'deleting')
  const mutated = answerReview(Buffer.from(JSON.stringify(review(object, { operation: 'UPDATE', oldObject }))), 'mutate')
  assert.equal(mutated.outcome?.skipped, 'deleting')
  assert.deepEqual(decodedPatch(mutated), [])
})

test('the CLI review ratchets as the server does: a label change on a legacy invalid object is allowed, and warned', () => {
  const oldObject = autoscaled({ minReplicas: 5, maxReplicas: 3 })
  const object = structuredClone(oldObject)
  ;(object.metadata as Json).labels = { team: 'ml' }
  const answer = answerReview(Buffer.from(JSON.stringify(review(object, { operation: 'UPDATE', oldObject }))), 'validate')
  assert.equal(answer.outcome?.response.allowed, true)
  assert.deepEqual(answer.outcome?.ratcheted?.map((c) => `${c.code} ${c.field}`), ['NIM021 spec.scale.hpa.maxReplicas'])
  assert.match(answer.outcome?.response.warnings?.[0] ?? '', /^NIM021 spec\.scale\.hpa\.maxReplicas: .*already so before this update, and unchanged: allowed/)
  ;((object.spec as Json).scale as Json).hpa = { minReplicas: 5, maxReplicas: 2 }
  const worse = answerReview(Buffer.from(JSON.stringify(review(object, { operation: 'UPDATE', oldObject }))), 'validate')
  assert.equal(worse.outcome?.response.allowed, false)
})

test('survives objects of any shape without throwing', () => {
  for (const object of [null, 42, 'x', [], { spec: null }, { spec: [] }, { spec: { scale: 'yes' } }, { spec: { scale: { enabled: true, hpa: [] } } }, { metadata: 7, spec: { scale: { enabled: true, hpa: { metrics: 'cpu', behavior: 5 } } } }]) {
    const verdict = validateNIMService({ operation: 'CREATE', object })
    assert.equal(verdict.allowed, false, JSON.stringify(object))
  }
})

// --- warnings ---------------------------------------------------------------------------------

const codes = (object: Json): string[] => create(object).warnings.map((w) => w.code)
const objectMetric = (name: string) => ({ type: 'Object', object: { metric: { name: 'gpu_cache_usage_perc' }, describedObject: { apiVersion: 'v1', kind: 'Service', name }, target: { type: 'Value', value: '0.7' } } })

test('warns when minReplicas is below 2, and not at 2', () => {
  assert.ok(codes(autoscaled({ minReplicas: 1, maxReplicas: 4 })).includes('NIM101'))
  assert.ok(codes(autoscaled({ maxReplicas: 4 })).includes('NIM101'), 'absent minReplicas defaults to 1')
  assert.ok(!codes(autoscaled()).includes('NIM101'))
})

test('warns on a scale-down window under 300 s and a scale-up window over 300 s', () => {
  const behavior = (up: number, down: number) => autoscaled({ minReplicas: 2, maxReplicas: 4, behavior: { scaleUp: { stabilizationWindowSeconds: up }, scaleDown: { stabilizationWindowSeconds: down } } })
  assert.deepEqual(codes(behavior(60, 120)).filter((c) => c === 'NIM102' || c === 'NIM103'), ['NIM102'])
  assert.deepEqual(codes(behavior(600, 300)).filter((c) => c === 'NIM102' || c === 'NIM103'), ['NIM103'])
  assert.deepEqual(codes(behavior(300, 300)).filter((c) => c === 'NIM102' || c === 'NIM103'), [])
})

test('warns on a Utilization target for a resource with no request', () => {
  const memoryUtil = { minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } }] }
  const verdict = create(nim({ resources: { requests: { cpu: '2' } }, scale: { enabled: true, hpa: memoryUtil } }))
  const w = verdict.warnings.find((x) => x.code === 'NIM104')
  assert.equal(w?.field, 'spec.scale.hpa.metrics[0].resource.target.averageUtilization')
  assert.ok(!codes(nim({ resources: { requests: { memory: '8Gi' } }, scale: { enabled: true, hpa: memoryUtil } })).includes('NIM104'))
  assert.ok(!codes(nim({ resources: { limits: { memory: '8Gi' } }, scale: { enabled: true, hpa: memoryUtil } })).includes('NIM104'), 'requests default to limits')
})

test('warns on a custom metric while spec.metrics.enabled is not true', () => {
  const hpa = { minReplicas: 2, maxReplicas: 4, metrics: [objectMetric('llm')] }
  assert.ok(codes(nim({ scale: { enabled: true, hpa } })).includes('NIM105'))
  assert.ok(!codes(nim({ metrics: { enabled: true }, scale: { enabled: true, hpa } })).includes('NIM105'))
})

test("warns on an Object metric that does not describe the NIMService's own Service", () => {
  assert.ok(codes(nim({ metrics: { enabled: true }, scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 4, metrics: [objectMetric('other')] } } })).includes('NIM106'))
  assert.ok(!codes(nim({ metrics: { enabled: true }, scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 4, metrics: [objectMetric('llm')] } } })).includes('NIM106'))
})

test('warns that kserve ignores all but the first cpu or memory Resource metric', () => {
  const object = autoscaled({ minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }, { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 70 } } }] }, { inferencePlatform: 'kserve' })
  const w = create(object).warnings.filter((x) => x.code === 'NIM107')
  assert.deepEqual(w.map((x) => x.field), ['spec.scale.hpa.metrics[1]'])
})

test('warns when minReplicas equals maxReplicas', () => {
  assert.ok(codes(autoscaled({ minReplicas: 3, maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] })).includes('NIM108'))
})

test('warns when there are no metrics', () => {
  assert.ok(codes(autoscaled({ minReplicas: 2, maxReplicas: 4 })).includes('NIM109'))
  assert.ok(!codes(autoscaled()).includes('NIM109'))
})

test('warns when a target type does not match the value it sets', () => {
  const hpa = { minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageValue: '500m' } } }] }
  assert.ok(codes(autoscaled(hpa)).includes('NIM110'))
})

test('every published code has a title and a fix', () => {
  for (const [code, info] of RULES) {
    assert.match(code, /^NIM\d{3}$/)
    assert.ok(info.title.length > 0 && info.fix.length > 0, code)
  }
})

test('a describedObject field that is an object with its own toString key is reported, not thrown on', () => {
  // Found by the fuzz suite: String() on {"toString": "a"} throws, which became an internal-error denial.
  const metric = { type: 'Object', object: { metric: { name: 'm' }, describedObject: { apiVersion: 'v1', kind: { toString: 'a' }, name: 'llm' }, target: { type: 'Value', value: '1' } } }
  const verdict = create(nim({ metrics: { enabled: true }, scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 4, metrics: [metric] } } }))
  assert.equal(verdict.allowed, false)
  assert.equal(verdict.causes[0]?.field, 'spec.scale.hpa.metrics[0].object.describedObject.kind')
  assert.ok(verdict.warnings.some((w) => w.code === 'NIM106'))
})

test('NIM004: a value nested deeper than the bound is denied at its path; one level less is checked as usual', async () => {
  const { MAX_DEPTH } = await import('../../src/nimservice/depth.js')
  // Alternating lists and one-key objects, `levels` deep, around a string.
  const nest = (levels: number): unknown => {
    let v: unknown = 'leaf'
    for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { k: v }
    return v
  }
  const object = nim()
  ;(object.metadata as Json).deep = nest(MAX_DEPTH)
  const verdict = create(object)
  assert.equal(verdict.allowed, false)
  assert.equal(verdict.causes.length, 1)
  const cause = verdict.causes[0] as { field: string, code: string }
  assert.equal(cause.code, 'NIM004')
  assert.match(cause.field, /^metadata\.deep(\.k\[0\]|\[0\]\.k)+/)
  // The path names the value that crossed the bound: the object at depth MAX_DEPTH.
  assert.equal((cause.field.match(/\[0\]/g) ?? []).length + (cause.field.match(/\.k/g) ?? []).length + 2, MAX_DEPTH)

  const shallow = nim()
  ;(shallow.metadata as Json).deep = nest(MAX_DEPTH - 3)
  assert.deepEqual(create(shallow).causes, [])

  // Own keys named like Object.prototype members are walked like any other.
  const proto = JSON.parse(`{"apiVersion":"apps.nvidia.com/v1alpha1","kind":"NIMService","metadata":{"name":"x","__proto__":${JSON.stringify(nest(MAX_DEPTH))}},"spec":{}}`) as Json
  assert.equal(create(proto).causes[0]?.code, 'NIM004')
  assert.match(create(proto).causes[0]?.field ?? '', /^metadata\.__proto__/)
})

// Recorded from kube-apiserver v1.36 (the test harness) for the upstream CRD: the value's type, quoted, on
// both sides, and Go's name for a whole number ("integer", not JavaScript's "number").
test('a value of the wrong type is described in the apiserver\'s words', () => {
  for (const [spec, field, message] of [
    [{ replicas: 'two' }, 'spec.replicas', 'Invalid value: "string": spec.replicas in body must be of type integer: "string"'],
    [{ image: { repository: 3, tag: '1' } }, 'spec.image.repository', 'Invalid value: "integer": spec.image.repository in body must be of type string: "integer"'],
    [{ labels: { a: 3 } }, 'spec.labels.a', 'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"']
  ] as const) {
    const object = nim({ ...spec } as Json)
    const cause = create(object).causes.find((c) => c.field === field)
    assert.equal(cause?.message, message, JSON.stringify(spec))
  }
})
