// `nim-admission render`: each NIMService as the cluster would store it (the CRD's defaults, then
// /mutate), followed by the HorizontalPodAutoscaler it renders: the preview a reviewer wants in a pull
// request, and a stream `kubectl apply -n NS -f -` takes as it is.
import type { Command } from 'commander'
import { stringify, type Tags } from 'yaml'
import { mutateNIMService } from '../nimservice/index.js'
import type { JsonObject } from '../nimservice/types.js'
import { withCrdDefaults } from '../nimservice/crd-defaults.js'
import {
  formatInputError, isManifest, isSkipped, metadataString, processIo, readManifests, usageErrorsExit2,
  type CliIo, type Manifest
} from './input.js'
import { findingLine, type Finding } from './report.js'
import { checkManifest } from './validate.js'
import { nimServiceSchema } from './crd.js'
import { escapeText } from './escape.js'

export const DEFAULT_NAMESPACE = 'default'

// A string kubectl (go-yaml v2) would read as an integer must be quoted: `0o17`, which the yaml
// library's YAML 1.1 schema would leave plain.
const QUOTE_GO_OCTAL = {
  identify: (v: unknown) => typeof v === 'string' && /^[-+]?0[oO][0-7_]+$/.test(v),
  default: true,
  tag: 'tag:yaml.org,2002:str',
  stringify: (item: { value: unknown }) => JSON.stringify(item.value)
}

/** YAML that kubectl reads back as the same JSON: strings like "yes", "010" or "0o17" are quoted (YAML 1.1). */
export function toYaml (value: JsonObject): string {
  return stringify(value, { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false, customTags: (tags: Tags): Tags => [QUOTE_GO_OCTAL as unknown as Tags[number], ...tags] })
}

export interface Rendered {
  /** Findings and denials, one line each, for stderr. */
  notes: string[]
  denied: number
  unreadable: number
}

function subject (m: Manifest, namespace: string): string {
  return `NIMService ${metadataString(m.object, 'namespace') ?? namespace}/${metadataString(m.object, 'name') ?? '(no name)'}`
}

/** Renders one admitted NIMService; returns undefined and notes the denial when the cluster would deny it. */
export function renderManifest (m: Manifest, namespace: string, notes: string[]): string | undefined {
  const result = checkManifest(m)
  if (result === undefined) return undefined
  if (!result.checked) {
    for (const f of result.warnings) notes.push(findingLine(m.file, f))
    return ''
  }
  if (!result.allowed) {
    notes.push(`${escapeText(`${m.file}:${m.position.line}:${m.position.column}: ${subject(m, namespace)}`)} denied: ${escapeText(result.message ?? '')}`)
    for (const f of result.causes) notes.push(findingLine(m.file, f))
    return undefined
  }
  // The object as kubectl apply -n sends it: the namespace set, then the CRD's defaults.
  const meta = (m.object.metadata ?? {}) as JsonObject
  const object = withCrdDefaults({ ...m.object, metadata: { ...meta, namespace: metadataString(m.object, 'namespace') ?? namespace } }, nimServiceSchema())
  const mutation = mutateNIMService({ operation: 'CREATE', object, namespace })
  // /validate and /mutate both answer a kubectl apply: their warnings together, each once.
  const seen = new Set<string>()
  const warnings: Finding[] = [...result.warnings, ...mutation.warnings.map((w): Finding => {
    const { line, column } = m.locate(w.field)
    return { severity: 'warning', field: w.field, code: w.code, message: w.message, line, column }
  })].filter((w) => {
    const key = `${w.code} ${w.field}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
  for (const w of warnings) notes.push(findingLine(m.file, w))
  const from = escapeText(`${m.file}:${m.position.line}:${m.position.column}`)
  const who = escapeText(subject(m, namespace))
  let out = `---\n# ${who} from ${from}, as the cluster stores it (CRD defaults, then /mutate)\n${toYaml(mutation.object)}`
  if (mutation.hpa !== undefined) {
    out += `---\n# HorizontalPodAutoscaler rendered from ${who} (${from})\n${toYaml(mutation.hpa)}`
  }
  return out
}

/** Renders as it reads: each NIMService's YAML goes to stdout as soon as it is checked. */
export async function renderPaths (paths: readonly string[], namespace: string, io: Pick<CliIo, 'readStdin' | 'stdinChunks' | 'stderr' | 'stdout'>, exclude: readonly string[] = []): Promise<Rendered> {
  const rendered: Rendered = { notes: [], denied: 0, unreadable: 0 }
  const onNote = (note: string): void => { io.stderr(`nim-admission: ${escapeText(note)}\n`) }
  for await (const m of readManifests(paths, io, { exclude, onNote })) {
    if (isSkipped(m)) continue
    if (!isManifest(m)) {
      rendered.unreadable++
      io.stderr(`nim-admission: ${escapeText(formatInputError(m))}\n`)
      continue
    }
    const notes: string[] = []
    const yaml = renderManifest(m, namespace, notes)
    if (yaml === undefined && notes.length > 0) rendered.denied++
    if (yaml !== undefined && yaml !== '') io.stdout(yaml)
    for (const note of notes) io.stderr(`${note}\n`)
    rendered.notes.push(...notes)
  }
  return rendered
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

export function registerRenderCommand (program: Command, io: CliIo = processIo): void {
  const command = program.command('render')
    .description('print each NIMService as the cluster stores it and the HorizontalPodAutoscaler it renders (YAML)')
    .argument('<path...>', 'files, folders (recursive: .yaml, .yml, .json) or - for stdin')
    .option('-n, --namespace <namespace>', 'namespace for NIMServices without metadata.namespace (as kubectl -n)', DEFAULT_NAMESPACE)
    .option('--exclude <glob>', 'skip paths matching the glob (repeatable)', collect, [])
    .addHelpText('after', `
Only NIMServices are printed, each with its namespace set (metadata.namespace, else --namespace), the
CRD's defaults and /mutate's changes. A NIMService the cluster would deny is not rendered: its denial
goes to stderr instead. Warnings go to stderr too, so stdout stays a clean YAML stream.

Exit status: 0 all rendered, 1 at least one denied, 2 an input could not be read or parsed (wins over 1).

Examples:
  $ nim-admission render deploy/nim.yaml
  $ nim-admission render deploy/ > preview.yaml
  $ helm template my-release ./chart | nim-admission render - -n nim-service
  $ nim-admission render nim.yaml 2>/dev/null | grep -A20 'kind: HorizontalPodAutoscaler'`)
    .action(async (paths: string[], flags: { namespace: string, exclude: string[] }) => {
      const rendered = await renderPaths(paths, flags.namespace, io, flags.exclude)
      io.setExitCode(rendered.unreadable > 0 ? 2 : rendered.denied > 0 ? 1 : 0)
    })
  usageErrorsExit2(command)
}
