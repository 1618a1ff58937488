import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { pino } from 'pino'
import { startServer, type RunningServer } from '../../src/server/serve.js'
import { autoscaled, review } from '../helpers/nimservice.js'
import { get, postReview } from '../helpers/https.js'

async function withServer (opts: { shutdownDelayMs?: number }, fn: (s: RunningServer, ca: string, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nim-serve-'))
  const server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: dir, shutdownDelayMs: opts.shutdownDelayMs ?? 0 }, pino({ level: 'silent' }))
  try {
    await fn(server, readFileSync(server.caPath, 'utf8'), dir)
  } finally {
    await server.shutdown()
    rmSync(dir, { recursive: true, force: true })
  }
}

test('generates development certificates and serves both endpoints over real TLS (1.2 minimum)', async () => {
  await withServer({}, async (server, ca, dir) => {
    const cert = new X509Certificate(readFileSync(join(dir, 'tls.crt')))
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/)
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/)
    const denied = await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled(undefined, { replicas: 2 })), { ca })
    assert.equal(denied.status, 200)
    assert.equal(denied.json().response.allowed, false)
    assert.equal(denied.json().response.status.details.causes[0].field, 'spec.replicas')
    const mutated = await postReview(`https://127.0.0.1:${server.port}/mutate`, review(autoscaled()), { ca, servername: 'localhost' })
    assert.equal(mutated.json().response.patchType, 'JSONPatch')
    const bad = await postReview(`https://127.0.0.1:${server.port}/validate`, '{not json', { ca })
    assert.equal(bad.status, 400)
    const tls = await import('node:tls')
    await assert.rejects(new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => { socket.end(); resolve(undefined) })
      socket.on('error', reject)
    }), 'TLS 1.1 is refused')
  })
})

test('serves /healthz, /readyz and /metrics on the plain-HTTP metrics port', async () => {
  await withServer({}, async (server, ca) => {
    await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled(undefined, { replicas: 2 })), { ca })
    assert.equal((await get(`http://127.0.0.1:${server.metricsPort}/healthz`)).status, 200)
    assert.equal((await get(`http://127.0.0.1:${server.metricsPort}/readyz`)).status, 200)
    const metrics = (await get(`http://127.0.0.1:${server.metricsPort}/metrics`)).body
    assert.match(metrics, /nim_admission_requests_total\{endpoint="validate",operation="CREATE",allowed="false",dry_run="false"\} 1/)
    assert.match(metrics, /nim_admission_rule_violations_total\{rule="NIM010"\} 1/)
    assert.match(metrics, /nim_admission_request_duration_seconds_bucket\{le="0.001",endpoint="validate"\}/)
    assert.match(metrics, /nim_admission_certificate_expiry_seconds\{cert="serving"\} \d+/)
    assert.match(metrics, /process_resident_memory_bytes/)
  })
})

test('on shutdown, /readyz fails at once while reviews are still answered during the drain delay', async () => {
  await withServer({ shutdownDelayMs: 1500 }, async (server, ca) => {
    const stopping = server.shutdown()
    const ready = await get(`http://127.0.0.1:${server.metricsPort}/readyz`)
    assert.equal(ready.status, 503)
    assert.match(ready.body, /shutting down/)
    const res = await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca })
    assert.equal(res.status, 200, 'a review during the drain is answered, not 503')
    assert.equal(res.json().response.allowed, true)
    await stopping
    await assert.rejects(postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca }), 'closed after the drain')
  })
})

test('with --client-ca, requires and verifies a client certificate (mutual TLS)', async () => {
  const { execFileSync } = await import('node:child_process')
  const dir = mkdtempSync(join(tmpdir(), 'nim-mtls-'))
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client-ca.key', '-out', 'client-ca.crt', '-days', '1', '-subj', '/CN=apiserver-client-ca')
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=kube-apiserver')
  ssl('x509', '-req', '-in', 'client.csr', '-CA', 'client-ca.crt', '-CAkey', 'client-ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '1')
  const server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: join(dir, 'serving'), shutdownDelayMs: 0, clientCaFile: join(dir, 'client-ca.crt') }, pino({ level: 'silent' }))
  try {
    const ca = readFileSync(server.caPath, 'utf8')
    const { Agent } = await import('node:https')
    const withCert = new Agent({ ca, cert: readFileSync(join(dir, 'client.crt')), key: readFileSync(join(dir, 'client.key')) })
    const ok = await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca, agent: withCert })
    assert.equal(ok.json().response.allowed, true)
    withCert.destroy()
    await assert.rejects(postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca }), 'no client certificate, no answer')
  } finally {
    await server.shutdown()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('reports overload on /readyz when the event loop runs late, and recovers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nim-overload-'))
  const server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: dir, shutdownDelayMs: 0, maxEventLoopDelayMs: 50, overloadWindowMs: 300 }, pino({ level: 'silent' }))
  try {
    // Saturate, then ask; on a loaded machine a window can close between the two, so saturate again
    // (bounded) until the window that /readyz reads saw it.
    let busy = { status: 0, body: '' }
    for (let i = 0; i < 20 && busy.status !== 503; i++) {
      for (let j = 0; j < 4; j++) {
        const until = Date.now() + 250
        while (Date.now() < until) { /* a saturated event loop */ }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      busy = await get(`http://127.0.0.1:${server.metricsPort}/readyz`)
    }
    assert.equal(busy.status, 503)
    assert.match(busy.body, /overloaded: event loop \d+ ms late/)
    let status = 0
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && status !== 200;) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      status = (await get(`http://127.0.0.1:${server.metricsPort}/readyz`)).status
    }
    assert.equal(status, 200, 'ready again once the event loop is on time')
  } finally {
    await server.shutdown()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('fails /readyz once the served certificate has expired', async () => {
  const { createCa, issueServingCert } = await import('../../src/certs/generate.js')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  const dir = mkdtempSync(join(tmpdir(), 'nim-expiring-'))
  const ca = createCa()
  // Valid now, expired four seconds from now (X.509 times have one-second precision).
  const pair = issueServingCert(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now: new Date(Date.now() - 86_400_000 + 4_000), days: 1 })
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'tls.crt'), pair.certPem)
  writeFileSync(join(dir, 'tls.key'), pair.keyPem, { mode: 0o600 })
  writeFileSync(join(dir, 'ca.crt'), ca.certPem)
  const server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: dir, shutdownDelayMs: 0 }, pino({ level: 'silent' }))
  try {
    assert.equal((await get(`http://127.0.0.1:${server.metricsPort}/readyz`)).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 5_500))
    const expired = await get(`http://127.0.0.1:${server.metricsPort}/readyz`)
    assert.equal(expired.status, 503)
    assert.match(expired.body, /serving certificate has expired/)
    assert.equal((await get(`http://127.0.0.1:${server.metricsPort}/healthz`)).status, 200, 'alive, just not ready')
  } finally {
    await server.shutdown()
    rmSync(dir, { recursive: true, force: true })
  }
})
