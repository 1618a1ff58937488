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
 * `judgeOld` gives the old object's causes judged on its own (as a CREATE); it is called only when
 * the spec changed: every cause is a function of the spec, so under an unchanged spec (a label, an
 * annotation, a finalizer) each cause on it is one the old object had, found without judging it again.
 */
export function ratchet (causes: readonly Cause[], judgeOld: () => readonly Cause[], object: unknown, oldObject: unknown): Ratcheted {
  const [spec, oldSpec] = [child(object, 'spec'), child(oldObject, 'spec')]
  const specSame = spec.has === oldSpec.has && (!spec.has || jsonEqual(spec.value, oldSpec.value))
  let had: Map<string, Set<string>> | undefined
  // Per cause, in order: exempt (true), denied (false), or the scope nodes to compare.
  const decided: Array<boolean | Trie[]> = []
  const scopes = new Trie()
  let pending = false
  for (const c of causes) {
    const paths = SCOPES.get(c.code)?.(c.field)
    const onSpec = c.field === 'spec' || c.field.startsWith('spec.') || c.field.startsWith('spec[')
    if (paths === undefined || (specSame && onSpec)) { decided.push(paths !== undefined); continue }
    had ??= byCode(judgeOld())
    const nodes = had.get(c.code)?.has(c.field) === true ? scopeNodes(paths, object, scopes) : undefined
    decided.push(nodes ?? false)
    pending ||= nodes !== undefined
  }
  // The rest: the old object had the same cause, and each node of its scope is the same in both.
  if (pending) compare(object, true, oldObject, true, scopes)
  const denied: Cause[] = []
  const exempt: Cause[] = []
  causes.forEach((c, i) => {
    const d = decided[i] as boolean | Trie[]
    const same = typeof d === 'boolean' ? d : d.every((n) => n.same)
    ;(same ? exempt : denied).push(c)
  })
  return { denied, exempt }
}

type Key = string | number

/** The old object's causes as code -> fields (no key strings built per cause). */
function byCode (causes: readonly Cause[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const c of causes) {
    let fields = out.get(c.code)
    if (fields === undefined) out.set(c.code, fields = new Set())
    fields.add(c.field)
  }
  return out
}

/** The scope paths of the cause as nodes of one tree shared by all causes, so each is compared once. */
function scopeNodes (paths: readonly string[], object: unknown, scopes: Trie): Trie[] | undefined {
  const nodes: Trie[] = []
  for (const path of paths) {
    const keys = parseField(path, object)
    if (keys === undefined) return undefined
    let node = scopes
    for (const k of keys) {
      let next = node.children.get(k)
      if (next === undefined) node.children.set(k, next = new Trie())
      node = next
    }
    node.needed = true
    nodes.push(node)
  }
  return nodes
}

/** A path of the object (a scope, or on the way to one), and whether its value is the same in old and new. */
class Trie {
  readonly children = new Map<Key, Trie>()
  needed = false
  same = false
}

/**
 * One walk of both objects along the scope tree: each needed node learns whether the new value (or its
 * absence) equals the old one. A needed node's value is compared whole, its children on the tree by
 * their own visit, the rest by a comparison that stops at the first difference; so every value is
 * compared at most once (linear). Both bodies are at most MAX_DEPTH deep (checked before).
 */
function compare (a: unknown, inA: boolean, b: unknown, inB: boolean, node: Trie, whole = false): boolean {
  whole ||= node.needed
  let same = inA === inB
  if (whole && same && inA) {
    if (Array.isArray(a) && Array.isArray(b)) {
      same = a.length === b.length
      for (let i = 0; same && i < a.length; i++) if (!node.children.has(i)) same = jsonEqual(a[i], b[i])
    } else if (isObject(a) && isObject(b)) {
      const keys = Object.keys(a)
      same = keys.length === Object.keys(b).length
      for (let i = 0; same && i < keys.length; i++) {
        const k = keys[i] as string
        if (!node.children.has(k)) same = Object.hasOwn(b, k) && jsonEqual(a[k], b[k])
      }
    } else {
      same = jsonEqual(a, b)
    }
  }
  // Children on the tree are visited for their own answer, which is also part of this node's.
  for (const [k, next] of node.children) {
    const [x, y] = [child(inA ? a : undefined, k), child(inB ? b : undefined, k)]
    same = compare(x.value, x.has, y.value, y.has, next, whole) && same
  }
  node.same = same
  return same
}

function child (v: unknown, k: Key): { has: boolean, value: unknown } {
  if (typeof k === 'number') return Array.isArray(v) && k < v.length ? { has: true, value: v[k] } : { has: false, value: undefined }
  return isObject(v) && Object.hasOwn(v, k) ? { has: true, value: v[k] } : { has: false, value: undefined }
}

const IDENT = /[A-Za-z0-9_]+/y
const DIGITS = /^\d+$/

function ident (field: string, at: number): string | undefined {
  IDENT.lastIndex = at
  return IDENT.exec(field)?.[0]
}

/**
 * A cause's field path back to keys: `spec.labels[app.kubernetes.io/name]`, `metrics[0]`. A bracket holds
 * an index (on a list) or a map key that may itself contain `]`, `.` or `[`; the object the path was
 * found in decides where such a key ends. An ambiguous path gives undefined: not ratcheted.
 */
export function parseField (field: string, root: unknown): Key[] | undefined {
  const first = ident(field, 0)
  if (first === undefined) return undefined
  const keys: Key[] = [first]
  let cur = step(root, first)
  let pos = first.length
  while (pos < field.length) {
    if (field[pos] === '.') {
      const name = ident(field, pos + 1)
      if (name === undefined) return undefined
      keys.push(name)
      cur = step(cur, name)
      pos += 1 + name.length
    } else if (field[pos] === '[') {
      const ends: number[] = []
      for (let j = field.indexOf(']', pos + 1); j !== -1; j = field.indexOf(']', j + 1)) {
        if (j + 1 === field.length || field[j + 1] === '.' || field[j + 1] === '[') ends.push(j)
      }
      let end: number | undefined
      if (Array.isArray(cur)) end = ends.find((j) => DIGITS.test(field.slice(pos + 1, j)))
      else if (ends.length === 1) end = ends[0]
      else end = ends.find((j) => isObject(cur) && Object.hasOwn(cur, field.slice(pos + 1, j)))
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
