// The directory form of the certificate state: ca.crt, ca.key, tls.crt, tls.key. Each file is replaced
// atomically (temporary file, fsync, rename), keys with mode 0600, so a reader sees the old or the new
// file, never half of one.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

import { CertError, reason } from './errors.js'
import type { CertState } from './rotation.js'

export const certFileNames = { caBundle: 'ca.crt', caKeys: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const

export interface CertPaths { caPath: string; caKeyPath: string; certPath: string; keyPath: string }

export function certPaths (dir: string): CertPaths {
  return { caPath: join(dir, 'ca.crt'), caKeyPath: join(dir, 'ca.key'), certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key') }
}

async function readOptional (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CertError('NIMCERT_UNREADABLE', `cannot read ${path} (${reason(err)}); fix its permissions or remove it so it is regenerated`, { subject: path, cause: err })
  }
}

/** What the directory holds; missing files are undefined, unreadable ones are an error. */
export async function readCertDir (dir: string): Promise<CertState> {
  const state: CertState = {}
  for (const [field, name] of Object.entries(certFileNames) as Array<[keyof CertState, string]>) {
    const text = await readOptional(join(dir, name))
    if (text !== undefined) state[field] = text
  }
  return state
}

/** Replaces one file atomically. */
export async function writeFileAtomic (path: string, text: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(tmp, 'wx', mode)
    try {
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await chmod(tmp, mode)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw new CertError('NIMCERT_WRITE_FAILED', `cannot write ${path} (${reason(err)}); check that the directory exists and is writable`, { subject: path, cause: err })
  }
}

/**
 * Writes the fields that differ from `previous`. Order matters for a live reader: CA first (a bundle
 * with the new CA is harmless before the new certificate), then the key and the certificate.
 */
export async function writeCertDir (dir: string, next: CertState, previous: CertState = {}): Promise<string[]> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new CertError('NIMCERT_WRITE_FAILED', `cannot create directory ${dir} (${reason(err)})`, { subject: dir, cause: err })
  }
  const written: string[] = []
  const order: Array<[keyof CertState, number]> = [['caKeys', 0o600], ['caBundle', 0o644], ['key', 0o600], ['cert', 0o644]]
  for (const [field, mode] of order) {
    const text = next[field]
    if (text === undefined || text === previous[field]) continue
    if (text === '' && previous[field] === undefined) continue
    const path = join(dir, certFileNames[field])
    await writeFileAtomic(path, text, mode)
    written.push(path)
  }
  return written
}
