// The verdict: one pure function from (operation, object, oldObject) to (allowed, causes, warnings),
// called by the webhook server and by the offline CLI alike.
import type { Cause, ReviewInput, Verdict, Warning } from './types.js'
import { has, obj } from './json.js'
import { schemaCauses } from './schema.js'
import { ruleCauses } from './rules.js'
import { renderedMetadataCauses } from './metadata.js'
import { warningsFor } from './warnings.js'
import { MAX_DEPTH, tooDeep } from './depth.js'
import { ratchet } from './ratchet.js'

export const MAX_CAUSES = 100

/** Keeps the first cause per field: a schema error and a rule error on one field say one thing. */
function dedupe (causes: Cause[]): Cause[] {
  const seen = new Set<string>()
  return causes.filter((c) => {
    const k = `${c.field}\u0000${c.code}`
    if (seen.has(c.field) && (c.code === 'NIM001' || c.code === 'NIM002' || seen.has(k))) return false
    seen.add(c.field)
    seen.add(k)
    return true
  })
}

/** Only CREATE and UPDATE are checked: a DELETE or CONNECT carries nothing to hold to the rules. */
export function checksOperation (operation: string): boolean {
  return operation === 'CREATE' || operation === 'UPDATE'
}

/**
 * An UPDATE of an object being deleted (deletionTimestamp set on the object or the old one): the
 * operator removes its finalizer with such an UPDATE, and a denial would leave the object, and a
 * namespace being deleted with it, Terminating forever. Never judged, never mutated.
 */
export function beingDeleted (input: ReviewInput): boolean {
  if (input.operation !== 'UPDATE') return false
  return [input.object, input.oldObject].some((o) => has(obj(obj(o)?.metadata), 'deletionTimestamp'))
}

/** Every reason to deny, uncapped (the schema stops on its own). */
function allDenialCauses (input: ReviewInput): Cause[] {
  for (const [which, value] of [['', input.object], ['oldObject.', input.oldObject]] as const) {
    const deep = tooDeep(value)
    if (deep !== undefined) {
      return [{ field: `${which}${deep}`, code: 'NIM004', message: `Invalid value: "object": nested deeper than ${MAX_DEPTH} levels` }]
    }
  }
  const spec = obj(input.object)?.spec
  const oldSpec = input.operation === 'UPDATE' ? obj(obj(input.oldObject)?.spec) : undefined
  return dedupe([
    ...(spec === undefined ? schemaCauses({}) : schemaCauses(spec)),
    ...ruleCauses(obj(spec) ?? {}, oldSpec),
    ...renderedMetadataCauses(obj(spec) ?? {})
  ])
}

/** The reasons to deny, without warnings and before ratcheting: all /mutate needs to know before it changes anything. */
export function denialCauses (input: ReviewInput): Cause[] {
  if (!checksOperation(input.operation)) return []
  // A response must stay readable and small: a list of thousands of bad metrics is reported by its
  // first MAX_CAUSES causes (the verdict does not change).
  return allDenialCauses(input).slice(0, MAX_CAUSES)
}

/** A cause the old object already had, said as a warning: allowed, but not forgotten. */
function inherited (c: Cause): Warning {
  return { field: c.field, code: c.code, message: `${c.message} (already so before this update, and unchanged: allowed)` }
}

export function validateNIMService (input: ReviewInput): Verdict {
  if (!checksOperation(input.operation) || beingDeleted(input)) return { allowed: true, causes: [], warnings: [] }
  let causes = allDenialCauses(input)
  let exempt: Cause[] = []
  if (causes.length > 0 && input.operation === 'UPDATE' && causes[0]?.code !== 'NIM004' && obj(input.oldObject) !== undefined) {
    // Ratcheting, only when the new object has something to deny.
    ;({ denied: causes, exempt } = ratchet(causes, () => allDenialCauses({ operation: 'CREATE', object: input.oldObject }), input.object, input.oldObject))
  }
  causes = causes.slice(0, MAX_CAUSES)
  exempt = exempt.slice(0, MAX_CAUSES)
  // No warnings for an object too deep to walk.
  const found = causes[0]?.code === 'NIM004' ? [] : warningsFor(obj(input.object) ?? {})
  const warnings = [...exempt.map(inherited), ...found].slice(0, MAX_CAUSES)
  return { allowed: causes.length === 0, causes, warnings, ...(exempt.length > 0 ? { ratcheted: exempt } : {}) }
}
