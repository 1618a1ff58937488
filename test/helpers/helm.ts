// Runs the pinned helm that scripts/install-helm.sh builds into .cache/bin, and parses what it renders.
import { execFile, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const chartDir = join(repoRoot, 'charts', 'nim-admission')
/** The Kubernetes version charts are rendered for unless a test says otherwise. */
export const defaultKubeVersion = '1.36.0'

/** A rendered Kubernetes object; the fields tests read are reached through `get`. */
export interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [field: string]: unknown
}

export interface HelmResult {
  code: number
  stdout: string
  stderr: string
}

export interface HelmTemplateOptions {
  releaseName?: string
  namespace?: string
  kubeVersion?: string
  /** Render as an upgrade (`--is-upgrade`), which changes the certificate hook Jobs. */
  isUpgrade?: boolean
  /** Extra helm arguments, e.g. ['--show-only', 'templates/service.yaml']. */
  extraArgs?: string[]
  chart?: string
}

let cachedBinary: string | undefined

/**
 * Path of the pinned helm. Runs scripts/install-helm.sh first, which returns at once when the pinned version is
 * already built and otherwise builds it with `go install` (a few minutes); throws with the script's output when
 * that fails, so a test never passes or skips silently without helm. HELM_BIN points at another helm instead.
 */
export function helmBinary(): string {
  if (cachedBinary !== undefined) return cachedBinary
  const override = process.env.HELM_BIN
  if (override) {
    if (!existsSync(override)) throw new Error(`HELM_BIN=${override} does not exist`)
    cachedBinary = override
    return override
  }
  const script = join(repoRoot, 'scripts', 'install-helm.sh')
  const run = spawnSync('bash', [script], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  if (run.status !== 0) {
    throw new Error(
      `scripts/install-helm.sh failed (exit ${run.status ?? run.signal}); helm is needed for the chart tests.\n` +
        `${run.stdout}${run.stderr}`
    )
  }
  if (run.stderr.trim()) process.stderr.write(run.stderr)
  const binary = join(repoRoot, '.cache', 'bin', 'helm')
  if (!existsSync(binary)) throw new Error(`scripts/install-helm.sh succeeded but ${binary} is missing`)
  cachedBinary = binary
  return binary
}

/** No kubeconfig or repository state from the caller's machine leaks into rendering. */
function helmEnv(): NodeJS.ProcessEnv {
  const home = join(tmpdir(), 'nim-admission-helm')
  return {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    KUBECONFIG: '/dev/null'
  }
}

/** Runs helm with the arguments; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runHelm(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<HelmResult> {
  const binary = helmBinary()
  return new Promise((resolvePromise, reject) => {
    execFile(
      binary,
      args,
      {
        cwd: opts.cwd ?? repoRoot,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        env: helmEnv()
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error)
          return
        }
        resolvePromise({ code: error ? Number(error.code) : 0, stdout, stderr })
      }
    )
  })
}

/**
 * Helm arguments that pass the values: an object goes through a temporary values file (`-f`), a string array
 * through `--set` (one entry each). Returns a cleanup for the temporary folder.
 */
async function valuesArgs(values: object | string[] | undefined): Promise<{ args: string[]; cleanup: () => Promise<void> }> {
  if (values === undefined) return { args: [], cleanup: async () => {} }
  if (Array.isArray(values)) return { args: values.flatMap((v) => ['--set', v]), cleanup: async () => {} }
  const dir = await mkdtemp(join(tmpdir(), 'nim-admission-values-'))
  const file = join(dir, 'values.json')
  // JSON is YAML, so helm reads it as a values file.
  await writeFile(file, JSON.stringify(values))
  return { args: ['-f', file], cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** `helm template` with the values; resolves with the raw result, whatever the exit code. */
export async function helmTemplateRaw(values?: object | string[], opts: HelmTemplateOptions = {}): Promise<HelmResult> {
  const { args, cleanup } = await valuesArgs(values)
  try {
    return await runHelm([
      'template',
      opts.releaseName ?? 'nim',
      opts.chart ?? chartDir,
      '--namespace',
      opts.namespace ?? 'nim-system',
      '--kube-version',
      opts.kubeVersion ?? defaultKubeVersion,
      ...(opts.isUpgrade ? ['--is-upgrade'] : []),
      ...args,
      ...(opts.extraArgs ?? [])
    ])
  } finally {
    await cleanup()
  }
}

/** `helm lint --strict` with the values; resolves with the raw result. */
export async function helmLint(values?: object | string[], opts: HelmTemplateOptions = {}): Promise<HelmResult> {
  const { args, cleanup } = await valuesArgs(values)
  try {
    return await runHelm([
      'lint',
      opts.chart ?? chartDir,
      '--strict',
      '--namespace',
      opts.namespace ?? 'nim-system',
      '--kube-version',
      opts.kubeVersion ?? defaultKubeVersion,
      ...args,
      ...(opts.extraArgs ?? [])
    ])
  } finally {
    await cleanup()
  }
}

/** Parses helm's multi-document YAML output; empty documents are dropped, a malformed one throws. */
export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`)
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) continue
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`helm rendered a non-object document: ${JSON.stringify(value)}`)
    manifests.push(value as Manifest)
  }
  return manifests
}

/** Renders the chart with `helm template` and returns the parsed manifests; rejects with helm's stderr on failure. */
export async function helmTemplate(values?: object | string[], opts: HelmTemplateOptions = {}): Promise<Manifest[]> {
  const result = await helmTemplateRaw(values, opts)
  if (result.code !== 0) throw new Error(`helm template failed (exit ${result.code}):\n${result.stderr}`)
  return parseManifests(result.stdout)
}
