// The applier's machinery around the decision: carrying out actions (events, metrics, dry-run, fencing,
// apiserver refusals), the work queue, and the controller's relist after a watch failure.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { KubeConfig, type KubernetesListObject } from '@kubernetes/client-node'
import { mutateNIMService } from '../../src/nimservice/index.js'
import { HPA_SHA_ANNOTATION } from '../../src/nimservice/hpa-render.js'
import { EventRecorder, execute, type ApplierKube, type EventSpec, type ExecuteContext, type InvolvedObject } from '../../src/applier/apply.js'
import { reconcile, type Action, type KubeObject } from '../../src/applier/reconcile.js'
import { createApplierMetrics, type ApplierMetrics } from '../../src/applier/metrics.js'
import { WorkQueue } from '../../src/applier/queue.js'
import { ApplierController, type ListWatchLike, type NimObject } from '../../src/applier/controller.js'
import { autoscaled } from '../helpers/nimservice.js'

const silent = pino({ level: 'silent' })

class FakeKube implements ApplierKube {
  hpas = new Map<string, KubeObject>()
  events: Array<{ on: InvolvedObject, event: EventSpec }> = []
  applies: Array<{ manifest: KubeObject, force: boolean }> = []
  deletes: string[] = []
  applyError: unknown
  private seq = 0
  async getHpa (namespace: string, name: string): Promise<KubeObject | undefined> {
    return structuredClone(this.hpas.get(`${namespace}/${name}`))
  }

  async applyHpa (manifest: KubeObject, opts: { force: boolean }): Promise<void> {
    if (this.applyError !== undefined) throw this.applyError
    this.applies.push({ manifest, force: opts.force })
    const key = `${manifest.metadata?.namespace}/${manifest.metadata?.name}`
    this.hpas.set(key, { ...structuredClone(manifest), metadata: { ...structuredClone(manifest.metadata), uid: this.hpas.get(key)?.metadata?.uid ?? `hpa-${++this.seq}`, resourceVersion: String(++this.seq) } })
  }

  async deleteHpa (namespace: string, name: string, pre: { uid: string }): Promise<void> {
    const key = `${namespace}/${name}`
    if (this.hpas.get(key)?.metadata?.uid !== pre.uid) throw Object.assign(new Error('precondition failed'), { code: 409 })
    this.hpas.delete(key)
    this.deletes.push(key)
  }

  async createEvent (on: InvolvedObject, event: EventSpec): Promise<void> {
    this.events.push({ on, event })
  }
}

const owner: InvolvedObject = { namespace: 'nim', name: 'llm', uid: 'nim-uid' }

function context (kube: FakeKube, metrics: ApplierMetrics, extra: Partial<ExecuteContext> = {}): ExecuteContext & { printed: string[] } {
  const printed: string[] = []
  return {
    namespace: 'nim',
    name: 'llm',
    owner,
    kube,
    events: new EventRecorder(kube),
    metrics,
    logger: silent,
    dryRun: false,
    canWrite: () => true,
    print: (line) => printed.push(line),
    printed,
    ...extra
  }
}

function annotated (uid = 'nim-uid', hpa?: Record<string, unknown>): NimObject {
  const m = mutateNIMService({ operation: 'CREATE', object: hpa === undefined ? autoscaled() : autoscaled(hpa), namespace: 'nim' } as never)
  const object = structuredClone(m.object) as unknown as NimObject
  object.metadata = { ...object.metadata, uid, resourceVersion: '1' }
  return object
}

const value = async (metric: { get (): Promise<{ values: Array<{ value: number, labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> =>
  (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((a, v) => a + v.value, 0)

describe('execute: carrying out a decision', () => {
  const create = (): Action => reconcile({ namespace: 'nim', name: 'llm', nim: annotated() })

  it('create applies once, counts it, and records a Normal HPACreated Event', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const outcome = await execute(create(), context(kube, metrics))
    assert.deepEqual(outcome, { result: 'done', action: 'create' })
    assert.equal(kube.applies.length, 1)
    assert.equal(kube.applies[0]?.force, false)
    assert.equal(await value(metrics.applies, { action: 'create', dry_run: 'false' }), 1)
    assert.deepEqual(kube.events.map((e) => [e.event.type, e.event.reason]), [['Normal', 'HPACreated']])
  })

  it('malformed: reported with a Warning Event and the errors metric, nothing applied', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const outcome = await execute({ kind: 'malformed', code: 'NIMAPPLY_BAD_JSON', message: 'NIMAPPLY_BAD_JSON: bad' }, context(kube, metrics))
    assert.deepEqual(outcome, { result: 'done', action: 'malformed' })
    assert.equal(kube.applies.length, 0)
    assert.equal(await value(metrics.errors, { reason: 'malformed' }), 1)
    assert.equal(kube.events[0]?.event.reason, 'HPAAnnotationInvalid')
    assert.equal(kube.events[0]?.event.type, 'Warning')
    assert.match(kube.events[0]?.event.message ?? '', /NIMAPPLY_BAD_JSON/)
  })

  it('conflict: HPAConflict Warning Event on the NIMService and the conflicts metric, nothing applied', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    await execute({ kind: 'conflict', reason: 'HorizontalPodAutoscaler nim/llm already exists' }, context(kube, metrics))
    assert.equal(kube.applies.length, 0)
    assert.equal(await value(metrics.conflicts), 1)
    assert.deepEqual(kube.events.map((e) => [e.on.uid, e.event.type, e.event.reason]), [['nim-uid', 'Warning', 'HPAConflict']])
  })

  it('dry-run prints the action and the manifest and writes nothing, not even Events', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const ctx = context(kube, metrics, { dryRun: true })
    await execute(create(), ctx)
    await execute({ kind: 'delete', uid: 'u', reason: 'no annotation' }, ctx)
    await execute({ kind: 'conflict', reason: 'someone else owns it' }, ctx)
    assert.equal(kube.applies.length + kube.deletes.length + kube.events.length, 0)
    assert.match(ctx.printed[0] ?? '', /^dry-run: would create HorizontalPodAutoscaler nim\/llm sha256=[0-9a-f]{12}$/)
    assert.equal(JSON.parse(ctx.printed[1] ?? '').kind, 'HorizontalPodAutoscaler')
    assert.match(ctx.printed[2] ?? '', /^dry-run: would delete HorizontalPodAutoscaler nim\/llm/)
    assert.match(ctx.printed[3] ?? '', /^dry-run: would leave nim\/llm alone/)
    assert.equal(await value(metrics.applies, { dry_run: 'true' }), 1)
  })

  it('a replica that lost the Lease does not write', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const outcome = await execute(create(), context(kube, metrics, { canWrite: () => false }))
    assert.deepEqual(outcome, { result: 'not-leader' })
    const del = await execute({ kind: 'delete', uid: 'u', reason: 'x' }, context(kube, metrics, { canWrite: () => false }))
    assert.deepEqual(del, { result: 'not-leader' })
    assert.equal(kube.applies.length + kube.deletes.length, 0)
  })

  it('a server-side apply field conflict (409) is reported as a conflict, not retried', async () => {
    const kube = new FakeKube()
    kube.applyError = Object.assign(new Error('conflict'), { code: 409, body: JSON.stringify({ message: 'Apply failed with 1 conflict: conflict with "kubectl-edit": .spec.maxReplicas' }) })
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const outcome = await execute(create(), context(kube, metrics))
    assert.deepEqual(outcome, { result: 'done', action: 'conflict' })
    assert.equal(await value(metrics.conflicts, { reason: 'field-manager' }), 1)
    assert.match(kube.events[0]?.event.message ?? '', /kubectl-edit/)
  })

  it('a manifest the apiserver refuses (422) is reported, not retried; a 500 is retried', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    kube.applyError = Object.assign(new Error('invalid'), { code: 422, body: { message: 'spec.maxReplicas: Invalid value' } })
    assert.deepEqual(await execute(create(), context(kube, metrics)), { result: 'done', action: 'malformed' })
    assert.equal(kube.events[0]?.event.reason, 'HPARejected')
    kube.applyError = Object.assign(new Error('boom'), { code: 500 })
    const outcome = await execute(create(), context(kube, metrics))
    assert.equal(outcome.result, 'retry')
    assert.equal(await value(metrics.errors, { reason: 'api' }), 1)
  })

  it('the Event recorder does not repeat the same report within its window, and never throws', async () => {
    const kube = new FakeKube()
    let now = 0
    const recorder = new EventRecorder(kube, { windowMs: 1_000, now: () => now })
    const ev: EventSpec = { type: 'Warning', reason: 'HPAConflict', message: 'm' }
    assert.equal(await recorder.record(owner, ev), true)
    assert.equal(await recorder.record(owner, ev), false)
    assert.equal(await recorder.record(owner, { ...ev, message: 'other' }), true)
    now = 1_000
    assert.equal(await recorder.record(owner, ev), true)
    const failing = new EventRecorder({ createEvent: async () => { throw new Error('forbidden') } })
    assert.equal(await failing.record(owner, ev), false)
  })
})

describe('work queue', () => {
  it('holds a key once however often it is added', async () => {
    const q = new WorkQueue()
    q.add('a'); q.add('b'); q.add('a'); q.add('a')
    assert.equal(q.length, 2)
    assert.equal(await q.get(), 'a')
    assert.equal(await q.get(), 'b')
    assert.equal(q.length, 0)
  })

  it('a key added while processed is handed out again only after done, never to two workers at once', async () => {
    const q = new WorkQueue()
    q.add('a')
    const first = await q.get()
    q.add('a')
    assert.equal(q.length, 0, 'not queued while processing')
    let second: string | undefined
    void q.get().then((k) => { second = k })
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(second, undefined)
    q.done(first as string)
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(second, 'a')
  })

  it('backs off a failing key exponentially up to the cap, and forget resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1_000 })
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => { const d = q.addRateLimited('k'); q.forget('x'); return d }), [100, 200, 400, 800, 1_000, 1_000])
    q.forget('k')
    assert.equal(q.addRateLimited('k'), 100)
    q.shutdown()
  })

  it('shutdown releases waiting workers', async () => {
    const q = new WorkQueue()
    const waiting = q.get()
    q.shutdown()
    assert.equal(await waiting, undefined)
  })
})

/** A stand-in for client-node's ListWatch: lists on start, then events are pushed by the test. */
class FakeInformer implements ListWatchLike {
  private readonly handlers: Record<string, Array<(x: never) => void>> = { add: [], update: [], delete: [], error: [] }
  readonly objects = new Map<string, NimObject>()
  stopped = false
  constructor (private readonly listFn: () => Promise<KubernetesListObject<NimObject>>) {}
  on (verb: string, cb: (x: never) => void): void { this.handlers[verb]?.push(cb) }
  emit (verb: 'add' | 'update' | 'delete' | 'error', x: unknown): void {
    if (verb === 'add' || verb === 'update') this.objects.set(`${(x as NimObject).metadata?.namespace}/${(x as NimObject).metadata?.name}`, x as NimObject)
    if (verb === 'delete') this.objects.delete(`${(x as NimObject).metadata?.namespace}/${(x as NimObject).metadata?.name}`)
    for (const h of this.handlers[verb] ?? []) h(x as never)
  }

  async start (): Promise<void> {
    try {
      const list = await this.listFn()
      for (const item of list.items) this.emit('add', item)
    } catch (err) {
      this.emit('error', err)
    }
  }

  async stop (): Promise<void> { this.stopped = true }
  get (name: string, namespace?: string): NimObject | undefined { return this.objects.get(`${namespace}/${name}`) }
  list (): NimObject[] { return [...this.objects.values()] }
}

async function until (cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('controller', () => {
  it('applies from the list, ignores status-only updates, and after a watch error relists with backoff and deletes what vanished meanwhile', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    let items: NimObject[] = [annotated()]
    let listFails = false
    const informers: FakeInformer[] = []
    const controller = new ApplierController({
      kubeConfig: new KubeConfig(),
      namespaces: [],
      takeOver: false,
      dryRun: false,
      identity: 'test',
      logger: silent,
      metrics,
      kube,
      resyncPeriodMs: 0,
      watchBackoff: { initialMs: 20, maxMs: 100 },
      informers: {
        list: async () => {
          if (listFails) throw Object.assign(new Error('connection refused'), { code: 503 })
          return { metadata: { resourceVersion: '1' }, items: structuredClone(items) }
        },
        make: (_path, list) => { const i = new FakeInformer(list); informers.push(i); return i }
      }
    })
    await controller.start()
    try {
      await until(() => controller.notReadyReason() === undefined, 'synced')
      await until(() => kube.applies.length === 1, 'the first apply')
      assert.equal(kube.hpas.get('nim/llm')?.metadata?.annotations?.[HPA_SHA_ANNOTATION], items[0]?.metadata?.annotations?.[HPA_SHA_ANNOTATION])

      // A status-only change does not trigger a reconcile (no read, no write).
      const statusOnly = { ...structuredClone(items[0] as NimObject), status: { state: 'Ready' } } as NimObject
      statusOnly.metadata = { ...statusOnly.metadata, resourceVersion: '2' }
      informers[0]?.emit('update', statusOnly)
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(kube.applies.length, 1)

      // The watch breaks; the NIMService is deleted during the outage; the first relist fails too.
      listFails = true
      items = []
      informers[0]?.emit('error', Object.assign(new Error('watch closed'), { statusCode: 500 }))
      assert.match(controller.notReadyReason() ?? '', /not synced: HTTP 500/)
      assert.equal(informers[0]?.stopped, true)
      await until(() => informers.length >= 2, 'a relist after backoff')
      assert.notEqual(controller.notReadyReason(), undefined)
      listFails = false
      await until(() => controller.notReadyReason() === undefined, 'synced again')
      await until(() => kube.deletes.length === 1, 'the HPA of the vanished NIMService deleted')
      assert.equal(kube.hpas.has('nim/llm'), false)
      assert.ok(await value(metrics.watchRestarts) >= 2)
    } finally {
      await controller.stop()
    }
  })
})
