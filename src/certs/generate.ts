// Making certificates: a self-signed CA and serving certificates it signs. node-forge builds and signs the
// X.509; Node's native crypto makes the RSA keys (forge's pure-JS key generation takes seconds).
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import forge from 'node-forge'

import { CertError } from './errors.js'
import { DAY_MS } from './expiry.js'
import { notAfter, notBefore, parseCertificate } from './pem.js'

// Go's x509 (the apiserver) rejects characters outside PrintableString, forge's default tag for names.
const UTF8 = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class

export const generateDefaults = {
  caDays: 3650,
  days: 365,
  keyBits: 2048,
  /** notBefore is backdated this much, so a peer whose clock is a little behind accepts a fresh certificate. */
  backdateMs: 5 * 60 * 1000
} as const

/** The localhost names every development certificate carries. */
export const localNames = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] } as const

export interface PemPair { certPem: string; keyPem: string }

/** A CA ready to sign: its PEM, Node's parse of it, and forge's view of cert and key. */
export interface SigningCa extends PemPair {
  x509: X509Certificate
  cert: forge.pki.Certificate
  key: forge.pki.rsa.PrivateKey
}

/** The DNS names the apiserver may use for a Service: S, S.N, S.N.svc, S.N.svc.cluster.local. */
export function serviceDnsNames (service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`]
}

const dnsName = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Validated, lower-cased, de-duplicated SAN lists. */
export function normaliseNames (dnsNames: readonly string[], ipAddresses: readonly string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dns = [...new Set(dnsNames.map((n) => n.trim().toLowerCase()))]
  for (const name of dns) {
    if (name.length > 253 || !dnsName.test(name)) {
      throw new CertError('NIMCERT_BAD_OPTION', `--dns-name: ${JSON.stringify(name)} is not a valid DNS name`)
    }
  }
  const ips = [...new Set(ipAddresses.map((ip) => ip.trim()))]
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new CertError('NIMCERT_BAD_OPTION', `--ip: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`)
  }
  return { dnsNames: dns, ipAddresses: ips }
}

/** A positive 128-bit serial: 16 random bytes, top bit clear (DER INTEGERs are signed), second-top set (no leading zero byte). */
export function randomSerialHex (): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40
  return bytes.toString('hex')
}

function newRsaKey (bits: number): { forgeKey: forge.pki.rsa.PrivateKey; keyPem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  return { forgeKey: toForgeKey(privateKey), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }
}

function toForgeKey (key: KeyObject): forge.pki.rsa.PrivateKey {
  return forge.pki.privateKeyFromPem(key.export({ type: 'pkcs1', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey
}

function publicOf (key: forge.pki.rsa.PrivateKey): forge.pki.rsa.PublicKey {
  return forge.pki.setRsaPublicKey(key.n, key.e)
}

function validity (cert: forge.pki.Certificate, now: Date, days: number, cap?: Date): void {
  cert.validity.notBefore = new Date(now.getTime() - generateDefaults.backdateMs)
  const end = new Date(now.getTime() + days * DAY_MS)
  cert.validity.notAfter = cap !== undefined && cap < end ? cap : end
}

function toSigningCa (pair: PemPair, key: forge.pki.rsa.PrivateKey): SigningCa {
  return { ...pair, x509: new X509Certificate(pair.certPem), cert: forge.pki.certificateFromPem(pair.certPem), key }
}

/** A new self-signed CA (RSA, cA=true with pathLen 0, keyCertSign+cRLSign, a unique subject per CA). */
export function createCa (opts: { now?: Date; days?: number; keyBits?: number; commonName?: string } = {}): SigningCa {
  const now = opts.now ?? new Date()
  const { forgeKey, keyPem } = newRsaKey(opts.keyBits ?? generateDefaults.keyBits)
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicOf(forgeKey)
  cert.serialNumber = randomSerialHex()
  validity(cert, now, opts.days ?? generateDefaults.caDays)
  // A unique name per CA: during a rotation old and new CA sit side by side in the caBundle, and chain
  // building that looks up issuers by name must not confuse them.
  const cn = opts.commonName ?? `nim-admission-ca ${Math.floor(now.getTime() / 1000)}-${randomBytes(3).toString('hex')}`
  const name = [{ name: 'commonName', value: cn, valueTagClass: UTF8 }]
  cert.setSubject(name)
  cert.setIssuer(name)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' }
  ])
  cert.sign(forgeKey, forge.md.sha256.create())
  return toSigningCa({ certPem: forge.pki.certificateToPem(cert), keyPem }, forgeKey)
}

export interface LoadCaNames { cert: string; key: string }

/**
 * Checks a CA given as PEM (it is a CA, valid now, RSA, and the key is its key) and makes it ready to
 * sign. `names` say where cert and key came from, for the error messages.
 */
export function loadSigningCa (ca: PemPair, opts: { now?: Date; names?: LoadCaNames } = {}): SigningCa {
  const now = opts.now ?? new Date()
  const names = opts.names ?? { cert: 'CA certificate', key: 'CA key' }
  const x509 = parseCertificate(ca.certPem, names.cert)
  if (!x509.ca) {
    throw new CertError('NIMCERT_NOT_A_CA', `${names.cert}: ${x509.subject.replace(/\n/g, ', ')} is not a CA certificate (basicConstraints cA is not true); give the CA that signs serving certificates`, { subject: names.cert })
  }
  if (notAfter(x509) <= now) {
    throw new CertError('NIMCERT_CA_EXPIRED', `${names.cert}: the CA expired on ${notAfter(x509).toISOString()}; make a new CA (run certs generate without --ca-cert/--ca-key) or renew it`, { subject: names.cert })
  }
  if (notBefore(x509) > now) {
    throw new CertError('NIMCERT_NOT_YET_VALID', `${names.cert}: the CA is not valid before ${notBefore(x509).toISOString()}; check the system clock`, { subject: names.cert })
  }
  let key: KeyObject
  try {
    key = createPrivateKey(ca.keyPem)
  } catch (err) {
    throw new CertError('NIMCERT_INVALID_KEY', `${names.key}: not an unencrypted PEM private key (${(err as Error).message}); give the CA's private key in PEM, without a passphrase`, { subject: names.key, cause: err })
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new CertError('NIMCERT_UNSUPPORTED_KEY', `${names.key}: the CA key is ${key.asymmetricKeyType ?? 'unknown'}, only RSA CA keys can sign here; use an RSA CA`, { subject: names.key })
  }
  if (!x509.checkPrivateKey(key)) {
    throw new CertError('NIMCERT_KEY_MISMATCH', `${names.key}: the key does not belong to ${names.cert}; give the key that was generated with this CA`, { subject: names.key })
  }
  try {
    return { ...ca, x509, cert: forge.pki.certificateFromPem(ca.certPem), key: toForgeKey(key) }
  } catch (err) {
    throw new CertError('NIMCERT_INVALID_CERT', `${names.cert}: node-forge cannot read this CA certificate (${(err as Error).message})`, { subject: names.cert, cause: err })
  }
}

export interface IssueOptions {
  dnsNames: readonly string[]
  ipAddresses?: readonly string[]
  days?: number
  now?: Date
  keyBits?: number
}

/**
 * A serving certificate signed by `ca`: SANs as given (CN: the `.svc` name, else the first name), digitalSignature +
 * keyEncipherment, serverAuth, cA=false. Its notAfter never passes the CA's: a certificate that outlives
 * its issuer fails verification anyway, and the shorter date makes renewal come in time.
 */
export function issueServingCert (ca: SigningCa, opts: IssueOptions): PemPair {
  const now = opts.now ?? new Date()
  const { dnsNames, ipAddresses } = normaliseNames(opts.dnsNames, opts.ipAddresses ?? [])
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new CertError('NIMCERT_BAD_OPTION', 'a serving certificate needs at least one DNS name or IP address: give --service and --namespace, --dns-name or --ip')
  }
  const { forgeKey, keyPem } = newRsaKey(opts.keyBits ?? generateDefaults.keyBits)
  const cert = forge.pki.createCertificate()
  cert.publicKey = publicOf(forgeKey)
  cert.serialNumber = randomSerialHex()
  validity(cert, now, opts.days ?? generateDefaults.days, notAfter(ca.x509))
  cert.setSubject([{ name: 'commonName', value: dnsNames.find((n) => n.endsWith('.svc')) ?? dnsNames[0] ?? ipAddresses[0] ?? '', valueTagClass: UTF8 }])
  cert.setIssuer(ca.cert.subject.attributes)
  const ski = ca.cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ipAddresses.map((ip) => ({ type: 7, ip }))]
    },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: ski?.subjectKeyIdentifier !== undefined
        ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
        : ca.cert.generateSubjectKeyIdentifier().getBytes()
    }
  ])
  cert.sign(ca.key, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem }
}

export interface GenerateOptions {
  service?: string
  namespace?: string
  dnsNames?: string[]
  ipAddresses?: string[]
  caDays?: number
  days?: number
  /** Sign with this CA instead of making one. */
  ca?: { certPem: string; keyPem: string }
  now?: Date
}

export interface GeneratedCertificates { caCertPem: string; caKeyPem: string; certPem: string; keyPem: string }

/** The SAN lists for a service and/or extra names. */
export function requestedNames (opts: Pick<GenerateOptions, 'service' | 'namespace' | 'dnsNames' | 'ipAddresses'>): { dnsNames: string[]; ipAddresses: string[] } {
  if ((opts.service === undefined) !== (opts.namespace === undefined)) {
    throw new CertError('NIMCERT_BAD_OPTION', '--service and --namespace go together: the certificate names <service>.<namespace>.svc')
  }
  const dns = opts.service !== undefined && opts.namespace !== undefined ? serviceDnsNames(opts.service, opts.namespace) : []
  return normaliseNames([...dns, ...(opts.dnsNames ?? [])], opts.ipAddresses ?? [])
}

export function checkLifetimes (caDays: number, days: number): void {
  if (!(Number.isFinite(caDays) && caDays > 0)) throw new CertError('NIMCERT_BAD_OPTION', `--ca-days: expected a positive number of days, got ${caDays}`)
  if (!(Number.isFinite(days) && days > 0)) throw new CertError('NIMCERT_BAD_OPTION', `--days: expected a positive number of days, got ${days}`)
  if (days > caDays) throw new CertError('NIMCERT_BAD_OPTION', `--days (${days}) must not exceed --ca-days (${caDays}): a serving certificate cannot outlive its CA`)
}

/** A CA (or the given one) and a serving certificate for the service; no files, no state. */
export function generateCertificates (opts: GenerateOptions = {}): GeneratedCertificates {
  const now = opts.now ?? new Date()
  const caDays = opts.caDays ?? generateDefaults.caDays
  const days = opts.days ?? generateDefaults.days
  if (opts.ca === undefined) checkLifetimes(caDays, days)
  const names = requestedNames(opts)
  const ca = opts.ca !== undefined ? loadSigningCa(opts.ca, { now }) : createCa({ now, days: caDays })
  const serving = issueServingCert(ca, { ...names, days, now })
  return { caCertPem: ca.certPem, caKeyPem: ca.keyPem, certPem: serving.certPem, keyPem: serving.keyPem }
}
