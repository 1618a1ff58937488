// Kubernetes' HPA validation as nim-admission ports it: one test per row of test/fixtures/hpa-cases.ts
// (the verdict of validateHpaSpec and of a whole NIMService around the HPA, with the first field Go
// reports), then the rule codes and a few messages.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { validateHpaSpec } from '../../src/nimservice/hpa-validation.js'
import { validateNIMService } from '../../src/nimservice/validate.js'
import { HPA_CASES } from '../fixtures/hpa-cases.js'

type Json = Record<string, unknown>

const PATH = 'spec.scale.hpa'
const CPU = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }

function nimService (hpa: Json): Json {
  return {
    apiVersion: 'apps.nvidia.com/v1alpha1',
    kind: 'NIMService',
    metadata: { name: 'llm', namespace: 'nim' },
    spec: { image: { repository: 'nvcr.io/nim/meta/llama', tag: '1.0' }, authSecret: 'ngc', scale: { enabled: true, hpa } }
  }
}

const verdictFor = (hpa: Json) => validateNIMService({ operation: 'CREATE', object: nimService(hpa) })

/** Every JSON number in `v` (the e2e test sends each case to a real apiserver: int32 only, no floats). */
function numbers (v: unknown): number[] {
  if (typeof v === 'number') return [v]
  if (Array.isArray(v)) return v.flatMap(numbers)
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(numbers)
  return []
}

test('the HPA case table holds at least 90 well-formed cases, valid and invalid', () => {
  const valid = HPA_CASES.filter((c) => c.valid)
  const invalid = HPA_CASES.filter((c) => !c.valid)
  assert.ok(HPA_CASES.length >= 90, `${HPA_CASES.length} cases`)
  assert.ok(valid.length >= 30 && invalid.length >= 30, `${valid.length} valid, ${invalid.length} invalid`)
  assert.equal(new Set(HPA_CASES.map((c) => c.name)).size, HPA_CASES.length, 'case names are unique')
  for (const c of HPA_CASES) {
    if (c.valid) assert.equal(c.firstField, undefined, c.name)
    else assert.match(c.firstField ?? '', /^spec\.scale\.hpa\./, c.name)
    for (const n of numbers(c.hpa)) {
      assert.ok(Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31, `${c.name}: ${n} is not an int32`)
    }
    for (const m of (c.hpa.metrics ?? []) as Json[]) {
      assert.equal(typeof m.type, 'string', `${c.name}: every metric has a type`)
      for (const source of ['resource', 'containerResource', 'pods', 'object', 'external']) {
        const target = (m[source] as Json | undefined)?.target as Json | undefined
        if (target !== undefined) assert.equal(typeof target.type, 'string', `${c.name}: every target has a type`)
      }
    }
  }
})

for (const c of HPA_CASES) {
  test(c.name, () => {
    const before = structuredClone(c.hpa)
    const causes = validateHpaSpec(c.hpa, PATH)
    if (c.valid) {
      assert.deepEqual(causes, [])
    } else {
      assert.ok(causes.length > 0, 'validateHpaSpec reports a cause')
      assert.equal(causes[0]?.field, c.firstField, JSON.stringify(causes))
    }
    assert.deepEqual(c.hpa, before, 'validation (and its defaulting) leaves the input untouched')

    const verdict = verdictFor(c.hpa)
    assert.equal(verdict.allowed, c.valid, JSON.stringify(verdict.causes))
    if (!c.valid) assert.equal(verdict.causes[0]?.field, c.firstField, JSON.stringify(verdict.causes))
  })
}

// --- codes (src/nimservice/codes.ts) ---------------------------------------------------------------

test('codes minReplicas below 1 as NIM020 and scale-to-zero without an Object or External metric as NIM025', () => {
  assert.deepEqual(validateHpaSpec({ minReplicas: 0, maxReplicas: 3, metrics: [CPU] }, PATH), [
    { field: 'spec.scale.hpa.minReplicas', code: 'NIM020', message: 'Invalid value: 0: must be greater than or equal to 1' },
    { field: 'spec.scale.hpa.metrics', code: 'NIM025', message: 'Forbidden: must specify at least one Object or External metric to support scaling to zero replicas' }
  ])
})

test('codes maxReplicas missing or below minReplicas as NIM021, in the full verdict too', () => {
  assert.deepEqual(validateHpaSpec({ minReplicas: 5, maxReplicas: 3 }, PATH), [
    { field: 'spec.scale.hpa.maxReplicas', code: 'NIM021', message: 'Invalid value: 3: must be greater than or equal to `minReplicas`' }
  ])
  assert.deepEqual(validateHpaSpec({ minReplicas: 1, maxReplicas: 0 }, PATH), [
    { field: 'spec.scale.hpa.maxReplicas', code: 'NIM021', message: 'Required value: must be set and greater than 0' },
    { field: 'spec.scale.hpa.maxReplicas', code: 'NIM021', message: 'Invalid value: 0: must be greater than or equal to `minReplicas`' }
  ])
  const verdict = verdictFor({ minReplicas: 5, maxReplicas: 3 })
  assert.deepEqual(verdict.causes.map((c) => [c.field, c.code]), [['spec.scale.hpa.maxReplicas', 'NIM021']])
})

test('codes an unknown metric type as NIM022, reported twice on type as Go does', () => {
  const unsupported = 'Unsupported value: "Custom": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"'
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Custom' }] }, PATH), [
    { field: 'spec.scale.hpa.metrics[0].type', code: 'NIM022', message: unsupported },
    { field: 'spec.scale.hpa.metrics[0].type', code: 'NIM022', message: unsupported }
  ])
})

test('codes a metric type named after an Object.prototype key like any unknown type (NIM022 on type only)', () => {
  for (const type of ['constructor', 'toString', '__proto__']) {
    const causes = validateHpaSpec({ maxReplicas: 3, metrics: [{ type }] }, PATH)
    assert.deepEqual(causes.map((c) => [c.field, c.code]), [
      ['spec.scale.hpa.metrics[0].type', 'NIM022'],
      ['spec.scale.hpa.metrics[0].type', 'NIM022']
    ], `${type}: ${JSON.stringify(causes)}`)
  }
})

test('codes a type/source mismatch as NIM022 on the missing source', () => {
  const causes = validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Pods', resource: CPU.resource }] }, PATH)
  assert.deepEqual(causes, [
    { field: 'spec.scale.hpa.metrics[0].pods', code: 'NIM022', message: 'Required value: must populate information for the given metric source' }
  ])
})

test('codes an incomplete metric source as NIM023', () => {
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: '', target: { type: 'AverageValue', averageValue: '1' } } }] }, PATH), [
    { field: 'spec.scale.hpa.metrics[0].resource.name', code: 'NIM023', message: 'Required value: must specify a resource name' }
  ])
  const described = validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Object', object: { describedObject: { kind: 'Service', name: '..' }, metric: { name: 'x' }, target: { type: 'Value', value: '1' } } }] }, PATH)
  assert.deepEqual(described, [
    { field: 'spec.scale.hpa.metrics[0].object.describedObject.name', code: 'NIM023', message: 'Invalid value: "..": may not be \'..\'' }
  ])
})

test('codes an invalid metric target as NIM024', () => {
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 0 } } }] }, PATH), [
    { field: 'spec.scale.hpa.metrics[0].resource.target.averageUtilization', code: 'NIM024', message: 'Invalid value: 0: must be greater than 0' }
  ])
  const both = validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'External', external: { metric: { name: 'q' }, target: { type: 'Value', value: '1', averageValue: '1' } } }] }, PATH)
  assert.deepEqual(both, [
    { field: 'spec.scale.hpa.metrics[0].external.target.value', code: 'NIM024', message: 'Forbidden: may not set both a target value for metric and a per-pod target' }
  ])
})

test('codes a stabilization window outside 0..3600 as NIM026', () => {
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, behavior: { scaleDown: { stabilizationWindowSeconds: 3601 } } }, PATH), [
    { field: 'spec.scale.hpa.behavior.scaleDown.stabilizationWindowSeconds', code: 'NIM026', message: 'Invalid value: 3601: must be less than or equal to 3600' }
  ])
})

test('codes an explicit empty policies list and a bad policy as NIM027', () => {
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, behavior: { scaleUp: { policies: [] } } }, PATH), [
    { field: 'spec.scale.hpa.behavior.scaleUp.policies', code: 'NIM027', message: 'Required value: must specify at least one Policy' }
  ])
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, behavior: { scaleUp: { policies: [{ type: 'pods', value: 4, periodSeconds: 1801 }] } } }, PATH), [
    { field: 'spec.scale.hpa.behavior.scaleUp.policies[0].type', code: 'NIM027', message: 'Unsupported value: "pods": supported values: "Percent", "Pods"' },
    { field: 'spec.scale.hpa.behavior.scaleUp.policies[0].periodSeconds', code: 'NIM027', message: 'Invalid value: 1801: must be less than or equal to 1800' }
  ])
})

test('codes an unsupported selectPolicy as NIM028', () => {
  assert.deepEqual(validateHpaSpec({ maxReplicas: 3, behavior: { scaleDown: { selectPolicy: 'max' } } }, PATH), [
    { field: 'spec.scale.hpa.behavior.scaleDown.selectPolicy', code: 'NIM028', message: 'Unsupported value: "max": supported values: "Disabled", "Max", "Min"' }
  ])
})

test('codes a negative tolerance as NIM029, in the full verdict too', () => {
  const causes = validateHpaSpec({ maxReplicas: 3, behavior: { scaleUp: { tolerance: '-0.1' } } }, PATH)
  assert.deepEqual(causes.map((c) => [c.field, c.code]), [['spec.scale.hpa.behavior.scaleUp.tolerance', 'NIM029']])
  const verdict = verdictFor({ maxReplicas: 3, behavior: { scaleUp: { tolerance: '-0.1' } } })
  assert.deepEqual(verdict.causes.map((c) => [c.field, c.code]), [['spec.scale.hpa.behavior.scaleUp.tolerance', 'NIM029']])
})

test('prints quantities in causes in canonical form, as Kubernetes does', () => {
  // Go renders a bad quantity as its canonical string: the *Quantity of a target JSON-marshals to it,
  // and ValidateNonnegativeQuantity passes value.String(). "-0.1" prints as "-100m", "0m" and 0 as "0".
  const tolerance = validateHpaSpec({ maxReplicas: 3, behavior: { scaleUp: { tolerance: '-0.1' } } }, PATH)
  assert.equal(tolerance[0]?.message, 'Invalid value: "-100m": must be greater than or equal to 0')
  const value = validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'External', external: { metric: { name: 'q' }, target: { type: 'Value', value: '0m' } } }] }, PATH)
  assert.equal(value[0]?.message, 'Invalid value: "0": must be positive')
  const averageValue = validateHpaSpec({ maxReplicas: 3, metrics: [{ type: 'Pods', pods: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: 0 } } }] }, PATH)
  assert.equal(averageValue[0]?.message, 'Invalid value: "0": must be positive')
})
