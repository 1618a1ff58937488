// One request must never stall a replica, through the real apiserver: while the worst reviews run (the
// largest bodies the server accepts, built to be as costly as they can, sent straight to `serve`; a body
// trickled in byte by byte; silent sockets), a stream of normal `kubectl apply --dry-run=server` and API
// requests goes through the apiserver to the same `serve`. None may fail, and /healthz keeps answering.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect as tcpConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { Agent, request } from 'node:https'
import { request as httpRequest } from 'node:http'
import { stringify } from 'yaml'
import { startApiserver, type Apiserver, requireApiserverBinary } from '../helpers/apiserver.js'
import { apiRequest, freePort, kubectlOk, waitFor, webhookConfigurations } from '../helpers/kube.js'
import { crdWithoutCel, waitForCrdsEstablished } from '../helpers/crd.js'
import { autoscaled, nim, review } from '../helpers/nimservice.js'

type Json = Record<string, unknown>
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js')
const NS = 'stall'
const ATTACK_MS = 20_000
const BODY_LIMIT = 7 * 1024 * 1024

requireApiserverBinary()
if (!existsSync(MAIN)) throw new Error(`${MAIN} is not built: run \`npm run build\``)

let apiserver: Apiserver
let kubeconfig: string
let certDir: string
let ca: string
let serve: { child: ChildProcess, port: number, metricsPort: number, logs: () => string }

async function startServe (): Promise<typeof serve> {
  const port = await freePort()
  const metricsPort = await freePort()
  const child = spawn(process.execPath, [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1',
    '--metrics-port', String(metricsPort), '--cert-dir', certDir, '--shutdown-delay', '0s', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  child.stdout?.on('data', (c: Buffer) => { logs = (logs + c.toString()).slice(-100_000) })
  child.stderr?.on('data', (c: Buffer) => { logs = (logs + c.toString()).slice(-100_000) })
  process.once('exit', () => child.kill('SIGKILL'))
  await waitFor('serve to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`serve exited: ${logs}`)
    const res = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined)
    return res?.status === 200 ? true : undefined
  }, 60_000)
  return { child, port, metricsPort, logs: () => logs }
}

/** kubectl without blocking this process: the attackers and the /healthz probe run meanwhile. */
async function kubectlAsync (args: string[], input: string): Promise<{ status: number, output: string }> {
  return await new Promise((resolve) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => { output += c.toString() })
    child.stderr.on('data', (c: Buffer) => { output += c.toString() })
    child.on('close', (code) => resolve({ status: code ?? -1, output }))
    child.stdin.end(input)
  })
}

before(async () => {
  apiserver = await startApiserver()
  kubeconfig = apiserver.kubeconfig
  certDir = mkdtempSync(join(tmpdir(), 'nim-stall-'))
  serve = await startServe()
  ca = readFileSync(join(certDir, 'ca.crt'), 'utf8')
  const caBundle = Buffer.from(ca).toString('base64')
  kubectlOk(kubeconfig, ['create', 'namespace', NS])
  kubectlOk(kubeconfig, ['apply', '--server-side', '-f', '-'], stringify(crdWithoutCel()))
  await waitForCrdsEstablished(kubeconfig, ['nimservices.apps.nvidia.com'])
  kubectlOk(kubeconfig, ['apply', '--server-side', '-f', '-'], webhookConfigurations({ port: serve.port, caBundle, name: 'nim-stall', timeoutSeconds: 5 }).map((o) => stringify(o)).join('---\n'))
  const bad = { ...autoscaled(undefined, { replicas: 2 }), metadata: { name: 'probe', namespace: NS } }
  await waitFor('the webhook to be called', async () => {
    const r = await kubectlAsync(['apply', '--dry-run=server', '-f', '-'], stringify(bad))
    return /is invalid: spec\.replicas: /.test(r.output) ? true : undefined
  }, 60_000, 300)
})

after(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill('SIGTERM')
    await new Promise((resolve) => serve.child.once('exit', resolve))
  }
  await apiserver?.stop()
  if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true })
})

/** The costliest bodies we know of, each as large as the body limit allows. */
function attackBodies (): Array<{ name: string, path: string, body: Buffer }> {
  const fit = (make: (n: number) => Json, unit: number): Buffer => {
    let n = Math.floor((BODY_LIMIT - 8192) / unit)
    let body = Buffer.from(JSON.stringify(make(n)))
    while (body.length > BODY_LIMIT - 1024) { n = Math.floor(n * 0.97); body = Buffer.from(JSON.stringify(make(n))) }
    return body
  }
  const emptyMetrics = fit((n) => review(nim({ scale: { enabled: true, hpa: { maxReplicas: 3, metrics: Array(n).fill({}) } } }, 'big', NS)), 3)
  const env = fit((n) => { const o = nim({ env: Array.from({ length: n }, (_, i) => ({ name: `V${i}`, value: 'x' })) }, 'big', NS); return review(o, { operation: 'UPDATE', oldObject: o }) }, 64)
  const sidecars = fit((n) => review(nim({
    sidecarContainers: Array.from({ length: 2000 }, (_, i) => ({ name: `s${i}`, image: 'i' })),
    scale: { enabled: true, hpa: { maxReplicas: 3, metrics: Array.from({ length: n }, () => ({ type: 'ContainerResource', containerResource: { name: 'cpu', container: 'c', target: { type: 'Utilization', averageUtilization: 50 } } })) } }
  }, 'big', NS)), 130)
  return [
    { name: 'empty metrics', path: '/mutate', body: emptyMetrics },
    { name: 'env UPDATE', path: '/validate', body: env },
    { name: 'metrics x sidecars', path: '/validate', body: sidecars },
    { name: 'empty metrics', path: '/validate', body: emptyMetrics }
  ]
}

interface Answer { ms: number, status: number, response?: Json, error?: string }

async function postDirect (agent: Agent, path: string, body: Buffer): Promise<Answer> {
  const started = performance.now()
  return await new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: serve.port, path, method: 'POST', agent, servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        let response: Json | undefined
        try { response = (JSON.parse(Buffer.concat(chunks).toString()) as { response?: Json }).response } catch { /* a 4xx body */ }
        resolve({ ms: performance.now() - started, status: res.statusCode ?? 0, ...(response !== undefined ? { response } : {}) })
      })
    })
    req.on('error', (err) => resolve({ ms: performance.now() - started, status: 0, error: err.message }))
    req.end(body)
  })
}

async function healthz (): Promise<number> {
  const started = performance.now()
  return await new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: serve.metricsPort, path: '/healthz', timeout: 10_000 }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - started : -1))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(-1))
    req.end()
  })
}

test('while the worst reviews run, normal reviews through the apiserver all succeed and /healthz keeps answering', async () => {
  const bodies = attackBodies()
  let attacking = true
  const attackAgent = new Agent({ keepAlive: true, ca, maxSockets: 8 })
  const attacks: Array<Answer & { name: string }> = []
  // Two loops of the largest, costliest bodies straight at `serve` (the apiserver never sends over 3 MiB).
  const attackers = [0, 1].map(async (k) => {
    for (let i = k; attacking; i += 2) {
      const b = bodies[i % bodies.length] as (typeof bodies)[number]
      attacks.push({ name: `${b.path} ${b.name}`, ...await postDirect(attackAgent, b.path, b.body) })
    }
  })
  // A large body trickled in: it holds a large-body slot until the request timeout cuts it off.
  const trickle = tlsConnect({ host: '127.0.0.1', port: serve.port, ca, servername: 'localhost' })
  trickle.on('error', () => {})
  trickle.write(`POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${6 * 1024 * 1024}\r\n\r\n{"apiVersion":`)
  const dribble = setInterval(() => { if (!trickle.destroyed) trickle.write(' ') }, 200)
  // Silent sockets: no ClientHello ever.
  const silent: Socket[] = Array.from({ length: 50 }, () => tcpConnect({ host: '127.0.0.1', port: serve.port }).on('error', () => {}))

  const health: number[] = []
  const prober = (async () => { while (attacking) { health.push(await healthz()); await new Promise((resolve) => setTimeout(resolve, 100)) } })()

  const normal: Array<{ what: string, ok: boolean, detail: string, ms: number }> = []
  const until = Date.now() + ATTACK_MS
  let n = 0
  try {
    while (Date.now() < until) {
      n++
      const good = { ...autoscaled(), metadata: { name: `ok-${n}`, namespace: NS } }
      const bad = { ...autoscaled(undefined, { replicas: 2 }), metadata: { name: `bad-${n}`, namespace: NS } }
      const t = performance.now()
      const [applied, denied, created] = await Promise.all([
        kubectlAsync(['apply', '--dry-run=server', '-f', '-'], stringify(good)),
        kubectlAsync(['apply', '--dry-run=server', '-f', '-'], stringify(bad)),
        apiRequest(kubeconfig, 'POST', `/apis/apps.nvidia.com/v1alpha1/namespaces/${NS}/nimservices`, { ...autoscaled(), metadata: { name: `real-${n}`, namespace: NS } })
      ])
      const ms = performance.now() - t
      normal.push({ what: 'dry-run allowed', ok: applied.status === 0 && /created \(server dry run\)/.test(applied.output), detail: applied.output, ms })
      normal.push({ what: 'dry-run denied', ok: denied.status !== 0 && /The NIMService "bad-\d+" is invalid: spec\.replicas: /.test(denied.output), detail: denied.output, ms })
      const annotated = ((created.body?.metadata as Json | undefined)?.annotations as Json | undefined)?.['nim-admission.io/hpa'] !== undefined
      normal.push({ what: 'created and mutated', ok: created.status === 201 && annotated, detail: JSON.stringify(created.body).slice(0, 500), ms })
    }
  } finally {
    attacking = false
    clearInterval(dribble)
    await Promise.all([...attackers, prober])
    attackAgent.destroy()
    trickle.destroy()
    for (const s of silent) s.destroy()
  }

  const failed = normal.filter((r) => !r.ok)
  assert.equal(failed.length, 0, `normal requests failed during the attack: ${JSON.stringify(failed.slice(0, 3))}`)
  assert.ok(normal.length >= 9, `${normal.length} normal requests went through`)
  assert.ok(health.length >= 20 && health.every((ms) => ms >= 0), `/healthz failed ${health.filter((ms) => ms < 0).length} of ${health.length} times`)
  const worstHealth = Math.max(...health)
  assert.ok(worstHealth < 2000, `/healthz took up to ${Math.round(worstHealth)} ms`)
  // Every attack body got an answer (a verdict, or the budget's), never a dropped connection or a 5xx.
  assert.ok(attacks.length >= 2, `${attacks.length} attack reviews answered`)
  for (const a of attacks) assert.ok(a.status === 200 && a.response !== undefined, `${a.name}: ${a.status} ${a.error ?? ''}`)
  const metrics = await (await fetch(`http://127.0.0.1:${serve.metricsPort}/metrics`)).text()
  const worstReview = Math.max(...attacks.map((a) => a.ms))
  const worstNormal = Math.max(...normal.map((r) => r.ms))
  // The numbers, for the README and the report.
  console.log(JSON.stringify({
    normalRequests: normal.length,
    worstNormalRoundMs: Math.round(worstNormal),
    healthzProbes: health.length,
    worstHealthzMs: Math.round(worstHealth),
    attacks: attacks.map((a) => `${a.name}: ${Math.round(a.ms)} ms, allowed=${String(a.response?.allowed)}${(a.response?.warnings as string[] | undefined)?.[0]?.startsWith('NIM114') === true ? ' NIM114' : ''}`),
    worstAttackMs: Math.round(worstReview),
    budgetExceeded: metrics.split('\n').filter((l) => l.startsWith('nim_admission_budget_exceeded_total')),
    refused: metrics.split('\n').filter((l) => l.startsWith('nim_admission_connections_refused_total')),
    rssAtEndMb: Math.round(Number(/process_resident_memory_bytes (\d+)/.exec(metrics)?.[1] ?? 0) / 1048576)
  }, null, 1))
})
