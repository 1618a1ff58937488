// The verdict: one pure function from (operation, object, oldObject) to (allowed, causes, warnings),
// called by the webhook server and by the offline CLI alike.
import type { Cause, JsonObject, ReviewInput, Verdict } from './types.js'
import { obj } from './json.js'
import { schemaCauses } from './schema.js'
import { ruleCauses } from './rules.js'
import { warningsFor } from './warnings.js'

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

export function validateNIMService (input: ReviewInput): Verdict {
  if (input.operation !== 'CREATE' && input.operation !== 'UPDATE') return { allowed: true, causes: [], warnings: [] }
  const object: JsonObject = obj(input.object) ?? {}
  const spec = object.spec
  const oldSpec = input.operation === 'UPDATE' ? obj(obj(input.oldObject)?.spec) : undefined
  const causes = dedupe([
    ...(spec === undefined ? schemaCauses({}) : schemaCauses(spec)),
    ...ruleCauses(obj(spec) ?? {}, oldSpec)
  ])
  return { allowed: causes.length === 0, causes, warnings: warningsFor(object) }
}
