// `nim-admission validate`: the cluster's verdict on manifests before they reach the cluster, from the
// same pure function the webhook calls (every NIMService checked as a CREATE), after what the
// apiserver does first: the CRD's defaults, and its own checks of metadata.
import { CommanderError, Option, type Command } from 'commander'
import { RULES, validateNIMService } from '../nimservice/index.js'
import { withCrdDefaults } from '../nimservice/crd-defaults.js'
import { objectMetaCauses } from '../nimservice/metadata.js'
import type { Cause, JsonObject, Warning } from '../nimservice/types.js'
import { denial } from '../admission/review.js'
import {
  formatInputError, isManifest, isSkipped, manifestsOf, metadataString, processIo, readManifests, usageErrorsExit2,
  type CliIo, type InputError, type Manifest, type Skipped, type Source
} from './input.js'
import { GROUP, KIND, SERVED_VERSIONS, nimServiceSchema } from './crd.js'
import {
  exitCodeOf, fixFor, formatReport, OUTPUT_FORMATS, resultLines, textEnd,
  type Finding, type FormatOptions, type OutputFormat, type Report, type Result, type TextDetail
} from './report.js'
import { githubEnd, githubError, githubResult } from './github.js'
import { escapeText } from './escape.js'

export { GROUP, KIND }

export interface CheckOptions {
  /** Codes silenced (--disable): their causes and warnings are dropped before the verdict. */
  disabled?: ReadonlySet<string>
}

function finding (m: Manifest, severity: Finding['severity'], c: Cause | Warning): Finding {
  const { line, column } = m.locate(c.field)
  const fix = fixFor(c.code)
  return { severity, field: c.field, code: c.code, message: c.message, ...(fix !== undefined ? { fix } : {}), line, column }
}

/** The name the webhook puts in a denial: metadata.name when it is a string (handlers.ts objectName). */
function denialName (object: JsonObject): string | undefined {
  const meta = object.metadata as { name?: unknown } | undefined
  return typeof meta?.name === 'string' ? meta.name : undefined
}

/** A NIMService of the NIM Operator: kind NIMService in a version of apps.nvidia.com the CRD serves. */
export function isNIMService (object: JsonObject): boolean {
  return object.kind === KIND && typeof object.apiVersion === 'string' && SERVED_VERSIONS.some((v) => object.apiVersion === `${GROUP}/${v}`)
}

/**
 * Why a document that is not a NIMService looks meant to be one (kubectl would answer `no matches for
 * kind`, and nothing would check it): the kind spelled otherwise, or a version the CRD does not serve.
 */
export function nearMiss (object: JsonObject): string | undefined {
  const kind = typeof object.kind === 'string' ? object.kind : ''
  const apiVersion = typeof object.apiVersion === 'string' ? object.apiVersion : ''
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : ''
  const kindLike = kind.toLowerCase().replace(/s$/, '') === 'nimservice'
  if (!kindLike && group !== GROUP) return undefined
  if (isNIMService(object)) return undefined
  if (!kindLike) return undefined // another kind of the group (NIMCache, NIMPipeline...)
  const served = SERVED_VERSIONS.map((v) => `${GROUP}/${v}`).join(', ')
  if (kind === KIND) return `no matches for kind "${KIND}" in version "${apiVersion}": the NIMService CRD serves ${served}; not checked`
  const version = SERVED_VERSIONS.some((v) => apiVersion === `${GROUP}/${v}`) ? '' : ` and apiVersion "${apiVersion}" is not ${served}`
  return `kind "${kind}" is not "${KIND}" (kinds are case-sensitive)${version}; not checked`
}

const keep = (opts: CheckOptions) => (c: { code: string }): boolean => opts.disabled?.has(c.code) !== true

/** The verdict on one NIMService manifest, placed in its source; a NIM120 for a near-miss; else undefined. */
export function checkManifest (m: Manifest, opts: CheckOptions = {}): Result | undefined {
  const started = performance.now()
  const apiVersion = typeof m.object.apiVersion === 'string' ? m.object.apiVersion : ''
  const kind = typeof m.object.kind === 'string' ? m.object.kind : ''
  const name = metadataString(m.object, 'name')
  const namespace = metadataString(m.object, 'namespace')
  const base = {
    file: m.file,
    index: m.index,
    ...(m.item !== undefined ? { item: m.item } : {}),
    ...m.position,
    apiVersion,
    kind,
    ...(name !== undefined ? { name } : {}),
    ...(namespace !== undefined ? { namespace } : {})
  }
  if (!isNIMService(m.object)) {
    const why = nearMiss(m.object)
    if (why === undefined) return undefined
    const warnings = [{ field: 'kind', code: 'NIM120', message: why }].filter(keep(opts)).map((w) => finding(m, 'warning', w))
    return { ...base, checked: false, allowed: true, causes: [], warnings }
  }
  // The apiserver decodes a custom resource with its CRD's defaults, and checks its metadata, before
  // any webhook sees it: so here too.
  const object = withCrdDefaults(m.object, nimServiceSchema())
  const verdict = validateNIMService({ operation: 'CREATE', object })
  const causes = [...objectMetaCauses(m.object), ...verdict.causes].filter(keep(opts))
  const result: Result = {
    ...base,
    checked: true,
    allowed: causes.length === 0,
    causes: causes.map((c) => finding(m, 'error', c)),
    warnings: verdict.warnings.filter(keep(opts)).map((w) => finding(m, 'warning', w))
  }
  if (!result.allowed) {
    const target = denialName(m.object)
    result.message = denial('', causes, { ...(target !== undefined ? { name: target } : {}), group: GROUP, kind: KIND }).status?.message
  }
  result.seconds = (performance.now() - started) / 1000
  return result
}

/** What the commands hear as the input is read: each result, input error and note as it comes. */
export interface Listener {
  result?: (r: Result) => void
  error?: (e: InputError) => void
}

/** Folds one object (or error, or skipped document) into the report; duplicates get NIM121. */
export class Checker {
  readonly report: Report = { documents: 0, skipped: 0, results: [], errors: [] }
  private readonly seen = new Map<string, Result>()

  constructor (private readonly opts: CheckOptions = {}, private readonly listener: Listener = {}) {}

  add (m: Manifest | InputError | Skipped): void {
    if (isSkipped(m)) {
      if (m.other !== undefined) this.report.documents++
      else this.report.skipped++
      return
    }
    if (!isManifest(m)) {
      this.report.errors.push(m)
      this.listener.error?.(m)
      return
    }
    this.report.documents++
    const result = checkManifest(m, this.opts)
    if (result === undefined) return
    if (result.checked && result.name !== undefined) {
      const key = `${result.namespace ?? ''}/${result.name}`
      const first = this.seen.get(key)
      if (first !== undefined && this.opts.disabled?.has('NIM121') !== true) {
        result.warnings.push(finding(m, 'warning', {
          field: 'metadata.name',
          code: 'NIM121',
          message: `NIMService ${key.startsWith('/') ? key.slice(1) : key} is also at ${first.file}:${first.line}:${first.column}: applied together, the last one wins`
        }))
      } else if (first === undefined) {
        this.seen.set(key, result)
      }
    }
    this.report.results.push(result)
    this.listener.result?.(result)
  }
}

/** Checks whole texts (tests, benchmarks). */
export function checkSources (sources: readonly Source[], opts: CheckOptions = {}, listener: Listener = {}): Report {
  const checker = new Checker(opts, listener)
  for (const source of sources) for (const m of manifestsOf(source)) checker.add(m)
  return checker.report
}

export interface ValidateOptions extends CheckOptions {
  exclude?: readonly string[]
}

export async function validatePaths (paths: readonly string[], io: Pick<CliIo, 'readStdin' | 'stdinChunks' | 'stderr'>, opts: ValidateOptions = {}, listener: Listener = {}): Promise<Report> {
  const checker = new Checker(opts, {
    result: listener.result,
    error: (e) => {
      io.stderr(`nim-admission: ${escapeText(formatInputError(e))}\n`)
      listener.error?.(e)
    }
  })
  const onNote = (note: string): void => { io.stderr(`nim-admission: ${escapeText(note)}\n`) }
  for await (const m of readManifests(paths, io, { exclude: opts.exclude ?? [], onNote })) checker.add(m)
  return checker.report
}

interface ValidateFlags {
  output: OutputFormat
  strict?: boolean
  color: boolean
  exclude: string[]
  disable: string[]
  summary?: boolean
  quiet?: boolean
  warnExitCode?: string
  failOnEmpty?: boolean
}

export function useColor (io: CliIo, flag: boolean): boolean {
  if (!flag || !io.stdoutIsTTY) return false
  const noColor = io.env.NO_COLOR
  return noColor === undefined || noColor === ''
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter((v) => v !== '')]


export function registerValidateCommand (program: Command, io: CliIo = processIo): void {
  const command = program.command('validate')
    .description('check NIMService manifests offline, with the verdict and words the admission webhook would give')
    .argument('<path...>', 'files, folders (recursive: .yaml, .yml, .json) or - for stdin')
    .addOption(new Option('-o, --output <format>', 'report format').choices(OUTPUT_FORMATS).default('text'))
    .option('--strict', 'warnings fail too (exit 1); so does a document that looks like a NIMService but is not one')
    .option('--exclude <glob>', 'skip paths matching the glob (repeatable; `templates`, `**/patches/*.yaml`)', collect, [])
    .option('--disable <code>', 'silence a rule offline (repeatable or comma-separated: NIM101,NIM109)', collect, [])
    .option('--summary', 'text: print only the summary line')
    .option('--quiet', 'text: print only what fails the gate, and nothing when it passes')
    .option('--warn-exit-code <n>', 'exit status when warnings are the worst finding (default 0)')
    .option('--fail-on-empty', 'exit 1 when the input holds no NIMService')
    .option('--no-color', 'no colour, even on a terminal (NO_COLOR is honoured too)')
    .addHelpText('after', `
Every NIMService (apps.nvidia.com/v1alpha1) document is checked as a CREATE, after the CRD's defaults
and with the apiserver's checks of metadata; other Kubernetes objects are counted and skipped, and so
is YAML that is no Kubernetes object (no apiVersion and no kind). Documents are read as kubectl reads
them: multi-document YAML (YAML 1.1 scalars: yes/no/on/off are booleans, 0o17 is 15), JSON and JSON
streams, kind: List, byte-order marks; empty files and documents are skipped.

Output (text): one line per finding as each document is checked, then a summary:
  deploy/nim.yaml:12:3: error NIM010 spec.replicas: spec.replicas cannot be set when ... (fix: ...)
  4 documents, 2 NIMServices, 1 denied, 1 warnings
Other formats: json, junit (a testcase per NIMService, named namespace/name), sarif (GitHub code
scanning), github (workflow annotations on the pull request).

Exit status:
  0  every NIMService would be admitted
  1  at least one would be denied (with --strict: or draws a warning; with --fail-on-empty: none found)
  N  warnings only, with --warn-exit-code N
  2  an input could not be read or parsed, or the command line is wrong (wins over 1)

Examples:
  $ nim-admission validate deploy/                       # every .yaml, .yml and .json below deploy/
  $ nim-admission validate nim.yaml other.yaml --strict
  $ nim-admission validate . --exclude templates --exclude '**/patches/*.yaml'
  $ helm template my-release ./chart | nim-admission validate -
  $ kustomize build overlays/prod | nim-admission validate - -o junit > nim-admission.xml
  $ nim-admission validate -o sarif deploy/ > nim-admission.sarif
  $ nim-admission validate -o json deploy/ | jq '.results[] | select(.allowed == false)'`)
    .action(async (paths: string[], flags: ValidateFlags) => {
      const usage = (message: string): never => {
        io.stderr(`nim-admission: ${message}\n`)
        throw new CommanderError(2, 'nim.usage', message)
      }
      const unknown = flags.disable.filter((c) => !RULES.has(c))
      if (unknown.length > 0) usage(`--disable: unknown code ${unknown.join(', ')} (see the rule table: nim-admission validate --help)`)
      let warnExitCode: number | undefined
      if (flags.warnExitCode !== undefined) {
        warnExitCode = Number(flags.warnExitCode)
        if (!Number.isInteger(warnExitCode) || warnExitCode < 0 || warnExitCode > 255) usage(`--warn-exit-code: ${flags.warnExitCode} is not an exit status (0-255)`)
      }
      if (flags.summary === true && flags.quiet === true) usage('--summary and --quiet: choose one')
      const strict = flags.strict === true
      const opts: FormatOptions & { detail: TextDetail } = {
        strict,
        color: useColor(io, flags.color),
        ...(warnExitCode !== undefined ? { warnExitCode } : {}),
        ...(flags.failOnEmpty === true ? { failOnEmpty: true } : {}),
        detail: flags.summary === true ? 'summary' : flags.quiet === true ? 'quiet' : 'all'
      }
      // text and github stream: each finding is printed as its document is checked.
      const listener: Listener = {}
      if (flags.output === 'text') {
        listener.result = (r) => {
          const lines = resultLines(r, opts)
          if (lines.length > 0) io.stdout(lines.map((l) => l + '\n').join(''))
        }
      } else if (flags.output === 'github') {
        listener.result = (r) => { io.stdout(githubResult(r, opts)) }
        listener.error = (e) => { io.stdout(githubError(e)) }
      }
      const report = await validatePaths(paths, io, { exclude: flags.exclude, disabled: new Set(flags.disable) }, listener)
      if (flags.output === 'text') io.stdout(textEnd(report, opts))
      else if (flags.output === 'github') io.stdout(githubEnd(report))
      else io.stdout(formatReport(flags.output, report, opts))
      io.setExitCode(exitCodeOf(report, opts))
    })
  usageErrorsExit2(command)
}
