// Time arithmetic for certificates: expiry dates, remaining lifetime, human durations.
import { CertError } from './errors.js'
import { notAfter, parseCertificate } from './pem.js'

export const SECOND_MS = 1000
export const HOUR_MS = 3600 * SECOND_MS
export const DAY_MS = 24 * HOUR_MS

/** The notAfter of the first certificate in a PEM text. */
export function certificateExpiry (pem: string): Date {
  return notAfter(parseCertificate(pem))
}

/** Seconds from `now` until `date` (negative once passed). */
export const secondsUntil = (date: Date, now: Date = new Date()): number => (date.getTime() - now.getTime()) / SECOND_MS

const units: Record<string, number> = { ms: 1, s: SECOND_MS, m: 60 * SECOND_MS, h: HOUR_MS, d: DAY_MS, w: 7 * DAY_MS }

/**
 * A duration as milliseconds: `720h`, `30d`, `1h30m`, `2w`, or a bare number of days (`30`, `0.5`).
 * `option` names the flag in the error message.
 */
export function parseDuration (text: string, option = 'duration'): number {
  const trimmed = text.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * DAY_MS
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy
  let total = 0
  let end = 0
  for (let match = part.exec(trimmed); match !== null; match = part.exec(trimmed)) {
    total += Number(match[1]) * (units[match[2] ?? ''] ?? 0)
    end = part.lastIndex
  }
  if (trimmed === '' || end !== trimmed.length) {
    throw new CertError('NIMCERT_BAD_OPTION', `${option}: expected a duration such as 720h, 30d, 1h30m or a number of days, got ${JSON.stringify(text)}`)
  }
  return total
}

/** A whole number of days for messages (`29 days`, `less than a day`). */
export function describeRemaining (ms: number): string {
  if (ms <= 0) return 'expired'
  if (ms < DAY_MS) return `${Math.round(ms / HOUR_MS)} hours`
  return `${Math.floor(ms / DAY_MS)} days`
}
