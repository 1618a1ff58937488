// Connection-level bounds of the real HTTPS server: silent sockets are closed (before and after the
// TLS handshake), one source address cannot take every connection slot, only forward-secret AEAD suites
// are offered (also after a reload), and the client CA is reloaded like the serving certificate.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tcpConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { Agent } from 'node:https'
import { pino } from 'pino'
import { startServer, type RunningServer } from '../../src/server/serve.js'
import { TLS_CIPHERS } from '../../src/server/connections.js'
import { createCa, issueServingCert } from '../../src/certs/generate.js'
import { autoscaled, review } from '../helpers/nimservice.js'
import { postReview } from '../helpers/https.js'
import { eventually } from '../helpers/tls.js'
import type { ServeOptions } from '../../src/server/options.js'

async function withServer (opts: Partial<ServeOptions>, fn: (s: RunningServer, ca: string, dir: string) => Promise<void>, dir = mkdtempSync(join(tmpdir(), 'nim-conn-'))): Promise<void> {
  const server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: dir, shutdownDelayMs: 0, ...opts }, pino({ level: 'silent' }))
  try {
    await fn(server, readFileSync(server.caPath, 'utf8'), dir)
  } finally {
    await server.shutdown()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Resolves with how long the socket stayed open, or -1 if it outlived `maxMs`. */
async function closedWithin (socket: Socket, maxMs: number): Promise<number> {
  const started = performance.now()
  socket.on('error', () => { /* being cut off is the point */ })
  return await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(-1), maxMs)
    socket.once('close', () => { clearTimeout(timer); resolve(performance.now() - started) })
  })
}

test('a socket that never sends a ClientHello is closed at the TLS handshake timeout, one that never sends a request at the request timeout', async () => {
  await withServer({ tlsHandshakeTimeoutMs: 600, requestTimeoutMs: 1000 }, async (server, ca) => {
    const raw = tcpConnect({ host: '127.0.0.1', port: server.port })
    const rawMs = await closedWithin(raw, 10_000)
    assert.ok(rawMs >= 500 && rawMs < 5000, `a silent TCP socket was held ${Math.round(rawMs)} ms (Node's default: 120 s)`)

    const tls = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' })
    await new Promise((resolve) => tls.once('secureConnect', resolve))
    const tlsMs = await closedWithin(tls, 10_000)
    assert.ok(tlsMs >= 900 && tlsMs < 5000, `a silent TLS connection was held ${Math.round(tlsMs)} ms`)

    const text = await server.metrics.registry.metrics()
    assert.match(text, /nim_admission_connections_refused_total\{reason="tls_handshake"\} 1/)
    assert.match(text, /nim_admission_connections_refused_total\{reason="no_request"\} 1/)
    // A kept-alive connection that has served a review is not cut by that first-request timeout.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, servername: 'localhost' })
    try {
      assert.equal((await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca, agent })).status, 200)
      await new Promise((resolve) => setTimeout(resolve, 1500))
      const again = await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca, agent })
      assert.equal(again.status, 200)
    } finally {
      agent.destroy()
    }
  })
})

test('one source address cannot take every connection: past its cap new sockets are closed, other addresses are served', async () => {
  await withServer({ maxConnectionsPerIp: 5, tlsHandshakeTimeoutMs: 30_000 }, async (server, ca) => {
    const held: Socket[] = []
    try {
      for (let i = 0; i < 5; i++) {
        const s = tcpConnect({ host: '127.0.0.1', port: server.port })
        s.on('error', () => {})
        await new Promise((resolve) => s.once('connect', resolve))
        held.push(s)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.ok(held.every((s) => !s.destroyed), 'five silent sockets are within the cap')
      const sixth = tcpConnect({ host: '127.0.0.1', port: server.port })
      assert.ok((await closedWithin(sixth, 3000)) >= 0, 'the sixth from the same address is closed at once')
      // Linux routes all of 127/8 to loopback: another source address has its own allowance.
      const fromElsewhere = new Agent({ ca, localAddress: '127.0.0.2' })
      const other = await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca, agent: fromElsewhere })
      fromElsewhere.destroy()
      assert.equal(other.status, 200)
      assert.match(await server.metrics.registry.metrics(), /nim_admission_connections_refused_total\{reason="per_ip_limit"\} 1/)
      for (const s of held) s.destroy()
      await eventually(async () => {
        try {
          return (await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca })).status === 200
        } catch { return false }
      }, 3000, 50)
    } finally {
      for (const s of held) s.destroy()
    }
  })
})

async function handshakeWith (port: number, ca: string, opts: { ciphers?: string, maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<{ protocol: string | null, cipher: string }> {
  return await new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts }, () => {
      const r = { protocol: socket.getProtocol(), cipher: socket.getCipher().name }
      socket.end()
      resolve(r)
    })
    socket.on('error', reject)
  })
}

async function assertOnlyForwardSecretAead (port: number, ca: string): Promise<void> {
  assert.equal((await handshakeWith(port, ca, {})).protocol, 'TLSv1.3')
  assert.deepEqual(await handshakeWith(port, ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' }), { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' })
  assert.equal((await handshakeWith(port, ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' })).cipher, 'ECDHE-RSA-CHACHA20-POLY1305')
  for (const weak of ['AES128-GCM-SHA256', 'AES256-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA256', 'DHE-RSA-AES128-GCM-SHA256']) {
    await assert.rejects(handshakeWith(port, ca, { maxVersion: 'TLSv1.2', ciphers: weak }), /./, `${weak} is refused`)
  }
}

test('TLS 1.2 offers only ECDHE with AES-GCM or ChaCha20-Poly1305 (what Go offers), TLS 1.3 stays on, and a reload keeps it so', async () => {
  for (const suite of TLS_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_'))) assert.match(suite, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/)
  const dir = mkdtempSync(join(tmpdir(), 'nim-ciphers-'))
  const signer = createCa()
  const issue = (): { certPem: string, keyPem: string } => issueServingCert(signer, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] })
  const first = issue()
  writeFileSync(join(dir, 'tls.crt'), first.certPem)
  writeFileSync(join(dir, 'tls.key'), first.keyPem, { mode: 0o600 })
  writeFileSync(join(dir, 'ca.crt'), signer.certPem)
  await withServer({}, async (server, ca) => {
    await assertOnlyForwardSecretAead(server.port, ca)
    // A renewed certificate: setSecureContext replaces the whole context, ciphers included.
    const renewed = issue()
    writeFileSync(join(dir, 'tls.key'), renewed.keyPem)
    writeFileSync(join(dir, 'tls.crt'), renewed.certPem)
    const want = new X509Certificate(renewed.certPem).serialNumber
    assert.ok(await eventually(async () => await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: 'localhost' }, () => { resolve(s.getPeerCertificate().serialNumber === want); s.end() })
      s.on('error', () => resolve(false))
    }), 10_000, 100), 'the renewed certificate is served')
    await assertOnlyForwardSecretAead(server.port, ca)
  }, dir)
})

test('--client-ca is reloaded like the serving certificate: a new client CA is used for new connections, a broken one is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nim-client-ca-'))
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
  for (const n of ['one', 'two']) {
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${n}-ca.key`, '-out', `${n}-ca.crt`, '-days', '1', '-subj', `/CN=client-ca-${n}`)
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', '/CN=kube-apiserver')
    ssl('x509', '-req', '-in', `${n}.csr`, '-CA', `${n}-ca.crt`, '-CAkey', `${n}-ca.key`, '-CAcreateserial', '-out', `${n}.crt`, '-days', '1')
  }
  const clientCa = join(dir, 'client-ca.crt')
  writeFileSync(clientCa, readFileSync(join(dir, 'one-ca.crt')))
  const certDir = join(dir, 'serving')
  try {
    await withServer({ clientCaFile: clientCa }, async (server, ca) => {
      const call = async (n: string): Promise<boolean> => {
        const agent = new Agent({ ca, cert: readFileSync(join(dir, `${n}.crt`)), key: readFileSync(join(dir, `${n}.key`)), keepAlive: false })
        try {
          return (await postReview(`https://127.0.0.1:${server.port}/validate`, review(autoscaled()), { ca, agent })).status === 200
        } catch {
          return false
        } finally {
          agent.destroy()
        }
      }
      assert.equal(await call('one'), true)
      assert.equal(await call('two'), false)
      writeFileSync(clientCa, readFileSync(join(dir, 'two-ca.crt')))
      assert.ok(await eventually(async () => await call('two'), 10_000, 100), 'the new client CA is trusted')
      assert.equal(await call('one'), false, 'the old one no longer is')
      writeFileSync(clientCa, 'not a certificate\n')
      await new Promise((resolve) => setTimeout(resolve, 3000))
      assert.equal(await call('two'), true, 'a broken client CA file is refused; the previous one stays')
    }, certDir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
