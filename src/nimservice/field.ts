// Field paths and error bodies in the shape Kubernetes prints them (k8s.io/apimachinery field.Error),
// so a cause reads the same here as in `kubectl` output.
import type { Cause, Warning } from './types.js'

export const child = (path: string, name: string): string => (path === '' ? name : `${path}.${name}`)
export const index = (path: string, i: number): string => `${path}[${i}]`
export const key = (path: string, k: string): string => `${path}[${k}]`

const MAX_SHOWN = 256

/** A bad value as a cause quotes it: strings quoted (and cut short), objects by their type. */
function show (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}...` : value)
  if (value === undefined || value === null) return 'null'
  if (typeof value === 'object') return JSON.stringify(Array.isArray(value) ? 'array' : 'object')
  return String(value)
}

export const invalid = (field: string, value: unknown, detail: string, code: string): Cause =>
  ({ field, code, message: `Invalid value: ${show(value)}: ${detail}` })

export const required = (field: string, detail: string, code: string): Cause =>
  ({ field, code, message: detail === '' ? 'Required value' : `Required value: ${detail}` })

export const forbidden = (field: string, detail: string, code: string): Cause =>
  ({ field, code, message: `Forbidden: ${detail}` })

export const notSupported = (field: string, value: unknown, supported: readonly string[], code: string): Cause =>
  ({ field, code, message: `Unsupported value: ${show(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}` })

/** A cause whose message is a fixed sentence (the CRD's CEL messages are matched word for word). */
export const rule = (field: string, message: string, code: string): Cause => ({ field, code, message })

export const warning = (field: string, message: string, code: string): Warning => ({ field, code, message })
