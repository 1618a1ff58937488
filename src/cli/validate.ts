// `nim-admission validate`: the cluster's verdict on manifests before they reach the cluster, from the
// same pure function the webhook calls (every NIMService checked as a CREATE).
import { Option, type Command } from 'commander'
import { validateNIMService } from '../nimservice/index.js'
import type { Cause, Warning } from '../nimservice/types.js'
import { denial } from '../admission/review.js'
import {
  formatInputError, isInputError, isManifest, isNIMService, manifestsOf, metadataString, processIo, readSources, usageErrorsExit2,
  type CliIo, type InputError, type Manifest, type Source
} from './input.js'
import { exitCodeOf, fixFor, formatReport, OUTPUT_FORMATS, type Finding, type OutputFormat, type Report, type Result } from './report.js'

export const GROUP = 'apps.nvidia.com'
export const KIND = 'NIMService'

function finding (m: Manifest, severity: Finding['severity'], c: Cause | Warning): Finding {
  const { line, column } = m.locate(c.field)
  const fix = fixFor(c.code)
  return { severity, field: c.field, code: c.code, message: c.message, ...(fix !== undefined ? { fix } : {}), line, column }
}

/** The name the webhook puts in a denial: metadata.name when it is a string (handlers.ts objectName). */
function denialName (m: Manifest): string | undefined {
  const meta = m.object.metadata as { name?: unknown } | undefined
  return typeof meta?.name === 'string' ? meta.name : undefined
}

/** The verdict on one NIMService manifest, placed in its source; undefined for any other kind. */
export function checkManifest (m: Manifest): Result | undefined {
  if (!isNIMService(m.object)) return undefined
  const verdict = validateNIMService({ operation: 'CREATE', object: m.object })
  const name = metadataString(m.object, 'name')
  const namespace = metadataString(m.object, 'namespace')
  const result: Result = {
    file: m.file,
    index: m.index,
    ...(m.item !== undefined ? { item: m.item } : {}),
    ...m.position,
    apiVersion: m.object.apiVersion as string,
    kind: KIND,
    ...(name !== undefined ? { name } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    allowed: verdict.allowed,
    causes: verdict.causes.map((c) => finding(m, 'error', c)),
    warnings: verdict.warnings.map((w) => finding(m, 'warning', w))
  }
  if (!verdict.allowed) {
    const target = denialName(m)
    result.message = denial('', verdict.causes, { ...(target !== undefined ? { name: target } : {}), group: GROUP, kind: KIND }).status?.message
  }
  return result
}

/** Checks what readSources returned; `onError` hears about each unreadable input as it is found. */
export function checkSources (sources: ReadonlyArray<Source | InputError>, onError: (e: InputError) => void = () => {}): Report {
  const report: Report = { documents: 0, results: [], errors: [] }
  const fail = (e: InputError): void => {
    report.errors.push(e)
    onError(e)
  }
  for (const source of sources) {
    if (isInputError(source)) {
      fail(source)
      continue
    }
    for (const m of manifestsOf(source)) {
      if (!isManifest(m)) {
        fail(m)
        continue
      }
      report.documents++
      const result = checkManifest(m)
      if (result !== undefined) report.results.push(result)
    }
  }
  return report
}

export async function validatePaths (paths: readonly string[], io: Pick<CliIo, 'readStdin' | 'stderr'>): Promise<Report> {
  const sources = await readSources(paths, io)
  return checkSources(sources, (e) => io.stderr(`nim-admission: ${formatInputError(e)}\n`))
}

interface ValidateFlags { output: OutputFormat, strict?: boolean, color: boolean }

export function useColor (io: CliIo, flag: boolean): boolean {
  if (!flag || !io.stdoutIsTTY) return false
  const noColor = io.env.NO_COLOR
  return noColor === undefined || noColor === ''
}

export function registerValidateCommand (program: Command, io: CliIo = processIo): void {
  const command = program.command('validate')
    .description('check NIMService manifests offline, with the verdict and words the admission webhook would give')
    .argument('<path...>', 'files, folders (recursive: .yaml, .yml, .json) or - for stdin')
    .addOption(new Option('-o, --output <format>', 'report format').choices(OUTPUT_FORMATS).default('text'))
    .option('--strict', 'warnings fail too (exit 1)')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR is honoured too)')
    .addHelpText('after', `
Every NIMService (apps.nvidia.com) document is checked as a CREATE; other documents are counted and
skipped. Multi-document YAML, JSON and kind: List are read; YAML scalars are read as kubectl reads them
(YAML 1.1: yes/no/on/off are booleans).

Output (text): one line per finding, then a summary:
  deploy/nim.yaml:12:3: error NIM010 spec.replicas: spec.replicas cannot be set when ... (fix: ...)
  4 documents, 2 NIMServices, 1 denied, 1 warnings

Exit status:
  0  every NIMService would be admitted
  1  at least one would be denied (with --strict: or draws a warning)
  2  an input could not be read or parsed, or the command line is wrong (wins over 1)

Examples:
  $ nim-admission validate deploy/                       # every .yaml, .yml and .json below deploy/
  $ nim-admission validate nim.yaml other.yaml --strict
  $ helm template my-release ./chart | nim-admission validate -
  $ kustomize build overlays/prod | nim-admission validate - -o junit > nim-admission.xml
  $ nim-admission validate -o json deploy/ | jq '.results[] | select(.allowed == false)'`)
    .action(async (paths: string[], flags: ValidateFlags) => {
      const report = await validatePaths(paths, io)
      const strict = flags.strict === true
      io.stdout(formatReport(flags.output, report, { strict, color: useColor(io, flags.color) }))
      io.setExitCode(exitCodeOf(report, strict))
    })
  usageErrorsExit2(command)
}
