// End to end beside the real NVIDIA NIM operator (built from its source by scripts/build-operator.sh):
// the operator, nim-admission serve (both webhooks, failurePolicy Fail) and its appliers run against the
// test kube-apiserver. The same lifecycle runs in two namespaces at once: GUARDED, which the webhooks
// select, and PLAIN, which they do not (what the operator does without nim-admission). Every step must
// leave both with the same Deployments, Services and HPAs, and the state the NIMService spec asks for.
// The harness runs no controller-manager: no garbage collector, no kubelet, so pods never run.
//
// NIM_E2E_ADMISSION_ROOT=<checkout with a built dist/> runs that build of nim-admission instead of this
// one (how the test was shown to fail with a fix reverted, from a temporary `git worktree`).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { parse } from 'yaml'
import { apiserverBinary, startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { apiRequest, freePort, kubectl, kubectlOk, startWebhook, type WebhookProcess, webhookConfigurations } from '../helpers/kube.js'
import { waitForCrdsEstablished } from '../helpers/crd.js'
import { operatorBinary, startOperator, type OperatorProcess } from '../helpers/operator.js'
import { HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/index.js'
import { EVENT_COMPONENT } from '../../src/applier/apply.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ADMISSION_ROOT = resolve(process.env.NIM_E2E_ADMISSION_ROOT ?? ROOT)
const CRD_DIR = join(ROOT, '..', 'shared', 'upstream', 'k8s-nim-operator', 'config', 'crd', 'bases')
const GUARDED = 'nim-guarded'
const PLAIN = 'nim-plain'
const WEBHOOK_CONFIG = 'nim-admission'
const FINALIZER = 'finalizer.nimservice.apps.nvidia.com'
const OPERATOR_LABEL = 'app.kubernetes.io/managed-by'
// The operator's hash of the whole rendered object (namespace and owner uid included); its hash of the
// NIMService spec (nvidia.com/parent-spec-hash) is compared.
const OBJECT_HASH = 'nvidia.com/last-applied-hash'
const STEP_TIMEOUT_MS = 180_000

for (const [what, path, how] of [
  ['the test kube-apiserver', apiserverBinary(), 'bash scripts/build-apiserver.sh'],
  ['the NIM operator', operatorBinary(), 'bash scripts/build-operator.sh'],
  ['the operator CRDs', CRD_DIR, 'clone ../shared beside this repository'],
  ['nim-admission', join(ADMISSION_ROOT, 'dist', 'src', 'cli', 'main.js'), 'npm run build']
] as const) {
  // Never skip silently: npm test builds all of them first.
  if (!existsSync(path)) throw new Error(`${what} is missing (${path}): run \`${how}\`, or \`npm test\`, which builds it`)
}

let api: Apiserver
let kubeconfig: string
let operator: OperatorProcess | undefined
let webhook: WebhookProcess | undefined
let certDir: string | undefined
const appliers: Background[] = []
let verifier: Background
let writer: Background

const k = (args: string[], input?: string): string => kubectlOk(kubeconfig, args, input)

async function list (ns: string, path: string): Promise<Json[]> {
  const res = await apiRequest(kubeconfig, 'GET', `${path.replace('{ns}', ns)}`)
  if (res.status !== 200) throw new Error(`GET ${path} in ${ns}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.items as Json[]
}

interface NsState { nims: Map<string, Json>, objects: Map<string, Json>, events: Json[] }

async function read (ns: string): Promise<NsState> {
  const [nims, deployments, services, hpas] = await Promise.all([
    list(ns, '/apis/apps.nvidia.com/v1alpha1/namespaces/{ns}/nimservices'),
    list(ns, '/apis/apps/v1/namespaces/{ns}/deployments'),
    list(ns, '/api/v1/namespaces/{ns}/services'),
    list(ns, '/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers')
  ])
  const objects = new Map<string, Json>()
  for (const [kind, items] of [['Deployment', deployments], ['Service', services], ['HorizontalPodAutoscaler', hpas]] as const) {
    for (const o of items) objects.set(`${kind}/${o.metadata.name}`, o)
  }
  return { nims: new Map(nims.map((n) => [n.metadata.name as string, n])), objects, events: [] }
}

/** An object as the operator decided it: no identities, times, status, namespace or cluster-assigned IPs. */
function normalise (o: Json, ns: string): Json {
  const c = structuredClone(o)
  for (const f of ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'namespace', 'selfLink']) delete c.metadata[f]
  if (c.metadata.annotations !== undefined) {
    delete c.metadata.annotations[OBJECT_HASH]
    // nim-admission's own annotations on GUARDED NIMServices are its output, not the operator's state.
    delete c.metadata.annotations[HPA_ANNOTATION]
    delete c.metadata.annotations[HPA_SHA_ANNOTATION]
    delete c.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']
  }
  for (const r of c.metadata.ownerReferences ?? []) delete r.uid
  delete c.metadata.deletionTimestamp
  delete c.status
  if (c.kind === 'Service' || c.spec?.clusterIP !== undefined) { delete c.spec.clusterIP; delete c.spec.clusterIPs }
  return JSON.parse(JSON.stringify(c).replaceAll(ns, '<namespace>')) as Json
}

/** What a namespace holds, comparable across namespaces: its NIMServices (spec, state, finalizers, labels) and objects. */
function comparable (state: NsState, ns: string): Json {
  const out: Json = {}
  for (const [name, nim] of state.nims) {
    out[`NIMService/${name}`] = { spec: nim.spec, state: nim.status?.state, finalizers: nim.metadata.finalizers, labels: nim.metadata.labels, deleting: nim.metadata.deletionTimestamp !== undefined }
  }
  for (const [key, o] of state.objects) out[key] = normalise(o, ns)
  return out
}

const sortKeys = (o: Json): Json => Object.fromEntries(Object.keys(o).sort().map((key) => [key, o[key]]))

/** Where a namespace differs from what each healthy NIMService's spec asks of the operator (empty: converged). */
function problems (ns: string, state: NsState, healthy: string[]): string[] {
  const out: string[] = []
  for (const name of healthy) {
    const nim = state.nims.get(name)
    const at = `${ns}/${name}`
    if (nim === undefined) { out.push(`${at}: NIMService missing`); continue }
    const spec = nim.spec
    const status = nim.status ?? {}
    if (!(nim.metadata.finalizers ?? []).includes(FINALIZER)) out.push(`${at}: no operator finalizer yet`)
    if (status.state === 'Failed') out.push(`${at}: state Failed: ${JSON.stringify(status.conditions ?? [])}`)
    else if (status.state === undefined) out.push(`${at}: not reconciled yet`)
    const dep = state.objects.get(`Deployment/${name}`)
    if (dep === undefined) out.push(`${at}: no Deployment`)
    else {
      const image = dep.spec.template.spec.containers?.[0]?.image
      if (image !== `${spec.image.repository}:${spec.image.tag}`) out.push(`${at}: Deployment image ${image}`)
      if (spec.scale?.enabled !== true && dep.spec.replicas !== spec.replicas) out.push(`${at}: Deployment replicas ${dep.spec.replicas}, spec.replicas ${spec.replicas}`)
    }
    const svc = state.objects.get(`Service/${name}`)
    if (svc === undefined) out.push(`${at}: no Service`)
    else if (!(svc.spec.ports as Json[]).some((p) => p.port === spec.expose.service.port)) out.push(`${at}: Service ports ${JSON.stringify(svc.spec.ports)}`)
    const hpa = state.objects.get(`HorizontalPodAutoscaler/${name}`)
    if (spec.scale?.enabled === true) {
      if (hpa === undefined) { out.push(`${at}: no HPA`); continue }
      const want = spec.scale.hpa
      const owner = (hpa.metadata.ownerReferences ?? []).find((r: Json) => r.controller === true)
      if (owner?.kind !== 'NIMService' || owner?.uid !== nim.metadata.uid) out.push(`${at}: HPA controlled by ${JSON.stringify(owner)}`)
      if (!isDeepStrictEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name })) out.push(`${at}: HPA targets ${JSON.stringify(hpa.spec.scaleTargetRef)}`)
      for (const f of ['minReplicas', 'maxReplicas', 'metrics'] as const) {
        if (!isDeepStrictEqual(hpa.spec[f], want[f])) out.push(`${at}: HPA ${f} ${JSON.stringify(hpa.spec[f])}, spec ${JSON.stringify(want[f])}`)
      }
    } else if (hpa !== undefined) out.push(`${at}: HPA still there with autoscaling off`)
  }
  // Whatever a NIMService asks for, every HPA here is the operator's, named after and scaling its own Deployment.
  for (const [key, o] of state.objects) {
    if (!key.startsWith('HorizontalPodAutoscaler/')) continue
    if (o.metadata.labels?.[OPERATOR_LABEL] !== 'k8s-nim-operator') out.push(`${ns}/${key}: not the operator's (labels ${JSON.stringify(o.metadata.labels)})`)
    if (o.spec.scaleTargetRef.name !== o.metadata.name) out.push(`${ns}/${key}: targets ${JSON.stringify(o.spec.scaleTargetRef)}`)
  }
  return out
}

function diagnostics (): string {
  const parts = [operator?.describe() ?? '(no operator)', `nim-admission serve log tail:\n${webhook?.logs().slice(-8_000) ?? '(not started)'}`]
  for (const a of appliers) parts.push(`applier ${a.name} log tail:\n${a.logs().slice(-8_000)}`)
  return parts.join('\n\n')
}

/** Polls until `check` returns no problems; on the deadline fails with the last problems and every log tail. */
async function until (what: string, check: () => Promise<string[]>, timeoutMs = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (true) {
    let last: string[]
    try {
      last = await check()
    } catch (err) {
      last = [`check failed: ${(err as Error).message}`]
    }
    if (last.length === 0) return
    for (const a of appliers) if (a.exited()) assert.fail(`applier ${a.name} exited while waiting for ${what}:\n${diagnostics()}`)
    if (Date.now() >= deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}:\n${last.join('\n')}\n\n${diagnostics()}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

/**
 * Waits until both namespaces hold what the specs ask for, then until they hold the same, and asserts it.
 * `healthy` are the NIMServices that must reach it; the legacy one is compared only.
 */
async function converge (step: string, healthy: string[]): Promise<void> {
  await until(`${step}: the operator's objects in both namespaces`, async () => {
    const [g, p] = await Promise.all([read(GUARDED), read(PLAIN)])
    return [...problems(GUARDED, g, healthy), ...problems(PLAIN, p, healthy)]
  })
  let last: [Json, Json] | undefined
  await until(`${step}: both namespaces to hold the same`, async () => {
    const [g, p] = await Promise.all([read(GUARDED), read(PLAIN)])
    last = [comparable(g, GUARDED), comparable(p, PLAIN)]
    return isDeepStrictEqual(last[0], last[1]) ? [] : ['they differ']
  }, 60_000).catch(() => undefined)
  assert.ok(last !== undefined, `${step}: the namespaces could not be read`)
  assert.deepEqual(sortKeys(last[0]), sortKeys(last[1]), `${step}: ${GUARDED} (with nim-admission) differs from ${PLAIN} (without)`)
}

/** The same change, by the same client, in both namespaces. */
function both (fn: (ns: string) => void): void {
  for (const ns of [GUARDED, PLAIN]) fn(ns)
}

const patch = (ns: string, name: string, body: Json): string => k(['-n', ns, 'patch', 'nimservice', name, '--type', 'merge', '-p', JSON.stringify(body)])

function nimService (name: string, ns: string, spec: Json): Json {
  return {
    apiVersion: 'apps.nvidia.com/v1alpha1',
    kind: 'NIMService',
    metadata: { name, namespace: ns },
    spec: {
      image: { repository: 'nvcr.io/nim/meta/llama-3.1-8b-instruct', tag: '1.8.0', pullPolicy: 'IfNotPresent', pullSecrets: ['ngc-secret'] },
      authSecret: 'ngc-api-secret',
      storage: { emptyDir: { sizeLimit: '20Gi' } },
      resources: { requests: { cpu: '2', memory: '16Gi' } },
      expose: { service: { type: 'ClusterIP', port: 8000 } },
      ...spec
    }
  }
}

const cpu70 = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }
const kvCache = (name: string, value: string): Json => ({ type: 'Object', object: { describedObject: { apiVersion: 'v1', kind: 'Service', name }, metric: { name: 'gpu_cache_usage_perc' }, target: { type: 'Value', value } } })
const running: Json = ({ type: 'Pods', pods: { metric: { name: 'num_requests_running' }, target: { type: 'AverageValue', averageValue: '10' } } })

// Three shapes that nim-admission admits unchanged (every default it would fill is set), so that both
// namespaces hold the same specs: a Resource metric, an Object metric with behavior, autoscaling off.
const SHAPES: Record<string, Json> = {
  'by-cpu': { scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 4, metrics: [cpu70] } } },
  'by-kv-cache': { scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 5, metrics: [kvCache('by-kv-cache', '750m')], behavior: { scaleDown: { stabilizationWindowSeconds: 300 } } } } },
  fixed: { replicas: 1, scale: { enabled: false } }
}
const HEALTHY = Object.keys(SHAPES)
// Invalid for nim-admission (maxReplicas below minReplicas) and created before the webhooks were registered.
const LEGACY = 'legacy'
const legacySpec = { scale: { enabled: true, hpa: { minReplicas: 3, maxReplicas: 2, metrics: [cpu70] } } }

interface Background { name: string, logs (): string, exited (): boolean, metrics (): Promise<string>, stop (): Promise<void> }

/** The value of one Prometheus series (0 when absent). */
function metric (text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

/** `nim-admission apply` as a subprocess of the built CLI, ready once its /readyz answers. */
async function startApplierProcess (name: string, extra: string[]): Promise<Background> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(ADMISSION_ROOT, 'dist', 'src', 'cli', 'main.js'), 'apply', '--kubeconfig', kubeconfig,
    '--metrics-host', '127.0.0.1', '--metrics-port', String(port), '--resync-period', '5s', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] })
  let logs = ''
  const keep = (c: Buffer): void => { logs = (logs + c.toString()).slice(-100_000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  process.once('exit', () => child.kill('SIGKILL'))
  const proc: Background = {
    name,
    logs: () => logs,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    metrics: async () => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
    stop: async () => {
      if (!proc.exited()) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(killer)
    }
  }
  appliers.push(proc)
  await until(`applier ${name} to be ready`, async () => {
    if (proc.exited()) assert.fail(`applier ${name} exited (code ${child.exitCode}): ${logs}`)
    const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined)
    return res?.status === 200 ? [] : [`/readyz ${res?.status ?? 'unreachable'}`]
  }, 60_000)
  return proc
}

function webhookConfigs (port: number, caBundle: string): Json[] {
  return webhookConfigurations({ port, caBundle, name: WEBHOOK_CONFIG, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': GUARDED } } })
}

/** Warning Events the operator records when a reconcile fails (its defer in reconcileNIMService, and Sync). */
async function failureEvents (ns: string, names: string[]): Promise<string[]> {
  const events = await list(ns, '/api/v1/namespaces/{ns}/events')
  return events
    .filter((e) => e.type === 'Warning' && ['Failed', 'ReconcileFailed'].includes(e.reason) && e.involvedObject?.kind === 'NIMService' && names.includes(e.involvedObject?.name))
    .map((e) => `${ns}/${e.involvedObject.name} ${e.reason}: ${e.message}`)
}

describe('beside the real NIM operator', { timeout: 900_000 }, () => {
  before(async () => {
    api = await startApiserver()
    kubeconfig = api.kubeconfig
    const crdFiles = readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml')).map((f) => join(CRD_DIR, f))
    k(['apply', '--server-side', ...crdFiles.flatMap((f) => ['-f', f])])
    await waitForCrdsEstablished(kubeconfig, crdFiles.map((f) => String((parse(readFileSync(f, 'utf8')) as Json).metadata.name)))
    for (const ns of [GUARDED, PLAIN]) k(['create', 'namespace', ns])
    operator = await startOperator({ kubeconfig })

    // The legacy NIMService exists, with the operator's finalizer, before nim-admission is installed.
    both((ns) => k(['create', '-f', '-'], JSON.stringify(nimService(LEGACY, ns, legacySpec))))
    await until('the operator to take the legacy NIMService', async () => {
      const out: string[] = []
      for (const ns of [GUARDED, PLAIN]) {
        const nim = (await read(ns)).nims.get(LEGACY)
        if (!(nim?.metadata.finalizers ?? []).includes(FINALIZER) || nim?.status?.state === undefined) out.push(`${ns}: not yet`)
      }
      return out
    })

    certDir = mkdtempSync(join(tmpdir(), 'nim-operator-e2e-certs-'))
    webhook = await startWebhook(ADMISSION_ROOT, certDir)
    const caBundle = readFileSync(join(certDir, 'ca.crt')).toString('base64')
    k(['apply', '--server-side', '-f', '-'], webhookConfigs(webhook.port, caBundle).map((o) => JSON.stringify(o)).join('\n'))
    // Registration takes a moment to be honoured: wait until a dry-run create in GUARDED is denied by ours.
    const probe = JSON.stringify(nimService('probe', GUARDED, legacySpec))
    await until('the validating webhook to be called', async () => {
      const r = kubectl(kubeconfig, ['create', '--dry-run=server', '-f', '-'], probe)
      return /spec\.scale\.hpa\.maxReplicas/.test(r.output) ? [] : [r.output]
    }, 60_000)

    // The default mode (read-only), and the explicit writer, which must refuse what the operator manages.
    verifier = await startApplierProcess('default', ['--webhook-configuration', WEBHOOK_CONFIG])
    writer = await startApplierProcess('write', ['--mode', 'write', '--webhook-configuration', WEBHOOK_CONFIG])
  })

  after(async () => {
    await Promise.all(appliers.map((a) => a.stop()))
    await webhook?.stop()
    await operator?.stop()
    if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true })
    await api?.stop()
  })

  test('every NIMService reaches what the operator reaches without nim-admission, through its whole lifecycle', async () => {
    const timings: Record<string, number> = {}
    const step = async (name: string, change: () => void): Promise<void> => {
      const t0 = Date.now()
      change()
      await converge(name, HEALTHY)
      timings[name] = Date.now() - t0
    }

    await step('create', () => both((ns) => {
      for (const [name, spec] of Object.entries(SHAPES)) k(['create', '-f', '-'], JSON.stringify(nimService(name, ns, spec)))
    }))

    // Anyone who may edit a NIMService can write nim-admission's annotation by hand, sha included: an HPA
    // for another Deployment with huge bounds. Nothing may come of it, covered namespace or not.
    const forged = JSON.stringify({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'fixed' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'payments' }, minReplicas: 200, maxReplicas: 300 } })
    await step('forged annotation', () => both((ns) => k(['-n', ns, 'annotate', 'nimservice', 'fixed', '--overwrite',
      `${HPA_ANNOTATION}=${forged}`, `${HPA_SHA_ANNOTATION}=${createHash('sha256').update(forged).digest('hex')}`])))

    await step('spec change: image tag, HPA bounds, metrics', () => both((ns) => {
      for (const name of HEALTHY) patch(ns, name, { spec: { image: { tag: '1.8.1' } } })
      patch(ns, 'by-cpu', { spec: { scale: { hpa: { minReplicas: 3, maxReplicas: 6 } } } })
      patch(ns, 'by-kv-cache', { spec: { scale: { hpa: { metrics: [kvCache('by-kv-cache', '600m'), cpu70] } } } })
      patch(ns, 'fixed', { spec: { replicas: 2 } })
    }))

    await step('autoscaling off (and on for the fixed one)', () => both((ns) => {
      for (const name of ['by-cpu', 'by-kv-cache']) patch(ns, name, { spec: { replicas: 2, scale: { enabled: false } } })
      patch(ns, 'fixed', { spec: { replicas: null, scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 3, metrics: [running] } } } })
    }))

    await step('autoscaling on again', () => both((ns) => {
      for (const name of ['by-cpu', 'by-kv-cache']) patch(ns, name, { spec: { replicas: null, scale: { enabled: true } } })
    }))

    // No reconcile failed on the way, with or without nim-admission.
    assert.deepEqual([...await failureEvents(GUARDED, HEALTHY), ...await failureEvents(PLAIN, HEALTHY)], [])

    // The verifier renders from each spec what the operator built (in sync), judges only GUARDED, and
    // the writer refuses every NIMService the operator reconciles; neither ever wrote an HPA.
    const series = (state: string): string => `nim_admission_applier_nimservices{state="${state}"}`
    await until('the appliers to judge the final state', async () => {
      const [v, w] = await Promise.all([verifier.metrics(), writer.metrics()])
      const got = {
        verifier: Object.fromEntries(['in-sync', 'invalid', 'not-covered', 'drift', 'missing'].map((s) => [s, metric(v, series(s))])),
        writer: Object.fromEntries(['refused', 'not-covered', 'write', 'pending'].map((s) => [s, metric(w, series(s))]))
      }
      // The legacy NIMService has no HPA (the apiserver refused the operator's): the verifier says missing.
      const want = { verifier: { 'in-sync': 3, invalid: 0, 'not-covered': 4, drift: 0, missing: 1 }, writer: { refused: 4, 'not-covered': 4, write: 0, pending: 0 } }
      return isDeepStrictEqual(got, want) ? [] : [`applier states ${JSON.stringify(got)}, want ${JSON.stringify(want)}`]
    }, 60_000)
    for (const a of [verifier, writer]) {
      const text = await a.metrics()
      const writes = text.split('\n').filter((l) => l.startsWith('nim_admission_applier_writes_total{') && !l.endsWith(' 0'))
      assert.deepEqual(writes, [], `applier ${a.name} wrote`)
    }
    const applierEvents = (await list(PLAIN, '/api/v1/namespaces/{ns}/events')).filter((e) => e.source?.component === EVENT_COMPONENT || e.reportingComponent === EVENT_COMPONENT)
    assert.deepEqual(applierEvents.map((e) => `${e.reason} ${e.involvedObject?.name}`), [], 'nim-admission acted in a namespace its webhooks do not cover')

    // The legacy NIMService: a label change is admitted with the webhooks up, and nothing else changes.
    await step('label change on the legacy NIMService', () => both((ns) => k(['-n', ns, 'label', 'nimservice', LEGACY, 'team=inference'])))
    assert.equal((await read(GUARDED)).nims.get(LEGACY)?.metadata.labels?.team, 'inference')

    // Deletion: the operator removes its finalizer (an UPDATE through the webhooks) and every NIMService goes.
    const t0 = Date.now()
    both((ns) => k(['-n', ns, 'delete', 'nimservice', '--all', '--wait=false']))
    await until('every NIMService to be deleted', async () => {
      const left: string[] = []
      for (const ns of [GUARDED, PLAIN]) {
        for (const [name, nim] of (await read(ns)).nims) left.push(`${ns}/${name} finalizers ${JSON.stringify(nim.metadata.finalizers)}`)
      }
      return left
    })
    timings.delete = Date.now() - t0
    // With no garbage collector the operator's objects stay behind; they too are the same in both.
    const [g, p] = await Promise.all([read(GUARDED), read(PLAIN)])
    assert.deepEqual(sortKeys(comparable(g, GUARDED)), sortKeys(comparable(p, PLAIN)))
    process.stdout.write(`# operator lifecycle timings (ms): ${JSON.stringify(timings)}\n`)
  })
})
