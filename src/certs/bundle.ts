// CA bundles (ca.crt, a webhook's caBundle): merge, de-duplicate, drop what has expired. During a CA
// rotation a bundle holds the old and the new CA, so certificates from either verify.
import { X509Certificate } from 'node:crypto'

import { CertError } from './errors.js'
import { commonName, notAfter, splitPemCertificates } from './pem.js'

export interface BundleCert { pem: string; x509: X509Certificate }

export function parseBundle (pem: string | undefined): { certs: BundleCert[]; unparseable: number } {
  const certs: BundleCert[] = []
  let unparseable = 0
  for (const block of splitPemCertificates(pem ?? '')) {
    try {
      certs.push({ pem: block, x509: new X509Certificate(block) })
    } catch {
      unparseable++
    }
  }
  return { certs, unparseable }
}

export interface BundleMerge {
  /** The merged bundle ('' when empty). */
  pem: string
  certs: BundleCert[]
  added: BundleCert[]
  expired: BundleCert[]
  duplicates: number
  unparseable: number
  /** The certificate set differs from the existing bundle's (or the existing one had junk in it). */
  changed: boolean
}

/**
 * `existing` followed by `additions`, minus expired certificates, each certificate once (by SHA-256
 * fingerprint), in first-seen order. Unparseable blocks in `existing` are dropped.
 */
export function mergeCaBundle (existing: string | undefined, additions: string | readonly string[], opts: { now?: Date } = {}): BundleMerge {
  const now = opts.now ?? new Date()
  const old = parseBundle(existing)
  const extra = parseBundle(typeof additions === 'string' ? additions : additions.join(''))
  const seen = new Set<string>()
  const certs: BundleCert[] = []
  const expired: BundleCert[] = []
  const added: BundleCert[] = []
  let duplicates = 0
  const oldPrints = new Set(old.certs.map((c) => c.x509.fingerprint256))
  for (const entry of [...old.certs, ...extra.certs]) {
    const print = entry.x509.fingerprint256
    if (seen.has(print)) { duplicates++; continue }
    seen.add(print)
    if (notAfter(entry.x509) <= now) { expired.push(entry); continue }
    certs.push(entry)
    if (!oldPrints.has(print)) added.push(entry)
  }
  const changed = old.unparseable > 0 || added.length > 0 || certs.length !== old.certs.length
  return { pem: certs.map((c) => c.pem).join(''), certs, added, expired, duplicates, unparseable: old.unparseable + extra.unparseable, changed }
}

/**
 * The usable part of a CA bundle that is about to be trusted: at least one certificate, not all expired.
 * `subject` names the source in messages.
 */
export function requireUsableBundle (pem: string, subject: string, opts: { now?: Date } = {}): BundleMerge {
  const merged = mergeCaBundle(undefined, pem, opts)
  if (merged.certs.length === 0) {
    if (merged.expired.length > 0) {
      const names = merged.expired.map((c) => `${commonName(c.x509)} (expired ${notAfter(c.x509).toISOString()})`).join(', ')
      throw new CertError('NIMCERT_CA_EXPIRED', `${subject}: every CA in it has expired: ${names}; run \`nim-admission certs generate\` to make a new CA first`, { subject })
    }
    throw new CertError('NIMCERT_INVALID_CERT', `${subject}: no PEM certificate found; give the CA bundle (ca.crt) written by \`nim-admission certs generate\``, { subject })
  }
  return merged
}

export const describeBundle = (certs: readonly BundleCert[]): string =>
  certs.map((c) => `${commonName(c.x509)} (until ${notAfter(c.x509).toISOString().slice(0, 10)})`).join(', ')
