// Ratcheting, as Kubernetes ratchets CRD validation (KEP-4008): an UPDATE is not denied for a cause the
// old object already had, as long as nothing the rule reads has changed. A legacy object created before
// the webhook (or under an older schema) can then still get a label, a finalizer or an image bump; what
// the update itself breaks, and any new value written into a broken field, is still denied.
//
// A cause is exempt when (1) the old object had a cause with the same code and field path, and (2) every
// value in the rule's scope is deep-equal in the old and the new object. The scope is the node the rule
// reads, as Kubernetes attaches a rule to a node: the field itself for a value check, the owning object
// for `required`, and for the rules that read several fields, all of them (maxReplicas against
// minReplicas, replicas against scale.enabled, a metric as a whole). List items are correlated by index.
import type { Cause } from './types.js'
import { isObject, jsonEqual } from './json.js'

/** The field paths (in the cause's notation) a rule reads, or undefined when the rule is never ratcheted. */
type Scope = (field: string) => string[] | undefined

const own = (field: string): string[] => [field]
const fixed = (...paths: string[]): Scope => () => paths
const prefix = (re: RegExp): Scope => (field) => {
  const m = re.exec(field)
  return m === null ? undefined : [m[0]]
}
const METRIC = /^spec\.scale\.hpa\.metrics\[\d+\]/
const SCALING_RULES = /^spec\.scale\.hpa\.behavior\.scale(?:Up|Down)/

// Every deny code of codes.ts is here or in NEVER (a test holds the two lists to the catalogue).
const SCOPES: ReadonlyMap<string, Scope> = new Map<string, Scope>([
  ['NIM001', own],
  ['NIM002', (field) => { const p = parentPath(field); return p === undefined ? undefined : [p] }],
  ['NIM003', own],
  ['NIM006', own],
  ['NIM010', (field) => [field, 'spec.scale.enabled']],
  ['NIM011', fixed('spec.scale.enabled', 'spec.multiNode')],
  ['NIM012', fixed('spec.scale')],
  ['NIM020', fixed('spec.scale.hpa.minReplicas')],
  ['NIM021', fixed('spec.scale.hpa.minReplicas', 'spec.scale.hpa.maxReplicas')],
  ['NIM022', prefix(METRIC)],
  ['NIM023', prefix(METRIC)],
  ['NIM024', prefix(METRIC)],
  ['NIM025', fixed('spec.scale.hpa.minReplicas', 'spec.scale.hpa.metrics')],
  ['NIM026', prefix(SCALING_RULES)],
  ['NIM027', prefix(SCALING_RULES)],
  ['NIM028', prefix(SCALING_RULES)],
  ['NIM029', prefix(SCALING_RULES)],
  ['NIM040', fixed('spec.multiNode')],
  ['NIM041', own],
  ['NIM042', fixed('spec.expose')],
  ['NIM043', own],
  ['NIM044', own],
  ['NIM045', own],
  ['NIM046', own],
  ['NIM047', own]
])

/**
 * Never ratcheted: NIM004 (a body too deep to compare safely), NIM005 (the object's own metadata, which
 * Kubernetes does not ratchet either) and the immutability rules NIM050/NIM051, which are transition
 * rules: they fire only because the value changed (Kubernetes never ratchets rules reading `oldSelf`).
 */
export const NEVER_RATCHETED: ReadonlySet<string> = new Set(['NIM004', 'NIM005', 'NIM050', 'NIM051'])
export const RATCHETED_CODES: ReadonlySet<string> = new Set(SCOPES.keys())

export interface Ratcheted {
  /** Causes the update introduces: these deny. */
  denied: Cause[]
  /** Causes the old object already had, with every value they read unchanged: allowed, and warned. */
  exempt: Cause[]
}

/**
 * Splits the causes of the new object into those the update introduced and those it inherited.
 * `oldCauses` are the old object's causes judged on their own (as a CREATE).
 */
export function ratchet (causes: readonly Cause[], oldCauses: readonly Cause[], object: unknown, oldObject: unknown): Ratcheted {
  const had = new Set(oldCauses.map((c) => `${c.code}\u0000${c.field}`))
  const denied: Cause[] = []
  const exempt: Cause[] = []
  for (const c of causes) {
    if (had.has(`${c.code}\u0000${c.field}`) && unchanged(c, object, oldObject)) exempt.push(c)
    else denied.push(c)
  }
  return { denied, exempt }
}

function unchanged (cause: Cause, object: unknown, oldObject: unknown): boolean {
  const paths = SCOPES.get(cause.code)?.(cause.field)
  if (paths === undefined) return false
  for (const path of paths) {
    const keys = parseField(path, object)
    if (keys === undefined) return false
    const [a, b] = [lookup(object, keys), lookup(oldObject, keys)]
    if (a.found !== b.found || !jsonEqual(a.value, b.value)) return false
  }
  return true
}

type Key = string | number
interface Found { found: boolean, value: unknown }

function lookup (root: unknown, keys: readonly Key[]): Found {
  let cur = root
  for (const k of keys) {
    if (typeof k === 'number') {
      if (!Array.isArray(cur) || k >= cur.length) return { found: false, value: undefined }
      cur = cur[k]
    } else {
      if (!isObject(cur) || !Object.hasOwn(cur, k)) return { found: false, value: undefined }
      cur = cur[k]
    }
  }
  return { found: true, value: cur }
}

const IDENT = /^[A-Za-z0-9_]+/

/**
 * A cause's field path back to keys: `spec.labels[app.kubernetes.io/name]`, `metrics[0]`. A bracket holds
 * an index (on a list) or a map key that may itself contain `]`, `.` or `[`; the object the path was
 * found in decides where such a key ends. An ambiguous path gives undefined: not ratcheted.
 */
export function parseField (field: string, root: unknown): Key[] | undefined {
  const keys: Key[] = []
  let cur: unknown = root
  let pos = 0
  const first = IDENT.exec(field)
  if (first === null) return undefined
  keys.push(first[0])
  cur = step(cur, first[0])
  pos = first[0].length
  while (pos < field.length) {
    if (field[pos] === '.') {
      const m = IDENT.exec(field.slice(pos + 1))
      if (m === null) return undefined
      keys.push(m[0])
      cur = step(cur, m[0])
      pos += 1 + m[0].length
    } else if (field[pos] === '[') {
      const ends: number[] = []
      for (let j = field.indexOf(']', pos + 1); j !== -1; j = field.indexOf(']', j + 1)) {
        if (j + 1 === field.length || field[j + 1] === '.' || field[j + 1] === '[') ends.push(j)
      }
      let end: number | undefined
      if (Array.isArray(cur)) {
        end = ends.find((j) => /^\d+$/.test(field.slice(pos + 1, j)))
      } else if (ends.length === 1) {
        end = ends[0]
      } else {
        end = ends.find((j) => isObject(cur) && Object.hasOwn(cur, field.slice(pos + 1, j)))
      }
      if (end === undefined) return undefined
      const raw = field.slice(pos + 1, end)
      const key: Key = Array.isArray(cur) ? Number(raw) : raw
      keys.push(key)
      cur = step(cur, key)
      pos = end + 1
    } else {
      return undefined
    }
  }
  return keys
}

function step (cur: unknown, key: Key): unknown {
  if (typeof key === 'number') return Array.isArray(cur) ? cur[key] : undefined
  return isObject(cur) && Object.hasOwn(cur, key) ? cur[key] : undefined
}

/** `a.b[c].d` -> `a.b[c]`; the owning object of a required field. */
function parentPath (field: string): string | undefined {
  const dot = field.lastIndexOf('.')
  return dot <= 0 ? undefined : field.slice(0, dot)
}
