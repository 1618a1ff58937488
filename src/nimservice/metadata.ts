// Names, labels and annotations as the apiserver checks them (apimachinery util/validation and
// api/validation objectmeta.go, function by function): the NIMService's own metadata (NIM005, what
// the apiserver refuses before any webhook is asked) and the label and annotation maps of its spec
// that the operator copies onto the objects it creates (NIM006: the NIMService is stored, then its
// Deployment, Service or HPA is refused).
import type { Cause, JsonObject } from './types.js'
import { isObject } from './json.js'

const QNAME_CHAR = '[A-Za-z0-9]'
const QNAME_EXT_CHAR = '[-A-Za-z0-9_.]'
const QUALIFIED_NAME_FMT = `(${QNAME_CHAR}${QNAME_EXT_CHAR}*)?${QNAME_CHAR}`
const QUALIFIED_NAME_ERR = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
const QUALIFIED_NAME_MAX = 63
const qualifiedName = new RegExp(`^${QUALIFIED_NAME_FMT}$`)

const LABEL_VALUE_FMT = `(${QUALIFIED_NAME_FMT})?`
const LABEL_VALUE_ERR = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
const LABEL_VALUE_MAX = 63
const labelValue = new RegExp(`^${LABEL_VALUE_FMT}$`)

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?'
const DNS1123_LABEL_ERR = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
const DNS1123_LABEL_MAX = 63
const dns1123Label = new RegExp(`^${DNS1123_LABEL_FMT}$`)

const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`
const DNS1123_SUBDOMAIN_ERR = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
const DNS1123_SUBDOMAIN_MAX = 253
const dns1123Subdomain = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`)

/** apimachinery TotalAnnotationSizeLimitB. */
const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

/** validation.RegexError, with its two spaces before each `or`. */
function regexError (msg: string, fmt: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${fmt}')`
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`
}

const maxLenError = (n: number): string => `must be no more than ${n} characters`

/** validation.IsDNS1123Subdomain. */
export function isDNS1123Subdomain (value: string): string[] {
  const errs: string[] = []
  if (value.length > DNS1123_SUBDOMAIN_MAX) errs.push(maxLenError(DNS1123_SUBDOMAIN_MAX))
  if (!dns1123Subdomain.test(value)) errs.push(regexError(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, 'example.com'))
  return errs
}

/** validation.IsDNS1123Label. */
export function isDNS1123Label (value: string): string[] {
  const errs: string[] = []
  if (value.length > DNS1123_LABEL_MAX) errs.push(maxLenError(DNS1123_LABEL_MAX))
  if (!dns1123Label.test(value)) errs.push(regexError(DNS1123_LABEL_ERR, DNS1123_LABEL_FMT, 'my-name', '123-abc'))
  return errs
}

/** validation.IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain. */
export function isQualifiedName (value: string): string[] {
  const errs: string[] = []
  const parts = value.split('/')
  let name: string
  if (parts.length === 1) {
    name = parts[0] as string
  } else if (parts.length === 2) {
    const prefix = parts[0] as string
    name = parts[1] as string
    if (prefix.length === 0) errs.push('prefix part must be non-empty')
    else for (const msg of isDNS1123Subdomain(prefix)) errs.push(`prefix part ${msg}`)
  } else {
    return [`a qualified name ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`]
  }
  if (name.length === 0) errs.push('name part must be non-empty')
  else if (name.length > QUALIFIED_NAME_MAX) errs.push(`name part ${maxLenError(QUALIFIED_NAME_MAX)}`)
  if (!qualifiedName.test(name)) errs.push(`name part ${regexError(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, 'MyName', 'my.name', '123-abc')}`)
  return errs
}

/** validation.IsValidLabelValue. */
export function isValidLabelValue (value: string): string[] {
  const errs: string[] = []
  if (value.length > LABEL_VALUE_MAX) errs.push(maxLenError(LABEL_VALUE_MAX))
  if (!labelValue.test(value)) errs.push(regexError(LABEL_VALUE_ERR, LABEL_VALUE_FMT, 'MyValue', 'my_value', '12345'))
  return errs
}

const quote = (s: string): string => JSON.stringify(s)

/** A JSON value's type as the apiserver names it in "must be of type" messages (Go decodes 3 as an integer). */
export function typeName (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v
}

function notString (field: string, v: unknown, code: string): Cause {
  return { field, code, message: `Invalid value: ${quote(typeName(v))}: ${field} in body must be of type string: ${quote(typeName(v))}` }
}

/** A map of strings, or the causes why it is not one (the non-string values, each at its key). */
function stringMap (value: unknown, field: string, code: string, causes: Cause[]): Array<[string, string]> | undefined {
  if (value === undefined || value === null) return []
  if (!isObject(value)) {
    causes.push({ field, code, message: `Invalid value: ${quote(typeName(value))}: ${field} in body must be of type object: ${quote(typeName(value))}` })
    return undefined
  }
  const out: Array<[string, string]> = []
  for (const k of Object.keys(value)) {
    const v = value[k]
    if (typeof v === 'string') out.push([k, v])
    else causes.push(notString(`${field}[${k}]`, v, code))
  }
  return out
}

/** v1validation.ValidateLabels: each key a qualified name, each value a label value. */
function validateLabels (entries: Array<[string, string]>, field: string, code: string, keyed: boolean, causes: Cause[]): void {
  for (const [k, v] of entries) {
    const at = keyed ? `${field}[${k}]` : field
    for (const msg of isQualifiedName(k)) causes.push({ field: at, code, message: `Invalid value: ${quote(k)}: ${msg}` })
    for (const msg of isValidLabelValue(v)) causes.push({ field: at, code, message: `Invalid value: ${quote(v)}: ${msg}` })
  }
}

/** ValidateAnnotations: each key a qualified name once lowercased; all of them within 256 KiB. */
function validateAnnotations (entries: Array<[string, string]>, field: string, code: string, keyed: boolean, causes: Cause[]): void {
  let size = 0
  for (const [k, v] of entries) {
    size += Buffer.byteLength(k) + Buffer.byteLength(v)
    for (const msg of isQualifiedName(k.toLowerCase())) causes.push({ field: keyed ? `${field}[${k}]` : field, code, message: `Invalid value: ${quote(k)}: ${msg}` })
  }
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) causes.push({ field, code, message: `Too long: may not be more than ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes` })
}

/**
 * ValidateObjectMetaAccessor for a namespaced custom resource on CREATE (NIM005): metadata an object,
 * name (or generateName) a DNS subdomain, namespace a DNS label when set, labels and annotations maps
 * of strings with valid keys and values.
 */
export function objectMetaCauses (object: JsonObject): Cause[] {
  const code = 'NIM005'
  const causes: Cause[] = []
  const meta = object.metadata
  if (meta !== undefined && meta !== null && !isObject(meta)) {
    return [{ field: 'metadata', code, message: `Invalid value: ${quote(typeName(meta))}: metadata in body must be of type object: ${quote(typeName(meta))}` }]
  }
  const m = isObject(meta) ? meta : {}
  for (const key of ['name', 'generateName', 'namespace'] as const) {
    if (m[key] !== undefined && m[key] !== null && typeof m[key] !== 'string') causes.push(notString(`metadata.${key}`, m[key], code))
  }
  const name = typeof m.name === 'string' ? m.name : ''
  const generateName = typeof m.generateName === 'string' ? m.generateName : ''
  if (generateName !== '') {
    // NameIsDNSSubdomain(prefix=true): a trailing `-` is allowed, a random suffix follows it.
    for (const msg of isDNS1123Subdomain(generateName.endsWith('-') ? generateName.slice(0, -1) + 'a' : generateName)) {
      causes.push({ field: 'metadata.generateName', code, message: `Invalid value: ${quote(generateName)}: ${msg}` })
    }
  }
  if (name === '') {
    if (generateName === '' && typeof (m.name ?? '') === 'string') causes.push({ field: 'metadata.name', code, message: 'Required value: name or generateName is required' })
  } else {
    for (const msg of isDNS1123Subdomain(name)) causes.push({ field: 'metadata.name', code, message: `Invalid value: ${quote(name)}: ${msg}` })
  }
  if (typeof m.namespace === 'string' && m.namespace !== '') {
    for (const msg of isDNS1123Label(m.namespace)) causes.push({ field: 'metadata.namespace', code, message: `Invalid value: ${quote(m.namespace)}: ${msg}` })
  }
  const labels = stringMap(m.labels, 'metadata.labels', code, causes)
  if (labels !== undefined) validateLabels(labels, 'metadata.labels', code, false, causes)
  const annotations = stringMap(m.annotations, 'metadata.annotations', code, causes)
  if (annotations !== undefined) validateAnnotations(annotations, 'metadata.annotations', code, false, causes)
  return causes
}

/** The spec's label maps the operator copies onto the objects it creates. */
export const RENDERED_LABELS = ['labels', 'expose.service.labels', 'metrics.serviceMonitor.additionalLabels'] as const
/** The spec's annotation maps the operator copies onto the objects it creates (the HPA: scale.annotations). */
export const RENDERED_ANNOTATIONS = [
  'annotations', 'scale.annotations', 'expose.service.annotations', 'expose.ingress.annotations',
  'expose.router.annotations', 'metrics.serviceMonitor.annotations', 'storage.pvc.annotations'
] as const

function at (spec: JsonObject, path: string): unknown {
  let cur: unknown = spec
  for (const key of path.split('.')) {
    if (!isObject(cur)) return undefined
    cur = cur[key]
  }
  return cur
}

/**
 * NIM006: the keys and values of the spec's label and annotation maps, as the apiserver will check
 * them on the Deployment, Service, Ingress, ServiceMonitor, PVC or HPA they end up on. Non-string
 * values are the schema's to report (NIM001); only well-typed entries are checked here.
 */
export function renderedMetadataCauses (spec: JsonObject): Cause[] {
  const code = 'NIM006'
  const causes: Cause[] = []
  const ignored: Cause[] = []
  for (const path of RENDERED_LABELS) {
    const entries = stringMap(at(spec, path), `spec.${path}`, code, ignored)
    if (entries !== undefined) validateLabels(entries, `spec.${path}`, code, true, causes)
  }
  for (const path of RENDERED_ANNOTATIONS) {
    const entries = stringMap(at(spec, path), `spec.${path}`, code, ignored)
    if (entries !== undefined) validateAnnotations(entries, `spec.${path}`, code, true, causes)
  }
  return causes
}
