// Defensive readers for untrusted JSON: rules run on whatever arrived, schema-valid or not.
import type { JsonObject } from './types.js'

export function isObject (v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

export function obj (v: unknown): JsonObject | undefined {
  return isObject(v) ? v : undefined
}

export function arr (v: unknown): unknown[] | undefined {
  return Array.isArray(v) ? v : undefined
}

export function str (v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

export function int (v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined
}

/** CEL's `has()`: the key is present with a non-null value (the apiserver drops nulls). */
export function has (o: JsonObject | undefined, key: string): boolean {
  return o !== undefined && Object.prototype.hasOwnProperty.call(o, key) && o[key] !== null && o[key] !== undefined
}

/** Reads `a.b.c` from a JSON value without trusting any level of it. */
export function at (root: unknown, ...keys: string[]): unknown {
  let cur: unknown = root
  for (const k of keys) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, k)) return undefined
    cur = cur[k]
  }
  return cur
}

/** Structural equality for JSON values (key order does not matter). */
export function jsonEqual (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]))
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a)
    if (ka.length !== Object.keys(b).length) return false
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]))
  }
  return false
}
