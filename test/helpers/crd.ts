// NIMService CRDs for the end-to-end suite: the vendored upstream one, and one generated from
// schemas/ with no CEL rules at all, so that only the webhook can reject what CEL would; and the one
// way the suites wait for a CRD to be served (waitForCrdsEstablished).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

type Json = Record<string, unknown>
const root = new URL('../../', import.meta.url)

export function upstreamCrd (): Json {
  return parse(readFileSync(new URL('schemas/upstream/apps.nvidia.com_nimservices.yaml', root), 'utf8')) as Json
}

// A structural CRD schema may not carry additionalProperties beside properties; the apiserver
// prunes unknown fields instead (and kubectl's strict field validation reports them).
function toStructural (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural)
  if (node === null || typeof node !== 'object') return node
  const out: Json = {}
  for (const [k, v] of Object.entries(node as Json)) {
    if ((k === 'additionalProperties' && v === false) || k === 'x-kubernetes-validations') continue
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, toStructural(s)]))
    else out[k] = toStructural(v)
  }
  return out
}

export function crdWithoutCel (): Json {
  const crd = upstreamCrd()
  const schema = JSON.parse(readFileSync(new URL('schemas/nimservice-spec.schema.json', root), 'utf8')) as Json
  delete schema.$schema
  delete schema.$id
  delete schema.title
  const version = ((crd.spec as Json).versions as Json[])[0] as Json
  const openAPIV3Schema = ((version.schema as Json).openAPIV3Schema as Json)
  const properties = openAPIV3Schema.properties as Json
  properties.spec = toStructural(schema)
  properties.status = toStructural(properties.status)
  delete openAPIV3Schema['x-kubernetes-validations']
  const text = JSON.stringify(crd)
  if (text.includes('x-kubernetes-validations')) throw new Error('the generated CRD still has CEL rules')
  return crd
}

export interface CrdCondition { type?: unknown, status?: unknown, reason?: unknown, message?: unknown }

/** True when the CRD object reports `Established=True`. A CRD the apiserver has not touched yet has no
 * `status.conditions` at all (kubectl 1.32's `wait --for condition=established` errors on exactly that). */
export function crdEstablished (crd: unknown): boolean {
  const conditions = (crd as { status?: { conditions?: unknown } } | undefined)?.status?.conditions
  if (!Array.isArray(conditions)) return false
  return conditions.some((c: CrdCondition) => c?.type === 'Established' && c?.status === 'True')
}

export interface WaitForCrdsOptions {
  /** Overall deadline for every CRD; default 60 s (a cold apiserver on a loaded 2-core box is slow). */
  timeoutMs?: number
  /** Poll interval; default 100 ms. */
  intervalMs?: number
  /** Reads a CRD by name: the object, or undefined while it does not exist. Default: `kubectl get crd -o json`. */
  read?: (name: string) => Promise<unknown> | unknown
  /** Whether the resource answers a list in discovery (`kubectl get <plural>.<group>`). Default: kubectl. */
  served?: (name: string) => Promise<boolean> | boolean
}

/**
 * Waits until every named CRD is Established and its resource is served: the one way the suites wait for
 * CRDs. Polls the CRD's status instead of `kubectl wait`, so a CRD read before the apiserver wrote any
 * condition is "not yet", not an error. Fails after the deadline naming each CRD and the conditions it had.
 */
export async function waitForCrdsEstablished (kubeconfig: string, names: string[], opts: WaitForCrdsOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 60_000
  const intervalMs = opts.intervalMs ?? 100
  const read = opts.read ?? ((name: string) => readCrd(kubeconfig, name))
  const served = opts.served ?? ((name: string) => kubectlQuiet(kubeconfig, ['get', name, '-A', '--request-timeout=10s']).status === 0)
  const deadline = Date.now() + timeoutMs
  const pending = new Set(names)
  const seen = new Map<string, string>()
  while (true) {
    for (const name of [...pending]) {
      let crd: unknown
      try {
        crd = await read(name)
      } catch (err) {
        seen.set(name, `read failed: ${(err as Error).message}`)
        continue
      }
      if (crd === undefined) { seen.set(name, 'not found'); continue }
      if (!crdEstablished(crd)) {
        const conditions = (crd as { status?: { conditions?: unknown } }).status?.conditions
        seen.set(name, `conditions ${JSON.stringify(conditions ?? null)}`)
        continue
      }
      if (!(await served(name))) { seen.set(name, 'Established, not yet served in discovery'); continue }
      pending.delete(name)
    }
    if (pending.size === 0) return
    if (Date.now() >= deadline) {
      const detail = [...pending].map((n) => `${n}: ${seen.get(n) ?? 'never read'}`).join('; ')
      throw new Error(`CRDs not established after ${timeoutMs} ms: ${detail}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

function kubectlQuiet (kubeconfig: string, args: string[]): { status: number, stdout: string, stderr: string } {
  const r = spawnSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

function readCrd (kubeconfig: string, name: string): unknown {
  const r = kubectlQuiet(kubeconfig, ['get', 'crd', name, '-o', 'json', '--request-timeout=10s'])
  if (r.status === 0) return JSON.parse(r.stdout) as unknown
  if (/NotFound|not found/.test(r.stderr)) return undefined
  throw new Error(r.stderr.trim() || `kubectl exited ${r.status}`)
}
