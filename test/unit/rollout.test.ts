// A rolling update, small: two real `serve` processes behind a TCP load balancer that routes new
// connections only to backends whose /readyz answers 200 (what endpoints and kube-proxy do for a
// not-ready pod), a steady stream of HTTPS reviews on kept-alive connections, and SIGTERM to one
// process. Not one review may fail, and the process must exit 0 after its drain delay.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { get } from 'node:http'
import { Agent, request } from 'node:https'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { review } from '../helpers/nimservice.js'
import { seedExample } from '../fixtures/seed-examples.js'

/** The built CLI; NIM_SERVE_MAIN points the test at another build. */
const MAIN = process.env.NIM_SERVE_MAIN ?? join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js')
const SHUTDOWN_DELAY_MS = 2000
const STREAM_MS = 5000
const MAX_REVIEWS = 50_000

function ensureBuilt (): void {
  if (existsSync(MAIN)) return
  try {
    execFileSync(process.execPath, [join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(PACKAGE_ROOT, 'tsconfig.build.json')], { stdio: 'inherit', timeout: 180_000 })
  } catch {
    // tsc exits non-zero on type errors yet still emits; whether main.js exists is what matters.
  }
  assert.ok(existsSync(MAIN), `${MAIN} was not built`)
}

interface Backend { name: string, child: ChildProcess, port: number, metricsPort: number, healthy: boolean, exit: Promise<number | null>, log: string[], reviews: string[] }

/** Spawns `serve` on free ports and resolves once its log says where it listens and /readyz is 200. */
async function spawnServe (name: string, certDir: string): Promise<Backend> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--cert-dir', certDir, '--shutdown-delay', `${SHUTDOWN_DELAY_MS}ms`, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const log: string[] = []
  const reviews: string[] = []
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.stderr?.on('data', (c: Buffer) => log.push(c.toString()))
  const ports = await new Promise<{ port: number, metricsPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${log.join('')}`)), 20_000)
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.includes('"msg":"review"')) reviews.push(line)
      else log.push(line)
      if (line.includes('nim-admission serving')) {
        clearTimeout(timer)
        const { port, metricsPort } = JSON.parse(line) as { port: number, metricsPort: number }
        resolve({ port, metricsPort })
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited ${String(code)}: ${log.join('')}`)) })
  })
  const backend: Backend = { name, child, ...ports, healthy: false, exit, log, reviews }
  for (let i = 0; i < 100 && !(await ready(backend)); i++) await sleep(50)
  assert.ok(await ready(backend), `${name} became ready`)
  return backend
}

function ready (b: Backend): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port: b.metricsPort, path: '/readyz', timeout: 300 }, (res) => { res.resume(); resolve(res.statusCode === 200) })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

function metricsText (b: Backend): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: b.metricsPort, path: '/metrics' }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
}

const answered = (metrics: string): number => [...metrics.matchAll(/^nim_admission_requests_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)

/**
 * Round-robin TCP passthrough over the healthy backends (health polled every 100 ms). Like kube-proxy, a
 * backend that turns unhealthy gets no new connections, and its existing ones are left alone.
 */
function loadBalancer (backends: Backend[]): { server: Server, stop: () => void, connections: Map<string, number> } {
  let next = 0
  const connections = new Map<string, number>()
  const sockets = new Set<Socket>()
  const poll = setInterval(() => {
    for (const b of backends) void ready(b).then((ok) => { b.healthy = ok })
  }, 100)
  for (const b of backends) b.healthy = true
  const server = createServer((client) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    const healthy = backends.filter((b) => b.healthy)
    if (healthy.length === 0) { client.destroy(); return }
    const b = healthy[next++ % healthy.length] as Backend
    connections.set(b.name, (connections.get(b.name) ?? 0) + 1)
    const upstream = connect({ host: '127.0.0.1', port: b.port })
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  return { server, connections, stop: () => { clearInterval(poll); server.close(); for (const s of sockets) s.destroy() } }
}

// Without `Connection: close` during the drain, the final close destroys kept-alive sockets that a client
// has just written a review to ("socket hang up", two runs in three before buildWebhookApp's `draining`).
test('SIGTERM to one of two replicas behind a readiness-aware load balancer fails no review, and the process exits 0', async (t) => {
  ensureBuilt()
  const certDir = mkdtempSync(join(tmpdir(), 'nim-rollout-'))
  const backends: Backend[] = []
  let lb: ReturnType<typeof loadBalancer> | undefined
  const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: '' })
  try {
    backends.push(await spawnServe('a', certDir)) // generates the development certificates
    backends.push(await spawnServe('b', certDir)) // reuses them: both serve the same CA
    const [a, b] = backends as [Backend, Backend]
    const ca = readFileSync(join(certDir, 'ca.crt'), 'utf8')
    agent.options.ca = ca
    lb = loadBalancer(backends)
    await new Promise<void>((resolve) => lb?.server.listen(0, '127.0.0.1', resolve))
    const lbPort = (lb.server.address() as { port: number }).port

    const object = seedExample('multi-metric')
    const failures: string[] = []
    let sent = 0
    let ok = 0
    const post = (path: string): Promise<void> => {
      const body = review(object)
      const payload = JSON.stringify(body)
      return new Promise((resolve) => {
        const req = request({ host: '127.0.0.1', port: lbPort, path, method: 'POST', agent, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: 5000 }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => { text += c })
          res.on('end', () => {
            try {
              const uid = (JSON.parse(text) as { response?: { uid?: string } }).response?.uid
              if (res.statusCode === 200 && uid === (body.request as { uid: string }).uid) ok++
              else failures.push(`${path} ${String(res.statusCode)}: ${text.slice(0, 200)}`)
            } catch {
              failures.push(`${path} ${String(res.statusCode)}: not JSON: ${text.slice(0, 200)}`)
            }
            resolve()
          })
          res.on('error', (err) => { failures.push(`${path}: ${err.message}`); resolve() })
        })
        req.on('timeout', () => req.destroy(new Error('timed out')))
        // No retry: the apiserver does not replay a POST that it has written.
        req.on('error', (err) => { failures.push(`${path} (reused socket: ${String(req.reusedSocket)}): ${err.message}`); resolve() })
        req.end(payload)
      })
    }

    const started = Date.now()
    const stream = Promise.all(Array.from({ length: 4 }, async (_, w) => {
      while (Date.now() - started < STREAM_MS && sent < MAX_REVIEWS) {
        sent++
        await post(w % 2 === 0 ? '/validate' : '/mutate')
        await sleep(2)
      }
    }))
    await sleep(1000)
    const bBefore = answered(await metricsText(b))
    assert.ok(bBefore > 0, 'b was serving before it was told to stop')
    const signalled = Date.now()
    b.child.kill('SIGTERM')
    const code = await Promise.race([b.exit, sleep(SHUTDOWN_DELAY_MS + 5000).then(() => 'still running')])
    const exitedAfterMs = Date.now() - signalled
    await stream
    const aAfter = answered(await metricsText(a))

    t.diagnostic(`${sent} reviews in ${Date.now() - started} ms, ${ok} answered, b answered ${bBefore} before SIGTERM and exited ${String(code)} after ${exitedAfterMs} ms; a answered ${aAfter}; connections ${JSON.stringify(Object.fromEntries(lb.connections))}`)
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed reviews`)
    assert.equal(ok, sent)
    assert.equal(code, 0, `b exits 0: ${b.log.slice(-5).join('\n')}`)
    assert.ok(exitedAfterMs >= SHUTDOWN_DELAY_MS, `b kept serving for the drain delay (${exitedAfterMs} ms)`)
    assert.ok(aAfter > 0, 'a carried the traffic after b left')
    // One log line per review, none lost when b exits: b answered every review a did not.
    assert.equal(b.reviews.length, ok - aAfter, 'b logged one line per review it answered')
    const line = JSON.parse(b.reviews[0] as string) as Record<string, unknown>
    for (const key of ['uid', 'endpoint', 'kind', 'namespace', 'name', 'operation', 'dryRun', 'allowed', 'durationMs']) assert.ok(key in line, `review line has ${key}: ${b.reviews[0]}`)
    assert.equal(line.name, (object.metadata as { name: string }).name)
  } finally {
    agent.destroy()
    lb?.stop()
    for (const b of backends) if (b.child.exitCode === null) b.child.kill('SIGKILL')
    rmSync(certDir, { recursive: true, force: true })
  }
})
