// The applier's decisions as pure functions: what is kept of a NIMService (and the HPA rendered from its
// spec), who an HPA belongs to, where the webhook covers, and what verify and write mode do in each case.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mutateNIMService } from '../../src/nimservice/index.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/hpa-render.js'
import { decide, differences, DRIFT_GRACE_MS, DRIFT_PENDING, hpaDifferences, manifestFor, ownership, REASONS, type DecideInput, type Decision } from '../../src/applier/reconcile.js'
import { hpaView, nimView, MAX_HINT_BYTES, OPERATOR_FINALIZER, type HpaView, type NamespaceView, type NimView } from '../../src/applier/view.js'
import { coverage, selectorMatches, webhookScopes, type CoverageSource, type WebhookScope } from '../../src/applier/coverage.js'
import { normalizeApplierOptions } from '../../src/applier/run.js'
import { autoscaled } from '../helpers/nimservice.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const UID = '11111111-1111-1111-1111-111111111111'

/** A NIMService as the apiserver stores it after the mutating webhook: annotated, with a uid, managedFields and a status. */
function stored (hpa?: Json, extra: Json = {}): Json {
  const m = mutateNIMService({ operation: 'CREATE', object: hpa === undefined ? autoscaled() : autoscaled(hpa), namespace: 'nim' } as never)
  const o = structuredClone(m.object) as Json
  o.metadata = { ...o.metadata, uid: UID, resourceVersion: '10', managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }], ...(extra.metadata ?? {}) }
  if (extra.spec !== undefined) o.spec = { ...o.spec, ...extra.spec }
  if (extra.status !== undefined) o.status = extra.status
  return o
}

const view = (o: Json): NimView => nimView(o) as NimView

/** The HPA the operator creates for `nim` (its GetHPAParams render, as stored), possibly edited. */
function operatorHpa (nim: NimView, edit: (h: Json) => void = () => {}): HpaView {
  const h = structuredClone(nim.desired) as Json
  h.metadata = { ...h.metadata, uid: 'hpa-uid', resourceVersion: '5', labels: { ...h.metadata.labels, 'app.kubernetes.io/managed-by': 'k8s-nim-operator', 'app.kubernetes.io/operator-version': 'v3' }, annotations: { 'nvidia.com/parent-spec-hash': 'abc', 'openshift.io/required-scc': 'nonroot' }, ownerReferences: [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: UID, controller: true, blockOwnerDeletion: true }] }
  edit(h)
  return hpaView(h) as HpaView
}

function ourHpa (nim: NimView, edit: (h: Json) => void = () => {}): HpaView {
  const h = structuredClone(manifestFor(nim)) as Json
  h.metadata.uid = 'ours-uid'
  h.metadata.resourceVersion = '7'
  edit(h)
  return hpaView(h) as HpaView
}

const base = (nim: NimView | undefined, extra: Partial<DecideInput> = {}): DecideInput => ({
  mode: 'verify', namespace: 'nim', name: 'llm', ...(nim !== undefined ? { nim } : {}), coverage: { covered: true }, knownForMs: 60_000, missingForMs: 60_000, graceMs: 30_000, ...extra
})
const reasons = (d: Decision): string[] => d.findings.map((f) => f.reason)

describe('nimView: what is kept of a NIMService', () => {
  it('keeps no managedFields, status or spec; renders the HPA from the spec exactly as the webhook does', () => {
    const o = stored(undefined, { status: { state: 'NotReady', conditions: [{ type: 'Ready' }] } })
    const v = view(o)
    const keys = JSON.stringify(v)
    assert.doesNotMatch(keys, /managedFields|kubectl|conditions/)
    assert.equal((v as unknown as Json).spec, undefined)
    const m = mutateNIMService({ operation: 'CREATE', object: autoscaled(), namespace: 'nim' } as never)
    assert.deepEqual(v.desired, m.hpa)
    assert.equal(v.desiredSha, o.metadata.annotations[HPA_SHA_ANNOTATION])
    assert.equal(v.hint?.contentSha, v.desiredSha)
    assert.deepEqual(v.operatorSignals, ['status.state NotReady'])
  })

  it('reads the operator\'s finalizer as its sign', () => {
    assert.deepEqual(view(stored(undefined, { metadata: { finalizers: [OPERATOR_FINALIZER] } })).operatorSignals, [`finalizer ${OPERATOR_FINALIZER}`])
    assert.deepEqual(view(stored()).operatorSignals, [])
  })

  it('keeps an oversized annotation only as its hash', () => {
    const o = stored()
    o.metadata.annotations[HPA_ANNOTATION] = JSON.stringify({ pad: 'x'.repeat(MAX_HINT_BYTES) })
    const v = view(o)
    assert.equal(v.hint?.manifest, undefined)
    assert.equal(v.hint?.contentSha.length, 64)
  })

  it('records why an autoscaled NIMService fails the rules', () => {
    const v = view(stored(undefined, { spec: { scale: { enabled: true, hpa: { minReplicas: 5, maxReplicas: 2 } } } }))
    assert.match(v.invalid.join('\n'), /minReplicas|maxReplicas/)
  })
})

describe('hpaDifferences: field by field', () => {
  const nim = view(stored())
  const cases: Array<[string, (h: Json) => void, RegExp | null]> = [
    ['the operator\'s own HPA, as created', () => {}, null],
    ['maxReplicas edited by hand', (h) => { h.spec.maxReplicas = 200 }, /^spec\.maxReplicas: want 4, have 200$/],
    ['a metric target edited', (h) => { h.spec.metrics[0].resource.target.averageUtilization = 10 }, /^spec\.metrics\[0\]\.resource\.target\.averageUtilization: want 70, have 10$/],
    ['another target', (h) => { h.spec.scaleTargetRef.name = 'payments' }, /^spec\.scaleTargetRef\.name: want "llm", have "payments"$/],
    ['a behavior added', (h) => { h.spec.behavior = { scaleDown: { stabilizationWindowSeconds: 1 } } }, /^spec\.behavior: want \(absent\)/],
    ['a rendered label changed', (h) => { h.metadata.labels['app.kubernetes.io/name'] = 'x' }, /^metadata\.labels\["app\.kubernetes\.io\/name"\]: want "llm", have "x"$/]
  ]
  for (const [what, edit, want] of cases) {
    it(`${what}: ${want === null ? 'no difference' : want.source}`, () => {
      const fields = hpaDifferences(nim.desired as Json, operatorHpa(nim, edit), { ignoreManagedBy: true })
      if (want === null) assert.deepEqual(fields, [])
      else assert.match(fields.join('\n'), want)
    })
  }

  it('managed-by counts only when writing', () => {
    const hpa = operatorHpa(nim)
    assert.deepEqual(hpaDifferences(nim.desired as Json, hpa, { ignoreManagedBy: true }), [])
    assert.match(hpaDifferences(nim.desired as Json, hpa, { ignoreManagedBy: false }).join(), /managed-by/)
  })

  it('differences names array lengths and nested keys', () => {
    assert.deepEqual(differences('spec', { a: [1, 2] }, { a: [1] }), ['spec.a: want [1,2], have [1]'])
    assert.deepEqual(differences('spec', { a: { b: 1 } }, { a: { b: 1 } }), [])
  })
})

describe('ownership of an HPA named after the NIMService', () => {
  const nim = view(stored())
  const cases: Array<[string, HpaView, string]> = [
    ['the operator\'s label', operatorHpa(nim), 'operator'],
    ['a NIMService controller without our label', operatorHpa(nim, (h) => { delete h.metadata.labels['app.kubernetes.io/managed-by'] }), 'operator'],
    ['ours', ourHpa(nim), 'ours'],
    ['ours, for an earlier NIMService of that name', ourHpa(nim, (h) => { h.metadata.ownerReferences[0].uid = 'old' }), 'ours-stale'],
    ['our label without our owner', ourHpa(nim, (h) => { h.metadata.ownerReferences = [] }), 'foreign'],
    ['nobody\'s', hpaView({ metadata: { name: 'llm', namespace: 'nim' }, spec: {} }) as HpaView, 'foreign']
  ]
  for (const [what, hpa, want] of cases) it(`${what}: ${want}`, () => assert.equal(ownership(hpa, 'llm', UID), want))
})

describe('decide --mode verify: reports, never writes', () => {
  const nim = view(stored())

  it('in sync with the operator\'s HPA: nothing to report', () => {
    const d = decide(base(nim, { hpa: operatorHpa(nim) }))
    assert.equal(d.state, 'in-sync')
    assert.deepEqual(d.findings, [])
    assert.equal(d.write, undefined)
  })

  it('a hand edit of the live HPA is drift, named field by field, though the annotation still matches', () => {
    const d = decide(base(nim, { hpa: operatorHpa(nim, (h) => { h.spec.maxReplicas = 200; h.spec.minReplicas = 150 }) }))
    assert.equal(d.state, 'drift')
    assert.deepEqual(reasons(d), [REASONS.drift])
    assert.match(d.findings[0]?.message ?? '', /spec\.maxReplicas: want 4, have 200; spec\.minReplicas: want 2, have 150/)
    assert.match(d.findings[0]?.message ?? '', /managed-by k8s-nim-operator/)
    assert.equal(d.write, undefined)
  })

  it('a difference right after a spec change waits for the operator to catch up, then is drift', () => {
    const edited = operatorHpa(nim, (h) => { h.spec.maxReplicas = 3 })
    const early = decide(base(nim, { hpa: edited, driftForMs: 0 }))
    assert.equal(early.state, 'pending')
    assert.equal(early.detail, DRIFT_PENDING)
    assert.equal(early.requeueAfterMs, DRIFT_GRACE_MS)
    assert.deepEqual(early.findings, [])
    const late = decide(base(nim, { hpa: edited, driftForMs: DRIFT_GRACE_MS }))
    assert.deepEqual(reasons(late), [REASONS.drift])
    const noGrace = decide(base(nim, { hpa: edited, driftForMs: 0, graceMs: 0 }))
    assert.equal(noGrace.state, 'drift', 'with --grace 0 a difference is drift at once')
  })

  it('a missing HPA waits out the grace period, then is reported as not found', () => {
    const early = decide(base(nim, { missingForMs: 10_000 }))
    assert.equal(early.state, 'pending')
    assert.equal(early.requeueAfterMs, 20_000)
    assert.deepEqual(early.findings, [])
    const late = decide(base(nim, { missingForMs: 31_000 }))
    assert.deepEqual(reasons(late), [REASONS.missing])
    assert.match(late.findings[0]?.message ?? '', /nim\/llm not found 31s after/)
    assert.match(late.findings[0]?.message ?? '', /no sign of the NIM operator/)
  })

  it('a forged annotation (another target, huge bounds) is reported, never applied, and the HPA judged from the spec', () => {
    const o = stored()
    const forged = JSON.parse(o.metadata.annotations[HPA_ANNOTATION]) as Json
    forged.spec.scaleTargetRef.name = 'payments'
    forged.spec.minReplicas = 200
    forged.spec.maxReplicas = 500
    o.metadata.annotations[HPA_ANNOTATION] = JSON.stringify(forged)
    o.metadata.annotations[HPA_SHA_ANNOTATION] = 'f'.repeat(64)
    const v = view(o)
    const d = decide(base(v, { hpa: operatorHpa(v) }))
    assert.equal(d.state, 'in-sync')
    assert.deepEqual(reasons(d), [REASONS.forged])
    assert.match(d.findings[0]?.message ?? '', /spec\.maxReplicas: want 4, have 500/)
    assert.match(d.findings[0]?.message ?? '', /spec\.scaleTargetRef\.name: want "llm", have "payments"/)
    for (const mode of ['verify', 'write'] as const) {
      const w = decide(base(v, { mode, knownForMs: 60_000 }))
      if (w.write?.kind === 'create') assert.deepEqual((w.write.manifest.spec as Json).scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llm' })
    }
  })

  it('an honest annotation with its keys in another order (as the apiserver may return them) is not forged; a wrong sha is', () => {
    const o = stored()
    const manifest = JSON.parse(o.metadata.annotations[HPA_ANNOTATION]) as Json
    const reordered = JSON.stringify({ spec: { maxReplicas: manifest.spec.maxReplicas, ...manifest.spec }, metadata: manifest.metadata, kind: manifest.kind, apiVersion: manifest.apiVersion })
    assert.notEqual(reordered, o.metadata.annotations[HPA_ANNOTATION])
    o.metadata.annotations[HPA_ANNOTATION] = reordered
    o.metadata.annotations[HPA_SHA_ANNOTATION] = createHash('sha256').update(reordered).digest('hex')
    const v = view(o)
    assert.deepEqual(decide(base(v, { hpa: operatorHpa(v) })).findings, [])
    o.metadata.annotations[HPA_SHA_ANNOTATION] = 'f'.repeat(64)
    assert.match(decide(base(view(o), { hpa: operatorHpa(v) })).findings[0]?.message ?? '', /hpa-sha256 is not the SHA-256/)
  })

  it('an annotation on a NIMService that renders no HPA is forged too', () => {
    const o = stored(undefined, { spec: { scale: { enabled: false } } })
    const d = decide(base(view(o)))
    assert.deepEqual(reasons(d), [REASONS.forged])
    assert.match(d.findings[0]?.message ?? '', /renders no HPA/)
  })

  it('outside the webhook\'s namespaces: nothing at all, not even a report', () => {
    const o = stored()
    o.metadata.annotations[HPA_SHA_ANNOTATION] = 'f'.repeat(64)
    const d = decide(base(view(o), { coverage: { covered: false, reason: 'not selected' } }))
    assert.equal(d.state, 'not-covered')
    assert.deepEqual(d.findings, [])
  })

  it('kserve: a warning, no comparison', () => {
    const v = view(stored(undefined, { spec: { inferencePlatform: 'kserve' } }))
    const d = decide(base(v))
    assert.deepEqual(reasons(d), [REASONS.kserve])
    assert.match(d.findings[0]?.message ?? '', /llm-predictor/)
  })
})

describe('decide --mode write: only where the operator does not manage the HPA', () => {
  const nim = view(stored())
  const write = (n: NimView, extra: Partial<DecideInput> = {}): Decision => decide(base(n, { mode: 'write', ...extra }))

  it('creates the render, owned by the NIMService without blockOwnerDeletion, once the grace has passed', () => {
    assert.equal(write(nim, { knownForMs: 1_000 }).state, 'pending')
    const d = write(nim)
    assert.equal(d.write?.kind, 'create')
    const manifest = (d.write as { manifest: Json }).manifest
    assert.deepEqual(manifest.metadata.ownerReferences, [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: UID, controller: true }])
    assert.deepEqual(manifest.spec, (nim.desired as Json).spec)
    assert.equal(manifest.metadata.labels['app.kubernetes.io/managed-by'], 'nim-admission')
  })

  const refusals: Array<[string, NimView, HpaView | undefined]> = [
    ['the operator\'s finalizer on the NIMService', view(stored(undefined, { metadata: { finalizers: [OPERATOR_FINALIZER] } })), undefined],
    ['a status written by the operator', view(stored(undefined, { status: { state: 'Pending' } })), undefined],
    ['an HPA labelled managed-by k8s-nim-operator', nim, operatorHpa(nim)],
    ['an HPA controlled by the NIMService without our label', nim, operatorHpa(nim, (h) => { delete h.metadata.labels['app.kubernetes.io/managed-by'] })]
  ]
  for (const [what, n, hpa] of refusals) {
    it(`refuses, with an HPAWriteRefused Event and no write: ${what}`, () => {
      const d = write(n, hpa === undefined ? {} : { hpa })
      assert.equal(d.state, 'refused')
      assert.deepEqual(reasons(d), [REASONS.refused])
      assert.equal(d.write, undefined)
      assert.match(d.findings[0]?.message ?? '', /--mode verify/)
    })
  }

  it('hands its own HPA back when the operator appears', () => {
    const claimed = view(stored(undefined, { metadata: { finalizers: [OPERATOR_FINALIZER] } }))
    const d = write(claimed, { hpa: ourHpa(claimed) })
    assert.deepEqual(reasons(d), [REASONS.refused, REASONS.handedOver])
    assert.deepEqual(d.write, { kind: 'delete', uid: 'ours-uid', resourceVersion: '7', why: 'the NIM operator manages this NIMService', handover: true })
  })

  it('leaves a foreign HPA alone (HPAConflict) and never deletes it', () => {
    const foreign = hpaView({ metadata: { name: 'llm', namespace: 'nim', uid: 'x', resourceVersion: '1' }, spec: { maxReplicas: 9 } }) as HpaView
    const d = write(nim, { hpa: foreign })
    assert.deepEqual(reasons(d), [REASONS.conflict])
    assert.equal(d.write, undefined)
    assert.equal(write(view(stored(undefined, { spec: { scale: { enabled: false } } })), { hpa: foreign }).write, undefined)
    assert.equal(decide(base(undefined, { mode: 'write', lastUid: UID, hpa: foreign })).write, undefined)
  })

  it('updates its own HPA where it drifted, naming the fields; leaves it when in sync', () => {
    assert.equal(write(nim, { hpa: ourHpa(nim) }).state, 'in-sync')
    const d = write(nim, { hpa: ourHpa(nim, (h) => { h.spec.maxReplicas = 99 }) })
    assert.equal(d.write?.kind, 'update')
    assert.deepEqual((d.write as { fields: string[] }).fields, ['spec.maxReplicas: want 4, have 99'])
  })

  it('deletes its own HPA when autoscaling is off, the NIMService is deleted or gone', () => {
    const off = view(stored(undefined, { spec: { scale: { enabled: false } } }))
    assert.equal(write(off, { hpa: ourHpa(nim) }).write?.kind, 'delete')
    assert.equal(write({ ...nim, deleting: true }, { hpa: ourHpa(nim) }).write?.kind, 'delete')
    assert.equal(decide(base(undefined, { mode: 'write', lastUid: UID, hpa: ourHpa(nim) })).write?.kind, 'delete')
    // verify never deletes.
    assert.equal(decide(base(undefined, { lastUid: UID, hpa: ourHpa(nim) })).write, undefined)
  })

  it('writes nothing outside the webhook\'s namespaces, for an invalid spec, or for kserve', () => {
    assert.equal(write(nim, { coverage: { covered: false, reason: 'x' } }).write, undefined)
    const invalid = view(stored(undefined, { spec: { scale: { enabled: true, hpa: { minReplicas: 5, maxReplicas: 2 } } } }))
    // (its annotation, rendered before the spec broke, is reported as stale too)
    assert.deepEqual(reasons(write(invalid)), [REASONS.forged, REASONS.invalid])
    assert.equal(write(invalid).write, undefined)
    const kserve = view(stored(undefined, { spec: { inferencePlatform: 'kserve' } }))
    assert.deepEqual(reasons(write(kserve)), [REASONS.kserve])
    assert.equal(write(kserve).write, undefined)
  })
})

describe('coverage: only where the mutating webhook judges NIMServices', () => {
  it('matches label selectors as Kubernetes does', () => {
    const labels = { team: 'a', tier: 'gpu' }
    const cases: Array<[Json | undefined, boolean]> = [
      [undefined, true], [{}, true], [{ matchLabels: { team: 'a' } }, true], [{ matchLabels: { team: 'b' } }, false],
      [{ matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] }, true],
      [{ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['a'] }] }, false],
      [{ matchExpressions: [{ key: 'skip', operator: 'DoesNotExist' }] }, true],
      [{ matchExpressions: [{ key: 'skip', operator: 'Exists' }] }, false],
      [{ matchExpressions: [{ key: 'team', operator: 'Bogus' }] }, false]
    ]
    for (const [selector, want] of cases) assert.equal(selectorMatches(selector, labels), want, JSON.stringify(selector))
  })

  const configuration = {
    webhooks: [
      { name: 'other', rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'] }], namespaceSelector: {} },
      { name: 'mutate.nimservices.nim-admission.io', rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'] }], namespaceSelector: { matchExpressions: [{ key: 'nim-admission.io/skip', operator: 'DoesNotExist' }] }, objectSelector: { matchLabels: { judged: 'yes' } } }
    ]
  }

  it('reads only the NIMService webhooks of the configuration', () => {
    assert.deepEqual(webhookScopes(configuration).map((s) => s.name), ['mutate.nimservices.nim-admission.io'])
  })

  it('fails closed until the configuration and the namespaces are read, and when it is gone', () => {
    const namespaces = new Map<string, NamespaceView>([['team', { name: 'team', resourceVersion: '1', labels: {} }], ['skipped', { name: 'skipped', resourceVersion: '1', labels: { 'nim-admission.io/skip': 'true' } }]])
    const src = (scopes: WebhookScope[] | undefined | null): CoverageSource => ({ kind: 'webhook', configuration: 'nim-admission', scopes, namespaces })
    assert.match(JSON.stringify(coverage(src(undefined), 'team', { judged: 'yes' })), /not read yet/)
    assert.match(JSON.stringify(coverage(src(null), 'team', { judged: 'yes' })), /not found/)
    const scopes = webhookScopes(configuration)
    assert.match(JSON.stringify(coverage({ kind: 'webhook', configuration: 'nim-admission', scopes, namespaces: undefined }, 'team', { judged: 'yes' })), /namespaces not listed/)
    assert.deepEqual(coverage(src(scopes), 'team', { judged: 'yes' }), { covered: true })
    assert.equal(coverage(src(scopes), 'team', {}).covered, false)
    assert.equal(coverage(src(scopes), 'skipped', { judged: 'yes' }).covered, false)
    assert.equal(coverage(src(scopes), 'unknown', { judged: 'yes' }).covered, false)
  })

  it('without a configuration: the --namespace list, or everywhere', () => {
    assert.equal(coverage({ kind: 'namespaces', namespaces: undefined }, 'any', {}).covered, true)
    assert.equal(coverage({ kind: 'namespaces', namespaces: new Set(['a']) }, 'b', {}).covered, false)
  })
})

describe('apply options', () => {
  it('defaults to verify; --take-over is gone; a bad mode names the choices', () => {
    assert.equal(normalizeApplierOptions({}).mode, 'verify')
    assert.throws(() => normalizeApplierOptions({ takeOver: true } as never), /--take-over was removed/)
    assert.throws(() => normalizeApplierOptions({ mode: 'adopt' as never }), /--mode must be verify or write/)
    assert.throws(() => normalizeApplierOptions({ webhookConfiguration: 'Bad Name' }), /--webhook-configuration/)
  })
})
