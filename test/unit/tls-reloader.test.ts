import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, createServer, type Server } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import pino from 'pino'

import { DAY_MS, createCa, generateCertificates, issueServingCert, type GeneratedCertificates } from '../../src/certs/index.js'
import { TlsReloader, type ServingPair } from '../../src/server/tls-reloader.js'
import { KubeletVolume, eventually, post, recordingLog, sleep, type HttpsResult } from '../helpers/tls.js'

const service = { service: 'nim-admission', namespace: 'nim-system' }
const servername = 'nim-admission.nim-system.svc'
const serial = (pem: string): string => new X509Certificate(pem).serialNumber

const volumeFiles = (g: Pick<GeneratedCertificates, 'certPem' | 'keyPem' | 'caCertPem'>, caBundle = g.caCertPem): Record<string, string> =>
  ({ 'tls.crt': g.certPem, 'tls.key': g.keyPem, 'ca.crt': caBundle })

interface Running { server: Server; port: number; reloader: TlsReloader; volume: KubeletVolume; dir: string; changes: ServingPair[]; close: () => Promise<void> }

async function serveFrom (initial: Record<string, string>, log: ReturnType<typeof recordingLog>): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'nim-reload-'))
  const volume = new KubeletVolume(dir)
  await volume.write(initial)
  const reloader = new TlsReloader({ certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key'), caPath: join(dir, 'ca.crt'), log, pollIntervalMs: 200 })
  const pair = reloader.current()
  const server = createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2', keepAliveTimeout: 10_000 }, (req, res) => {
    req.resume()
    req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end('{"allowed":true}') })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const changes: ServingPair[] = []
  reloader.start((next) => {
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' })
    changes.push(next)
  })
  const close = async (): Promise<void> => {
    reloader.stop()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await rm(dir, { recursive: true, force: true })
  }
  return { server, port: (server.address() as AddressInfo).port, reloader, volume, dir, changes, close }
}

// Certificates shared by the tests: A and B from one CA (a renewal), C from a new CA (a CA rotation).
const first = generateCertificates(service)
const renewed = generateCertificates({ ...service, ca: { certPem: first.caCertPem, keyPem: first.caKeyPem } })
const rotated = generateCertificates(service)

test('rotating the files under a steady HTTPS stream fails no request, keeps open connections, and new connections get the new certificate', async (t) => {
  const log = recordingLog()
  const bothCas = first.caCertPem + rotated.caCertPem
  const run = await serveFrom(volumeFiles(first), log)
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 })
  const failures: unknown[] = []
  const fresh: HttpsResult[] = []
  const reused: Array<HttpsResult & { phase: number }> = []
  let phase = 0
  let running = true
  const loop = async (agent: Agent | false, sink: (r: HttpsResult) => void): Promise<void> => {
    while (running) {
      try {
        const r = await post(run.port, { ca: bothCas, servername, agent })
        if (r.status !== 200) failures.push(new Error(`HTTP ${r.status}`))
        sink(r)
      } catch (err) {
        failures.push(err)
      }
    }
  }
  const loops = [
    loop(false, (r) => fresh.push(r)),
    loop(false, (r) => fresh.push(r)),
    loop(keepAlive, (r) => reused.push({ ...r, phase })),
    loop(keepAlive, (r) => reused.push({ ...r, phase }))
  ]
  const seenFresh = async (pem: string): Promise<boolean> => await eventually(() => fresh.slice(-3).some((r) => r.serialNumber === serial(pem)), 4000)
  try {
    await sleep(300)
    // Renewal: same CA, new serving certificate.
    await run.volume.write(volumeFiles(renewed, first.caCertPem))
    phase = 1
    assert.ok(await seenFresh(renewed.certPem), 'new connections see the renewed certificate')
    await sleep(200)
    // CA rotation: the client (like a caBundle after `certs inject`) trusts both CAs.
    await run.volume.write(volumeFiles(rotated, bothCas))
    phase = 2
    assert.ok(await seenFresh(rotated.certPem), 'new connections see the certificate from the new CA')
    await sleep(200)
  } finally {
    running = false
    await Promise.all(loops)
    keepAlive.destroy()
    await run.close()
  }
  t.diagnostic(`${fresh.length} requests on fresh connections, ${reused.length} on keep-alive ones`)
  assert.deepEqual(failures, [])
  assert.ok(fresh.length + reused.length >= 100, `a steady stream (${fresh.length} fresh + ${reused.length} keep-alive requests)`)
  // Serials seen on fresh connections only move forward: A, then B, then C.
  const order = [serial(first.certPem), serial(renewed.certPem), serial(rotated.certPem)]
  const ranks = fresh.map((r) => order.indexOf(r.serialNumber))
  assert.ok(ranks.every((rank) => rank >= 0))
  assert.ok(ranks.every((rank, i) => i === 0 || rank >= (ranks[i - 1] ?? 0)), 'no fresh connection sees an older certificate after a newer one')
  // Connections opened before the swap keep working after it (nothing dropped, they keep the old context).
  assert.ok(reused.some((r) => r.phase >= 1 && r.reusedSocket && r.serialNumber === serial(first.certPem)), 'a keep-alive connection from before the swap served requests after it')
  assert.deepEqual(run.changes.map((c) => c.serialNumber), order.slice(1))
  assert.equal(run.reloader.current().serialNumber, serial(rotated.certPem))
  assert.equal(log.entries.filter((e) => e.level !== 'info').length, 0)
})

test('a mismatched key is refused with a warning and the previous certificate keeps serving', async () => {
  const log = recordingLog()
  const run = await serveFrom(volumeFiles(first), log)
  try {
    await run.volume.write({ 'tls.crt': renewed.certPem, 'tls.key': rotated.keyPem, 'ca.crt': first.caCertPem })
    assert.ok(await eventually(() => log.entries.some((e) => e.level === 'warn' && e.obj.code === 'NIMCERT_KEY_MISMATCH')), 'a warning names the mismatch')
    const warning = log.entries.find((e) => e.obj.code === 'NIMCERT_KEY_MISMATCH')
    assert.match(warning?.msg ?? '', /refused the new certificate pair, still serving the previous one/)
    assert.match(warning?.msg ?? '', /tls\.key does not match/)
    const after = await post(run.port, { ca: first.caCertPem, servername, agent: false })
    assert.equal(after.status, 200)
    assert.equal(after.serialNumber, serial(first.certPem))
    assert.equal(run.changes.length, 0)
    assert.equal(run.reloader.reload(), 'refused', 'the same broken pair stays refused')
    assert.equal(log.entries.filter((e) => e.obj.code === 'NIMCERT_KEY_MISMATCH').length, 1, 'and is logged once, not on every poll')
    // Fixing the files is picked up.
    await run.volume.write(volumeFiles(renewed, first.caCertPem))
    assert.ok(await eventually(() => run.changes.length === 1))
    assert.equal((await post(run.port, { ca: first.caCertPem, servername, agent: false })).serialNumber, serial(renewed.certPem))
  } finally {
    await run.close()
  }
})

test('a garbage certificate file is refused and the previous pair kept', async () => {
  const log = recordingLog()
  const run = await serveFrom(volumeFiles(first), log)
  try {
    await run.volume.write({ 'tls.crt': 'not a certificate', 'tls.key': first.keyPem, 'ca.crt': first.caCertPem })
    assert.ok(await eventually(() => log.entries.some((e) => e.level === 'warn' && e.obj.code === 'NIMCERT_INVALID_CERT')))
    assert.equal(run.reloader.current().serialNumber, serial(first.certPem))
  } finally {
    await run.close()
  }
})

test('the reloader refuses to start on a broken pair with the coded error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'nim-reload-'))
  try {
    const volume = new KubeletVolume(dir)
    await volume.write({ 'tls.crt': first.certPem, 'tls.key': rotated.keyPem })
    assert.throws(() => new TlsReloader({ certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key'), log: recordingLog() }),
      (err: Error & { code?: string }) => err.code === 'NIMCERT_KEY_MISMATCH' && err.message.includes(join(dir, 'tls.key')))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('warns when less than 30 days are left on the serving certificate or its CA, and exposes both expiries', async () => {
  const ca = createCa({ days: 20 })
  const leaf = issueServingCert(ca, { dnsNames: [servername], days: 10 })
  const dir = await mkdtemp(join(tmpdir(), 'nim-reload-'))
  try {
    await new KubeletVolume(dir).write({ 'tls.crt': leaf.certPem, 'tls.key': leaf.keyPem, 'ca.crt': ca.certPem })
    const log = recordingLog()
    const reloader = new TlsReloader({ certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key'), caPath: join(dir, 'ca.crt'), log })
    const warnings = log.entries.filter((e) => e.level === 'warn')
    assert.deepEqual(warnings.map((w) => w.obj.cert), ['serving', 'ca'])
    assert.match(warnings[0]?.msg ?? '', /expires in 9 days/)
    const now = new Date()
    const seconds = reloader.expirySeconds(now)
    assert.ok(Math.abs(seconds.serving - 10 * 86400) < 120, `serving ${seconds.serving}`)
    assert.ok(Math.abs((seconds.ca ?? 0) - 20 * 86400) < 120, `ca ${seconds.ca}`)
    assert.equal(reloader.isServingExpired(now), false)
    assert.equal(reloader.isServingExpired(new Date(now.getTime() + 11 * DAY_MS)), true)
    assert.equal(reloader.current().caNotAfter?.getTime(), new Date(new X509Certificate(ca.certPem).validTo).getTime())
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a CA bundle change alone updates the CA expiry without swapping the served pair', async () => {
  const log = recordingLog()
  const run = await serveFrom(volumeFiles(first), log)
  try {
    const caOnly = createCa({ days: 5 })
    await run.volume.write(volumeFiles(first, caOnly.certPem + first.caCertPem))
    assert.equal(run.reloader.reload(), 'unchanged')
    assert.equal(run.changes.length, 0)
    assert.equal(run.reloader.current().caNotAfter?.getTime(), new Date(new X509Certificate(first.caCertPem).validTo).getTime(), 'the CA that signed the served certificate, not the other one')
    await run.volume.write(volumeFiles(first, caOnly.certPem))
    run.reloader.reload()
    assert.equal(run.reloader.current().caNotAfter, undefined)
    assert.ok(log.entries.some((e) => e.level === 'warn' && /no CA in the CA bundle signed/.test(e.msg)))
  } finally {
    await run.close()
  }
})

test('accepts a pino logger', () => {
  const dirless = { certPath: '/nonexistent/tls.crt', keyPath: '/nonexistent/tls.key', log: pino({ enabled: false }) }
  assert.throws(() => new TlsReloader(dirless), (err: Error & { code?: string }) => err.code === 'NIMCERT_UNREADABLE' && err.message.includes('/nonexistent/tls.crt'))
})

test('reloads the client CA bundle (mutual TLS) with the pair, mounted as a Secret volume, and refuses a broken one', async () => {
  const log = recordingLog()
  const dir = await mkdtemp(join(tmpdir(), 'nim-client-ca-'))
  const volume = new KubeletVolume(join(dir, 'client'))
  const serving = new KubeletVolume(join(dir, 'serving'))
  await serving.write(volumeFiles(first))
  const one = createCa({ commonName: 'client-ca-one' })
  const two = createCa({ commonName: 'client-ca-two' })
  await volume.write({ 'ca.crt': one.certPem })
  const reloader = new TlsReloader({ certPath: join(dir, 'serving', 'tls.crt'), keyPath: join(dir, 'serving', 'tls.key'), clientCaPath: join(dir, 'client', 'ca.crt'), log, pollIntervalMs: 100 })
  const changes: ServingPair[] = []
  try {
    assert.equal(reloader.current().clientCa, one.certPem)
    reloader.start((next) => changes.push(next))
    await volume.write({ 'ca.crt': two.certPem })
    assert.ok(await eventually(() => changes.length === 1, 5000))
    assert.equal(changes[0]?.clientCa, two.certPem)
    assert.equal(changes[0]?.serialNumber, serial(first.certPem), 'the serving pair is unchanged')
    assert.ok(log.entries.some((e) => e.msg === 'loaded new client CA'))
    await volume.write({ 'ca.crt': 'not a certificate\n' })
    assert.ok(await eventually(() => log.entries.some((e) => e.level === 'warn' && /client CA bundle/.test(e.msg)), 5000), 'a broken bundle is refused with a warning')
    assert.equal(reloader.current().clientCa, two.certPem, 'the previous client CA stays')
    assert.equal(changes.length, 1)
  } finally {
    reloader.stop()
    await rm(dir, { recursive: true, force: true })
  }
})
