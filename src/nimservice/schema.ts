// JSON Schema checks of `spec` against the schema generated from the upstream CRD (schemas/).
// The validator is compiled once (see spec-validator.ts); checking one object allocates only its errors,
// and stops after MAX_SCHEMA_ERRORS of them.
import type { ErrorObject } from 'ajv'
import type { Cause } from './types.js'
import { checkSpec } from './spec-validator.js'
import { typeName } from './metadata.js'

/** `/scale/hpa/metrics/0` -> `spec.scale.hpa.metrics[0]` (map keys that are not identifiers in brackets). */
export function pointerToField (pointer: string, root = 'spec'): string {
  let out = root
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^\d+$/.test(seg) ? `[${seg}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg) ? `.${seg}` : `[${seg}]`
  }
  return out
}

/** A value as a cause shows it: primitives as JSON, objects and arrays by their type only. */
function show (value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'object') return JSON.stringify(typeName(value))
  return JSON.stringify(value)
}

function toCause (e: ErrorObject, spec: unknown): Cause {
  const field = pointerToField(e.instancePath)
  const p = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return { field: `${field}.${String(p.missingProperty)}`, code: 'NIM002', message: 'Required value' }
    case 'additionalProperties':
      return { field: `${field}.${String(p.additionalProperty)}`, code: 'NIM003', message: `Invalid value: unknown field "${String(p.additionalProperty)}"` }
    case 'type':
      // The apiserver's words (kube-openapi's InvalidType): the value's type, quoted, before and after.
      return { field, code: 'NIM001', message: `Invalid value: "${typeName(valueAt(spec, e.instancePath))}": ${field} in body must be of type ${String(p.type)}: "${typeName(valueAt(spec, e.instancePath))}"` }
    case 'anyOf':
      return { field, code: 'NIM001', message: `Invalid value: ${show(valueAt(spec, e.instancePath))}: must be an integer or a quantity string such as "500m", "0.7" or "2Gi" (quote decimals)` }
    case 'pattern':
      return { field, code: 'NIM001', message: `Invalid value: ${show(valueAt(spec, e.instancePath))}: ${field} in body should match '${String(p.pattern)}'` }
    case 'enum':
      return { field, code: 'NIM001', message: `Unsupported value: ${show(valueAt(spec, e.instancePath))}: supported values: ${(p.allowedValues as unknown[]).map(show).join(', ')}` }
    default:
      return { field, code: 'NIM001', message: `Invalid value: ${show(valueAt(spec, e.instancePath))}: ${field} in body ${e.message ?? 'is invalid'}` }
  }
}

function valueAt (root: unknown, pointer: string): unknown {
  let cur = root
  for (const raw of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[raw.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return cur
}

/**
 * ajv's errors read at most: checking stops after them. A response keeps 100 causes, one per field,
 * and a field has at most a few errors (maxLength, pattern and enum on one string; anyOf and pattern
 * on a quantity), so these always name the first 100 fields.
 */
export const MAX_SCHEMA_ERRORS = 1000

/** Schema causes for `spec`, one per field (the first error ajv reports for it), in ajv's order. */
export function schemaCauses (spec: unknown): Cause[] {
  const errors = checkSpec(spec, MAX_SCHEMA_ERRORS)
  if (errors === null) return []
  const seen = new Set<string>()
  const causes: Cause[] = []
  // An int-or-string mismatch is reported by its anyOf alone: checkSpec leaves out the branches' errors.
  for (const e of errors) {
    const cause = toCause(e, spec)
    if (seen.has(cause.field)) continue
    seen.add(cause.field)
    causes.push(cause)
  }
  return causes
}
