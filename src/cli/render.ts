// `nim-admission render`: each NIMService as /mutate would leave it, followed by the
// HorizontalPodAutoscaler it renders: the preview a reviewer wants in a pull request.
import type { Command } from 'commander'
import { stringify } from 'yaml'
import { mutateNIMService } from '../nimservice/index.js'
import type { JsonObject } from '../nimservice/types.js'
import {
  formatInputError, isInputError, isManifest, isNIMService, manifestsOf, metadataString, processIo, readSources, usageErrorsExit2,
  type CliIo, type Manifest
} from './input.js'
import { findingLine, type Finding } from './report.js'
import { checkManifest } from './validate.js'

export const DEFAULT_NAMESPACE = 'default'

/** YAML that kubectl reads back as the same JSON: strings like "yes" or "010" are quoted (YAML 1.1). */
export function toYaml (value: JsonObject): string {
  return stringify(value, { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false })
}

export interface Rendered {
  /** The YAML stream: per admitted NIMService, the mutated object then its HPA. */
  yaml: string
  /** Findings and denials, one line each, for stderr. */
  notes: string[]
  denied: number
  unreadable: number
}

function subject (m: Manifest, namespace: string): string {
  return `NIMService ${metadataString(m.object, 'namespace') ?? namespace}/${metadataString(m.object, 'name') ?? '(no name)'}`
}

/** Renders one admitted NIMService; returns undefined and notes the denial when the webhook would deny it. */
export function renderManifest (m: Manifest, namespace: string, notes: string[]): string | undefined {
  const result = checkManifest(m)
  if (result === undefined) return undefined
  if (!result.allowed) {
    notes.push(`${m.file}:${m.position.line}:${m.position.column}: ${subject(m, namespace)} denied: ${result.message ?? ''}`)
    for (const f of result.causes) notes.push(findingLine(m.file, f))
    return undefined
  }
  const mutation = mutateNIMService({ operation: 'CREATE', object: m.object, namespace })
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
  const from = `${m.file}:${m.position.line}:${m.position.column}`
  let out = `---\n# ${subject(m, namespace)} from ${from}, as /mutate leaves it\n${toYaml(mutation.object)}`
  if (mutation.hpa !== undefined) {
    out += `---\n# HorizontalPodAutoscaler rendered from ${subject(m, namespace)} (${from})\n${toYaml(mutation.hpa)}`
  }
  return out
}

export async function renderPaths (paths: readonly string[], namespace: string, io: Pick<CliIo, 'readStdin' | 'stderr'>): Promise<Rendered> {
  const rendered: Rendered = { yaml: '', notes: [], denied: 0, unreadable: 0 }
  for (const source of await readSources(paths, io)) {
    if (isInputError(source)) {
      rendered.unreadable++
      io.stderr(`nim-admission: ${formatInputError(source)}\n`)
      continue
    }
    for (const m of manifestsOf(source)) {
      if (!isManifest(m)) {
        rendered.unreadable++
        io.stderr(`nim-admission: ${formatInputError(m)}\n`)
        continue
      }
      if (!isNIMService(m.object)) continue
      const yaml = renderManifest(m, namespace, rendered.notes)
      if (yaml === undefined) rendered.denied++
      else rendered.yaml += yaml
    }
  }
  return rendered
}

export function registerRenderCommand (program: Command, io: CliIo = processIo): void {
  const command = program.command('render')
    .description('print each NIMService as /mutate leaves it and the HorizontalPodAutoscaler it renders (YAML)')
    .argument('<path...>', 'files, folders (recursive: .yaml, .yml, .json) or - for stdin')
    .option('-n, --namespace <namespace>', 'namespace for NIMServices without metadata.namespace (as kubectl -n)', DEFAULT_NAMESPACE)
    .addHelpText('after', `
Only NIMServices are printed. A NIMService the webhook would deny is not rendered: its denial goes to
stderr instead. Warnings go to stderr too, so stdout stays a clean YAML stream.

Exit status: 0 all rendered, 1 at least one denied, 2 an input could not be read or parsed (wins over 1).

Examples:
  $ nim-admission render deploy/nim.yaml
  $ nim-admission render deploy/ > preview.yaml
  $ helm template my-release ./chart | nim-admission render - -n nim-service
  $ nim-admission render nim.yaml 2>/dev/null | grep -A20 'kind: HorizontalPodAutoscaler'`)
    .action(async (paths: string[], flags: { namespace: string }) => {
      const rendered = await renderPaths(paths, flags.namespace, io)
      io.stdout(rendered.yaml)
      for (const note of rendered.notes) io.stderr(`${note}\n`)
      io.setExitCode(rendered.unreadable > 0 ? 2 : rendered.denied > 0 ? 1 : 0)
    })
  usageErrorsExit2(command)
}
