// Loading and checking a serving key pair: readable, parseable, the key is the certificate's key, and the
// certificate is valid now. Used by `serve` at start and by the TLS reloader before every swap.
import { readFileSync } from 'node:fs'
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'

import { CertError, reason } from './errors.js'
import { notAfter, notBefore, parseCertificate } from './pem.js'

export interface KeyPair {
  /** The certificate file's text (leaf first, chain after it if any). */
  cert: string
  key: string
  x509: X509Certificate
  notBefore: Date
  notAfter: Date
  /** Upper-case hex, as `tls.TLSSocket.getPeerCertificate().serialNumber` prints it. */
  serialNumber: string
}

/** Reads a PEM file; a missing or unreadable file is NIMCERT_UNREADABLE naming the file. */
export function readPemFile (path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new CertError('NIMCERT_UNREADABLE', `cannot read ${what} ${path} (${reason(err)}); check the path, the mount and that the file is readable by this user`, { subject: path, cause: err })
  }
}

export interface VerifyOptions {
  /** Where cert and key came from, for messages; default `certificate`/`key`. */
  certName?: string
  keyName?: string
  now?: Date
  /** Accept an expired or not-yet-valid certificate (the key must still match). */
  allowExpired?: boolean
}

export function parsePrivateKey (pem: string, name: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch (err) {
    throw new CertError('NIMCERT_INVALID_KEY', `${name}: not an unencrypted PEM private key (${(err as Error).message}); give the key in PEM (PKCS#1, PKCS#8 or SEC1) without a passphrase`, { subject: name, cause: err })
  }
}

/** Checks a PEM cert and key that belong together; throws a CertError naming the part at fault. */
export function verifyKeyPair (certPem: string, keyPem: string, opts: VerifyOptions = {}): KeyPair {
  const certName = opts.certName ?? 'certificate'
  const keyName = opts.keyName ?? 'key'
  const now = opts.now ?? new Date()
  const x509 = parseCertificate(certPem, certName)
  const key = parsePrivateKey(keyPem, keyName)
  if (!x509.checkPrivateKey(key)) {
    throw new CertError('NIMCERT_KEY_MISMATCH', `${keyName} does not match ${certName} (serial ${x509.serialNumber}): the key belongs to another certificate; write the key that was generated with this certificate, or regenerate both`, { subject: keyName })
  }
  const pair: KeyPair = { cert: certPem, key: keyPem, x509, notBefore: notBefore(x509), notAfter: notAfter(x509), serialNumber: x509.serialNumber }
  if (opts.allowExpired !== true) {
    if (pair.notAfter <= now) {
      throw new CertError('NIMCERT_EXPIRED', `${certName} expired on ${pair.notAfter.toISOString()} (serial ${x509.serialNumber}); renew it with \`nim-admission certs generate\``, { subject: certName })
    }
    if (pair.notBefore > now) {
      throw new CertError('NIMCERT_NOT_YET_VALID', `${certName} is not valid before ${pair.notBefore.toISOString()}; check the system clock`, { subject: certName })
    }
  }
  return pair
}

/** Reads and checks a cert/key pair from files. */
export function loadKeyPair (certPath: string, keyPath: string, opts: Omit<VerifyOptions, 'certName' | 'keyName'> = {}): KeyPair {
  const cert = readPemFile(certPath, 'certificate')
  const key = readPemFile(keyPath, 'private key')
  return verifyKeyPair(cert, key, { ...opts, certName: `certificate ${certPath}`, keyName: `private key ${keyPath}` })
}
