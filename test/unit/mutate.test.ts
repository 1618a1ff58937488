import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fastJsonPatch from 'fast-json-patch'
import { mutateNIMService, HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/index.js'
import { canonicalQuantity } from '../../src/nimservice/quantity.js'
import { SEED_EXAMPLES, seedExample } from '../fixtures/seed-examples.js'
import { autoscaled, nim } from '../helpers/nimservice.js'

type Json = Record<string, unknown>
const mutate = (object: Json, operation: 'CREATE' | 'UPDATE' = 'CREATE') => mutateNIMService({ operation, object, namespace: 'nim-service' })
const apply = (object: Json, patch: fastJsonPatch.Operation[]): Json =>
  fastJsonPatch.applyPatch(structuredClone(object), patch, true, false).newDocument
const annotations = (o: Json): Record<string, string> => ((o.metadata as Json).annotations ?? {}) as Record<string, string>
const renderedHpa = (o: Json): Json => JSON.parse(annotations(o)[HPA_ANNOTATION] ?? 'null')

test('every seed example: the patch applies, fills the defaults, and a second pass yields an empty patch', () => {
  for (const { name, object } of SEED_EXAMPLES) {
    const first = mutate(object)
    const patched = apply(object, first.patch)
    assert.deepEqual(patched, first.object, name)
    const spec = patched.spec as Json
    if ((spec.scale as Json).enabled === true) {
      const hpa = (spec.scale as Json).hpa as Json
      assert.ok(typeof hpa.minReplicas === 'number', `${name}: minReplicas defaulted`)
      assert.ok(Array.isArray(hpa.metrics) && hpa.metrics.length > 0, `${name}: metrics defaulted`)
      assert.equal(((spec.expose as Json).service as Json).port, 8000, `${name}: service port defaulted`)
      const json = annotations(patched)[HPA_ANNOTATION] ?? ''
      assert.equal(annotations(patched)[HPA_SHA_ANNOTATION], createHash('sha256').update(json).digest('hex'), name)
      assert.equal(renderedHpa(patched).kind, 'HorizontalPodAutoscaler')
    } else {
      assert.equal(annotations(patched)[HPA_ANNOTATION], undefined, name)
    }
    assert.deepEqual(mutate(patched).patch, [], `${name}: idempotent`)
  }
})

test('defaults metrics to cpu 80% and says so, recommending gpu_cache_usage_perc', () => {
  const result = mutate(seedExample('custom-annotations'))
  const hpa = ((result.object.spec as Json).scale as Json).hpa as Json
  assert.deepEqual(hpa.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }])
  const warning = result.warnings.find((w) => w.code === 'NIM109')
  assert.match(warning?.message ?? '', /gpu_cache_usage_perc/)
})

test('defaults minReplicas to 1 and keeps an existing expose.service as it is', () => {
  const object = autoscaled({ maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] }, { expose: { service: { type: 'ClusterIP', port: 9000 } } })
  const { object: out } = mutate(object)
  assert.equal((((out.spec as Json).scale as Json).hpa as Json).minReplicas, 1)
  assert.deepEqual((out.spec as Json).expose, { service: { type: 'ClusterIP', port: 9000 } })
})

const label = (name: string) => ({
  'app.kubernetes.io/name': name,
  'app.kubernetes.io/instance': name,
  'app.kubernetes.io/part-of': 'nim-service',
  'app.kubernetes.io/managed-by': 'nim-admission'
})

test('renders the conservative configuration as the operator template would', () => {
  const hpa = renderedHpa(apply(seedExample('conservative'), mutate(seedExample('conservative')).patch))
  assert.deepEqual(hpa, {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'llama-3-70b-conservative', namespace: 'nim-service', labels: label('llama-3-70b-conservative') },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llama-3-70b-conservative' },
      minReplicas: 2,
      maxReplicas: 8,
      metrics: [{ type: 'Object', object: { metric: { name: 'gpu_cache_usage_perc' }, describedObject: { apiVersion: 'v1', kind: 'Service', name: 'llama-3-70b-conservative' }, target: { type: 'Value', value: '800m' } } }],
      behavior: {
        scaleUp: { stabilizationWindowSeconds: 180, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 120 }] },
        scaleDown: { stabilizationWindowSeconds: 600, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 180 }] }
      }
    }
  })
})

test('renders the aggressive configuration as the operator template would', () => {
  const hpa = renderedHpa(mutate(seedExample('aggressive')).object)
  assert.deepEqual(hpa.spec, {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llama-aggressive' },
    minReplicas: 1,
    maxReplicas: 20,
    metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }],
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 30, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 30 }] },
      scaleDown: { stabilizationWindowSeconds: 60, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] }
    }
  })
})

test('renders the multi-metric configuration with metrics ordered by type, stable', () => {
  const hpa = renderedHpa(mutate(seedExample('multi-metric')).object)
  assert.deepEqual(hpa.metadata, { name: 'llama-3-70b-multi', namespace: 'nim-service', labels: label('llama-3-70b-multi') })
  assert.deepEqual(hpa.spec, {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llama-3-70b-multi' },
    minReplicas: 2,
    maxReplicas: 10,
    metrics: [
      { type: 'Object', object: { metric: { name: 'gpu_cache_usage_perc' }, describedObject: { apiVersion: 'v1', kind: 'Service', name: 'llama-3-70b-multi' }, target: { type: 'Value', value: '750m' } } },
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } }
    ]
  })
})

test('fills behavior defaults for a direction the user left out, and leaves an absent behavior absent', () => {
  const onlyDown = autoscaled({ minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }], behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } })
  const spec = renderedHpa(mutate(onlyDown).object).spec as Json
  assert.deepEqual(spec.behavior, {
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
    scaleDown: { stabilizationWindowSeconds: 300, selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] }
  })
  assert.equal((renderedHpa(mutate(autoscaled()).object).spec as Json).behavior, undefined)
})

test('merges labels and annotations the way the operator does, the first map winning', () => {
  const object = autoscaled(undefined, {
    labels: { team: 'ml', 'app.kubernetes.io/name': 'overridden' },
    annotations: { owner: 'spec', shared: 'from-spec' },
    scale: { enabled: true, annotations: { shared: 'from-scale', extra: 'x' }, hpa: { minReplicas: 2, maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] } }
  })
  const meta = renderedHpa(mutate(object).object).metadata as Json
  assert.deepEqual(meta.labels, { ...label('llm'), team: 'ml' })
  assert.deepEqual(meta.annotations, { owner: 'spec', shared: 'from-spec', extra: 'x' })
})

test('creates metadata.annotations when the object has none, with an add of the whole map', () => {
  const { patch } = mutate(autoscaled())
  const op = patch.find((p) => p.path === '/metadata/annotations')
  assert.equal(op?.op, 'add')
})

test('escapes / and ~ in annotation keys as ~1 and ~0', () => {
  const object = autoscaled()
  ;(object.metadata as Json).annotations = { 'example.com/owner': 'a', 'tilde~key': 'b' }
  const { patch } = mutate(object)
  assert.ok(patch.some((p) => p.path === '/metadata/annotations/nim-admission.io~1hpa'), JSON.stringify(patch.map((p) => p.path)))
  const patched = apply(object, patch)
  assert.deepEqual(Object.keys(annotations(patched)).sort(), ['example.com/owner', HPA_ANNOTATION, HPA_SHA_ANNOTATION, 'tilde~key'].sort())
  const weird = autoscaled()
  ;(weird.metadata as Json).annotations = { [HPA_ANNOTATION]: 'stale', 'a~b/c': 'x' }
  const p2 = mutate(weird).patch
  assert.ok(p2.every((p) => p.op !== 'replace' || p.path === '/metadata/annotations/nim-admission.io~1hpa'))
  assert.equal(annotations(apply(weird, p2))['a~b/c'], 'x')
})

test('replaces a stale rendered HPA annotation', () => {
  const object = autoscaled()
  ;(object.metadata as Json).annotations = { [HPA_ANNOTATION]: '{"stale":true}', [HPA_SHA_ANNOTATION]: 'deadbeef' }
  const { patch } = mutate(object)
  const ops = patch.filter((p) => p.path.startsWith('/metadata/annotations/'))
  assert.deepEqual(ops.map((p) => p.op).sort(), ['replace', 'replace'])
  assert.equal(renderedHpa(apply(object, patch)).kind, 'HorizontalPodAutoscaler')
})

test('removes both annotations when autoscaling is disabled or the NIMService is multi-node', () => {
  const stale = { [HPA_ANNOTATION]: '{}', [HPA_SHA_ANNOTATION]: 'x', keep: 'me' }
  const disabled = nim({ replicas: 2, scale: { enabled: false } })
  ;(disabled.metadata as Json).annotations = { ...stale }
  assert.deepEqual(annotations(apply(disabled, mutate(disabled).patch)), { keep: 'me' })
  const multiNode = nim({ replicas: 1, multiNode: { parallelism: { pipeline: 2 } } })
  ;(multiNode.metadata as Json).annotations = { ...stale }
  assert.deepEqual(annotations(apply(multiNode, mutate(multiNode).patch)), { keep: 'me' })
  assert.deepEqual(mutate(nim({})).patch, [], 'nothing to remove, nothing to patch')
})

test('leaves an object that validation would deny alone: allowed, no patch', () => {
  const result = mutate(autoscaled(undefined, { replicas: 2 }))
  assert.deepEqual(result.patch, [])
})

test('takes the namespace from the request when the object has none', () => {
  const object = autoscaled()
  delete (object.metadata as Json).namespace
  assert.equal((renderedHpa(mutate(object).object).metadata as Json).namespace, 'nim-service')
})

test('canonicalises quantities the way the apiserver stores them', () => {
  const cases: Array<[unknown, string]> = [['0.7', '700m'], ['1000', '1k'], [100, '100'], ['1.5Gi', '1536Mi'], ['0.5Ki', '512'], ['1e3', '1e3'], ['2048Mi', '2Gi'], ['0.0000000001', '1n'], ['1E', '1E'], ['.5', '500m']]
  for (const [input, want] of cases) assert.equal(canonicalQuantity(input), want, String(input))
})

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

test('edge shapes: the patch turns the input into the returned object, and the input is never written', () => {
  const hpa = { maxReplicas: 4, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] }
  const noMetadata = autoscaled(hpa)
  delete noMetadata.metadata
  const exposeWithoutService = autoscaled(hpa, { expose: { router: {} } })
  const stringAnnotations = autoscaled(hpa)
  ;(stringAnnotations.metadata as Json).annotations = 'not a map'
  const upToDate = apply(autoscaled(hpa), mutate(autoscaled(hpa)).patch)
  const cases: Array<[string, Json, string[]]> = [
    ['no metadata (no name: not rendered, NIM112)', noMetadata, ['add /spec/scale/hpa/minReplicas', 'add /spec/expose']],
    ['expose without service', exposeWithoutService, ['add /spec/scale/hpa/minReplicas', 'add /spec/expose/service']],
    ['annotations not a map', stringAnnotations, ['replace /metadata/annotations']],
    ['already mutated', upToDate, []]
  ]
  for (const [name, object, expected] of cases) {
    const before = structuredClone(object)
    const result = mutate(deepFreeze(object))
    assert.deepEqual(object, before, `${name}: input unchanged`)
    for (const op of expected) assert.ok(result.patch.some((p) => `${p.op} ${p.path}` === op), `${name}: ${op} in ${JSON.stringify(result.patch.map((p) => `${p.op} ${p.path}`))}`)
    if (expected.length === 0) assert.deepEqual(result.patch, [], name)
    assert.deepEqual(apply(object, result.patch), result.object, `${name}: patch applied = object`)
    assert.deepEqual(mutate(result.object).patch, [], `${name}: idempotent`)
  }
})
