// The offline verdict as a report: lines for people (and CI problem matchers), written as each
// document is checked; one JSON document for programs; JUnit XML (junit.ts), SARIF (sarif.ts) and
// GitHub Actions annotations (github.ts) for CI systems.
import { RULES } from '../nimservice/index.js'
import type { InputError } from './input.js'
import { escapeText, safeLine } from './escape.js'
import { formatJunit } from './junit.js'
import { formatSarif } from './sarif.js'
import { formatGithub } from './github.js'

export { xml } from './junit.js'

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

/** The verdict on one NIMService document (or a warning on one that looks like a NIMService). */
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
  /** False for a near-miss (NIM120): reported, not checked. */
  checked: boolean
  allowed: boolean
  /** The denial's status message, word for word what the apiserver would print. */
  message?: string
  causes: Finding[]
  warnings: Finding[]
  /** Seconds spent on this document's verdict (JUnit `time`). */
  seconds?: number
}

export interface Report {
  /** Objects read (List items count one by one; empty documents not at all). */
  documents: number
  /** Documents that are no Kubernetes object (no apiVersion nor kind, lists, scalars). */
  skipped: number
  results: Result[]
  errors: InputError[]
}

export interface Summary {
  documents: number
  nimServices: number
  denied: number
  warnings: number
  skipped: number
  unreadable: number
}

export type OutputFormat = 'text' | 'json' | 'junit' | 'sarif' | 'github'
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'junit', 'sarif', 'github']

export interface FormatOptions {
  /** Warnings fail too. */
  strict: boolean
  color?: boolean
  /** Exit status when warnings are the worst (--warn-exit-code); 0 by default. */
  warnExitCode?: number
  /** Exit 1 when no NIMService was checked (--fail-on-empty). */
  failOnEmpty?: boolean
}

export function fixFor (code: string): string | undefined {
  return RULES.get(code)?.fix
}

export function summarize (report: Report): Summary {
  return {
    documents: report.documents,
    nimServices: report.results.filter((r) => r.checked).length,
    denied: report.results.filter((r) => !r.allowed).length,
    warnings: report.results.reduce((n, r) => n + r.warnings.length, 0),
    skipped: report.skipped,
    unreadable: report.errors.length
  }
}

/** Whether a result fails the gate: denied, or (strict) warned. */
export function fails (result: Result, strict: boolean): boolean {
  return !result.allowed || (strict && result.warnings.length > 0)
}

/**
 * 2 when any input could not be read or parsed (it wins), 1 when any NIMService fails (or, with
 * failOnEmpty, none was found), the warn exit code when any warns, else 0.
 */
export function exitCodeOf (report: Report, opts: FormatOptions | boolean): number {
  const o: FormatOptions = typeof opts === 'boolean' ? { strict: opts } : opts
  if (report.errors.length > 0) return 2
  if (report.results.some((r) => fails(r, o.strict))) return 1
  if (o.failOnEmpty === true && !report.results.some((r) => r.checked)) return 1
  if (o.warnExitCode !== undefined && o.warnExitCode !== 0 && report.results.some((r) => r.warnings.length > 0)) return o.warnExitCode
  return 0
}

type Paint = (style: string, text: string) => string
const ANSI: Record<string, string> = { bold: '1', dim: '2', red: '31', yellow: '33', green: '32' }
export const painter = (on: boolean): Paint => (style, text) => (on ? `\u001b[${ANSI[style] ?? '0'}m${text}\u001b[0m` : text)

/** `file:line:col: error NIM010 spec.replicas: message (fix: ...)`, every input-derived part escaped. */
export function findingLine (file: string, f: Finding, paint: Paint = painter(false)): string {
  const severity = f.severity === 'error' ? paint('red', 'error') : paint('yellow', 'warning')
  const fix = f.fix !== undefined ? paint('dim', ` (fix: ${f.fix})`) : ''
  const where = `${escapeText(file)}:${f.line}:${f.column}`
  return safeLine(`${paint('bold', where)}: ${severity} ${f.code} ${escapeText(f.field)}: ${escapeText(f.message)}${fix}`)
}

export function summaryLine (s: Summary): string {
  let line = `${s.documents} documents, ${s.nimServices} NIMServices, ${s.denied} denied, ${s.warnings} warnings`
  if (s.skipped > 0) line += `, ${s.skipped} skipped (not Kubernetes objects)`
  if (s.unreadable > 0) line += `, ${s.unreadable} unreadable`
  return line
}

/** What text output shows: everything, only what fails (--quiet), or only the summary (--summary). */
export type TextDetail = 'all' | 'quiet' | 'summary'

/** The finding lines of one result, as the text format prints them when the result is checked. */
export function resultLines (r: Result, opts: FormatOptions & { detail?: TextDetail }): string[] {
  const detail = opts.detail ?? 'all'
  if (detail === 'summary') return []
  const paint = painter(opts.color === true)
  const lines = r.causes.map((f) => findingLine(r.file, f, paint))
  if (detail === 'all' || opts.strict) for (const f of r.warnings) lines.push(findingLine(r.file, f, paint))
  return lines
}

/** The last line of the text format (none with --quiet when the gate passes). */
export function textEnd (report: Report, opts: FormatOptions & { detail?: TextDetail }): string {
  const s = summarize(report)
  const code = exitCodeOf(report, opts)
  if (opts.detail === 'quiet' && code === 0) return ''
  const paint = painter(opts.color === true)
  return paint(code !== 0 ? (s.unreadable > 0 || code === 1 ? 'red' : 'yellow') : 'green', summaryLine(s)) + '\n'
}

/** One line per finding, then the summary. Input errors are not repeated here: they went to stderr. */
export function formatText (report: Report, opts: FormatOptions & { detail?: TextDetail }): string {
  const lines: string[] = []
  for (const r of report.results) lines.push(...resultLines(r, opts))
  return lines.map((l) => l + '\n').join('') + textEnd(report, opts)
}

const findingJson = (f: Finding): Record<string, unknown> =>
  ({ field: f.field, line: f.line, column: f.column, code: f.code, message: f.message, fix: f.fix ?? null })

/** The whole report as one JSON document (stable keys; absent values are null). */
export function formatJson (report: Report, opts: FormatOptions): string {
  const s = summarize(report)
  return JSON.stringify({
    summary: { ...s, strict: opts.strict, passed: exitCodeOf(report, opts) === 0 },
    results: report.results.map((r) => ({
      file: r.file,
      index: r.index,
      item: r.item ?? null,
      line: r.line,
      column: r.column,
      apiVersion: r.apiVersion,
      kind: r.kind,
      checked: r.checked,
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

export function formatReport (format: OutputFormat, report: Report, opts: FormatOptions): string {
  if (format === 'json') return formatJson(report, opts)
  if (format === 'junit') return formatJunit(report, opts)
  if (format === 'sarif') return formatSarif(report, opts)
  if (format === 'github') return formatGithub(report, opts)
  return formatText(report, opts)
}
