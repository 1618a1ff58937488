// The applier's decisions (reconcile table) and its leader election against an in-memory Lease store.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mutateNIMService } from '../../src/nimservice/index.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/hpa-render.js'
import { desiredHpa, reconcile, type Action, type KubeObject, type ReconcileInput } from '../../src/applier/reconcile.js'
import { LeaderElector, LeaseConflictError, microTime, type LeaseRecord, type LeaseStore, type StoredLease } from '../../src/applier/leader.js'
import { autoscaled } from '../helpers/nimservice.js'

const NIM_UID = '11111111-1111-1111-1111-111111111111'
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

/** A NIMService as the apiserver stores it after the mutating webhook: annotated, with a uid. */
function annotatedNim (hpa?: Record<string, unknown>): KubeObject & { metadata: NonNullable<KubeObject['metadata']> } {
  const m = mutateNIMService({ operation: 'CREATE', object: hpa === undefined ? autoscaled() : autoscaled(hpa), namespace: 'nim' } as never)
  const object = structuredClone(m.object) as unknown as KubeObject & { metadata: NonNullable<KubeObject['metadata']> }
  assert.ok(object.metadata.annotations?.[HPA_ANNOTATION], 'the fixture carries the rendered annotation')
  object.metadata.uid = NIM_UID
  object.metadata.resourceVersion = '10'
  return object
}

/** `shaValue` null: no sha annotation at all. */
function withAnnotation (json: string, shaValue: string | null = sha(json)): KubeObject {
  const nim = annotatedNim()
  const annotations: Record<string, string> = { [HPA_ANNOTATION]: json }
  if (shaValue !== null) annotations[HPA_SHA_ANNOTATION] = shaValue
  nim.metadata.annotations = annotations
  return nim
}

function withoutAnnotation (): KubeObject {
  const nim = annotatedNim()
  nim.metadata.annotations = {}
  return nim
}

function renderedOf (nim: KubeObject): Record<string, unknown> {
  return JSON.parse(nim.metadata?.annotations?.[HPA_ANNOTATION] as string) as Record<string, unknown>
}

/** The HPA as this applier leaves it, as read back from the apiserver. */
function ourHpa (nim: KubeObject, overrides: { sha?: string, ownerUid?: string } = {}): KubeObject {
  const shaValue = nim.metadata?.annotations?.[HPA_SHA_ANNOTATION] as string
  const applied = desiredHpa(renderedOf(nim), overrides.sha ?? shaValue, { name: 'llm', uid: overrides.ownerUid ?? NIM_UID })
  return { ...applied, metadata: { ...applied.metadata, uid: 'hpa-uid', resourceVersion: '42' } }
}

function foreignHpa (labels: Record<string, string>, ownerReferences: NonNullable<KubeObject['metadata']>['ownerReferences'] = []): KubeObject {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: 'llm', namespace: 'nim', uid: 'foreign-uid', resourceVersion: '7', labels, ownerReferences },
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llm' }, maxReplicas: 9 }
  }
}

const operatorOwned = (): KubeObject => foreignHpa({ 'app.kubernetes.io/managed-by': 'k8s-nim-operator' },
  [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: NIM_UID, controller: true, blockOwnerDeletion: true }])

const base = { namespace: 'nim', name: 'llm' }
const nim = annotatedNim()
const nimV2 = annotatedNim({ minReplicas: 3, maxReplicas: 8, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }] })
const deleting = (() => { const n = withoutAnnotation(); (n.metadata as Record<string, unknown>).deletionTimestamp = '2025-01-01T00:00:00Z'; return n })()
const renamed = JSON.stringify({ ...renderedOf(nim), metadata: { name: 'other', namespace: 'nim' } })
const moved = JSON.stringify({ ...renderedOf(nim), metadata: { name: 'llm', namespace: 'elsewhere' } })
const wrongKind = JSON.stringify({ ...renderedOf(nim), kind: 'Deployment', apiVersion: 'apps/v1' })
const v1Hpa = JSON.stringify({ ...renderedOf(nim), apiVersion: 'autoscaling/v1' })
const noSpec = JSON.stringify({ ...renderedOf(nim), spec: { minReplicas: 1 } })

// One row per decision: the input, then the expected action kind and the fields that prove it.
const table: Array<[string, ReconcileInput, Action['kind'], Record<string, unknown>?]> = [
  ['create: annotated NIMService, no HPA', { ...base, nim }, 'create', { sha: nim.metadata?.annotations?.[HPA_SHA_ANNOTATION] }],
  ['update: our HPA carries an older sha', { ...base, nim: nimV2, hpa: ourHpa(nim) }, 'update', { reason: 'changed', force: false, previousSha: nim.metadata?.annotations?.[HPA_SHA_ANNOTATION] }],
  ['update: our HPA lost its sha annotation', { ...base, nim, hpa: (() => { const h = ourHpa(nim); h.metadata!.annotations = {}; return h })() }, 'update', { reason: 'changed', force: false }],
  ['unchanged: our HPA carries the rendered sha', { ...base, nim, hpa: ourHpa(nim) }, 'unchanged', { sha: nim.metadata?.annotations?.[HPA_SHA_ANNOTATION] }],
  ['delete: annotation gone, HPA ours', { ...base, nim: withoutAnnotation(), hpa: ourHpa(nim) }, 'delete', { uid: 'hpa-uid', resourceVersion: '42' }],
  ['delete: NIMService gone, HPA owned by the uid it had', { ...base, lastUid: NIM_UID, hpa: ourHpa(nim) }, 'delete', { uid: 'hpa-uid' }],
  ['delete: NIMService gone and never seen, HPA ours by label and owner name', { ...base, hpa: ourHpa(nim) }, 'delete', { uid: 'hpa-uid' }],
  ['delete: NIMService being deleted', { ...base, nim: deleting, hpa: ourHpa(nim) }, 'delete', { uid: 'hpa-uid' }],
  ['none: annotation gone, no HPA', { ...base, nim: withoutAnnotation() }, 'none'],
  ['none: NIMService gone, no HPA', { ...base, lastUid: NIM_UID }, 'none'],
  ['no delete: annotation gone, HPA of the operator (owned by the NIMService, managed-by k8s-nim-operator)', { ...base, nim: withoutAnnotation(), hpa: operatorOwned() }, 'none'],
  ['no delete: annotation gone, HPA without labels or owners', { ...base, nim: withoutAnnotation(), hpa: foreignHpa({}) }, 'none'],
  ['no delete: managed-by nim-admission but no owner', { ...base, nim: withoutAnnotation(), hpa: foreignHpa({ 'app.kubernetes.io/managed-by': 'nim-admission' }) }, 'none'],
  ['no delete: ours by label, owned by an earlier NIMService of that name', { ...base, nim: withoutAnnotation(), hpa: ourHpa(nim, { ownerUid: 'old-uid' }) }, 'none'],
  ['no delete: NIMService gone, HPA owned by another uid', { ...base, lastUid: NIM_UID, hpa: ourHpa(nim, { ownerUid: 'old-uid' }) }, 'none'],
  ['conflict: HPA of the operator', { ...base, nim, hpa: operatorOwned() }, 'conflict'],
  ['conflict: HPA without managed-by', { ...base, nim, hpa: foreignHpa({}) }, 'conflict'],
  ['conflict: managed-by nim-admission, controlled by a Deployment', { ...base, nim, hpa: foreignHpa({ 'app.kubernetes.io/managed-by': 'nim-admission' }, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'llm', uid: 'd', controller: true }]) }, 'conflict'],
  ['conflict: managed-by nim-admission, owner is a NIMService of another name', { ...base, nim, hpa: foreignHpa({ 'app.kubernetes.io/managed-by': 'nim-admission' }, [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'other', uid: NIM_UID, controller: true }]) }, 'conflict'],
  ['take-over: foreign HPA with --take-over is force-applied', { ...base, nim, hpa: operatorOwned(), takeOver: true }, 'update', { reason: 'take-over', force: true }],
  ['adopt: ours by label, owned by an earlier NIMService of that name', { ...base, nim, hpa: ourHpa(nim, { ownerUid: 'old-uid' }) }, 'update', { reason: 'adopt', force: false }],
  ['malformed: invalid JSON', { ...base, nim: withAnnotation('{"apiVersion":') }, 'malformed', { code: 'NIMAPPLY_BAD_JSON' }],
  ['malformed: JSON but an array', { ...base, nim: withAnnotation('[1,2]') }, 'malformed', { code: 'NIMAPPLY_BAD_JSON' }],
  ['malformed: wrong kind', { ...base, nim: withAnnotation(wrongKind) }, 'malformed', { code: 'NIMAPPLY_BAD_KIND' }],
  ['malformed: autoscaling/v1', { ...base, nim: withAnnotation(v1Hpa) }, 'malformed', { code: 'NIMAPPLY_BAD_KIND' }],
  ['malformed: name mismatch', { ...base, nim: withAnnotation(renamed) }, 'malformed', { code: 'NIMAPPLY_NAME_MISMATCH' }],
  ['malformed: namespace mismatch', { ...base, nim: withAnnotation(moved) }, 'malformed', { code: 'NIMAPPLY_NAMESPACE_MISMATCH' }],
  ['malformed: spec without scaleTargetRef and maxReplicas', { ...base, nim: withAnnotation(noSpec) }, 'malformed', { code: 'NIMAPPLY_BAD_SPEC' }],
  ['malformed: sha256 does not match (annotation edited by hand)', { ...base, nim: withAnnotation(JSON.stringify(renderedOf(nim)), sha('something else')) }, 'malformed', { code: 'NIMAPPLY_SHA_MISMATCH' }],
  ['malformed: sha256 missing', { ...base, nim: withAnnotation(JSON.stringify(renderedOf(nim)), null) }, 'malformed', { code: 'NIMAPPLY_SHA_MISSING' }],
  ['malformed even when our HPA exists: it is kept, not deleted', { ...base, nim: withAnnotation('not json'), hpa: ourHpa(nim) }, 'malformed', { code: 'NIMAPPLY_BAD_JSON' }]
]

describe('reconcile decisions', () => {
  for (const [title, input, kind, fields] of table) {
    it(title, () => {
      const action = reconcile(input)
      assert.equal(action.kind, kind, JSON.stringify(action))
      for (const [k, v] of Object.entries(fields ?? {})) assert.deepEqual((action as Record<string, unknown>)[k], v, `${k} of ${JSON.stringify(action)}`)
    })
  }

  it('a malformed annotation is reported with its code and message, never thrown', () => {
    for (const json of ['', 'null', '"str"', '{', '{"kind":1}', JSON.stringify({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: null, spec: null })]) {
      const action = reconcile({ ...base, nim: withAnnotation(json) })
      assert.equal(action.kind, 'malformed', json)
      if (action.kind === 'malformed') assert.match(action.message, new RegExp(`^${action.code}: `))
    }
  })

  it('create applies the annotation spec verbatim, with our label, the sha annotation and the controller ownerReference', () => {
    const action = reconcile({ ...base, nim })
    assert.equal(action.kind, 'create')
    if (action.kind !== 'create') return
    const rendered = renderedOf(nim)
    assert.deepEqual(action.manifest.spec, rendered.spec)
    assert.equal(action.manifest.apiVersion, 'autoscaling/v2')
    assert.equal(action.manifest.metadata?.labels?.['app.kubernetes.io/managed-by'], 'nim-admission')
    assert.equal(action.manifest.metadata?.annotations?.[HPA_SHA_ANNOTATION], nim.metadata?.annotations?.[HPA_SHA_ANNOTATION])
    assert.deepEqual(action.manifest.metadata?.ownerReferences, [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: NIM_UID, controller: true, blockOwnerDeletion: true }])
  })

  it('the annotation cannot smuggle owners, finalizers or a foreign managed-by into the applied HPA', () => {
    const rendered = renderedOf(nim)
    const json = JSON.stringify({ ...rendered, metadata: { ...(rendered.metadata as object), finalizers: ['x/y'], ownerReferences: [{ apiVersion: 'v1', kind: 'Secret', name: 's', uid: 'u' }], labels: { 'app.kubernetes.io/managed-by': 'someone' } } })
    const action = reconcile({ ...base, nim: withAnnotation(json) })
    assert.equal(action.kind, 'create')
    if (action.kind !== 'create') return
    assert.deepEqual(Object.keys(action.manifest.metadata ?? {}).sort(), ['annotations', 'labels', 'name', 'namespace', 'ownerReferences'])
    assert.equal(action.manifest.metadata?.labels?.['app.kubernetes.io/managed-by'], 'nim-admission')
    assert.equal(action.manifest.metadata?.ownerReferences?.[0]?.kind, 'NIMService')
  })

  it('a conflict names the current owner and how to take over', () => {
    const action = reconcile({ ...base, nim, hpa: operatorOwned() })
    assert.equal(action.kind, 'conflict')
    if (action.kind === 'conflict') {
      assert.match(action.reason, /managed-by k8s-nim-operator/)
      assert.match(action.reason, /--take-over/)
    }
  })
})

/** A Lease in memory, with resourceVersion-style optimistic concurrency like the apiserver's. */
class MemoryLeaseStore implements LeaseStore {
  stored: { record: LeaseRecord, version: number } | undefined
  failing = false
  writes = 0
  private next = 1
  describe (): string { return 'memory lease' }
  private snapshot (): StoredLease | undefined {
    return this.stored === undefined ? undefined : { record: { ...this.stored.record }, version: String(this.stored.version) }
  }

  async get (): Promise<StoredLease | undefined> {
    if (this.failing) throw new Error('apiserver unreachable')
    return this.snapshot()
  }

  async create (record: LeaseRecord): Promise<StoredLease> {
    if (this.failing) throw new Error('apiserver unreachable')
    if (this.stored !== undefined) throw new LeaseConflictError('exists')
    this.stored = { record: { ...record }, version: this.next++ }
    this.writes++
    return this.snapshot() as StoredLease
  }

  async update (record: LeaseRecord, version: string): Promise<StoredLease> {
    if (this.failing) throw new Error('apiserver unreachable')
    if (this.stored === undefined || String(this.stored.version) !== version) throw new LeaseConflictError('changed')
    this.stored = { record: { ...record }, version: this.next++ }
    this.writes++
    return this.snapshot() as StoredLease
  }
}

class Clock {
  constructor (public t = 1_000_000) {}
  now = (): number => this.t
  advance (ms: number): void { this.t += ms }
}

const timings = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }

describe('leader election (in-memory Lease)', () => {
  it('the first candidate creates the Lease and leads; the second stays a follower while it is renewed', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', now: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', now: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(store.stored?.record.holderIdentity, 'a')
    assert.equal(store.stored?.record.leaseDurationSeconds, 15)
    for (let i = 0; i < 20; i++) {
      clock.advance(2_000)
      assert.equal(await a.tryAcquireOrRenew(), true)
      assert.equal(await b.tryAcquireOrRenew(), false)
    }
    assert.equal(store.stored?.record.holderIdentity, 'a')
    assert.equal(store.stored?.record.leaseTransitions, 0)
    assert.equal(b.leader(), 'a')
  })

  it('takes over only after the holder has not renewed for a lease duration, counting a transition', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', now: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', now: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(await b.tryAcquireOrRenew(), false) // b observes the record now
    // a crashes: no more renewals. b retries every retry period.
    for (let waited = 2_000; waited < 15_000; waited += 2_000) {
      clock.advance(2_000)
      assert.equal(await b.tryAcquireOrRenew(), false, `took over after only ${waited} ms`)
    }
    clock.advance(2_000) // 16 s since b last saw the record change
    assert.equal(await b.tryAcquireOrRenew(), true)
    assert.equal(store.stored?.record.holderIdentity, 'b')
    assert.equal(store.stored?.record.leaseTransitions, 1)
  })

  it('a candidate whose clock runs ahead still waits a full lease duration from its own observation', async () => {
    const store = new MemoryLeaseStore()
    const clockA = new Clock(1_000_000)
    const clockB = new Clock(1_000_000 + 3_600_000) // an hour ahead
    const a = new LeaderElector({ store, identity: 'a', now: clockA.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', now: clockB.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    assert.equal(await b.tryAcquireOrRenew(), false, 'renewTime an hour in the past by b\'s clock must not count as expired')
    clockB.advance(14_000)
    assert.equal(await b.tryAcquireOrRenew(), false)
    clockB.advance(1_001)
    assert.equal(await b.tryAcquireOrRenew(), true)
  })

  it('the leader stops claiming leadership at the renew deadline, before anyone may take over', async () => {
    const store = new MemoryLeaseStore()
    const clock = new Clock()
    const a = new LeaderElector({ store, identity: 'a', now: clock.now, ...timings })
    const b = new LeaderElector({ store, identity: 'b', now: clock.now, ...timings })
    assert.equal(await a.tryAcquireOrRenew(), true)
    ;(a as unknown as { leading: boolean }).leading = true // what the run loop sets on acquiring
    assert.equal(await b.tryAcquireOrRenew(), false)
    store.failing = true // a cannot reach the apiserver any more; b can't either, for now
    for (let t = 0; t <= 20_000; t += 500) {
      clock.advance(500)
      await a.tryAcquireOrRenew().catch(() => false)
      store.failing = false
      const bLeads = await b.tryAcquireOrRenew()
      store.failing = true
      assert.ok(!(a.isLeader() && bLeads), `both lead at +${t} ms`)
      if (bLeads) break
    }
    assert.equal(store.stored?.record.holderIdentity, 'b')
    assert.equal(a.isLeader(), false)
  })

  it('two candidates racing for an expired Lease: exactly one wins', async () => {
    for (let round = 0; round < 20; round++) {
      const store = new MemoryLeaseStore()
      const clock = new Clock()
      store.stored = { record: { holderIdentity: 'gone', leaseDurationSeconds: 15, renewTime: microTime(0), acquireTime: microTime(0), leaseTransitions: 3 }, version: 99 }
      const a = new LeaderElector({ store, identity: 'a', now: clock.now, ...timings })
      const b = new LeaderElector({ store, identity: 'b', now: clock.now, ...timings })
      assert.deepEqual(await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()]), [false, false]) // both observe first
      clock.advance(15_001)
      const results = await Promise.all(round % 2 === 0 ? [a.tryAcquireOrRenew(), b.tryAcquireOrRenew()] : [b.tryAcquireOrRenew(), a.tryAcquireOrRenew()])
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`)
      assert.equal(store.stored?.record.leaseTransitions, 4)
    }
  })

  it('two candidates racing to create the Lease: exactly one wins', async () => {
    const store = new MemoryLeaseStore()
    const a = new LeaderElector({ store, identity: 'a', ...timings })
    const b = new LeaderElector({ store, identity: 'b', ...timings })
    const results = await Promise.all([a.tryAcquireOrRenew(), b.tryAcquireOrRenew()])
    assert.equal(results.filter(Boolean).length, 1)
    assert.equal(store.writes, 1)
  })

  it('writes MicroTime with microseconds, as the apiserver expects', () => {
    assert.equal(microTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), '2025-01-02T03:04:05.678000Z')
  })

  it('rejects timings where the renew deadline is not below the lease duration', () => {
    assert.throws(() => new LeaderElector({ store: new MemoryLeaseStore(), identity: 'a', leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }), /--lease-duration/)
    assert.throws(() => new LeaderElector({ store: new MemoryLeaseStore(), identity: 'a', leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /--renew-deadline/)
  })

  it('run loop: one leader at a time; killing it hands over within lease duration + 2 retry periods; release hands over at once', async () => {
    const store = new MemoryLeaseStore()
    const fast = { leaseDurationMs: 1_000, renewDeadlineMs: 600, retryPeriodMs: 100 }
    const started: string[] = []
    const make = (id: string): LeaderElector => new LeaderElector({ store, identity: id, ...fast, onStartedLeading: () => started.push(id) })
    const a = make('a')
    const b = make('b')
    a.start()
    await new Promise((resolve) => setTimeout(resolve, 30))
    b.start()
    const both = setInterval(() => assert.ok(!(a.isLeader() && b.isLeader()), 'both lead'), 5)
    try {
      await waitFor(() => a.isLeader() || b.isLeader(), 2_000)
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.equal(started.length, 1)
      const [leader, follower] = a.isLeader() ? [a, b] : [b, a]
      const killedAt = Date.now()
      await leader.stop() // a crash: no release
      await waitFor(() => follower.isLeader(), 3_000)
      const handover = Date.now() - killedAt
      assert.ok(handover <= fast.leaseDurationMs + 2 * fast.retryPeriodMs + 100, `handover took ${handover} ms`)
      assert.ok(handover >= fast.leaseDurationMs - fast.retryPeriodMs - 50, `handover after only ${handover} ms: the lease did not hold`)
      const c = make('c')
      c.start()
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.equal(c.isLeader(), false)
      const releasedAt = Date.now()
      await follower.stop({ release: true })
      await waitFor(() => c.isLeader(), 2_000)
      assert.ok(Date.now() - releasedAt < 500, `after a release, took ${Date.now() - releasedAt} ms`)
      await c.stop({ release: true })
      assert.equal(store.stored?.record.holderIdentity, '')
    } finally {
      clearInterval(both)
      await a.stop()
      await b.stop()
    }
  })
})

async function waitFor (cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
