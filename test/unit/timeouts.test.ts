// Slow and stalled clients against the real HTTPS server: the request timeout cuts them off while
// normal reviews keep being answered, and the apiserver's kept-alive connections are reused, not cut.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'node:https'
import { connect, type TLSSocket } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { pino } from 'pino'
import { startServer, type RunningServer } from '../../src/server/serve.js'
import { buildWebhookApp } from '../../src/server/webhook-app.js'
import { createMetrics } from '../../src/server/metrics.js'
import { autoscaled, review } from '../helpers/nimservice.js'

const REQUEST_TIMEOUT_MS = 1000
/** Node checks request deadlines on a timer; the server sets it to a fraction of the timeout. */
const CUT_OFF_WITHIN_MS = REQUEST_TIMEOUT_MS + 1500

let server: RunningServer
let ca: string
let dir: string
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nim-timeouts-'))
  server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: dir, shutdownDelayMs: 0, requestTimeoutMs: REQUEST_TIMEOUT_MS }, pino({ level: 'silent' }))
  ca = readFileSync(server.caPath, 'utf8')
})
after(async () => {
  await server.shutdown()
  rmSync(dir, { recursive: true, force: true })
})

interface Answer { status: number, uid: string, localPort: number, reused: boolean, ms: number }

function postReview (agent: Agent, path = '/validate'): Promise<Answer> {
  const body = review(autoscaled())
  const payload = JSON.stringify(body)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: 5000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        const uid = (JSON.parse(text) as { response: { uid: string } }).response.uid
        assert.equal(uid, (body.request as { uid: string }).uid)
        resolve({ status: res.statusCode ?? 0, uid, localPort: req.socket?.localPort ?? 0, reused: req.reusedSocket, ms: performance.now() - started })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('review timed out')))
    req.on('error', reject)
    req.end(payload)
  })
}

interface Slow { socket: TLSSocket, closedAfterMs: Promise<number>, received: () => string, stop: () => void }

/** A TLS client that writes `head` one byte every `everyMs`, then (if `stall`) stops, never finishing. */
async function slowClient (head: string, everyMs: number): Promise<Slow> {
  const socket = connect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  const started = performance.now()
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (c: string) => { received += c })
  socket.on('error', () => { /* the server resetting us is the point */ })
  const closedAfterMs = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started)))
  let i = 0
  let stopped = false
  const timer = setInterval(() => {
    if (stopped || socket.destroyed || i >= head.length) { clearInterval(timer); return }
    socket.write(head[i++] as string)
  }, everyMs)
  return { socket, closedAfterMs, received: () => received, stop: () => { stopped = true; clearInterval(timer); socket.destroy() } }
}

/** Reviews every `everyMs` on a kept-alive agent until `until` settles; every one must be answered. */
async function reviewsDuring (until: Promise<unknown>, everyMs = 50): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 2, ca, servername: 'localhost' })
  const answers: Answer[] = []
  let done = false
  void until.finally(() => { done = true })
  try {
    for (let n = 0; !done && n < 400; n++) {
      answers.push(await postReview(agent, n % 2 === 0 ? '/validate' : '/mutate'))
      await sleep(everyMs)
    }
  } finally {
    agent.destroy()
  }
  return answers
}

test('a client sending its headers one byte every 100 ms is cut off by the request timeout while reviews are answered', async () => {
  const slow = await slowClient(`POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${'X-Pad: y\r\n'.repeat(100)}\r\n`, 100)
  try {
    const guard = sleep(CUT_OFF_WITHIN_MS + 2000).then(() => -1)
    const closed = Promise.race([slow.closedAfterMs, guard])
    const answers = await reviewsDuring(closed)
    const ms = await closed
    assert.ok(ms > 0 && ms < CUT_OFF_WITHIN_MS, `the slow client was cut off after ${Math.round(ms)} ms (timeout ${REQUEST_TIMEOUT_MS} ms)`)
    assert.ok(ms >= REQUEST_TIMEOUT_MS - 50, `not before the timeout (${Math.round(ms)} ms)`)
    assert.match(slow.received(), /^HTTP\/1\.1 408 /, 'the server says why')
    assert.ok(answers.length >= 5, `reviews kept flowing (${answers.length})`)
    assert.ok(answers.every((a) => a.status === 200))
  } finally {
    slow.stop()
  }
})

test('a client that sends headers and part of the body, then stalls, is cut off by the request timeout', async () => {
  const head = 'POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
  const slow = await slowClient(head, 0)
  try {
    const closed = Promise.race([slow.closedAfterMs, sleep(CUT_OFF_WITHIN_MS + 2000).then(() => -1)])
    const answers = await reviewsDuring(closed)
    const ms = await closed
    assert.ok(ms > 0 && ms < CUT_OFF_WITHIN_MS, `the stalled body was cut off after ${Math.round(ms)} ms`)
    assert.match(slow.received(), /^HTTP\/1\.1 408 /)
    assert.ok(answers.length >= 5 && answers.every((a) => a.status === 200))
  } finally {
    slow.stop()
  }
})

test('200 stalled connections at once do not stop reviews, and are all closed by the deadline', async () => {
  const slows = await Promise.all(Array.from({ length: 200 }, async () => await slowClient('POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{', 0)))
  try {
    const all = Promise.race([Promise.all(slows.map(async (s) => await s.closedAfterMs)), sleep(CUT_OFF_WITHIN_MS + 3000).then(() => [-1])])
    const answers = await reviewsDuring(all, 20)
    const times = await all
    assert.ok(times.every((ms) => ms > 0 && ms < CUT_OFF_WITHIN_MS + 1000), `closed after ${Math.round(Math.min(...times))}..${Math.round(Math.max(...times))} ms`)
    assert.ok(answers.length >= 10 && answers.every((a) => a.status === 200), `${answers.length} reviews answered`)
    const p99 = answers.map((a) => a.ms).sort((a, b) => a - b)[Math.floor(answers.length * 0.99)] ?? 0
    assert.ok(p99 < 500, `reviews stayed fast while stalled clients were held (p99 ${p99.toFixed(1)} ms)`)
  } finally {
    for (const s of slows) s.stop()
  }
})

test('a kept-alive connection serves many reviews, and survives idling past the request timeout', async () => {
  assert.ok(server.webhook.server.keepAliveTimeout > 90_000, 'idle keep-alive outlives the apiserver client (90 s idle), so the client closes first')
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'localhost' })
  try {
    const answers: Answer[] = []
    for (let i = 0; i < 10; i++) answers.push(await postReview(agent, i % 2 === 0 ? '/validate' : '/mutate'))
    await sleep(REQUEST_TIMEOUT_MS + 1200)
    answers.push(await postReview(agent))
    assert.ok(answers.every((a) => a.status === 200))
    assert.equal(new Set(answers.map((a) => a.localPort)).size, 1, 'one socket for all reviews')
    assert.deepEqual(answers.map((a) => a.reused), [false, ...Array.from({ length: 10 }, () => true)])
  } finally {
    agent.destroy()
  }
})

test('while draining, every answer (review or 4xx) says Connection: close, so kept-alive clients leave after a whole response', async () => {
  let draining = false
  const app = buildWebhookApp({ logger: pino({ level: 'silent' }), metrics: createMetrics({ defaultMetrics: false }), bodyLimitBytes: 1 << 20, requestTimeoutMs: 4000, keepAliveTimeoutMs: 5000, draining: () => draining })
  try {
    const post = async (payload: string) => await app.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/json' }, payload })
    assert.notEqual((await post(JSON.stringify(review(autoscaled())))).headers.connection, 'close')
    draining = true
    const answered = await post(JSON.stringify(review(autoscaled())))
    assert.equal(answered.statusCode, 200)
    assert.equal(answered.headers.connection, 'close')
    const refused = await post('{"kind":"Pod"}')
    assert.equal(refused.statusCode, 400)
    assert.equal(refused.headers.connection, 'close')
  } finally {
    await app.close()
  }
})
