// The applier's machinery around the decisions: carrying out a decision (Events, metrics, dry-run,
// fencing, 403s), the paginated list/watch cache, the work queue, and the controller on fake sources.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { KubeConfig } from '@kubernetes/client-node'
import { mutateNIMService } from '../../src/nimservice/index.js'
import { EventRecorder, ForbiddenTracker, execute, type ApplierKube, type ExecuteContext, type InvolvedObject } from '../../src/applier/apply.js'
import { decide, REASONS, type Decision, type Finding } from '../../src/applier/reconcile.js'
import { nimView, type NimView } from '../../src/applier/view.js'
import { createApplierMetrics, type ApplierMetrics } from '../../src/applier/metrics.js'
import { WorkQueue } from '../../src/applier/queue.js'
import { Reflector, type ListPage, type ListWatchSource, type WatchEvent } from '../../src/applier/reflector.js'
import { ApplierController, type Sources } from '../../src/applier/controller.js'
import { autoscaled } from '../helpers/nimservice.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const silent = pino({ level: 'silent' })
const UID = 'nim-uid'

class FakeKube implements ApplierKube {
  events: Array<{ on: InvolvedObject, event: Finding }> = []
  writes: string[] = []
  failWith: unknown
  async createHpa (manifest: Json): Promise<void> { this.write(`create ${manifest.metadata.namespace}/${manifest.metadata.name}`) }
  async applyHpa (manifest: Json): Promise<void> { this.write(`apply ${manifest.metadata.namespace}/${manifest.metadata.name}`) }
  async deleteHpa (namespace: string, name: string): Promise<void> { this.write(`delete ${namespace}/${name}`) }
  async createEvent (on: InvolvedObject, event: Finding): Promise<void> { this.events.push({ on, event }) }
  private write (what: string): void {
    if (this.failWith !== undefined) throw this.failWith
    this.writes.push(what)
  }
}

const owner: InvolvedObject = { namespace: 'nim', name: 'llm', uid: UID }

function context (kube: FakeKube, metrics: ApplierMetrics, extra: Partial<ExecuteContext> = {}): ExecuteContext & { printed: string[] } {
  const printed: string[] = []
  return { namespace: 'nim', name: 'llm', owner, kube, events: new EventRecorder(kube), forbidden: new ForbiddenTracker(metrics), metrics, logger: silent, dryRun: false, canWrite: () => true, print: (line) => printed.push(line), printed, ...extra }
}

/** A NIMService as stored after the mutating webhook. */
function storedNim (name = 'llm', namespace = 'nim', extra: Json = {}): Json {
  const m = mutateNIMService({ operation: 'CREATE', object: { ...autoscaled(), metadata: { name, namespace } }, namespace } as never)
  const o = structuredClone(m.object) as Json
  o.metadata = { ...o.metadata, uid: `${name}-uid`, resourceVersion: '1', managedFields: [{ manager: 'kubectl' }], ...extra }
  return o
}

const value = async (metric: { get (): Promise<{ values: Array<{ value: number, labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> =>
  (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((a, v) => a + v.value, 0)

const createDecision = (): Decision => {
  const nim = nimView(storedNim()) as NimView
  return decide({ mode: 'write', namespace: 'nim', name: 'llm', nim, coverage: { covered: true }, knownForMs: 60_000, missingForMs: 0, graceMs: 0 })
}

describe('execute: carrying out a decision', () => {
  it('findings become Events and log lines; verify writes nothing', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const finding: Finding = { type: 'Warning', reason: REASONS.drift, message: 'spec.maxReplicas: want 4, have 200' }
    assert.deepEqual(await execute({ state: 'drift', findings: [finding] }, context(kube, metrics)), { result: 'done' })
    assert.deepEqual(kube.events.map((e) => [e.event.reason, e.on.uid]), [[REASONS.drift, UID]])
    assert.deepEqual(kube.writes, [])
  })

  it('a create goes out as a create and is reported with HPACreated', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    assert.deepEqual(await execute(createDecision(), context(kube, metrics)), { result: 'done' })
    assert.deepEqual(kube.writes, ['create nim/llm'])
    assert.deepEqual(kube.events.map((e) => e.event.reason), [REASONS.created])
    assert.equal(await value(metrics.writes, { action: 'create', dry_run: 'false' }), 1)
  })

  it('a 403 is a Warning Event, a metric and a failing readiness, retried; a later success clears it', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const ctx = context(kube, metrics)
    kube.failWith = Object.assign(new Error('forbidden'), { code: 403, body: { message: 'horizontalpodautoscalers.autoscaling is forbidden: User "system:serviceaccount:x:applier" cannot create resource' } })
    const out = await execute(createDecision(), ctx)
    assert.equal(out.result, 'retry')
    assert.deepEqual(kube.events.map((e) => [e.event.type, e.event.reason]), [['Warning', REASONS.forbidden]])
    assert.match(kube.events[0]?.event.message ?? '', /403 Forbidden.*cannot create resource/)
    assert.match(ctx.forbidden.reason() ?? '', /^403 Forbidden on create horizontalpodautoscalers/)
    assert.equal(await value(metrics.forbidden, { request: 'create horizontalpodautoscalers' }), 1)
    assert.equal(await value(metrics.forbiddenOpen), 1)
    kube.failWith = undefined
    assert.deepEqual(await execute(createDecision(), ctx), { result: 'done' })
    assert.equal(ctx.forbidden.reason(), undefined)
    assert.equal(await value(metrics.forbiddenOpen), 0)
  })

  it('a manifest the apiserver refuses (422) is reported, not retried; a 500 is retried', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    kube.failWith = Object.assign(new Error('invalid'), { code: 422, body: { message: 'spec.maxReplicas: Invalid value' } })
    assert.deepEqual(await execute(createDecision(), context(kube, metrics)), { result: 'done' })
    assert.deepEqual(kube.events.map((e) => e.event.reason), [REASONS.rejected])
    kube.failWith = Object.assign(new Error('boom'), { code: 500 })
    assert.equal((await execute(createDecision(), context(kube, metrics))).result, 'retry')
  })

  it('dry-run prints the write and the manifest and writes nothing, not even Events', async () => {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const ctx = context(kube, metrics, { dryRun: true })
    await execute(createDecision(), ctx)
    assert.match(ctx.printed[0] ?? '', /^dry-run: would create HorizontalPodAutoscaler nim\/llm/)
    assert.equal(JSON.parse(ctx.printed[1] ?? '').spec.scaleTargetRef.name, 'llm')
    assert.deepEqual(kube.writes, [])
    assert.deepEqual(kube.events, [])
  })

  it('a replica that lost the Lease does not write', async () => {
    const kube = new FakeKube()
    const out = await execute(createDecision(), context(kube, createApplierMetrics({ defaultMetrics: false }), { canWrite: () => false }))
    assert.deepEqual(out, { result: 'not-leader' })
    assert.deepEqual(kube.writes, [])
  })

  it('the Event recorder does not repeat a report within its window, and a 403 on Events fails readiness', async () => {
    let now = 0
    const kube = new FakeKube()
    const recorder = new EventRecorder(kube, { windowMs: 1_000, now: () => now })
    const ev: Finding = { type: 'Warning', reason: REASONS.drift, message: 'x' }
    assert.equal(await recorder.record(owner, ev), true)
    assert.equal(await recorder.record(owner, ev), false)
    now = 1_000
    assert.equal(await recorder.record(owner, ev), true)
    const forbidden = new ForbiddenTracker()
    const failing = new EventRecorder({ createEvent: async () => { throw Object.assign(new Error('no'), { code: 403 }) } }, { forbidden })
    assert.equal(await failing.record(owner, ev), false)
    assert.match(forbidden.reason() ?? '', /create events/)
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


/** An in-memory collection with pages and a pushable watch, like the apiserver's. */
class FakeSource implements ListWatchSource {
  items = new Map<string, Json>()
  rv = 100
  lists: Array<{ limit: number, continue?: string }> = []
  watches: Array<{ resourceVersion: string, timeoutSeconds: number }> = []
  listError: unknown
  /** Lists wait until this resolves (a configuration not read yet). */
  gate: Promise<void> = Promise.resolve()
  private push: ((e: WatchEvent) => void) | undefined
  private end: ((err?: unknown) => void) | undefined

  constructor (items: Json[] = []) { for (const i of items) this.items.set(this.key(i), i) }
  private key (o: Json): string { return `${o.metadata.namespace ?? ''}/${o.metadata.name}` }

  async list (opts: { limit: number, continue?: string }): Promise<ListPage> {
    await this.gate
    this.lists.push(opts)
    if (this.listError !== undefined) throw this.listError
    const all = [...this.items.values()]
    const start = opts.continue === undefined ? 0 : Number(opts.continue)
    const next = start + opts.limit < all.length ? String(start + opts.limit) : undefined
    return { items: structuredClone(all.slice(start, start + opts.limit)), resourceVersion: String(this.rv), ...(next !== undefined ? { continue: next } : {}) }
  }

  watch (opts: { resourceVersion: string, timeoutSeconds: number }, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watches.push(opts)
    return new Promise((resolve, reject) => {
      this.push = onEvent
      this.end = (err) => { this.push = undefined; if (err === undefined) resolve(); else reject(err) }
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
  }

  emit (type: 'ADDED' | 'MODIFIED' | 'DELETED', o: Json): void {
    o.metadata.resourceVersion = String(++this.rv)
    if (type === 'DELETED') this.items.delete(this.key(o))
    else this.items.set(this.key(o), o)
    this.push?.({ type, object: structuredClone(o) })
  }

  raw (e: WatchEvent): void { this.push?.(e) }
  fail (err: unknown): void { this.end?.(err) }
  get watching (): boolean { return this.push !== undefined }
}

async function until (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('reflector: paginated list, cut-down cache, watch with timeouts', () => {
  const make = (source: FakeSource, events: string[] = []): Reflector<{ key: string, rv: string, keys: string[] }> => new Reflector({
    what: 'things',
    source,
    transform: (raw) => { const o = raw as Json; return { key: `${o.metadata.namespace}/${o.metadata.name}`, rv: o.metadata.resourceVersion, keys: Object.keys(o.metadata) } },
    keyOf: (t) => t.key,
    versionOf: (t) => t.rv,
    pageSize: 500,
    minWatchTimeoutSeconds: 300,
    backoff: { initialMs: 10, maxMs: 20 },
    logger: silent,
    onAdd: (t) => events.push(`add ${t.key}`),
    onUpdate: (t) => events.push(`update ${t.key}`),
    onDelete: (t) => events.push(`delete ${t.key}`)
  })

  it('lists in pages of `limit` following `continue`, keeping only what the transform returns', async () => {
    const source = new FakeSource(Array.from({ length: 1_234 }, (_, i) => ({ metadata: { name: `n${i}`, namespace: 'a', resourceVersion: '1', managedFields: [{}] } })))
    const r = make(source)
    r.start()
    await until('synced', () => r.synced)
    assert.deepEqual(source.lists, [{ limit: 500 }, { limit: 500, continue: '500' }, { limit: 500, continue: '1000' }])
    assert.equal(r.cache.size, 1_234)
    await until('watching', () => source.watching)
    const w = source.watches[0]
    assert.equal(w?.resourceVersion, '100')
    assert.ok((w?.timeoutSeconds ?? 0) >= 300 && (w?.timeoutSeconds ?? 0) < 600, `timeoutSeconds ${w?.timeoutSeconds}`)
    await r.stop()
  })

  it('applies watch events; a 410 Gone relists at once; a failure relists after backoff and reports what vanished meanwhile', async () => {
    const source = new FakeSource([{ metadata: { name: 'a', namespace: 'x', resourceVersion: '1' } }, { metadata: { name: 'b', namespace: 'x', resourceVersion: '1' } }])
    const events: string[] = []
    const r = make(source, events)
    r.start()
    await until('watching', () => source.watching)
    source.emit('MODIFIED', { metadata: { name: 'a', namespace: 'x' } })
    source.emit('ADDED', { metadata: { name: 'c', namespace: 'x' } })
    source.emit('DELETED', { metadata: { name: 'b', namespace: 'x' } })
    assert.deepEqual(events, ['add x/a', 'add x/b', 'update x/a', 'add x/c', 'delete x/b'])
    source.raw({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '555' } } })
    source.raw({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } })
    await until('a relist after 410', () => source.lists.length === 2 && source.watching)
    assert.ok(r.synced)
    // A failure: while down, c is deleted; the relist reports it.
    source.items.delete('x/c')
    source.fail(Object.assign(new Error('connection reset'), { code: 500 }))
    await until('relisted', () => source.lists.length === 3 && r.synced)
    assert.ok(events.includes('delete x/c'))
    assert.equal(r.cache.has('x/c'), false)
    await r.stop()
  })

  it('a failing list leaves it unsynced with the error, and retries', async () => {
    const source = new FakeSource([])
    source.listError = Object.assign(new Error('forbidden'), { code: 403, body: { message: 'cannot list' } })
    const r = make(source)
    r.start()
    await until('two attempts', () => source.lists.length >= 2)
    assert.equal(r.synced, false)
    assert.match(r.lastError ?? '', /HTTP 403: cannot list/)
    source.listError = undefined
    await until('synced', () => r.synced)
    await r.stop()
  })
})

describe('controller on fake sources', () => {
  function operatorHpaFor (nim: Json, edit: (h: Json) => void = () => {}): Json {
    const v = nimView(nim) as NimView
    const h = structuredClone(v.desired) as Json
    h.metadata = { ...h.metadata, uid: 'h', resourceVersion: '1', labels: { ...h.metadata.labels, 'app.kubernetes.io/managed-by': 'k8s-nim-operator' }, ownerReferences: [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: nim.metadata.name, uid: nim.metadata.uid, controller: true }] }
    edit(h)
    return h
  }

  async function run (sources: Partial<Record<keyof Sources, FakeSource>>, opts: { mode?: 'verify' | 'write', webhookConfiguration?: string, graceMs?: number } = {}): Promise<{ c: ApplierController, kube: FakeKube, metrics: ApplierMetrics }> {
    const kube = new FakeKube()
    const metrics = createApplierMetrics({ defaultMetrics: false })
    const empty = (): FakeSource => new FakeSource([])
    const s = { nimServices: sources.nimServices ?? empty(), hpas: sources.hpas ?? empty(), webhookConfiguration: sources.webhookConfiguration ?? empty(), namespaces: sources.namespaces ?? empty() }
    const c = new ApplierController({
      kubeConfig: new KubeConfig(), mode: opts.mode ?? 'verify', namespaces: [], ...(opts.webhookConfiguration !== undefined ? { webhookConfiguration: opts.webhookConfiguration } : {}),
      dryRun: false, graceMs: opts.graceMs ?? 0, identity: 'test', resyncPeriodMs: 0, logger: silent, metrics, kube,
      watchBackoff: { initialMs: 10, maxMs: 20 },
      sources: { nimServices: () => s.nimServices, hpas: () => s.hpas, webhookConfiguration: () => s.webhookConfiguration, namespaces: () => s.namespaces }
    })
    await c.start()
    return { c, kube, metrics }
  }

  it('verify: a hand-edited HPA is reported as HPADrift with its fields, counted, never written; fixed, the gauge drops', async () => {
    const nim = storedNim()
    const hpas = new FakeSource([operatorHpaFor(nim, (h) => { h.spec.maxReplicas = 200 })])
    const { c, kube, metrics } = await run({ nimServices: new FakeSource([nim]), hpas })
    try {
      await until('a drift Event', () => kube.events.length > 0)
      assert.equal(kube.events[0]?.event.reason, REASONS.drift)
      assert.match(kube.events[0]?.event.message ?? '', /spec\.maxReplicas: want 4, have 200/)
      assert.equal(await value(metrics.findings, { reason: REASONS.drift }), 1)
      assert.equal(await value(metrics.findingsTotal, { reason: REASONS.drift }), 1)
      assert.equal(c.notReadyReason(), undefined)
      // Put right by hand: the HPA watch triggers a new look.
      await until('watching', () => hpas.watching)
      hpas.emit('MODIFIED', operatorHpaFor(nim))
      await until('in sync', () => c.stateOf('nim', 'llm') === 'in-sync')
      assert.equal(await value(metrics.findings, { reason: REASONS.drift }), 0)
      assert.deepEqual(kube.writes, [])
    } finally {
      await c.stop()
    }
  })

  it('--webhook-configuration: acts nowhere until the configuration is read, nowhere if it is missing, then only where it selects', async () => {
    const inside = storedNim('in', 'team')
    const outside = storedNim('out', 'other')
    let open: () => void = () => {}
    const wc = new FakeSource([])
    wc.gate = new Promise((resolve) => { open = resolve })
    const namespaces = new FakeSource([{ metadata: { name: 'team', labels: { 'nim-admission.io/enabled': 'true' } } }, { metadata: { name: 'other', labels: {} } }])
    const { c, kube } = await run({ nimServices: new FakeSource([inside, outside]), webhookConfiguration: wc, namespaces }, { webhookConfiguration: 'nim-admission' })
    try {
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.match(c.notReadyReason() ?? '', /MutatingWebhookConfiguration nim-admission watch not synced/)
      assert.equal(c.stateOf('team', 'in'), 'not-covered')
      assert.equal(kube.events.length, 0)
      open()
      await until('configuration read (absent)', () => /not found: the applier acts nowhere/.test(c.notReadyReason() ?? ''))
      assert.equal(kube.events.length, 0)
      await until('watching', () => wc.watching)
      wc.emit('ADDED', { metadata: { name: 'nim-admission' }, webhooks: [{ name: 'mutate.nimservices.nim-admission.io', rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'] }], namespaceSelector: { matchLabels: { 'nim-admission.io/enabled': 'true' } } }] })
      await until('a report for the covered NIMService', () => kube.events.length > 0)
      assert.equal(c.notReadyReason(), undefined)
      assert.deepEqual(kube.events.map((e) => `${e.on.namespace}/${e.on.name} ${e.event.reason}`), ['team/in HPAMissing'])
      assert.equal(c.stateOf('other', 'out'), 'not-covered')
    } finally {
      await c.stop()
    }
  })

  it('write: a 403 on create fails readiness and is reported until a retry succeeds', async () => {
    const nim = storedNim()
    const { c, kube, metrics } = await run({ nimServices: new FakeSource([nim]) }, { mode: 'write' })
    try {
      kube.failWith = Object.assign(new Error('forbidden'), { code: 403, body: { message: 'cannot create' } })
      await until('a 403 in readiness', () => /403 Forbidden on create horizontalpodautoscalers/.test(c.notReadyReason() ?? ''))
      assert.ok(kube.events.some((e) => e.event.reason === REASONS.forbidden))
      assert.ok(await value(metrics.forbidden) >= 1)
      kube.failWith = undefined
      await until('the retry to succeed', () => kube.writes.length === 1, 5_000)
      assert.equal(c.notReadyReason(), undefined)
    } finally {
      await c.stop()
    }
  })
})
