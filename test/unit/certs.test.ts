import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type Server } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { Command } from 'commander'
import forge from 'node-forge'

import {
  CertError, DAY_MS, certificateExpiry, createCa, ensureServingCerts, generateCertificates, issueServingCert, loadKeyPair,
  mergeCaBundle, parseDuration, randomSerialHex, splitPemCertificates
} from '../../src/certs/index.js'
import { registerCertsCommand, runGenerate, runInject, type GenerateFlags } from '../../src/cli/certs.js'
import { CliError } from '../../src/cli/errors.js'
import { handshake } from '../helpers/tls.js'

const svc = { service: 'nim-admission', namespace: 'nim-system' }
const svcName = 'nim-admission.nim-system.svc'
const serverAuth = '1.3.6.1.5.5.7.3.1'

const tmp = async (): Promise<string> => await mkdtemp(join(tmpdir(), 'nim-certs-'))
const x509 = (pem: string): X509Certificate => new X509Certificate(pem)
const keyUsage = (pem: string): Record<string, boolean> => forge.pki.certificateFromPem(pem).getExtension('keyUsage') as Record<string, boolean>
const coded = (code: string, ...fragments: string[]) => (err: unknown): boolean => {
  assert.ok(err instanceof CertError, `expected a CertError, got ${String(err)}`)
  assert.equal(err.code, code)
  for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} should mention ${f}`)
  return true
}

async function tlsServer (cert: string, key: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer({ cert, key, minVersion: 'TLSv1.2' }, (socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, close: async () => await new Promise<void>((resolve) => server.close(() => resolve())) }
}

const generated = generateCertificates(svc)

test('the serving certificate names the Service, is a TLS server leaf signed by the CA, and lives --days', () => {
  const started = Date.now()
  const leaf = x509(generated.certPem)
  const ca = x509(generated.caCertPem)
  assert.equal(leaf.subjectAltName, 'DNS:nim-admission, DNS:nim-admission.nim-system, DNS:nim-admission.nim-system.svc, DNS:nim-admission.nim-system.svc.cluster.local')
  assert.equal(leaf.checkHost(svcName), svcName)
  assert.equal(leaf.checkHost('nim-admission.other.svc'), undefined)
  assert.deepEqual(leaf.keyUsage, [serverAuth])
  assert.equal(leaf.ca, false)
  assert.ok(leaf.verify(ca.publicKey))
  assert.ok(leaf.checkIssued(ca))
  assert.ok(leaf.checkPrivateKey(createPrivateKey(generated.keyPem)))
  assert.deepEqual(pick(keyUsage(generated.certPem), 'digitalSignature', 'keyEncipherment', 'keyCertSign'), { digitalSignature: true, keyEncipherment: true, keyCertSign: false })
  assert.equal(ca.ca, true)
  assert.ok(ca.verify(ca.publicKey))
  assert.deepEqual(pick(keyUsage(generated.caCertPem), 'keyCertSign', 'cRLSign'), { keyCertSign: true, cRLSign: true })
  const days = (pem: string): number => (new Date(x509(pem).validTo).getTime() - started) / DAY_MS
  assert.ok(Math.abs(days(generated.certPem) - 365) < 0.01, `leaf lives ${days(generated.certPem)} days`)
  assert.ok(Math.abs(days(generated.caCertPem) - 3650) < 0.01, `CA lives ${days(generated.caCertPem)} days`)
  assert.ok(new Date(leaf.validFrom).getTime() <= started, 'valid from now (backdated for clock skew)')
  assert.equal(certificateExpiry(generated.certPem).getTime(), new Date(leaf.validTo).getTime())
})

function pick (o: Record<string, boolean>, ...keys: string[]): Record<string, boolean> {
  return Object.fromEntries(keys.map((k) => [k, o[k] === true]))
}

test('names are encoded as UTF8String, so Go\'s strict x509 parser (the apiserver) accepts the CA and the leaf', () => {
  // forge defaults to PrintableString, which cannot hold '@' and the like; Go then drops the CA from caBundle.
  for (const pem of [generated.caCertPem, generated.certPem]) {
    const cert = forge.pki.certificateFromPem(pem)
    for (const attr of [...cert.subject.attributes, ...cert.issuer.attributes]) {
      assert.equal(attr.valueTagClass, forge.asn1.Type.UTF8, `${attr.name ?? ''}=${String(attr.value)}`)
    }
  }
})

test('serials are positive, 128-bit and random', () => {
  const serials = Array.from({ length: 2000 }, () => randomSerialHex())
  assert.equal(new Set(serials).size, serials.length)
  for (const s of serials) {
    assert.equal(s.length, 32)
    assert.match(s, /^[4-7]/, 'top bit clear (positive), next bit set (no leading zero byte)')
  }
  const leaf = x509(generated.certPem).serialNumber
  const ca = x509(generated.caCertPem).serialNumber
  assert.equal(leaf.length, 32)
  assert.notEqual(leaf, ca)
  assert.notEqual(leaf, x509(generateCertificates(svc).certPem).serialNumber)
})

test('a TLS client that trusts the CA verifies the certificate against the Service DNS name', async () => {
  const server = await tlsServer(generated.certPem, generated.keyPem)
  try {
    const ok = await handshake(server.port, { ca: generated.caCertPem, servername: svcName })
    assert.equal(ok.authorized, true, ok.authorizationError)
    assert.equal(ok.serialNumber, x509(generated.certPem).serialNumber)
    const wrongName = await handshake(server.port, { ca: generated.caCertPem, servername: 'nim-admission.elsewhere.svc' })
    assert.equal(wrongName.authorized, false)
    assert.equal(wrongName.authorizationError, 'ERR_TLS_CERT_ALTNAME_INVALID')
    const otherCa = await handshake(server.port, { ca: createCa().certPem, servername: svcName })
    assert.equal(otherCa.authorized, false)
    assert.match(otherCa.authorizationError ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i)
  } finally {
    await server.close()
  }
})

test('extra --dns-name and --ip become SANs, and an existing CA can sign', () => {
  const again = generateCertificates({ ...svc, dnsNames: ['webhook.example.com'], ipAddresses: ['10.0.0.7', 'fd00::7'], ca: { certPem: generated.caCertPem, keyPem: generated.caKeyPem } })
  const leaf = x509(again.certPem)
  assert.equal(again.caCertPem, generated.caCertPem)
  assert.ok(leaf.verify(x509(generated.caCertPem).publicKey))
  assert.equal(leaf.checkHost('webhook.example.com'), 'webhook.example.com')
  assert.equal(leaf.checkIP('10.0.0.7'), '10.0.0.7')
  assert.equal(leaf.checkIP('fd00::7'), 'fd00::7')
  assert.throws(() => generateCertificates({ ipAddresses: ['300.1.1.1'] }), coded('NIMCERT_BAD_OPTION', '300.1.1.1'))
  assert.throws(() => generateCertificates({ service: 'x' }), coded('NIMCERT_BAD_OPTION', '--namespace'))
})

// Bad input: each a coded error whose message names the file and the fix.
test('loadKeyPair: an unreadable key is NIMCERT_UNREADABLE naming the file', async () => {
  const dir = await tmp()
  try {
    await writeFile(join(dir, 'tls.crt'), generated.certPem)
    assert.throws(() => loadKeyPair(join(dir, 'tls.crt'), join(dir, 'missing.key')), coded('NIMCERT_UNREADABLE', join(dir, 'missing.key'), 'ENOENT', 'check the path'))
    await mkdir(join(dir, 'dir.key'))
    assert.throws(() => loadKeyPair(join(dir, 'tls.crt'), join(dir, 'dir.key')), coded('NIMCERT_UNREADABLE', 'EISDIR'))
    await writeFile(join(dir, 'junk.key'), 'not a key')
    assert.throws(() => loadKeyPair(join(dir, 'tls.crt'), join(dir, 'junk.key')), coded('NIMCERT_INVALID_KEY', join(dir, 'junk.key'), 'PEM'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('loadKeyPair: a key that belongs to another certificate is NIMCERT_KEY_MISMATCH', async () => {
  const dir = await tmp()
  try {
    await writeFile(join(dir, 'tls.crt'), generated.certPem)
    await writeFile(join(dir, 'tls.key'), generated.caKeyPem)
    assert.throws(() => loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key')), coded('NIMCERT_KEY_MISMATCH', join(dir, 'tls.key'), 'does not match', 'regenerate'))
    await writeFile(join(dir, 'tls.key'), generated.keyPem)
    assert.equal(loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key')).serialNumber, x509(generated.certPem).serialNumber)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

const longAgo = new Date(Date.now() - 400 * DAY_MS)
const expiredCa = createCa({ now: longAgo, days: 30 })

test('loadKeyPair: an expired certificate is NIMCERT_EXPIRED', async () => {
  const dir = await tmp()
  try {
    const old = issueServingCert(expiredCa, { dnsNames: [svcName], days: 10, now: longAgo })
    await writeFile(join(dir, 'tls.crt'), old.certPem)
    await writeFile(join(dir, 'tls.key'), old.keyPem)
    assert.throws(() => loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key')), coded('NIMCERT_EXPIRED', join(dir, 'tls.crt'), 'certs generate'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('an expired CA cannot sign (generate --ca-cert) and cannot be injected (inject --ca-file)', async () => {
  assert.throws(() => generateCertificates({ ...svc, ca: { certPem: expiredCa.certPem, keyPem: expiredCa.keyPem } }), coded('NIMCERT_CA_EXPIRED', 'expired on'))
  const dir = await tmp()
  try {
    await writeFile(join(dir, 'ca.crt'), expiredCa.certPem)
    await writeFile(join(dir, 'ca.key'), expiredCa.keyPem)
    await assert.rejects(runGenerate({ ...svc, ...defaults, out: join(dir, 'out'), caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key') }, quiet), coded('NIMCERT_CA_EXPIRED', join(dir, 'ca.crt')))
    const noCluster = { ...quiet, kube: async () => { throw new Error('must not reach the cluster') } }
    await assert.rejects(runInject({ webhook: ['w'], caFile: join(dir, 'ca.crt') }, noCluster), coded('NIMCERT_CA_EXPIRED', join(dir, 'ca.crt'), 'certs generate'))
    // A leaf is not a CA.
    await writeFile(join(dir, 'leaf.crt'), generated.certPem)
    await writeFile(join(dir, 'leaf.key'), generated.keyPem)
    await assert.rejects(runGenerate({ ...svc, ...defaults, out: join(dir, 'out'), caCert: join(dir, 'leaf.crt'), caKey: join(dir, 'leaf.key') }, quiet), coded('NIMCERT_NOT_A_CA'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('CA bundles merge old and new CAs, drop expired ones and keep each CA once', () => {
  const oldCa = generated.caCertPem
  const newCa = createCa().certPem
  const merged = mergeCaBundle(expiredCa.certPem + oldCa, newCa + oldCa)
  assert.deepEqual(splitPemCertificates(merged.pem).map((p) => x509(p).fingerprint256), [x509(oldCa).fingerprint256, x509(newCa).fingerprint256])
  assert.equal(merged.expired.length, 1)
  assert.equal(merged.added.length, 1)
  assert.equal(merged.duplicates, 1)
  assert.equal(merged.changed, true)
  assert.equal(mergeCaBundle(merged.pem, newCa).changed, false)
})

test('parseDuration reads hours, days, combinations and bare days', () => {
  assert.equal(parseDuration('720h'), 30 * DAY_MS)
  assert.equal(parseDuration('30d'), 30 * DAY_MS)
  assert.equal(parseDuration('1h30m'), 90 * 60_000)
  assert.equal(parseDuration('45'), 45 * DAY_MS)
  assert.throws(() => parseDuration('3x', '--renew-before'), coded('NIMCERT_BAD_OPTION', '--renew-before', '3x'))
})

// `certs generate` against a directory.
const defaults = { caDays: 3650, days: 365 }
const quiet = { out: () => {}, warn: () => {} }
function capture (): { lines: string[]; warnings: string[]; out: (l: string) => void; warn: (l: string) => void } {
  const lines: string[] = []
  const warnings: string[] = []
  return { lines, warnings, out: (l) => lines.push(l), warn: (l) => warnings.push(l) }
}

test('generate writes ca.crt, ca.key, tls.crt, tls.key (keys 0600), and a re-run with a valid certificate does nothing', async () => {
  const dir = await tmp()
  try {
    const flags: GenerateFlags = { ...svc, ...defaults, out: dir }
    await runGenerate(flags, quiet)
    for (const [name, mode] of [['tls.key', 0o600], ['ca.key', 0o600], ['tls.crt', 0o644], ['ca.crt', 0o644]] as const) {
      assert.equal((await stat(join(dir, name))).mode & 0o777, mode, name)
    }
    const pair = loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key'))
    assert.ok(pair.x509.verify(x509(await readFile(join(dir, 'ca.crt'), 'utf8')).publicKey))
    const before = await snapshot(dir)
    const io = capture()
    const plan = await runGenerate(flags, io)
    assert.equal(plan.changed, false)
    assert.deepEqual(await snapshot(dir), before)
    assert.match(io.lines.join('\n'), /nothing to do/)
    // A new name makes the certificate inadequate: it is re-issued by the same CA.
    const more = await runGenerate({ ...flags, dnsName: ['extra.example.com'] }, quiet)
    assert.equal(more.servingIssued, true)
    assert.equal(more.caCreated, undefined)
    assert.equal(more.serving.checkHost('extra.example.com'), 'extra.example.com')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

async function snapshot (dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']) out[name] = `${await readFile(join(dir, name), 'utf8')}@${(await stat(join(dir, name))).mtimeMs}`
  return out
}

test('--renew-before renews the serving certificate with the same CA, so caBundle need not change', async () => {
  const dir = await tmp()
  try {
    const flags: GenerateFlags = { ...svc, ...defaults, out: dir }
    await runGenerate(flags, quiet)
    const ca = await readFile(join(dir, 'ca.crt'), 'utf8')
    const oldSerial = loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key')).serialNumber
    const unchanged = await runGenerate({ ...flags, renewBefore: 300 * DAY_MS }, quiet)
    assert.equal(unchanged.changed, false, '365 days left is more than 300')
    const io = capture()
    const plan = await runGenerate({ ...flags, renewBefore: 400 * DAY_MS }, io)
    assert.equal(plan.servingIssued, true)
    assert.match(io.lines[0] ?? '', /expires in 364 days \(renew-before 400 days\)/)
    const pair = loadKeyPair(join(dir, 'tls.crt'), join(dir, 'tls.key'))
    assert.notEqual(pair.serialNumber, oldSerial)
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), ca, 'ca.crt untouched')
    assert.ok(pair.x509.verify(x509(ca).publicKey))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a CA rotation publishes the new CA next to the old one before any certificate uses it, then drops the old one once expired', async () => {
  const dir = await tmp()
  const t0 = Date.now()
  const at = (days: number) => ({ ...quiet, now: () => new Date(t0 + days * DAY_MS) })
  const flags: GenerateFlags = { ...svc, caDays: 10, days: 2, out: dir }
  const bundle = async (): Promise<string[]> => splitPemCertificates(await readFile(join(dir, 'ca.crt'), 'utf8')).map((p) => x509(p).fingerprint256)
  const issuer = async (): Promise<string> => {
    const leaf = x509(await readFile(join(dir, 'tls.crt'), 'utf8'))
    return splitPemCertificates(await readFile(join(dir, 'ca.crt'), 'utf8')).map(x509).find((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey))?.fingerprint256 ?? 'none'
  }
  try {
    const first = await runGenerate(flags, at(0))
    const ca1 = first.caCreated?.fingerprint256
    // Day 8: CA1 has 2 days left (< 10/3): CA2 joins the bundle; the renewal that is due still uses CA1.
    const second = await runGenerate(flags, at(8))
    const ca2 = second.caCreated?.fingerprint256
    assert.ok(ca1 !== undefined && ca2 !== undefined && ca1 !== ca2)
    assert.deepEqual(await bundle(), [ca1, ca2])
    assert.equal(await issuer(), ca1, 'the run that creates a CA does not sign with it')
    assert.equal((await runGenerate(flags, at(8.1))).changed, false, 'mid-rotation re-runs are idempotent')
    // Day 9.5: the serving certificate is due again and CA1 is nearly gone: CA2 (published since day 8) signs.
    const third = await runGenerate(flags, at(9.5))
    assert.equal(third.caCreated, undefined)
    assert.equal(await issuer(), ca2)
    assert.deepEqual(await bundle(), [ca1, ca2])
    // Day 10.5: CA1 has expired: it leaves ca.crt and its key leaves ca.key.
    const fourth = await runGenerate(flags, at(10.5))
    assert.equal(fourth.changed, true)
    assert.equal(fourth.servingIssued, false)
    assert.deepEqual(await bundle(), [ca2])
    assert.equal((await readFile(join(dir, 'ca.key'), 'utf8')).match(/BEGIN PRIVATE KEY/g)?.length, 1)
    assert.equal((await runGenerate(flags, at(10.6))).changed, false)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('with the CA key lost, a due renewal makes a new CA and warns to inject before the server loads it', async () => {
  const dir = await tmp()
  try {
    const flags: GenerateFlags = { ...svc, ...defaults, out: dir }
    await runGenerate(flags, quiet)
    await rm(join(dir, 'ca.key'))
    const io = capture()
    const plan = await runGenerate({ ...flags, renewBefore: 400 * DAY_MS }, io)
    assert.ok(plan.caCreated !== undefined)
    assert.equal(plan.issuer?.fingerprint256, plan.caCreated.fingerprint256)
    assert.equal(splitPemCertificates(plan.state.caBundle).length, 2, 'the old CA stays trusted')
    assert.match(io.warnings.join('\n'), /certs inject` before the server loads it/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('ensureServingCerts makes localhost certificates once and a TLS client to 127.0.0.1 accepts them', async () => {
  const dir = await tmp()
  try {
    const made = await ensureServingCerts({ dir, dnsNames: ['dev.local'] })
    assert.equal(made.created, true)
    assert.equal((await stat(made.keyPath)).mode & 0o777, 0o600)
    const pem = await readFile(made.certPath, 'utf8')
    const leaf = x509(pem)
    assert.equal(leaf.checkHost('localhost'), 'localhost')
    assert.equal(leaf.checkHost('dev.local'), 'dev.local')
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1')
    assert.equal(leaf.checkIP('::1'), '::1')
    assert.equal((await ensureServingCerts({ dir, dnsNames: ['dev.local'] })).created, false)
    const server = await tlsServer(pem, await readFile(made.keyPath, 'utf8'))
    try {
      const viaIp = await handshake(server.port, { ca: await readFile(made.caPath, 'utf8') })
      assert.equal(viaIp.authorized, true, viaIp.authorizationError)
    } finally {
      await server.close()
    }
    // Within renewBefore: renewed.
    assert.equal((await ensureServingCerts({ dir, dnsNames: ['dev.local'], renewBeforeDays: 400 })).created, true)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the registered commander command runs generate, and a bad key fails as a one-line CliError', async () => {
  const dir = await tmp()
  try {
    const io = capture()
    const program = new Command().exitOverride()
    registerCertsCommand(program, io)
    await program.parseAsync(['node', 'nim-admission', 'certs', 'generate', '--service', 'svc', '--namespace', 'ns', '--out', dir, '--dns-name', 'a.example', '--dns-name', 'b.example', '--days', '30'])
    const leaf = x509(await readFile(join(dir, 'tls.crt'), 'utf8'))
    assert.equal(leaf.checkHost('svc.ns.svc'), 'svc.ns.svc')
    assert.equal(leaf.checkHost('b.example'), 'b.example')
    assert.match(io.lines.at(-1) ?? '', /^next: nim-admission certs inject/)

    await writeFile(join(dir, 'other.key'), generated.keyPem)
    const again = new Command().exitOverride()
    registerCertsCommand(again, quiet)
    await assert.rejects(again.parseAsync(['node', 'nim-admission', 'certs', 'generate', '--service', 'svc', '--namespace', 'ns', '--out', join(dir, 'x'), '--ca-cert', join(dir, 'ca.crt'), '--ca-key', join(dir, 'other.key')]),
      (err: unknown) => {
        assert.ok(err instanceof CliError)
        assert.equal(err.exitCode, 1)
        assert.match(err.message, /^NIMCERT_KEY_MISMATCH: CA key .*other\.key: the key does not belong to/)
        assert.ok(!err.message.includes('\n'))
        return true
      })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
