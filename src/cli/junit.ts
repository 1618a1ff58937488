// JUnit XML for CI systems that render test results (Jenkins, GitLab, Azure DevOps). A testcase per
// NIMService, named `namespace/name` so that its history survives edits that move it in its file;
// `classname` is the kind (no dots: Jenkins reads dots as packages); every element has a `time`; an
// input without NIMServices is one passing testcase, since Jenkins fails a report of zero tests.
import { formatInputError } from './input.js'
import { exitCodeOf, fails, findingLine, type FormatOptions, type Report, type Result } from './report.js'

// XML 1.0 allows tab, line feed, carriage return and the rest from U+0020, no lone surrogates.
// eslint-disable-next-line no-control-regex -- removing what XML cannot carry is the point
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g
const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\n': '&#10;', '\r': '&#13;', '\t': '&#9;' }

/** Text for an attribute value or element content (line breaks kept as character references). */
export function xml (text: string): string {
  return text.replace(NOT_XML, '\uFFFD').replace(/[&<>"'\n\r\t]/g, (c) => XML_ESCAPES[c] ?? c)
}

/** Element content: line breaks stay line breaks. */
const xmlBody = (text: string): string => text.replace(NOT_XML, '\uFFFD').replace(/[&<>]/g, (c) => XML_ESCAPES[c] ?? c)

const seconds = (s: number | undefined): string => (s ?? 0).toFixed(3)

/** `namespace/name` (just the name when the namespace is left to kubectl -n), stable across edits. */
export function testcaseName (r: Result): string {
  const name = r.name ?? `(no name: document ${r.index + 1}${r.item !== undefined ? ` item ${r.item + 1}` : ''})`
  return r.namespace === undefined ? name : `${r.namespace}/${name}`
}

interface Suite { cases: string[], tests: number, failures: number, errors: number, time: number }

export function formatJunit (report: Report, opts: FormatOptions): string {
  const files: string[] = []
  const byFile = new Map<string, Suite>()
  const suite = (file: string): Suite => {
    let s = byFile.get(file)
    if (s === undefined) {
      s = { cases: [], tests: 0, failures: 0, errors: 0, time: 0 }
      byFile.set(file, s)
      files.push(file)
    }
    return s
  }
  for (const e of report.errors) {
    const s = suite(e.file)
    s.tests++
    s.errors++
    s.cases.push(`    <testcase classname="input" name="${xml(`read ${e.file}`)}" file="${xml(e.file)}"${e.line !== undefined ? ` line="${e.line}"` : ''} time="0.000">\n` +
      `      <error type="input" message="${xml(e.message)}">${xmlBody(formatInputError(e))}</error>\n    </testcase>`)
  }
  for (const r of report.results) {
    const s = suite(r.file)
    s.tests++
    s.time += r.seconds ?? 0
    if (fails(r, opts.strict)) s.failures++
    const body: string[] = []
    for (const f of r.causes) {
      body.push(`      <failure type="${xml(f.code)}" message="${xml(`${f.field}: ${f.message}`)}">${xmlBody(findingLine(r.file, f))}</failure>`)
    }
    if (opts.strict) {
      for (const f of r.warnings) {
        body.push(`      <failure type="${xml(f.code)}" message="${xml(`warning: ${f.field}: ${f.message}`)}">${xmlBody(findingLine(r.file, f))}</failure>`)
      }
    } else if (r.warnings.length > 0) {
      body.push(`      <system-out>${xmlBody(r.warnings.map((f) => findingLine(r.file, f)).join('\n'))}</system-out>`)
    }
    const open = `    <testcase classname="${xml(r.kind)}" name="${xml(testcaseName(r))}" file="${xml(r.file)}" line="${r.line}" time="${seconds(r.seconds)}"`
    s.cases.push(body.length === 0 ? `${open}/>` : `${open}>\n${body.join('\n')}\n    </testcase>`)
  }
  if (files.length === 0) {
    const s = suite('nim-admission validate')
    s.tests++
    const failed = exitCodeOf(report, opts) !== 0
    s.cases.push(`    <testcase classname="NIMService" name="no NIMService in the input" time="0.000"${failed ? '>\n      <failure type="empty" message="no NIMService in the input (--fail-on-empty)"/>\n    </testcase>' : '/>'}`)
    if (failed) s.failures++
  }
  let tests = 0
  let failures = 0
  let errors = 0
  let time = 0
  const suites = files.map((file) => {
    const s = byFile.get(file) as Suite
    tests += s.tests
    failures += s.failures
    errors += s.errors
    time += s.time
    return `  <testsuite name="${xml(file)}" tests="${s.tests}" failures="${s.failures}" errors="${s.errors}" skipped="0" time="${seconds(s.time)}">\n${s.cases.join('\n')}\n  </testsuite>`
  })
  return '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<testsuites name="nim-admission validate" tests="${tests}" failures="${failures}" errors="${errors}" time="${seconds(time)}">\n` +
    suites.map((s) => s + '\n').join('') +
    '</testsuites>\n'
}
