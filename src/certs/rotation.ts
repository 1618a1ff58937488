// The rotation plan: from what is stored (files or Secrets) to what should be stored, with no I/O.
//
// The story (also in `certs generate --help`):
// - Re-running with a valid serving certificate does nothing. It is renewed when less than renewBefore is
//   left (default: 30 days, or a third of its lifetime if shorter), when its key does not match, when it
//   lacks a requested name, or when no CA in ca.crt signed it.
// - A renewal re-signs with the current CA while that CA is valid, so the caBundle need not change.
// - The CA is rotated caRenewBefore ahead of its expiry (default: a third of its lifetime): the new CA
//   is ADDED to ca.crt next to the old one (its key to ca.key), but the run that creates it does not sign
//   with it. `certs inject` then publishes both; serving certificates move to the new CA at their next
//   renewal, by which time every caBundle trusts it. Expired CAs leave ca.crt (and caBundles) on the next
//   run. Only when no published CA can sign (first run, all expired, keys lost) does a new CA sign at
//   once; that run says to inject before the server loads the new pair.
// - Serving certificates never outlive the CA that signed them (notAfter is capped at the CA's).
import { createPrivateKey, type X509Certificate } from 'node:crypto'

import { describeBundle, mergeCaBundle, type BundleCert } from './bundle.js'
import { CertError, isCertError } from './errors.js'
import { DAY_MS, describeRemaining } from './expiry.js'
import { checkLifetimes, createCa, issueServingCert, loadSigningCa, type PemPair, type SigningCa } from './generate.js'
import { verifyKeyPair } from './pair.js'
import { commonName, issuedBy, notAfter, notBefore } from './pem.js'

/** What is stored: `ca.crt`, `ca.key`, `tls.crt`, `tls.key` (any may be missing). */
export interface CertState {
  caBundle?: string
  caKeys?: string
  cert?: string
  key?: string
}

export interface RotationOptions {
  dnsNames: readonly string[]
  ipAddresses: readonly string[]
  caDays: number
  days: number
  renewBeforeMs?: number
  caRenewBeforeMs?: number
  /** Sign with this CA (kept outside this tool) instead of managing one. */
  ca?: PemPair
  caNames?: { cert: string; key: string }
  now?: Date
}

export interface RotationPlan {
  state: Required<CertState>
  changed: boolean
  caCreated?: X509Certificate
  servingIssued: boolean
  serving: X509Certificate
  /** The CA in the bundle that signed the serving certificate. */
  issuer?: X509Certificate
  /** CAs in the resulting ca.crt. */
  bundle: BundleCert[]
  notes: string[]
  warnings: string[]
}

export const defaultRenewBeforeMs = (days: number): number => Math.min(30 * DAY_MS, (days * DAY_MS) / 3)
export const defaultCaRenewBeforeMs = (caDays: number): number => (caDays * DAY_MS) / 3

const keyBlock = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g

interface OwnedCa { entry: BundleCert; keyPem: string }

/** Pairs each key in ca.key with its CA in the bundle; keys without a (valid, CA) certificate are dropped. */
function ownedCas (bundle: readonly BundleCert[], caKeys: string | undefined, now: Date): OwnedCa[] {
  const owned: OwnedCa[] = []
  for (const keyPem of caKeys?.match(keyBlock) ?? []) {
    let key
    try { key = createPrivateKey(keyPem) } catch { continue }
    const entry = bundle.find((c) => c.x509.ca && notBefore(c.x509) <= now && c.x509.checkPrivateKey(key))
    if (entry !== undefined && !owned.some((o) => o.entry === entry)) owned.push({ entry, keyPem: `${keyPem.trim()}\n` })
  }
  return owned
}

const newestFirst = (a: OwnedCa, b: OwnedCa): number => notBefore(b.entry.x509).getTime() - notBefore(a.entry.x509).getTime()
const days = (ms: number): string => `${+(ms / DAY_MS).toFixed(2)} days`

/** Why the stored serving certificate must be replaced, or undefined when it can stay. */
function servingProblem (state: CertState, bundle: readonly BundleCert[], opts: RotationOptions, renewBeforeMs: number, now: Date, external?: SigningCa): string | undefined {
  if (state.cert === undefined || state.key === undefined) return 'no serving certificate yet'
  let x509: X509Certificate
  try {
    x509 = verifyKeyPair(state.cert, state.key, { certName: 'tls.crt', keyName: 'tls.key', now }).x509
  } catch (err) {
    if (isCertError(err)) return `the stored pair is unusable: ${err.message.split(';')[0] ?? err.code}`
    throw err
  }
  const left = notAfter(x509).getTime() - now.getTime()
  if (left < renewBeforeMs) return `it expires in ${describeRemaining(left)} (renew-before ${days(renewBeforeMs)})`
  if (external !== undefined && !issuedBy(x509, external.x509)) return 'it is not signed by the given CA'
  if (!bundle.some((c) => issuedBy(x509, c.x509))) return 'no CA in ca.crt signed it'
  const missing = [
    ...opts.dnsNames.filter((n) => x509.checkHost(n, { subject: 'never', wildcards: false }) === undefined),
    ...opts.ipAddresses.filter((ip) => x509.checkIP(ip) === undefined)
  ]
  if (missing.length > 0) return `it does not name ${missing.join(', ')}`
  return undefined
}

export function planRotation (state: CertState, opts: RotationOptions): RotationPlan {
  const now = opts.now ?? new Date()
  if (opts.ca === undefined) checkLifetimes(opts.caDays, opts.days)
  const renewBeforeMs = opts.renewBeforeMs ?? defaultRenewBeforeMs(opts.days)
  const caRenewBeforeMs = opts.caRenewBeforeMs ?? defaultCaRenewBeforeMs(opts.caDays)
  if (!(renewBeforeMs >= 0)) throw new CertError('NIMCERT_BAD_OPTION', '--renew-before: expected a duration of 0 or more')
  if (!(caRenewBeforeMs >= 0)) throw new CertError('NIMCERT_BAD_OPTION', '--ca-renew-before: expected a duration of 0 or more')
  const notes: string[] = []
  const warnings: string[] = []

  let merged = mergeCaBundle(state.caBundle, [], { now })
  let bundleChanged = merged.changed
  const hadCas = merged.certs.length > 0
  for (const gone of merged.expired) notes.push(`dropped expired CA ${commonName(gone.x509)} (expired ${notAfter(gone.x509).toISOString()}) from ca.crt`)
  if (merged.unparseable > 0) warnings.push(`dropped ${merged.unparseable} unparseable certificate block(s) from ca.crt`)
  const owned = ownedCas(merged.certs, state.caKeys, now)
  const byAge = [...owned].sort(newestFirst)

  let signer: SigningCa | undefined
  let external: SigningCa | undefined
  let fresh: SigningCa | undefined
  if (opts.ca !== undefined) {
    external = loadSigningCa(opts.ca, { now, ...(opts.caNames === undefined ? {} : { names: opts.caNames }) })
    signer = external
    merged = mergeCaBundle(merged.pem, external.certPem, { now })
    bundleChanged ||= merged.changed
  } else {
    const newest = byAge[0]
    const left = newest === undefined ? 0 : notAfter(newest.entry.x509).getTime() - now.getTime()
    if (newest === undefined || left < caRenewBeforeMs) {
      fresh = createCa({ now, days: opts.caDays })
      merged = mergeCaBundle(merged.pem, fresh.certPem, { now })
      bundleChanged = true
      notes.push(newest === undefined
        ? `created CA ${commonName(fresh.x509)}, valid until ${notAfter(fresh.x509).toISOString()}`
        : `created CA ${commonName(fresh.x509)} next to ${commonName(newest.entry.x509)}, which expires in ${describeRemaining(left)} (ca-renew-before ${days(caRenewBeforeMs)}); ca.crt holds both`)
    }
    const published = byAge.find((o) => notAfter(o.entry.x509).getTime() - now.getTime() > renewBeforeMs)
    const chosen = published ?? (fresh === undefined ? byAge[0] : undefined)
    signer = chosen !== undefined
      ? loadSigningCa({ certPem: chosen.entry.pem, keyPem: chosen.keyPem }, { now, names: { cert: 'ca.crt', key: 'ca.key' } })
      : fresh
  }
  if (signer === undefined) throw new Error('planRotation: no signer (unreachable)')

  const problem = servingProblem(state, merged.certs, opts, renewBeforeMs, now, external)
  let cert = state.cert ?? ''
  let key = state.key ?? ''
  if (problem !== undefined) {
    const issued = issueServingCert(signer, { dnsNames: opts.dnsNames, ipAddresses: opts.ipAddresses, days: opts.days, now })
    cert = issued.certPem
    key = issued.keyPem
    const capped = notAfter(signer.x509).getTime() < now.getTime() + opts.days * DAY_MS
    notes.push(`issued serving certificate for ${[...opts.dnsNames, ...opts.ipAddresses].join(', ')} signed by ${commonName(signer.x509)}: ${problem}${capped ? ` (valid only until the CA expires, ${notAfter(signer.x509).toISOString()})` : ''}`)
    if (signer === fresh && hadCas) {
      warnings.push('no published CA could sign, so the new serving certificate is signed by the CA created in this run: run `nim-admission certs inject` before the server loads it, or the apiserver fails with "x509: certificate signed by unknown authority"')
    }
  } else if (fresh !== undefined) {
    notes.push(`kept the serving certificate (signed by the old CA); run \`nim-admission certs inject\` now: serving certificates move to ${commonName(fresh.x509)} at their next renewal`)
  }

  const keys = [...owned.map((o) => o.keyPem), ...(fresh === undefined ? [] : [fresh.keyPem])].join('')
  const next: Required<CertState> = { caBundle: merged.pem, caKeys: keys, cert, key }
  const oldKeys = (state.caKeys?.match(keyBlock) ?? []).map((k) => `${k.trim()}\n`).join('')
  const changed = problem !== undefined || bundleChanged || keys !== oldKeys
  const serving = verifyKeyPair(cert, key, { now, allowExpired: true }).x509
  if (!changed) {
    notes.push(`serving certificate valid until ${notAfter(serving).toISOString()} (${describeRemaining(notAfter(serving).getTime() - now.getTime())} left, renew-before ${days(renewBeforeMs)}); CA bundle: ${describeBundle(merged.certs)}: nothing to do`)
  }
  const result: RotationPlan = { state: next, changed, servingIssued: problem !== undefined, serving, bundle: merged.certs, notes, warnings }
  const issuer = merged.certs.find((c) => issuedBy(serving, c.x509))
  if (issuer !== undefined) result.issuer = issuer.x509
  if (fresh !== undefined) result.caCreated = fresh.x509
  return result
}
