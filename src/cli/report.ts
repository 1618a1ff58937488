// The offline verdict as a report, in three forms: lines for people (and CI problem matchers), one JSON
// document for programs, JUnit XML for CI systems that render test results.
import { RULES } from '../nimservice/index.js'
import { formatInputError, type InputError } from './input.js'

export type Severity = 'error' | 'warning'

/** A cause (severity error) or a warning, placed in the source. */
export interface Finding {
  severity: Severity
  field: string
  code: string
  message: string
  /** What to do about it, from the rule catalogue. */
  fix?: string
  line: number
  column: number
}

/** The verdict on one NIMService document. */
export interface Result {
  file: string
  index: number
  item?: number
  line: number
  column: number
  apiVersion: string
  kind: string
  name?: string
  namespace?: string
  allowed: boolean
  /** The denial's status message, word for word what the apiserver would print. */
  message?: string
  causes: Finding[]
  warnings: Finding[]
}

export interface Report {
  /** Objects read (List items count one by one; empty documents not at all). */
  documents: number
  results: Result[]
  errors: InputError[]
}

export interface Summary {
  documents: number
  nimServices: number
  denied: number
  warnings: number
  unreadable: number
}

export type OutputFormat = 'text' | 'json' | 'junit'
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'junit']

export interface FormatOptions {
  /** Warnings fail too. */
  strict: boolean
  color?: boolean
}

export function fixFor (code: string): string | undefined {
  return RULES.get(code)?.fix
}

export function summarize (report: Report): Summary {
  return {
    documents: report.documents,
    nimServices: report.results.length,
    denied: report.results.filter((r) => !r.allowed).length,
    warnings: report.results.reduce((n, r) => n + r.warnings.length, 0),
    unreadable: report.errors.length
  }
}

/** Whether a result fails the gate: denied, or (strict) warned. */
export function fails (result: Result, strict: boolean): boolean {
  return !result.allowed || (strict && result.warnings.length > 0)
}

/** 2 when any input could not be read or parsed (it wins), 1 when any NIMService fails, else 0. */
export function exitCodeOf (report: Report, strict: boolean): 0 | 1 | 2 {
  if (report.errors.length > 0) return 2
  return report.results.some((r) => fails(r, strict)) ? 1 : 0
}

type Paint = (style: string, text: string) => string
const ANSI: Record<string, string> = { bold: '1', dim: '2', red: '31', yellow: '33', green: '32' }
const painter = (on: boolean): Paint => (style, text) => (on ? `\u001b[${ANSI[style] ?? '0'}m${text}\u001b[0m` : text)

/** `file:line:col: error NIM010 spec.replicas: message (fix: ...)`. */
export function findingLine (file: string, f: Finding, paint: Paint = painter(false)): string {
  const severity = f.severity === 'error' ? paint('red', 'error') : paint('yellow', 'warning')
  const fix = f.fix !== undefined ? paint('dim', ` (fix: ${f.fix})`) : ''
  return `${paint('bold', `${file}:${f.line}:${f.column}`)}: ${severity} ${f.code} ${f.field}: ${f.message}${fix}`
}

export function summaryLine (s: Summary): string {
  const base = `${s.documents} documents, ${s.nimServices} NIMServices, ${s.denied} denied, ${s.warnings} warnings`
  return s.unreadable > 0 ? `${base}, ${s.unreadable} unreadable` : base
}

/** One line per finding, then the summary. Input errors are not repeated here: they went to stderr. */
export function formatText (report: Report, opts: FormatOptions): string {
  const paint = painter(opts.color === true)
  const lines: string[] = []
  for (const r of report.results) {
    for (const f of r.causes) lines.push(findingLine(r.file, f, paint))
    for (const f of r.warnings) lines.push(findingLine(r.file, f, paint))
  }
  const s = summarize(report)
  const failed = exitCodeOf(report, opts.strict) !== 0
  lines.push(paint(failed ? (s.unreadable > 0 || s.denied > 0 ? 'red' : 'yellow') : 'green', summaryLine(s)))
  return lines.join('\n') + '\n'
}

const findingJson = (f: Finding): Record<string, unknown> =>
  ({ field: f.field, line: f.line, column: f.column, code: f.code, message: f.message, fix: f.fix ?? null })

/** The whole report as one JSON document (stable keys; absent values are null). */
export function formatJson (report: Report, opts: FormatOptions): string {
  const s = summarize(report)
  return JSON.stringify({
    summary: { ...s, strict: opts.strict, passed: exitCodeOf(report, opts.strict) === 0 },
    results: report.results.map((r) => ({
      file: r.file,
      index: r.index,
      item: r.item ?? null,
      line: r.line,
      column: r.column,
      apiVersion: r.apiVersion,
      kind: r.kind,
      name: r.name ?? null,
      namespace: r.namespace ?? null,
      allowed: r.allowed,
      message: r.message ?? null,
      causes: r.causes.map(findingJson),
      warnings: r.warnings.map(findingJson)
    })),
    errors: report.errors.map((e) => ({ file: e.file, line: e.line ?? null, column: e.column ?? null, message: e.message }))
  }, null, 2) + '\n'
}

// XML 1.0 allows tab, line feed, carriage return and the rest from U+0020, no lone surrogates.
// eslint-disable-next-line no-control-regex -- removing what XML cannot carry is the point
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }

export function xml (text: string): string {
  return text.replace(NOT_XML, '\uFFFD').replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c)
}

function testcaseName (r: Result): string {
  const who = r.name === undefined ? '(no name)' : r.namespace === undefined ? r.name : `${r.namespace}/${r.name}`
  return `${r.kind} ${who} (${r.file}:${r.line}:${r.column})`
}

/** One testsuite per file, one testcase per NIMService, a failure per denial cause (and warning, strict). */
export function formatJunit (report: Report, opts: FormatOptions): string {
  const files: string[] = []
  const byFile = new Map<string, { cases: string[], tests: number, failures: number, errors: number }>()
  const suite = (file: string): { cases: string[], tests: number, failures: number, errors: number } => {
    let s = byFile.get(file)
    if (s === undefined) {
      s = { cases: [], tests: 0, failures: 0, errors: 0 }
      byFile.set(file, s)
      files.push(file)
    }
    return s
  }
  for (const e of report.errors) {
    const s = suite(e.file)
    s.tests++
    s.errors++
    s.cases.push(`    <testcase classname="${xml(e.file)}" name="${xml(`read ${e.file}`)}" file="${xml(e.file)}"${e.line !== undefined ? ` line="${e.line}"` : ''}>\n` +
      `      <error type="input" message="${xml(e.message)}">${xml(formatInputError(e))}</error>\n    </testcase>`)
  }
  for (const r of report.results) {
    const s = suite(r.file)
    s.tests++
    if (fails(r, opts.strict)) s.failures++
    const body: string[] = []
    for (const f of r.causes) {
      body.push(`      <failure type="${xml(f.code)}" message="${xml(`${f.field}: ${f.message}`)}">${xml(findingLine(r.file, f))}</failure>`)
    }
    if (opts.strict) {
      for (const f of r.warnings) {
        body.push(`      <failure type="${xml(f.code)}" message="${xml(`warning: ${f.field}: ${f.message}`)}">${xml(findingLine(r.file, f))}</failure>`)
      }
    } else if (r.warnings.length > 0) {
      body.push(`      <system-out>${xml(r.warnings.map((f) => findingLine(r.file, f)).join('\n'))}</system-out>`)
    }
    const open = `    <testcase classname="${xml(r.file)}" name="${xml(testcaseName(r))}" file="${xml(r.file)}" line="${r.line}"`
    s.cases.push(body.length === 0 ? `${open}/>` : `${open}>\n${body.join('\n')}\n    </testcase>`)
  }
  let tests = 0
  let failures = 0
  let errors = 0
  const suites = files.map((file) => {
    const s = byFile.get(file) as { cases: string[], tests: number, failures: number, errors: number }
    tests += s.tests
    failures += s.failures
    errors += s.errors
    return `  <testsuite name="${xml(file)}" tests="${s.tests}" failures="${s.failures}" errors="${s.errors}">\n${s.cases.join('\n')}\n  </testsuite>`
  })
  return '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="nim-admission validate" tests="${tests}" failures="${failures}" errors="${errors}">\n` +
    suites.map((s) => s + '\n').join('') +
    '</testsuites>\n'
}

export function formatReport (format: OutputFormat, report: Report, opts: FormatOptions): string {
  if (format === 'json') return formatJson(report, opts)
  if (format === 'junit') return formatJunit(report, opts)
  return formatText(report, opts)
}
