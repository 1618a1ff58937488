// The verdict: one pure function from (operation, object, oldObject) to (allowed, causes, warnings),
// called by the webhook server and by the offline CLI alike.
import type { Cause, ReviewInput, Verdict } from './types.js'
import { obj } from './json.js'
import { schemaCauses } from './schema.js'
import { ruleCauses } from './rules.js'
import { warningsFor } from './warnings.js'
import { MAX_DEPTH, tooDeep } from './depth.js'

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

/** The reasons to deny, without warnings: all /mutate needs to know before it changes anything. */
export function denialCauses (input: ReviewInput): Cause[] {
  if (!checksOperation(input.operation)) return []
  for (const [which, value] of [['', input.object], ['oldObject.', input.oldObject]] as const) {
    const deep = tooDeep(value)
    if (deep !== undefined) {
      return [{ field: `${which}${deep}`, code: 'NIM004', message: `Invalid value: "object": nested deeper than ${MAX_DEPTH} levels` }]
    }
  }
  const spec = obj(input.object)?.spec
  const oldSpec = input.operation === 'UPDATE' ? obj(obj(input.oldObject)?.spec) : undefined
  const causes = dedupe([
    ...(spec === undefined ? schemaCauses({}) : schemaCauses(spec)),
    ...ruleCauses(obj(spec) ?? {}, oldSpec)
  ])
  // A response must stay readable and small: a list of thousands of bad metrics is reported by its
  // first MAX_CAUSES causes (the verdict does not change).
  return causes.slice(0, MAX_CAUSES)
}

export function validateNIMService (input: ReviewInput): Verdict {
  if (!checksOperation(input.operation)) return { allowed: true, causes: [], warnings: [] }
  const causes = denialCauses(input)
  // No warnings for an object too deep to walk.
  const warnings = causes[0]?.code === 'NIM004' ? [] : warningsFor(obj(input.object) ?? {}).slice(0, MAX_CAUSES)
  return { allowed: causes.length === 0, causes, warnings }
}
