// Live reload of the serving certificate. Kubernetes updates a mounted Secret by writing a new timestamped
// directory and atomically swapping the `..data` symlink that tls.crt and tls.key point through, so the
// files' own inodes never change: we watch the DIRECTORY (fs.watch) and also poll, and compare contents.
// A new pair is checked before it is used (readable, key matches, valid now); a broken one is refused with
// a warning and the previous pair keeps serving. Existing connections keep the context they were opened
// with: `setSecureContext` only affects new handshakes, so nothing is dropped. The CA that client
// certificates must chain to (`--client-ca`) is part of the same context: it is watched and checked (at
// least one certificate, nothing unparseable) the same way, and a broken one keeps the previous one.
import type { X509Certificate } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'

import { parseBundle } from '../certs/bundle.js'
import { isCertError } from '../certs/errors.js'
import { DAY_MS, HOUR_MS, describeRemaining } from '../certs/expiry.js'
import { readPemFile, verifyKeyPair } from '../certs/pair.js'
import { issuedBy, notAfter } from '../certs/pem.js'

/** The subset of a pino logger used here. */
export interface ReloaderLog {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface ServingPair {
  cert: string
  key: string
  notAfter: Date
  notBefore: Date
  /** Upper-case hex, as `getPeerCertificate().serialNumber` shows it. */
  serialNumber: string
  /** notAfter of the CA in ca.crt that signed the certificate (undefined without ca.crt or when none did). */
  caNotAfter?: Date
  /** The client CA bundle (PEM), when clientCaPath is set. */
  clientCa?: string
}

export interface TlsReloaderOptions {
  certPath: string
  keyPath: string
  caPath?: string
  /** CA bundle for client certificates (mutual TLS), reloaded with the pair. */
  clientCaPath?: string
  log: ReloaderLog
  /** Poll period, a fallback for missed watch events. */
  pollIntervalMs?: number
  /** Wait after a change event before reading, so a burst of events makes one reload. */
  debounceMs?: number
  /** A pair that fails its check is re-read once after this delay before it is refused (half-written files). */
  settleMs?: number
  /** Warn when less than this is left on the serving certificate or its CA. */
  warnBeforeMs?: number
  /** Repeat that warning at most this often. */
  warnEveryMs?: number
  now?: () => Date
}

export const tlsReloaderDefaults = {
  pollIntervalMs: 2000,
  debounceMs: 50,
  settleMs: 250,
  warnBeforeMs: 30 * DAY_MS,
  warnEveryMs: 24 * HOUR_MS
} as const

type Outcome = 'unchanged' | 'reloaded' | 'refused'
type Kind = 'serving' | 'ca'

export class TlsReloader {
  private readonly opts: Required<Omit<TlsReloaderOptions, 'caPath' | 'clientCaPath'>> & { caPath?: string, clientCaPath?: string }
  private pair: ServingPair
  private signature: string
  private ca: string | undefined
  private refused: string | undefined
  private settling: string | undefined
  private onChange: ((pair: ServingPair) => void) | undefined
  private watchers: FSWatcher[] = []
  private pollTimer: NodeJS.Timeout | undefined
  private debounceTimer: NodeJS.Timeout | undefined
  private settleTimer: NodeJS.Timeout | undefined
  private readonly warnedAt: Partial<Record<Kind, number>> = {}

  /** Loads the pair now; a broken pair at start throws the CertError (fail fast, nothing to fall back to). */
  constructor (opts: TlsReloaderOptions) {
    this.opts = { ...tlsReloaderDefaults, now: () => new Date(), ...opts }
    const read = this.read()
    this.pair = this.check(read)
    this.signature = read.signature
    this.ca = read.ca
    this.checkExpiry()
  }

  current (): ServingPair {
    return this.pair
  }

  servingNotAfter (): Date {
    return this.pair.notAfter
  }

  caNotAfter (): Date | undefined {
    return this.pair.caNotAfter
  }

  /** Seconds left on the served certificate and its CA (for `nim_admission_certificate_expiry_seconds`). */
  expirySeconds (now: Date = this.opts.now()): { serving: number; ca?: number } {
    const serving = (this.pair.notAfter.getTime() - now.getTime()) / 1000
    return this.pair.caNotAfter === undefined ? { serving } : { serving, ca: (this.pair.caNotAfter.getTime() - now.getTime()) / 1000 }
  }

  /** For /readyz: the served certificate has expired. */
  isServingExpired (now: Date = this.opts.now()): boolean {
    return this.pair.notAfter <= now
  }

  /** Watches the certificate directories and polls; `onChange` gets every accepted new pair. */
  start (onChange: (pair: ServingPair) => void): void {
    if (this.onChange !== undefined) throw new Error('TlsReloader already started')
    this.onChange = onChange
    const paths = [this.opts.certPath, this.opts.keyPath, ...[this.opts.caPath, this.opts.clientCaPath].filter((p): p is string => p !== undefined)]
    for (const dir of new Set(paths.map((p) => dirname(p)))) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule())
        watcher.on('error', (err) => {
          this.opts.log.warn({ err, dir }, 'certificate directory watch failed; relying on polling')
          watcher.close()
        })
        this.watchers.push(watcher)
      } catch (err) {
        this.opts.log.warn({ err, dir }, 'cannot watch certificate directory; relying on polling')
      }
    }
    this.pollTimer = setInterval(() => {
      this.reload()
      this.checkExpiry()
    }, this.opts.pollIntervalMs)
    this.pollTimer.unref()
  }

  stop (): void {
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
    for (const timer of [this.pollTimer, this.debounceTimer, this.settleTimer]) if (timer !== undefined) clearTimeout(timer)
    this.pollTimer = this.debounceTimer = this.settleTimer = undefined
    this.onChange = undefined
  }

  /** Reads the files now and swaps in a new valid pair (also usable from a SIGHUP handler). */
  reload (): Outcome {
    let read: ReturnType<TlsReloader['read']>
    try {
      read = this.read()
    } catch (err) {
      return this.refuse(err, `unreadable:${(err as Error).message}`)
    }
    if (read.signature === this.signature) {
      if (read.ca !== this.ca) this.updateCa(read.ca)
      return 'unchanged'
    }
    if (read.signature === this.refused) return 'refused'
    let next: ServingPair
    try {
      next = this.check(read)
    } catch (err) {
      return this.refuse(err, read.signature)
    }
    const previous = this.pair
    this.pair = next
    this.signature = read.signature
    this.ca = read.ca
    this.refused = this.settling = undefined
    try {
      this.onChange?.(next)
    } catch (err) {
      this.pair = previous
      this.opts.log.error({ err, certPath: this.opts.certPath }, 'applying the new certificate failed; still serving the previous one')
      this.refused = read.signature
      return 'refused'
    }
    if (next.serialNumber !== previous.serialNumber) delete this.warnedAt.serving
    if (next.caNotAfter?.getTime() !== previous.caNotAfter?.getTime()) delete this.warnedAt.ca
    if (next.clientCa !== previous.clientCa) this.opts.log.info({ clientCaPath: this.opts.clientCaPath }, 'loaded new client CA')
    if (next.serialNumber !== previous.serialNumber || next.cert !== previous.cert) {
      this.opts.log.info({ certPath: this.opts.certPath, serialNumber: next.serialNumber, notAfter: next.notAfter, previousSerialNumber: previous.serialNumber }, 'loaded new serving certificate')
    }
    this.checkExpiry()
    return 'reloaded'
  }

  private schedule (): void {
    if (this.debounceTimer !== undefined) clearTimeout(this.debounceTimer)
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined
      this.reload()
    }, this.opts.debounceMs)
    this.debounceTimer.unref()
  }

  /** A failed pair is re-read once after settleMs (files may be mid-write); then it is refused, logged once. */
  private refuse (err: unknown, signature: string): Outcome {
    if (this.settling !== signature) {
      this.settling = signature
      if (this.settleTimer !== undefined) clearTimeout(this.settleTimer)
      this.settleTimer = setTimeout(() => {
        this.settleTimer = undefined
        this.reload()
      }, this.opts.settleMs)
      this.settleTimer.unref()
      return 'refused'
    }
    this.settling = undefined
    this.refused = signature
    const code = isCertError(err) ? err.code : undefined
    const message = err instanceof Error ? err.message : String(err)
    this.opts.log.warn({ err, code, certPath: this.opts.certPath, keyPath: this.opts.keyPath, serialNumber: this.pair.serialNumber },
      `refused the new certificate pair, still serving the previous one (serial ${this.pair.serialNumber}): ${message}`)
    return 'refused'
  }

  private read (): { cert: string; key: string; ca: string | undefined; clientCa: string | undefined; signature: string } {
    const cert = readPemFile(this.opts.certPath, 'certificate')
    const key = readPemFile(this.opts.keyPath, 'private key')
    const clientCa = this.opts.clientCaPath === undefined ? undefined : readPemFile(this.opts.clientCaPath, 'client CA bundle')
    let ca: string | undefined
    if (this.opts.caPath !== undefined) {
      try {
        ca = readPemFile(this.opts.caPath, 'CA bundle')
      } catch {
        ca = undefined
      }
    }
    return { cert, key, ca, clientCa, signature: `${cert}\0${key}\0${clientCa ?? ''}` }
  }

  private check (read: { cert: string; key: string; ca: string | undefined; clientCa: string | undefined }): ServingPair {
    const pair = verifyKeyPair(read.cert, read.key, {
      certName: `certificate ${this.opts.certPath}`, keyName: `private key ${this.opts.keyPath}`, now: this.opts.now()
    })
    const result: ServingPair = { cert: read.cert, key: read.key, notAfter: pair.notAfter, notBefore: pair.notBefore, serialNumber: pair.serialNumber }
    const caNotAfter = this.issuerNotAfter(pair.x509, read.ca)
    if (caNotAfter !== undefined) result.caNotAfter = caNotAfter
    if (read.clientCa !== undefined) {
      const bundle = parseBundle(read.clientCa)
      if (bundle.certs.length === 0 || bundle.unparseable > 0) {
        throw new Error(`client CA bundle ${this.opts.clientCaPath ?? ''} has ${bundle.certs.length} certificates and ${bundle.unparseable} unparseable blocks; it must be PEM certificates only`)
      }
      result.clientCa = read.clientCa
    }
    return result
  }

  private issuerNotAfter (leaf: X509Certificate, ca: string | undefined): Date | undefined {
    if (this.opts.caPath === undefined) return undefined
    if (ca === undefined) {
      this.opts.log.warn({ caPath: this.opts.caPath }, 'cannot read the CA bundle; CA expiry is unknown')
      return undefined
    }
    const issuer = parseBundle(ca).certs.find((c) => issuedBy(leaf, c.x509))
    if (issuer === undefined) {
      this.opts.log.warn({ caPath: this.opts.caPath, certPath: this.opts.certPath },
        'no CA in the CA bundle signed the serving certificate; the caBundle of the webhook configuration must hold its issuer')
      return undefined
    }
    return notAfter(issuer.x509)
  }

  /** ca.crt alone changed (a CA added for a rotation): refresh the CA expiry, the served pair stays. */
  private updateCa (ca: string | undefined): void {
    this.ca = ca
    const x509 = verifyKeyPair(this.pair.cert, this.pair.key, { allowExpired: true }).x509
    const caNotAfter = this.issuerNotAfter(x509, ca)
    const { caNotAfter: _old, ...rest } = this.pair
    this.pair = caNotAfter === undefined ? rest : { ...rest, caNotAfter }
  }

  private checkExpiry (): void {
    const now = this.opts.now()
    const entries: Array<[Kind, Date | undefined, string]> = [
      ['serving', this.pair.notAfter, `serving certificate ${this.opts.certPath}`],
      ['ca', this.pair.caNotAfter, `CA ${this.opts.caPath ?? ''}`]
    ]
    for (const [kind, date, what] of entries) {
      if (date === undefined) continue
      const left = date.getTime() - now.getTime()
      if (left >= this.opts.warnBeforeMs) continue
      const last = this.warnedAt[kind]
      if (last !== undefined && now.getTime() - last < this.opts.warnEveryMs) continue
      this.warnedAt[kind] = now.getTime()
      const fields = { cert: kind, notAfter: date, secondsLeft: Math.round(left / 1000) }
      if (left <= 0) {
        this.opts.log.error(fields, `${what} has expired; the apiserver rejects this webhook: run \`nim-admission certs generate\` (and \`certs inject\` for a new CA)`)
      } else {
        this.opts.log.warn(fields, `${what} expires in ${describeRemaining(left)} (${date.toISOString()}); renew it with \`nim-admission certs generate --renew-before 30d\``)
      }
    }
  }
}
