// End to end for `nim-admission apply` against a real kube-apiserver (test/apiserver): the appliers run
// in this process (src/applier/run.ts, as the CLI starts them); NIMServices are created with kubectl,
// carrying the annotations the mutating webhook computes (mutateNIMService), so the webhook need not run.
// No controller-manager runs here: no garbage collector, so every HPA deletion seen is the applier's own.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { stringify } from 'yaml'
import { apiserverBinary, startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { kubectl, kubectlOk, waitFor } from '../helpers/kube.js'
import { upstreamCrd } from '../helpers/crd.js'
import { autoscaled } from '../helpers/nimservice.js'
import { mutateNIMService, HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/index.js'
import { startApplier, type ApplierOptions, type RunningApplier } from '../../src/applier/run.js'
import { startServer, type RunningServer } from '../../src/server/serve.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const binary = apiserverBinary()
const missing = !existsSync(binary)
const why = `the test kube-apiserver is not built (${binary}): run \`bash scripts/build-apiserver.sh\` (needs Go), or \`npm test\`, which builds it`
if (missing && process.env.CI === 'true') throw new Error(why) // in CI, never skip
if (missing) process.stderr.write(`# applier e2e skipped: ${why}\n`)

const MAIN_NS = 'applier-main'
const DRY_NS = 'applier-dry'
const LE_NS = 'applier-le'
const HOOK_NS = 'applier-webhook'

let api: Apiserver
let kubeconfig: string
const running: RunningApplier[] = []

const yaml = (o: unknown): string => stringify(o)
const k = (args: string[], input?: string): string => kubectlOk(kubeconfig, args, input)
const getJson = (args: string[]): Json | undefined => {
  const r = kubectl(kubeconfig, ['get', ...args, '-o', 'json'])
  if (r.status !== 0) {
    if (/NotFound|not found/.test(r.stderr)) return undefined
    throw new Error(`kubectl get ${args.join(' ')}: ${r.output}`)
  }
  return JSON.parse(r.stdout) as Json
}
const hpaOf = (ns: string, name: string): Json | undefined => getJson(['-n', ns, 'hpa', name])
const nimOf = (ns: string, name: string): Json => getJson(['-n', ns, 'nimservice', name]) as Json
/** kubectl without blocking the event loop: needed when the call goes through the webhook served by this process. */
async function kAsync (args: string[], input?: string): Promise<string> {
  const child = promisify(execFile)('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 })
  if (input !== undefined) child.child.stdin?.end(input)
  const { stdout } = await child
  return stdout
}

/** What the mutating webhook would make of `object` on CREATE or UPDATE: the object with its annotations. */
function mutated (object: Json, ns: string, oldObject?: Json): Json {
  const m = mutateNIMService({ operation: oldObject === undefined ? 'CREATE' : 'UPDATE', object, ...(oldObject !== undefined ? { oldObject } : {}), namespace: ns } as never)
  return m.object as Json
}

function annotatedNim (name: string, ns: string, hpa?: Json): Json {
  const base = hpa === undefined ? autoscaled() : autoscaled(hpa)
  const object = { ...base, metadata: { name, namespace: ns } }
  const out = mutated(object, ns)
  assert.ok(out.metadata.annotations?.[HPA_ANNOTATION], 'the fixture is rendered')
  return out
}

/** Replaces a stored NIMService with `change` applied, re-rendered as the webhook would on UPDATE. */
function updateNim (ns: string, name: string, change: (spec: Json) => void): Json {
  const current = nimOf(ns, name)
  const next = structuredClone(current)
  change(next.spec)
  const out = mutated(next, ns, current)
  // The webhook's JSON patch removes annotations it no longer renders; replace carries that out.
  k(['replace', '-f', '-'], JSON.stringify(out))
  return out
}

const renderedSpec = (nim: Json): Json => (JSON.parse(nim.metadata.annotations[HPA_ANNOTATION]) as Json).spec

async function startOne (opts: Partial<ApplierOptions>, print?: (line: string) => void): Promise<RunningApplier> {
  const applier = await startApplier({ kubeconfig, metricsHost: '127.0.0.1', metricsPort: 0, logLevel: process.env.NIM_TEST_DEBUG === '1' ? 'debug' : 'silent', resyncPeriodMs: 0, ...opts },
    { defaultMetrics: false, watchBackoff: { initialMs: 200, maxMs: 1_000 }, ...(print !== undefined ? { print } : {}) })
  running.push(applier)
  return applier
}

async function probe (applier: RunningApplier, path: string): Promise<{ status: number, body: string }> {
  const res = await fetch(`http://127.0.0.1:${applier.metricsPort}${path}`)
  return { status: res.status, body: await res.text() }
}

function metric (text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? '' : `{${labels}}`} `) || (labels === '' && l.startsWith(`${name}{`)))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

async function waitHpaSpec (ns: string, name: string, spec: Json, timeoutMs = 15_000): Promise<Json> {
  return await waitFor(`HPA ${ns}/${name} with the rendered spec`, () => {
    const hpa = hpaOf(ns, name)
    if (hpa === undefined) return undefined
    try {
      assert.deepStrictEqual(hpa.spec, spec)
      return hpa
    } catch {
      return undefined
    }
  }, timeoutMs, 100)
}

const timings: Record<string, number> = {}

describe('nim-admission apply against a real kube-apiserver', { skip: missing ? why : false, timeout: 150_000 }, () => {
  let main: RunningApplier
  let webhook: RunningServer | undefined
  let certDir: string | undefined

  before(async () => {
    api = await startApiserver()
    kubeconfig = api.kubeconfig
    for (const ns of [MAIN_NS, DRY_NS, LE_NS, HOOK_NS]) k(['create', 'namespace', ns])
  })

  after(async () => {
    await Promise.all(running.map((a) => a.stop()))
    await webhook?.shutdown()
    if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true })
    await api?.stop()
    process.stdout.write(`# applier e2e timings (ms): ${JSON.stringify(timings)}\n`)
  })

  test('not ready until the NIMService watch syncs: started before the CRD exists, it relists with backoff and becomes ready', async () => {
    main = await startOne({ namespaces: [MAIN_NS, HOOK_NS] })
    const early = await probe(main, '/readyz')
    assert.equal(early.status, 503)
    assert.match(early.body, /not synced/)
    assert.equal((await probe(main, '/healthz')).status, 200)
    await waitFor('a failed list to be reported', async () => /HTTP 404/.test((await probe(main, '/readyz')).body) ? true : undefined, 10_000, 50)

    const t0 = Date.now()
    k(['apply', '--server-side', '-f', '-'], yaml(upstreamCrd()))
    await waitFor('the CRD to be established', () => {
      const crd = getJson(['crd', 'nimservices.apps.nvidia.com'])
      return (crd?.status?.conditions ?? []).some((c: Json) => c.type === 'Established' && c.status === 'True') ? true : undefined
    }, 30_000, 100)
    await waitFor('/readyz 200', async () => (await probe(main, '/readyz')).status === 200 ? true : undefined, 15_000, 50)
    timings.readyAfterCrd = Date.now() - t0
    const metrics = (await probe(main, '/metrics')).body
    assert.equal(metric(metrics, 'nim_admission_applier_watch_synced'), 1)
    assert.ok(metric(metrics, 'nim_admission_applier_watch_restarts_total', 'reason="error"') >= 1)
  })

  test('an annotated NIMService leads to a real HPA whose spec equals the annotation, owned by the NIMService', async () => {
    const nim = annotatedNim('llm', MAIN_NS)
    k(['create', '-f', '-'], JSON.stringify(nim))
    const t0 = Date.now() // timings run from when kubectl returned: the applier's latency, not kubectl's
    const stored = nimOf(MAIN_NS, 'llm')
    const hpa = await waitHpaSpec(MAIN_NS, 'llm', renderedSpec(stored))
    const withFields = getJson(['-n', MAIN_NS, 'hpa', 'llm', '--show-managed-fields']) as Json
    timings.create = Date.now() - t0
    assert.equal(hpa.apiVersion, 'autoscaling/v2')
    assert.equal(hpa.metadata.labels['app.kubernetes.io/managed-by'], 'nim-admission')
    assert.equal(hpa.metadata.annotations[HPA_SHA_ANNOTATION], stored.metadata.annotations[HPA_SHA_ANNOTATION])
    assert.deepEqual(hpa.metadata.ownerReferences, [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: stored.metadata.uid, controller: true, blockOwnerDeletion: true }])
    const managers = (withFields.metadata.managedFields as Json[]).map((f) => `${f.manager}/${f.operation}`)
    assert.ok(managers.includes('nim-admission/Apply'), `managedFields: ${managers.join(', ')}`)

    // While the sha matches nothing is written: a second applier (a restart) reconciles it and skips.
    const rv = hpa.metadata.resourceVersion
    k(['-n', MAIN_NS, 'label', 'nimservice', 'llm', 'touched=yes'])
    const again = await startOne({ namespaces: [MAIN_NS] })
    await waitFor('the restarted applier to skip the unchanged HPA', async () =>
      metric((await probe(again, '/metrics')).body, 'nim_admission_applier_unchanged_total') >= 1 ? true : undefined, 15_000, 50)
    await again.stop()
    assert.equal(metric((await probe(main, '/metrics')).body, 'nim_admission_applier_applies_total', 'action="create",dry_run="false"'), 1)
    assert.equal(hpaOf(MAIN_NS, 'llm')?.metadata.resourceVersion, rv)
  })

  test('changing spec.scale.hpa (re-rendered) updates the HPA', async () => {
    const updated = updateNim(MAIN_NS, 'llm', (spec) => {
      spec.scale.hpa = {
        minReplicas: 3,
        maxReplicas: 9,
        metrics: [{ type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '6Gi' } } }, { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 55 } } }],
        behavior: { scaleDown: { stabilizationWindowSeconds: 120, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } }
      }
    })
    const t0 = Date.now()
    const hpa = await waitHpaSpec(MAIN_NS, 'llm', renderedSpec(updated))
    timings.update = Date.now() - t0
    assert.equal(hpa.spec.maxReplicas, 9)
    assert.equal(hpa.metadata.annotations[HPA_SHA_ANNOTATION], updated.metadata.annotations[HPA_SHA_ANNOTATION])
  })

  test('disabling autoscaling removes the annotation and the applier deletes its HPA', async () => {
    const updated = updateNim(MAIN_NS, 'llm', (spec) => { spec.scale.enabled = false })
    const t0 = Date.now()
    assert.equal(updated.metadata.annotations?.[HPA_ANNOTATION], undefined)
    assert.equal(nimOf(MAIN_NS, 'llm').metadata.annotations?.[HPA_ANNOTATION], undefined)
    await waitFor('the HPA to be deleted', () => hpaOf(MAIN_NS, 'llm') === undefined ? true : undefined, 15_000, 100)
    timings.deleteOnDisable = Date.now() - t0
  })

  test('deleting the NIMService deletes its HPA (our own delete: no garbage collector runs here)', async () => {
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('short-lived', MAIN_NS)))
    await waitFor('the HPA', () => hpaOf(MAIN_NS, 'short-lived'), 15_000, 100)
    k(['-n', MAIN_NS, 'delete', 'nimservice', 'short-lived'])
    const t0 = Date.now()
    await waitFor('the HPA to be deleted', () => hpaOf(MAIN_NS, 'short-lived') === undefined ? true : undefined, 15_000, 100)
    timings.deleteOnNimDelete = Date.now() - t0
  })

  test('a foreign HPA of the same name is left untouched and reported with an HPAConflict Event and a metric', async () => {
    const foreign = {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'taken', namespace: MAIN_NS, labels: { 'app.kubernetes.io/managed-by': 'k8s-nim-operator' } },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'taken' }, minReplicas: 1, maxReplicas: 2, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 90 } } }] }
    }
    k(['create', '-f', '-'], JSON.stringify(foreign))
    const before = hpaOf(MAIN_NS, 'taken') as Json
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('taken', MAIN_NS)))
    const t0 = Date.now()
    const event = await waitFor('an HPAConflict Event on the NIMService', () => {
      const events = (getJson(['-n', MAIN_NS, 'events'])?.items ?? []) as Json[]
      return events.find((e) => e.reason === 'HPAConflict' && e.involvedObject?.kind === 'NIMService' && e.involvedObject?.name === 'taken')
    }, 15_000, 100)
    timings.conflictEvent = Date.now() - t0
    assert.equal(event.type, 'Warning')
    assert.equal(event.involvedObject.uid, nimOf(MAIN_NS, 'taken').metadata.uid)
    assert.match(event.message, /managed-by k8s-nim-operator/)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const afterwards = hpaOf(MAIN_NS, 'taken') as Json
    assert.equal(afterwards.metadata.resourceVersion, before.metadata.resourceVersion)
    assert.deepStrictEqual(afterwards.spec, before.spec)
    assert.equal(afterwards.metadata.ownerReferences, undefined)
    assert.equal(metric((await probe(main, '/metrics')).body, 'nim_admission_applier_conflicts_total', 'reason="foreign-owner"'), 1)

    // Removing the annotation must not delete the foreign HPA either.
    updateNim(MAIN_NS, 'taken', (spec) => { spec.scale.enabled = false })
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(hpaOf(MAIN_NS, 'taken')?.metadata.resourceVersion, before.metadata.resourceVersion)
  })

  test('through the real mutating webhook: a plain NIMService is annotated on admission and its HPA appears', async () => {
    certDir = mkdtempSync(join(tmpdir(), 'nim-applier-e2e-certs-'))
    webhook = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir, shutdownDelayMs: 0 }, pino({ level: 'silent' }))
    const caBundle = readFileSync(webhook.caPath).toString('base64')
    k(['apply', '--server-side', '-f', '-'], yaml({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'nim-admission-applier-e2e' },
      webhooks: [{
        name: 'mutate.nim-admission.io',
        clientConfig: { url: `https://127.0.0.1:${webhook.port}/mutate`, caBundle },
        rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': HOOK_NS } },
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        failurePolicy: 'Fail',
        reinvocationPolicy: 'IfNeeded',
        timeoutSeconds: 5
      }]
    }))
    const plain = { ...autoscaled(), metadata: { name: 'hooked', namespace: HOOK_NS } }
    assert.equal((plain.metadata as Json).annotations, undefined)
    // The configuration takes a moment to be honoured: retry the create until the object comes back annotated.
    const stored = await waitFor('the webhook to annotate a created NIMService', async () => {
      await kAsync(['apply', '--server-side', '-f', '-'], JSON.stringify(plain))
      const got = nimOf(HOOK_NS, 'hooked')
      if (got.metadata.annotations?.[HPA_ANNOTATION] !== undefined) return got
      k(['-n', HOOK_NS, 'delete', 'nimservice', 'hooked', '--wait=false'])
      return undefined
    }, 30_000, 300)
    const t0 = Date.now()
    const hpa = await waitHpaSpec(HOOK_NS, 'hooked', renderedSpec(stored))
    timings.createThroughWebhook = Date.now() - t0
    assert.equal(hpa.metadata.ownerReferences[0].uid, stored.metadata.uid)
    assert.equal(hpa.metadata.annotations[HPA_SHA_ANNOTATION], stored.metadata.annotations[HPA_SHA_ANNOTATION])

    // A user edit of spec.scale.hpa goes through the webhook again (re-rendered) and reaches the HPA.
    await kAsync(['-n', HOOK_NS, 'patch', 'nimservice', 'hooked', '--type', 'merge', '-p', JSON.stringify({ spec: { scale: { hpa: { maxReplicas: 6 } } } })])
    const edited = nimOf(HOOK_NS, 'hooked')
    assert.notEqual(edited.metadata.annotations[HPA_SHA_ANNOTATION], stored.metadata.annotations[HPA_SHA_ANNOTATION])
    assert.equal((await waitHpaSpec(HOOK_NS, 'hooked', renderedSpec(edited))).spec.maxReplicas, 6)

    // Disabling autoscaling: the webhook drops the annotations and the applier deletes the HPA.
    await kAsync(['-n', HOOK_NS, 'patch', 'nimservice', 'hooked', '--type', 'merge', '-p', JSON.stringify({ spec: { scale: { enabled: false } } })])
    assert.equal(nimOf(HOOK_NS, 'hooked').metadata.annotations?.[HPA_ANNOTATION], undefined)
    await waitFor('the HPA to be deleted', () => hpaOf(HOOK_NS, 'hooked') === undefined ? true : undefined, 15_000, 100)
    k(['delete', 'mutatingwebhookconfiguration', 'nim-admission-applier-e2e'])
  })

  test('--dry-run prints the plan and writes nothing; the other applier does not watch that namespace', async () => {
    const printed: string[] = []
    const dry = await startOne({ namespaces: [DRY_NS], dryRun: true }, (line) => printed.push(line))
    await waitFor('dry-run applier ready', async () => (await probe(dry, '/readyz')).status === 200 ? true : undefined, 15_000, 50)
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('planned', DRY_NS)))
    await waitFor('the dry-run plan', () => printed.find((l) => l.startsWith(`dry-run: would create HorizontalPodAutoscaler ${DRY_NS}/planned`)), 15_000, 50)
    assert.equal(JSON.parse((printed[printed.findIndex((l) => l.includes(`${DRY_NS}/planned`)) + 1] ?? '').trim()).spec.maxReplicas, 4)
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(hpaOf(DRY_NS, 'planned'), undefined)
    assert.deepEqual(((getJson(['-n', DRY_NS, 'events'])?.items ?? []) as Json[]).map((e) => e.reason), [])
    await dry.stop()
  })

  test('leader election: one writer; killing the leader hands over within the lease and the new leader applies a change', async () => {
    const lease = { leaderElect: true, leaseName: 'nim-admission-applier', leaseNamespace: LE_NS, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500, namespaces: [LE_NS] }
    const a = await startOne({ ...lease, identity: 'replica-a' })
    const b = await startOne({ ...lease, identity: 'replica-b' })
    let both = 0
    const watchdog = setInterval(() => { if (a.controller.canWrite() && b.controller.canWrite()) both++ }, 10)
    try {
      const holder = await waitFor('a Lease holder', () => getJson(['-n', LE_NS, 'lease', 'nim-admission-applier'])?.spec?.holderIdentity as string | undefined, 15_000, 100)
      const [leader, follower] = holder === 'replica-a' ? [a, b] : [b, a]
      await waitFor('the leader to lead', () => leader.controller.isLeading() ? true : undefined, 5_000, 20)
      assert.equal(follower.controller.isLeading(), false)
      // Both are ready (standbys keep a synced cache), only one leads.
      for (const r of [a, b]) await waitFor('ready', async () => (await probe(r, '/readyz')).status === 200 ? true : undefined, 15_000, 50)

      k(['create', '-f', '-'], JSON.stringify(annotatedNim('ha', LE_NS)))
      await waitHpaSpec(LE_NS, 'ha', renderedSpec(nimOf(LE_NS, 'ha')))
      const leaderMetrics = (await probe(leader, '/metrics')).body
      const followerMetrics = (await probe(follower, '/metrics')).body
      assert.equal(metric(leaderMetrics, 'nim_admission_applier_applies_total', 'action="create",dry_run="false"'), 1)
      assert.equal(metric(followerMetrics, 'nim_admission_applier_applies_total'), 0)
      assert.equal(metric(leaderMetrics, 'nim_admission_applier_leader'), 1)
      assert.equal(metric(followerMetrics, 'nim_admission_applier_leader'), 0)
      const transitions = getJson(['-n', LE_NS, 'lease', 'nim-admission-applier'])?.spec?.leaseTransitions ?? 0

      // Kill the leader as a crash would: no release, the Lease must expire.
      const killedAt = Date.now()
      await leader.stop({ release: false })
      const changed = updateNim(LE_NS, 'ha', (spec) => { spec.scale.hpa.maxReplicas = 7 })
      await waitHpaSpec(LE_NS, 'ha', renderedSpec(changed), 20_000)
      timings.handoverToApplied = Date.now() - killedAt
      const after = getJson(['-n', LE_NS, 'lease', 'nim-admission-applier']) as Json
      assert.equal(after.spec.holderIdentity, follower.controller.identity)
      assert.equal(after.spec.leaseTransitions, transitions + 1)
      assert.ok(follower.controller.isLeading())
      // Takeover happens once the follower has seen the Lease unrenewed for a lease duration, checked
      // every retry period; the change is applied right after.
      const bound = lease.leaseDurationMs + 2 * lease.retryPeriodMs + 1_000
      assert.ok(timings.handoverToApplied <= bound, `handover and apply took ${timings.handoverToApplied} ms (bound ${bound} ms)`)
      assert.ok(timings.handoverToApplied >= lease.leaseDurationMs - lease.retryPeriodMs - 500, `taken over after only ${timings.handoverToApplied} ms: the Lease did not hold`)
      assert.equal(both, 0, 'both replicas could write at the same time')
    } finally {
      clearInterval(watchdog)
    }
  })
})
