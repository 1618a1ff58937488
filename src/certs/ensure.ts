// Development certificates for `serve`: make sure a directory holds a valid CA and serving pair for
// localhost (plus any names given), creating or renewing them as `certs generate` would.
import { readCertDir, writeCertDir, certPaths } from './files.js'
import { DAY_MS } from './expiry.js'
import { generateDefaults, localNames, normaliseNames } from './generate.js'
import { planRotation } from './rotation.js'

export interface EnsureOptions {
  dir: string
  dnsNames?: string[]
  ipAddresses?: string[]
  caDays?: number
  days?: number
  renewBeforeDays?: number
  now?: Date
}

export interface EnsureResult {
  /** True when anything was written. */
  created: boolean
  caPath: string
  certPath: string
  keyPath: string
  notes: string[]
}

export async function ensureServingCerts (opts: EnsureOptions): Promise<EnsureResult> {
  const paths = certPaths(opts.dir)
  const names = normaliseNames([...localNames.dnsNames, ...(opts.dnsNames ?? [])], [...localNames.ipAddresses, ...(opts.ipAddresses ?? [])])
  const previous = await readCertDir(opts.dir)
  const plan = planRotation(previous, {
    ...names,
    caDays: opts.caDays ?? generateDefaults.caDays,
    days: opts.days ?? generateDefaults.days,
    ...(opts.renewBeforeDays === undefined ? {} : { renewBeforeMs: opts.renewBeforeDays * DAY_MS }),
    ...(opts.now === undefined ? {} : { now: opts.now })
  })
  if (plan.changed) await writeCertDir(opts.dir, plan.state, previous)
  return { created: plan.changed, caPath: paths.caPath, certPath: paths.certPath, keyPath: paths.keyPath, notes: [...plan.notes, ...plan.warnings] }
}
