// The review budget: large bodies are judged in worker threads, and a review still running when its
// budget runs out is answered by the budget while the event loop keeps serving. Stand-in workers (same
// message protocol) make the slow, the out-of-memory and the crashing review deterministic; the real
// worker is checked to give byte for byte the event loop's answer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Worker, type ResourceLimits } from 'node:worker_threads'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { buildWebhookApp, type WebhookAppOptions } from '../../src/server/webhook-app.js'
import { buildHealthApp } from '../../src/server/health-app.js'
import { createMetrics } from '../../src/server/metrics.js'
import { ReviewPool } from '../../src/server/review-pool.js'
import { Slots } from '../../src/server/body.js'
import { HANDLERS } from '../../src/admission/handlers.js'
import { autoscaled, review } from '../helpers/nimservice.js'

type Json = Record<string, unknown>

/**
 * A worker speaking the pool's protocol whose behaviour the review's uid picks: `spin-*` decodes and
 * then never finishes, `oom-*` allocates until its heap is exhausted, `crash-*` throws, `slow-*` sleeps
 * 200 ms then answers; anything else is allowed at once.
 */
const STAND_IN = `
const { parentPort } = require('node:worker_threads')
parentPort.on('message', ({ id, bytes }) => {
  const body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString())
  const r = body.request
  const header = { apiVersion: body.apiVersion, uid: r.uid, kind: r.kind.kind, operation: r.operation, dryRun: false }
  parentPort.postMessage({ type: 'decoded', id, header })
  if (r.uid.startsWith('spin-')) for (;;) {}
  if (r.uid.startsWith('oom-')) { const keep = []; for (;;) keep.push(new Array(1e5).fill({ r })) }
  if (r.uid.startsWith('crash-')) throw new Error('stand-in bug')
  if (r.uid.startsWith('slow-')) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
  const json = JSON.stringify({ apiVersion: body.apiVersion, kind: 'AdmissionReview', response: { uid: r.uid, allowed: true } })
  parentPort.postMessage({ type: 'done', id, json, summary: { header, allowed: true, causes: [], warnings: [], patched: false } })
})
parentPort.postMessage({ type: 'ready' })
`
const standIn = (limits: ResourceLimits): Worker => new Worker(STAND_IN, { eval: true, resourceLimits: limits })

function makeApp (extra: Partial<WebhookAppOptions> = {}) {
  const metrics = createMetrics({ defaultMetrics: false })
  const app = buildWebhookApp({
    logger: pino({ level: 'silent' }),
    metrics,
    bodyLimitBytes: 7 * 1024 * 1024,
    requestTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5000,
    largeBodyBytes: 0, // every body goes to the pool
    reviewBudgetMs: 1500, // a stand-in worker starts in ~50 ms, but this machine is shared and loaded
    createWorker: standIn,
    ...extra
  })
  return { app, metrics }
}

function withUid (uid: string, object: Json = autoscaled()): string {
  const body = review(object)
  ;(body.request as Json).uid = uid
  return JSON.stringify(body)
}

async function post (app: ReturnType<typeof makeApp>['app'], path: string, payload: string) {
  return await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload })
}

test('a review still running at its budget is answered by it: /mutate allows it unchanged with NIM114, /validate denies it (Fail)', async () => {
  const { app, metrics } = makeApp()
  try {
    const mutated = await post(app, '/mutate', withUid('spin-m'))
    assert.equal(mutated.statusCode, 200)
    const m = mutated.json().response
    assert.equal(m.uid, 'spin-m')
    assert.equal(m.allowed, true)
    assert.equal(m.patch, undefined)
    assert.match(m.warnings[0], /^NIM114 spec: .*within its 1500 ms budget.*admitted unchanged/)

    const validated = (await post(app, '/validate', withUid('spin-v'))).json().response
    assert.equal(validated.uid, 'spin-v')
    assert.equal(validated.allowed, false)
    assert.equal(validated.status.code, 504)
    assert.equal(validated.status.reason, 'Timeout')
    assert.match(validated.status.message, /within its 1500 ms budget .*denied \(--budget-failure-policy Fail\)/)

    const text = await metrics.registry.metrics()
    assert.match(text, /nim_admission_budget_exceeded_total\{endpoint="mutate",reason="time"\} 1/)
    assert.match(text, /nim_admission_budget_exceeded_total\{endpoint="validate",reason="time"\} 1/)
    assert.match(text, /nim_admission_requests_total\{endpoint="validate",operation="CREATE",allowed="false",dry_run="false"\} 1/)
    // The spinning workers were terminated and replaced: the next review is judged.
    assert.equal((await post(app, '/validate', withUid('plain-1'))).json().response.allowed, true)
  } finally {
    await app.close()
  }
})

test('with --budget-failure-policy Ignore, /validate allows a review stopped by its budget, with NIM114', async () => {
  const { app } = makeApp({ budgetFailurePolicy: 'Ignore' })
  try {
    const r = (await post(app, '/validate', withUid('spin-i'))).json().response
    assert.equal(r.allowed, true)
    assert.match(r.warnings[0], /^NIM114 spec: .*admitted unchecked \(--budget-failure-policy Ignore\)/)
  } finally {
    await app.close()
  }
})

test('the event loop keeps answering /healthz and small reviews while a large review spins in its worker', async () => {
  const { app, metrics } = makeApp({ reviewBudgetMs: 1500, largeBodyBytes: 64 * 1024 })
  const health = buildHealthApp({ logger: pino({ level: 'silent' }), metrics, readiness: { notReadyReason: () => undefined } })
  await health.listen({ host: '127.0.0.1', port: 0 })
  const port = (health.server.address() as AddressInfo).port
  const healthz = async (): Promise<number> => await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/healthz' }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) }).on('error', reject).end()
  })
  try {
    const big = withUid('spin-big', autoscaled(undefined, { env: Array.from({ length: 2000 }, (_, i) => ({ name: `V${i}`, value: 'x'.repeat(40) })) }))
    assert.ok(big.length > 64 * 1024)
    let settled = false
    const stalled = post(app, '/mutate', big).finally(() => { settled = true })
    let answered = 0
    let reviews = 0
    while (!settled) {
      assert.equal(await healthz(), 200)
      answered++
      assert.equal((await post(app, '/validate', withUid('small'))).json().response.allowed, true)
      reviews++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.match((await stalled).json().response.warnings[0], /^NIM114/)
    assert.ok(answered >= 5 && reviews >= 5, `/healthz answered ${answered} times and ${reviews} small reviews while the large one ran`)
  } finally {
    await app.close()
    await health.close()
  }
})

test('a review still queued at its budget is answered from the event loop, with its own uid', async () => {
  const { app } = makeApp({ reviewWorkers: 1, maxLargeBodies: 4 })
  try {
    const [first, second] = await Promise.all([post(app, '/mutate', withUid('spin-first')), post(app, '/mutate', withUid('queued-second'))])
    assert.equal(first.json().response.uid, 'spin-first')
    assert.equal(second.json().response.uid, 'queued-second', 'decoded by the event loop: the worker never saw it')
    assert.match(second.json().response.warnings[0], /^NIM114/)
  } finally {
    await app.close()
  }
})

test('a review that exhausts its worker\'s heap is answered by the memory budget; a crashing worker is an internal error', async () => {
  const { app, metrics } = makeApp({ reviewWorkerHeapMb: 16, reviewBudgetMs: 30_000 })
  try {
    const m = (await post(app, '/mutate', withUid('oom-m'))).json().response
    assert.equal(m.allowed, true)
    assert.match(m.warnings[0], /within its memory budget/)
    const v = (await post(app, '/validate', withUid('oom-v'))).json().response
    assert.equal(v.allowed, false)
    assert.equal(v.status.code, 413)
    const c = (await post(app, '/validate', withUid('crash-v'))).json().response
    assert.equal(c.allowed, false)
    assert.equal(c.status.reason, 'InternalError')
    const text = await metrics.registry.metrics()
    assert.match(text, /nim_admission_budget_exceeded_total\{endpoint="validate",reason="memory"\} 1/)
    assert.match(text, /nim_admission_internal_errors_total\{endpoint="validate"\} 1/)
    assert.equal((await post(app, '/validate', withUid('plain-2'))).json().response.allowed, true)
  } finally {
    await app.close()
  }
})

test('a worker lost before it answered (it failed to start) gives the review one fresh worker, not an error', async () => {
  let first = true
  const failingStart = (limits: ResourceLimits): Worker => {
    if (!first) return standIn(limits)
    first = false
    return new Worker('process.exit(1)', { eval: true, resourceLimits: limits })
  }
  const { app, metrics } = makeApp({ createWorker: failingStart, reviewBudgetMs: 30_000 })
  try {
    const r = (await post(app, '/validate', withUid('plain-after-crash'))).json().response
    assert.equal(r.allowed, true)
    assert.doesNotMatch(await metrics.registry.metrics(), /nim_admission_internal_errors_total\{endpoint="validate"\} [1-9]/)
  } finally {
    await app.close()
  }
})

test('a large body goes to the real worker and gets byte for byte the event loop\'s answer', async () => {
  // Under tsx a worker compiles the domain before it answers: seconds, so the budget is generous here.
  const pool = new ReviewPool({ workers: 1, budgetMs: 300_000, log: pino({ level: 'silent' }) })
  await pool.warm()
  const { app: viaWorker } = makeApp({ pool })
  const { app: inline } = makeApp({ largeBodyBytes: 7 * 1024 * 1024 })
  try {
    const cases = [
      ['/validate', withUid('a', autoscaled(undefined, { replicas: 3 }))],
      ['/validate', withUid('b', autoscaled({ minReplicas: 1, maxReplicas: 1 }))],
      ['/mutate', withUid('c', autoscaled({ maxReplicas: 3 }))],
      ['/validate', '{"kind":"Pod"}'],
      ['/mutate', '{"apiVersion": ']
    ] as const
    for (const [path, payload] of cases) {
      const [w, i] = [await post(viaWorker, path, payload), await post(inline, path, payload)]
      assert.equal(w.statusCode, i.statusCode, `${path} ${payload.slice(0, 40)}`)
      assert.equal(w.body, i.body, `${path} ${payload.slice(0, 40)}`)
    }
    assert.equal(pool.stats.started, 1)
  } finally {
    await viaWorker.close()
    await inline.close()
  }
})

test('a review judged inline past its budget is still answered with its verdict, and counted as late', async () => {
  const original = HANDLERS.validate
  HANDLERS.validate = (req) => {
    const until = performance.now() + 60
    while (performance.now() < until) { /* a slow review */ }
    return original(req)
  }
  const { app, metrics } = makeApp({ largeBodyBytes: 7 * 1024 * 1024, reviewBudgetMs: 20 })
  try {
    const r = (await post(app, '/validate', withUid('late', autoscaled(undefined, { replicas: 2 })))).json().response
    assert.equal(r.allowed, false)
    assert.equal(r.status.details.causes[0].reason, 'NIM010')
    assert.match(await metrics.registry.metrics(), /nim_admission_budget_exceeded_total\{endpoint="validate",reason="inline"\} 1/)
  } finally {
    HANDLERS.validate = original
    await app.close()
  }
})

test('only a few large bodies are read at once: the next waits for a slot, and one that gives up frees its place', async () => {
  const slots = new Slots(2)
  const a = await slots.acquire(() => {})
  const b = await slots.acquire(() => {})
  assert.equal(slots.inUse, 2)
  let cancel: ((err: Error) => void) | undefined
  const gaveUp = slots.acquire((c) => { cancel = c })
  let granted = false
  const c = slots.acquire(() => {}).then((release) => { granted = true; return release })
  assert.equal(slots.waiting, 2)
  cancel?.(new Error('client went away'))
  await assert.rejects(gaveUp, /client went away/)
  assert.equal(slots.waiting, 1)
  a()
  a() // releasing twice frees one slot only
  const releaseC = await c
  assert.ok(granted)
  assert.equal(slots.inUse, 2)
  b()
  releaseC()
  assert.equal(slots.inUse, 0)

  // Through the app: with one slot, two large reviews at once are both answered, one after the other.
  const { app } = makeApp({ maxLargeBodies: 1, reviewWorkers: 2, reviewBudgetMs: 5000 })
  try {
    const [x, y] = await Promise.all([post(app, '/validate', withUid('slow-x')), post(app, '/validate', withUid('slow-y'))])
    assert.deepEqual([x.json().response.allowed, y.json().response.allowed], [true, true])
  } finally {
    await app.close()
  }
})

test('reads who a review is for from its bytes, as decoding it would, without parsing the object', async () => {
  const { scanReviewHeader } = await import('../../src/server/review-header.js')
  const { decodeReview } = await import('../../src/admission/review.js')
  const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text))
  const body = review(autoscaled(), { dryRun: true, operation: 'UPDATE', oldObject: autoscaled() })
  const text = JSON.stringify(body, null, 1)
  const decoded = decodeReview(JSON.parse(text)).request
  assert.deepEqual(scanReviewHeader(bytes(text)), {
    apiVersion: 'admission.k8s.io/v1', uid: decoded.uid, kind: 'NIMService', operation: 'UPDATE', dryRun: true, namespace: 'nim', name: 'llm'
  })
  // Decoys inside the object (metadata.uid, nested "request"s), escapes, and the last of duplicate keys.
  const tricky = '{"request":{"object":{"metadata":{"uid":"decoy","request":{"uid":"decoy2"}},"s":"\\"}{"},"uid":"first",' +
    '"u\\u0069d":"real-\\u00e9","operation":"CREATE","kind":{"group":"g","kind":"NIMService"}},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1"}'
  const parsed = decodeReview(JSON.parse(tricky))
  const scanned = scanReviewHeader(bytes(tricky))
  assert.equal(scanned?.uid, parsed.request.uid)
  assert.equal(scanned?.uid, 'real-é')
  assert.equal(scanned?.apiVersion, 'admission.k8s.io/v1beta1')
  for (const bad of ['', '[]', '{"apiVersion":"admission.k8s.io/v1","request":{"uid":"1","operation":"CREATE"}', '{"apiVersion":"v9","request":{"uid":"1","operation":"CREATE","kind":{"kind":"K"}}}',
    `{"apiVersion":"admission.k8s.io/v1","request":{"uid":"${'u'.repeat(300)}","operation":"CREATE","kind":{"kind":"K"}}}`]) {
    assert.equal(scanReviewHeader(bytes(bad)), undefined, bad.slice(0, 60))
  }
})
