// Where the applier may act: only where the mutating webhook judges NIMServices. With
// --webhook-configuration, that is what the named MutatingWebhookConfiguration's NIMService webhooks select
// (namespaceSelector on the namespace's labels, objectSelector on the NIMService's), read live; until it
// has been read, nowhere (fail closed). Without it, the --namespace list, or every namespace.
import { isObject, obj, str } from '../nimservice/json.js'
import type { NamespaceView } from './view.js'

export interface LabelSelectorRequirement { key: string, operator: string, values?: string[] }
export interface LabelSelector { matchLabels?: Record<string, string>, matchExpressions?: LabelSelectorRequirement[] }

/** metav1.LabelSelectorAsSelector, then Matches: an empty selector matches everything; a malformed one nothing. */
export function selectorMatches (selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const r of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(labels, r.key)
    const values = r.values ?? []
    switch (r.operator) {
      case 'In': if (!present || !values.includes(labels[r.key] as string)) return false; break
      case 'NotIn': if (present && values.includes(labels[r.key] as string)) return false; break
      case 'Exists': if (!present) return false; break
      case 'DoesNotExist': if (present) return false; break
      default: return false
    }
  }
  return true
}

function parseSelector (v: unknown): LabelSelector | undefined {
  const o = obj(v)
  if (o === undefined) return undefined
  const out: LabelSelector = {}
  if (isObject(o.matchLabels)) {
    out.matchLabels = {}
    for (const [k, val] of Object.entries(o.matchLabels)) if (typeof val === 'string') out.matchLabels[k] = val
  }
  if (Array.isArray(o.matchExpressions)) {
    out.matchExpressions = o.matchExpressions.map((e) => {
      const r = obj(e) ?? {}
      return { key: str(r.key) ?? '', operator: str(r.operator) ?? '', values: Array.isArray(r.values) ? r.values.filter((x): x is string => typeof x === 'string') : [] }
    })
  }
  return out
}

export interface WebhookScope { name: string, namespaceSelector?: LabelSelector, objectSelector?: LabelSelector }

const includesAny = (list: unknown, wanted: string[]): boolean => Array.isArray(list) && list.some((x) => wanted.includes(x as string))

/** A webhook rule that sends NIMService CREATE or UPDATE requests. */
function judgesNimServices (rule: unknown): boolean {
  const r = obj(rule)
  if (r === undefined) return false
  const resources = Array.isArray(r.resources) ? r.resources.map((x) => String(x).split('/')[0]) : []
  return includesAny(r.apiGroups, ['apps.nvidia.com', '*']) &&
    includesAny(r.apiVersions, ['v1alpha1', '*']) &&
    (resources.includes('nimservices') || resources.includes('*')) &&
    includesAny(r.operations, ['CREATE', 'UPDATE', '*'])
}

/** The NIMService webhooks of a MutatingWebhookConfiguration, with their selectors. */
export function webhookScopes (configuration: unknown): WebhookScope[] {
  const webhooks = obj(configuration)?.webhooks
  if (!Array.isArray(webhooks)) return []
  const out: WebhookScope[] = []
  for (const w of webhooks) {
    const o = obj(w)
    if (o === undefined || !Array.isArray(o.rules) || !o.rules.some(judgesNimServices)) continue
    const scope: WebhookScope = { name: str(o.name) ?? '' }
    const ns = parseSelector(o.namespaceSelector)
    if (ns !== undefined) scope.namespaceSelector = ns
    const object = parseSelector(o.objectSelector)
    if (object !== undefined) scope.objectSelector = object
    out.push(scope)
  }
  return out
}

export type Coverage = { covered: true } | { covered: false, reason: string }

export type CoverageSource =
  | { kind: 'namespaces', namespaces: ReadonlySet<string> | undefined }
  | {
    kind: 'webhook'
    configuration: string
    /** undefined until the configuration has been read; null when it does not exist. */
    scopes: WebhookScope[] | undefined | null
    namespaces: ReadonlyMap<string, NamespaceView> | undefined
  }

/** Whether the applier may act on a NIMService in `namespace` with `labels`, and if not, why. */
export function coverage (source: CoverageSource, namespace: string, labels: Record<string, string>): Coverage {
  if (source.kind === 'namespaces') {
    return source.namespaces === undefined || source.namespaces.has(namespace) ? { covered: true } : { covered: false, reason: `namespace ${namespace} is not watched (--namespace)` }
  }
  const name = `MutatingWebhookConfiguration ${source.configuration}`
  if (source.scopes === undefined) return { covered: false, reason: `${name} not read yet` }
  if (source.scopes === null) return { covered: false, reason: `${name} not found` }
  if (source.scopes.length === 0) return { covered: false, reason: `${name} has no webhook for nimservices.apps.nvidia.com` }
  if (source.namespaces === undefined) return { covered: false, reason: 'namespaces not listed yet' }
  const ns = source.namespaces.get(namespace)
  if (ns === undefined) return { covered: false, reason: `namespace ${namespace} not seen` }
  for (const s of source.scopes) {
    if (selectorMatches(s.namespaceSelector, ns.labels) && selectorMatches(s.objectSelector, labels)) return { covered: true }
  }
  return { covered: false, reason: `namespace ${namespace} (or the NIMService's labels) is outside the selectors of ${name}` }
}
