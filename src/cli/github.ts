// GitHub Actions annotations: one workflow command per finding, shown on the pull request's diff.
// Values are escaped as the runner expects (toolkit's command.ts): `%`, CR and LF in the message,
// and `:` and `,` too in properties, so nothing in the input can end the command or start another.
import { escapeText } from './escape.js'
import { summarize, summaryLine, type FormatOptions, type Report, type Result } from './report.js'
import { formatInputError, type InputError } from './input.js'

const data = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
const property = (s: string): string => data(s).replace(/:/g, '%3A').replace(/,/g, '%2C')

function command (level: 'error' | 'warning', props: Record<string, string | number>, message: string): string {
  const p = Object.entries(props).map(([k, v]) => `${k}=${property(escapeText(String(v)))}`).join(',')
  return `::${level} ${p}::${data(escapeText(message))}\n`
}

/** The annotations of one result (warnings are errors with --strict: they fail the gate). */
export function githubResult (r: Result, opts: FormatOptions): string {
  let out = ''
  for (const f of [...r.causes, ...r.warnings]) {
    const level = f.severity === 'error' || opts.strict ? 'error' : 'warning'
    out += command(level, { file: r.file, line: f.line, col: f.column, title: `${f.code} ${f.field}` }, `${f.message}${f.fix !== undefined ? ` (fix: ${f.fix})` : ''}`)
  }
  return out
}

export function githubError (e: InputError): string {
  const props: Record<string, string | number> = { file: e.file, title: 'nim-admission: unreadable input' }
  if (e.line !== undefined) props.line = e.line
  if (e.column !== undefined) props.col = e.column
  return command('error', props, formatInputError(e))
}

/** The summary, as a notice. */
export function githubEnd (report: Report): string {
  return `::notice title=nim-admission validate::${data(summaryLine(summarize(report)))}\n`
}

export function formatGithub (report: Report, opts: FormatOptions): string {
  return report.errors.map(githubError).join('') + report.results.map((r) => githubResult(r, opts)).join('') + githubEnd(report)
}
