// fast-check arbitraries for hostile AdmissionReview bodies. Bodies are built as a "raw" JSON tree whose
// objects are lists of entries, so a body can carry what JSON.stringify cannot write: duplicate keys, own
// `__proto__` keys, number tokens such as 1e400, nesting deeper than a recursive serializer survives, and
// invalid UTF-8 bytes. Every arbitrary yields a `FuzzBody`: the bytes to post and what they are.
import fc from 'fast-check'
import { autoscaled, nim, review } from './nimservice.js'
import { SEED_EXAMPLES } from '../fixtures/seed-examples.js'

type Json = Record<string, unknown>

/** A JSON text tree. Objects keep entry order and may repeat keys. */
export type Raw =
  | null | boolean | number | string
  | { readonly t: 'arr', readonly items: Raw[] }
  | { readonly t: 'obj', readonly entries: Array<[string, Raw]> }
  /** Literal JSON text, written as is (`1e400`, `-0`, `123456789012345678901234567890`). */
  | { readonly t: 'tok', readonly text: string }
  /** `depth` nested arrays or single-key objects around `leaf`, written without recursion. */
  | { readonly t: 'deep', readonly depth: number, readonly shape: 'arr' | 'obj', readonly leaf: Raw }

export interface FuzzBody {
  /** Which generator made it, for failure messages and per-category counts. */
  category: string
  bytes: Buffer
}

export function toRaw (v: unknown): Raw {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v
  if (Array.isArray(v)) return { t: 'arr', items: v.map(toRaw) }
  if (typeof v === 'object') return { t: 'obj', entries: Object.entries(v as Json).filter(([, x]) => x !== undefined).map(([k, x]) => [k, toRaw(x)]) }
  return null
}

export function rawText (r: Raw): string {
  if (r === null || typeof r === 'boolean' || typeof r === 'number' || typeof r === 'string') return JSON.stringify(r)
  switch (r.t) {
    case 'arr': return `[${r.items.map(rawText).join(',')}]`
    case 'obj': return `{${r.entries.map(([k, v]) => `${JSON.stringify(k)}:${rawText(v)}`).join(',')}}`
    case 'tok': return r.text
    case 'deep': return r.shape === 'arr'
      ? '['.repeat(r.depth) + rawText(r.leaf) + ']'.repeat(r.depth)
      : '{"a":'.repeat(r.depth) + rawText(r.leaf) + '}'.repeat(r.depth)
  }
}

/** Paths (entry or item indexes) to every node of a tree, the root included. */
export function rawPaths (r: Raw, prefix: number[] = [], out: number[][] = []): number[][] {
  out.push(prefix)
  if (r !== null && typeof r === 'object') {
    if (r.t === 'arr') r.items.forEach((v, i) => rawPaths(v, [...prefix, i], out))
    else if (r.t === 'obj') r.entries.forEach(([, v], i) => rawPaths(v, [...prefix, i], out))
  }
  return out
}

/** A copy of `r` with the node at `path` replaced by `f(node)`. */
export function rawUpdate (r: Raw, path: readonly number[], f: (node: Raw) => Raw): Raw {
  if (path.length === 0) return f(r)
  const [i, ...rest] = path as [number, ...number[]]
  if (r === null || typeof r !== 'object') return r
  if (r.t === 'arr') return { t: 'arr', items: r.items.map((v, j) => (j === i ? rawUpdate(v, rest, f) : v)) }
  if (r.t === 'obj') return { t: 'obj', entries: r.entries.map(([k, v], j): [string, Raw] => [k, j === i ? rawUpdate(v, rest, f) : v]) }
  return r
}

/** Paths to the object nodes only (where keys can be added or repeated). */
function objectPaths (r: Raw): number[][] {
  return rawPaths(r).filter((p) => {
    let node: Raw = r
    for (const i of p) {
      if (node === null || typeof node !== 'object') return false
      node = node.t === 'arr' ? node.items[i] as Raw : node.t === 'obj' ? (node.entries[i] as [string, Raw])[1] : null
    }
    return node !== null && typeof node === 'object' && node.t === 'obj'
  })
}

// ---- the valid reviews everything else is made from ----------------------------------------------

/** Reviews as the apiserver sends them: every seed example as CREATE, UPDATE, dry-run, DELETE, v1beta1. */
export function baseReviews (): Json[] {
  const out: Json[] = []
  for (const { object } of SEED_EXAMPLES) {
    out.push(review(object))
    out.push(review(object, { operation: 'UPDATE', oldObject: object }))
  }
  out.push(review(autoscaled(undefined, { replicas: 3 }), { dryRun: true }))
  out.push(review(null, { operation: 'DELETE', oldObject: nim() }))
  out.push(review(nim(), { apiVersion: 'admission.k8s.io/v1beta1' }))
  out.push(review(autoscaled(), { subResource: 'status', operation: 'UPDATE', oldObject: autoscaled() }))
  return out
}

const BASES = baseReviews().map(toRaw)
const baseArb: fc.Arbitrary<Raw> = fc.constantFrom(...BASES)

/** Strings the code might use as property names or compare against: lookups must never reach a prototype. */
export const NASTY_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'length', '0', '-1', '', ' ', 'Resource', 'Pods', 'Object', 'External', 'ContainerResource', 'Utilization', 'AverageValue', 'Value', 'cpu', 'memory', 'nvidia.com/gpu'] as const

const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...NASTY_NAMES),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('1e400', '-1', '0.5', '1Gi', '100m', '1e3', 'NaN', 'Infinity', '\u0000', '\ud800', '\u2028', 'a'.repeat(300))
)

const numberToken: fc.Arbitrary<Raw> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, -Number.MAX_VALUE),
  fc.constantFrom('1e400', '-1e400', '-0', '1.0', '1E2', '123456789012345678901234567890', '0.0000000000000000000001').map((text): Raw => ({ t: 'tok', text }))
)

/** Any JSON value, with nasty strings and numbers, as raw text. */
export const rawValue: fc.Arbitrary<Raw> = fc.letrec<{ v: Raw }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    numberToken,
    nastyString,
    fc.array(tie('v'), { maxLength: 5 }).map((items): Raw => ({ t: 'arr', items })),
    fc.array(fc.tuple(nastyString, tie('v')), { maxLength: 5 }).map((entries): Raw => ({ t: 'obj', entries }))
  )
})).v

/** A value of the "wrong type" for whatever the path held: scalars of every kind, containers, nasty names. */
const wrongValue: fc.Arbitrary<Raw> = fc.oneof(
  fc.constantFrom<Raw>(null, true, false, 0, -1, 1.5, '', 'x', { t: 'arr', items: [] }, { t: 'obj', entries: [] }, { t: 'arr', items: [null] }),
  rawValue
)

function body (category: string, r: Raw): FuzzBody {
  return fuzzBody(category, Buffer.from(rawText(r), 'utf8'))
}

/** fast-check prints a counterexample with this: the category and the body, cut if long. */
function fuzzBody (category: string, bytes: Buffer): FuzzBody {
  return {
    category,
    bytes,
    [fc.toStringMethod]: () => {
      const text = bytes.toString('utf8')
      return `${category} (${bytes.length} bytes): ${text.length > 4000 ? `${text.slice(0, 2000)} ... ${text.slice(-2000)}` : text}`
    }
  } as FuzzBody
}

/** A pick among a list by a fraction in [0, 1); shrinking moves it towards the first element. */
function pick<T> (list: readonly T[], fraction: number): T {
  return list[Math.min(list.length - 1, Math.floor(fraction * list.length))] as T
}
// Unbiased: fast-check's default bias towards 0 would make nearly every pick the root.
const fraction = fc.noBias(fc.integer({ min: 0, max: 999_999 })).map((n) => n / 1_000_000)

/**
 * Where to break a review: two times in three inside `request.object`/`request.oldObject` (where the
 * rules read), otherwise anywhere, the envelope included.
 */
function targetPaths (base: Raw, inObject: boolean, objectsOnly = false): number[][] {
  const all = objectsOnly ? objectPaths(base) : rawPaths(base)
  if (!inObject) return all
  const prefixes = [indexOfKey(base, ['request', 'object']), indexOfKey(base, ['request', 'oldObject'])].filter((p) => p.length === 2)
  const inside = all.filter((p) => prefixes.some((q) => p.length >= 2 && p[0] === q[0] && p[1] === q[1]))
  return inside.length > 0 ? inside : all
}
const inObject = fc.noBias(fc.integer({ min: 0, max: 2 })).map((n) => n > 0)

// ---- categories ---------------------------------------------------------------------------------

/** Random JSON as the whole body, or as `request`, or as `request.object`. */
export const randomJson: fc.Arbitrary<FuzzBody> = fc.tuple(rawValue, fc.constantFrom('body', 'request', 'object'), baseArb).map(([v, where, base]) => {
  if (where === 'body') return body('random-json', v)
  return body(`random-json-${where}`, rawUpdate(base, indexOfKey(base, where === 'request' ? ['request'] : ['request', 'object']), () => v))
})

function indexOfKey (r: Raw, keys: string[]): number[] {
  const path: number[] = []
  let node = r
  for (const key of keys) {
    if (node === null || typeof node !== 'object' || node.t !== 'obj') return path
    const i = node.entries.findIndex(([k]) => k === key)
    if (i < 0) return path
    path.push(i)
    node = (node.entries[i] as [string, Raw])[1]
  }
  return path
}

/** A valid review with one node, anywhere, replaced by a value of another type. */
export const wrongType: fc.Arbitrary<FuzzBody> = fc.tuple(baseArb, inObject, fraction, wrongValue).map(([base, io, f, v]) =>
  body('wrong-type', rawUpdate(base, pick(targetPaths(base, io), f), () => v)))

/** A valid review with `__proto__`, `constructor` (with and without `prototype`) or `prototype` added to an object at any level. */
export const pollution: fc.Arbitrary<FuzzBody> = fc.tuple(
  baseArb,
  fraction,
  fc.constantFrom('__proto__', 'constructor', 'prototype'),
  fc.oneof(
    fc.constant<Raw>({ t: 'obj', entries: [['polluted', 'yes'], ['allowed', true], ['isAdmin', true]] }),
    fc.constant<Raw>({ t: 'obj', entries: [['prototype', { t: 'obj', entries: [['polluted', 'yes']] }]] }),
    rawValue
  ),
  fc.boolean(),
  inObject
).map(([base, f, key, value, first, io]) => {
  const path = pick(targetPaths(base, io, true), f)
  return body(`pollution-${key}`, rawUpdate(base, path, (node) => {
    const o = node as { t: 'obj', entries: Array<[string, Raw]> }
    return { t: 'obj', entries: first ? [[key, value], ...o.entries] : [...o.entries, [key, value]] }
  }))
})

/** A valid review in which some object repeats one of its keys (with another value, before or after). */
export const duplicateKeys: fc.Arbitrary<FuzzBody> = fc.tuple(baseArb, fraction, fraction, wrongValue, fc.boolean(), inObject).map(([base, f, g, value, first, io]) => {
  const path = pick(targetPaths(base, io, true), f)
  return body('duplicate-keys', rawUpdate(base, path, (node) => {
    const o = node as { t: 'obj', entries: Array<[string, Raw]> }
    if (o.entries.length === 0) return { t: 'obj', entries: [['a', 1], ['a', value]] }
    const [key] = pick(o.entries, g)
    return { t: 'obj', entries: first ? [[key, value], ...o.entries] : [...o.entries, [key, value]] }
  }))
})

/** A valid review whose bytes have invalid UTF-8 (lone continuation bytes, overlongs, surrogates, 0xff) spliced in. */
export const invalidUtf8: fc.Arbitrary<FuzzBody> = fc.tuple(
  baseArb,
  fc.array(fc.tuple(fraction, fc.constantFrom(
    [0xff], [0xfe], [0x80], [0xbf], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0x00]
  )), { minLength: 1, maxLength: 4 }),
  fc.boolean()
).map(([base, splices, insideStrings]) => {
  let bytes = Buffer.from(rawText(base), 'utf8')
  for (const [f, seq] of splices) {
    let at = Math.floor(f * bytes.length)
    if (insideStrings) {
      // Move to just after the next quote, so the bytes land inside a key or a string value.
      const q = bytes.indexOf(0x22, at)
      if (q >= 0) at = q + 1
    }
    bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(seq), bytes.subarray(at)])
  }
  return fuzzBody('invalid-utf8', bytes)
})

/** Nesting from 1,000 to 10,000 levels, as the whole body or at any node of a valid review (mostly inside `object.spec`). */
export const deepNesting: fc.Arbitrary<FuzzBody> = fc.tuple(baseArb, fraction, fc.integer({ min: 1000, max: 10_000 }), fc.constantFrom<'arr' | 'obj'>('arr', 'obj'), fc.noBias(fc.integer({ min: 0, max: 5 }))).map(([base, f, depth, shape, where]) => {
  const deep: Raw = { t: 'deep', depth, shape, leaf: 1 }
  return body(where === 0 ? 'deep-nesting-body' : 'deep-nesting', where === 0 ? deep : rawUpdate(base, pick(targetPaths(base, where > 1), f), () => deep))
})

/**
 * A huge string or array at any node of a valid review, sized from a fraction to twice `limitBytes`, so
 * both sides of the body limit are hit.
 */
export function huge (limitBytes: number): fc.Arbitrary<FuzzBody> {
  return fc.tuple(baseArb, fraction, fc.noBias(fc.integer({ min: 5, max: 200 })).map((n) => n / 100), fc.constantFrom('string', 'array-of-numbers', 'array-of-objects', 'object-keys'), inObject).map(([base, f, scale, kind, io]) => {
    const size = Math.floor(limitBytes * scale)
    let v: Raw
    if (kind === 'string') v = 'x'.repeat(size)
    else if (kind === 'array-of-numbers') v = { t: 'tok', text: `[${new Array(Math.floor(size / 2)).fill('1').join(',')}]` }
    else if (kind === 'array-of-objects') v = { t: 'tok', text: `[${new Array(Math.floor(size / 60)).fill('{"type":"Resource","resource":{"name":"cpu"}}').join(',')}]` }
    else v = { t: 'tok', text: `{${Array.from({ length: Math.floor(size / 12) }, (_, i) => `"k${i}":1`).join(',')}}` }
    const bytes = Buffer.from(rawText(rawUpdate(base, pick(targetPaths(base, io), f), () => v)), 'utf8')
    return fuzzBody(`huge-${kind}${bytes.length > limitBytes ? '-over-limit' : ''}`, bytes)
  })
}

/** Every category, weighted towards the ones that reach the rules (valid envelope, hostile object). */
export function anyHostileBody (limitBytes: number, opts: { huge?: boolean } = {}): fc.Arbitrary<FuzzBody> {
  const parts: Array<fc.WeightedArbitrary<FuzzBody>> = [
    { arbitrary: randomJson, weight: 3 },
    { arbitrary: wrongType, weight: 6 },
    { arbitrary: pollution, weight: 3 },
    { arbitrary: duplicateKeys, weight: 3 },
    { arbitrary: invalidUtf8, weight: 2 }
  ]
  if (opts.huge !== false) parts.push({ arbitrary: deepNesting, weight: 1 }, { arbitrary: huge(limitBytes), weight: 1 })
  return fc.oneof(...parts)
}

// ---- cost: objects aimed at what a review costs, not at its shape -------------------------------

/** The largest body a review may carry: the apiserver sends at most 3 MiB per object, twice on UPDATE. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024

const image = { repository: 'nvcr.io/nim/meta/llama', tag: '1.0' }
const autoscaledSpec = (hpa: Json, extra: Json = {}): Json => ({ image, authSecret: 'ngc', resources: { requests: { cpu: '2' } }, scale: { enabled: true, hpa: { maxReplicas: 4, ...hpa } }, ...extra })
const named = (spec: Json): Json => ({ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', metadata: { name: 'llm', namespace: 'nim' }, spec })
/** How many copies of `item` (as JSON) fill about `bytes`. */
const fill = (bytes: number, item: unknown): number => Math.max(1, Math.floor(bytes / (JSON.stringify(item).length + 1)))
const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i))

const valueMetric = (i: number): Json => ({ type: 'Pods', pods: { metric: { name: `m${i}` }, target: { type: 'AverageValue', averageValue: `${i}m` } } })
// Names a container that no sidecar has: its requests are spec.resources', found after looking at every sidecar.
const containerMetric = (i: number): Json => ({ type: 'ContainerResource', containerResource: { name: 'cpu', container: `main${i}`, target: { type: 'Utilization', averageUtilization: 50 } } })
const sidecar = (i: number): Json => ({ name: `s${i}`, image: { repository: 'busybox', tag: '1' } })

/**
 * Shapes that once cost seconds or more per review (issue 21), and the largest bodies of each kind,
 * as NIMService objects of about `bytes` (defaulting to the largest body). Each is a regression case
 * (test/unit/cost.test.ts) and a row of bench/worst-case.ts.
 */
export const COST_CASES: Record<string, (bytes?: number) => Json> = {
  'metrics: 50,000 empty items (was 11.2 s)': () => named(autoscaledSpec({ metrics: times(50_000, () => ({})) })),
  'hostDomainName: 42 characters (was 41.7 s)': () => named({ image, authSecret: 'ngc', expose: { router: { hostDomainName: `${'0'.repeat(41)}!` } } }),
  'averageValue: "1e-49999999" (was 7.7 s)': () => named(autoscaledSpec({ metrics: [{ type: 'Pods', pods: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: '1e-49999999' } } }] })),
  'averageValue: "1e-999999999" (was 44 s, then threw)': () => named(autoscaledSpec({ metrics: [{ type: 'Pods', pods: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: '1e-999999999' } } }] })),
  'metrics x sidecarContainers, 3.1 MB (was 15.5 s)': () => {
    const n = 15_000 // 3.1 MB
    return named(autoscaledSpec({ metrics: times(n, containerMetric) }, { sidecarContainers: times(n, sidecar) }))
  },
  'metrics: valid, largest body': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({ metrics: times(fill(bytes, valueMetric(99_999)), valueMetric) })),
  'metrics: empty items, largest body': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({ metrics: times(fill(bytes, {}), () => ({})) })),
  'metrics: rule errors only, largest body': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({ metrics: times(fill(bytes, { type: 'Resource' }), () => ({ type: 'Resource' })) })),
  'metrics x sidecars, largest body': (bytes = MAX_BODY_BYTES) => {
    const n = fill(bytes, [containerMetric(99_999), sidecar(99_999)])
    return named(autoscaledSpec({ metrics: times(n, containerMetric) }, { sidecarContainers: times(n, sidecar) }))
  },
  'hostDomainName: largest string': (bytes = MAX_BODY_BYTES) => named({ image, authSecret: 'ngc', expose: { router: { hostDomainName: `${'0'.repeat(bytes)}!` } } }),
  'averageValue: largest digit string': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({ metrics: [{ type: 'Pods', pods: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: `0.${'9'.repeat(bytes)}Ki` } } }] })),
  'averageValue: largest exponent string': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({ metrics: [{ type: 'Pods', pods: { metric: { name: 'q' }, target: { type: 'AverageValue', averageValue: `1${'1'.repeat(bytes)}e-999999999` } } }] })),
  'resources.requests: widest map of quantities': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({}, { resources: { requests: Object.fromEntries(times(fill(bytes, ['r999999', '1.5Gi']), (i) => [`r${i}`, '1.5Gi'])) } })),
  'resources.requests: widest map of bad quantities': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({}, { resources: { requests: Object.fromEntries(times(fill(bytes, ['r999999', 'x']), (i) => [`r${i}`, 'x'])) } })),
  'labels and annotations: widest maps': (bytes = MAX_BODY_BYTES) => named(autoscaledSpec({}, {
    labels: Object.fromEntries(times(fill(bytes / 2, ['l999999', 'v']), (i) => [`l${i}`, 'v'])),
    annotations: Object.fromEntries(times(fill(bytes / 2, ['a999999', 'v']), (i) => [`a${i}`, 'v']))
  })),
  'unknown fields: widest spec': (bytes = MAX_BODY_BYTES) => named({ image, authSecret: 'ngc', ...Object.fromEntries(times(fill(bytes, ['k999999', 1]), (i) => [`k${i}`, 1])) }),
  'env: longest list of 99-level-deep values': (bytes = MAX_BODY_BYTES) => {
    let deep: unknown = 'x'
    for (let i = 0; i < 90; i++) deep = { a: deep }
    return named({ image, authSecret: 'ngc', env: times(fill(bytes, { name: 'e', value: deep }), (i) => ({ name: `e${i}`, value: deep })) })
  },
  'scale.hpa.behavior: longest policy lists': (bytes = MAX_BODY_BYTES) => {
    const policy = { type: 'Pods', value: 4, periodSeconds: 60 }
    const n = Math.floor(fill(bytes, policy) / 2)
    return named(autoscaledSpec({ behavior: { scaleUp: { policies: times(n, () => policy) }, scaleDown: { policies: times(n, () => policy) } } }))
  }
}

/**
 * fast-check: a cost case at a random size up to `maxBytes`, the size log-uniform (from 100 bytes), so
 * that small, medium and the largest bodies all come up.
 */
export function costlyObject (maxBytes = MAX_BODY_BYTES): fc.Arbitrary<{ name: string, object: Json }> {
  const names = Object.keys(COST_CASES)
  return fc.tuple(fc.constantFrom(...names), fc.double({ min: 2, max: Math.log10(maxBytes), noNaN: true })).map(([name, exp]) => {
    const bytes = Math.floor(10 ** exp)
    return { name: `${name} @${bytes}`, object: (COST_CASES[name] as (b?: number) => Json)(bytes) }
  })
}
