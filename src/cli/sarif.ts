// SARIF 2.1.0 (GitHub code scanning, `github/codeql-action/upload-sarif`): the rule catalogue as the
// tool's rules, a result per finding placed at its file, line and column, and each unreadable input
// as a tool execution notification.
import { isAbsolute, relative, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import { RULES } from '../nimservice/index.js'
import { packageVersion } from '../server/metrics.js'
import { STDIN_NAME } from './input.js'
import { exitCodeOf, type FormatOptions, type Report } from './report.js'

const SCHEMA = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json'

/** A file as a SARIF artifact location: relative to the working directory (%SRCROOT%) when inside it. */
function artifact (file: string): Record<string, string> {
  if (file === STDIN_NAME) return { uri: 'stdin' }
  const rel = isAbsolute(file) ? relative(process.cwd(), file) : file
  if (isAbsolute(rel) || rel.startsWith('..')) return { uri: pathToFileURL(file).href }
  return { uri: rel.split(sep).map(encodeURIComponent).join('/'), uriBaseId: '%SRCROOT%' }
}

export function formatSarif (report: Report, opts: FormatOptions): string {
  const rules = [...RULES.values()]
  const index = new Map(rules.map((r, i) => [r.code, i]))
  const results = report.results.flatMap((r) => [...r.causes, ...r.warnings].map((f) => ({
    ruleId: f.code,
    ruleIndex: index.get(f.code) ?? -1,
    level: f.severity === 'error' || opts.strict ? 'error' : 'warning',
    message: { text: `${f.field}: ${f.message}${f.fix !== undefined ? ` (fix: ${f.fix})` : ''}` },
    locations: [{
      physicalLocation: { artifactLocation: artifact(r.file), region: { startLine: f.line, startColumn: f.column } },
      ...(r.name !== undefined ? { logicalLocations: [{ name: r.name, fullyQualifiedName: `${r.namespace ?? ''}/${r.name}`, kind: 'resource' }] } : {})
    }]
  })))
  const notifications = report.errors.map((e) => ({
    level: 'error',
    message: { text: e.message },
    locations: [{ physicalLocation: { artifactLocation: artifact(e.file), ...(e.line !== undefined ? { region: { startLine: e.line, startColumn: e.column ?? 1 } } : {}) } }]
  }))
  return JSON.stringify({
    $schema: SCHEMA,
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'nim-admission',
          version: packageVersion(),
          rules: rules.map((r) => ({
            id: r.code,
            shortDescription: { text: r.title },
            help: { text: r.fix },
            defaultConfiguration: { level: r.kind === 'deny' ? 'error' : 'warning' }
          }))
        }
      },
      invocations: [{ executionSuccessful: report.errors.length === 0, exitCode: exitCodeOf(report, opts), toolExecutionNotifications: notifications }],
      results
    }]
  }, null, 2) + '\n'
}
