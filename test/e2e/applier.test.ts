// End to end for `nim-admission apply` against a real kube-apiserver (test/apiserver) with the
// OwnerReferencesPermissionEnforcement admission plugin on: the appliers run in this process
// (src/applier/run.ts, as the CLI starts them), the writers as a ServiceAccount (impersonated) holding only
// the chart's RBAC. NIMServices are created with kubectl carrying whatever annotations a user could write;
// the HPAs "of the operator" are created as the NIM operator creates them (its labels, its owner). No
// controller-manager runs: no garbage collector, so every HPA deletion seen is the applier's own.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import { apiserverBinary, startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { apiRequest, kubectl, kubectlOk, waitFor } from '../helpers/kube.js'
import { upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { autoscaled } from '../helpers/nimservice.js'
import { mutateNIMService, renderHpa, HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/index.js'
import { startApplier, type ApplierOptions, type RunningApplier } from '../../src/applier/run.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const binary = apiserverBinary()
const missing = !existsSync(binary)
const why = `the test kube-apiserver is not built (${binary}): run \`bash scripts/build-apiserver.sh\` (needs Go), or \`npm test\`, which builds it`
if (missing && process.env.CI === 'true') throw new Error(why) // in CI, never skip
if (missing) process.stderr.write(`# applier e2e skipped: ${why}\n`)

const VERIFY_NS = 'applier-verify'
const WRITE_NS = 'applier-write'
const EXCLUDED_NS = 'applier-excluded'
const FORBID_NS = 'applier-forbidden'
const LE_NS = 'applier-le'
const SYSTEM_NS = 'nim-admission'
const WEBHOOK_CONFIG = 'nim-admission-e2e'
const ENABLED = { 'nim-admission.io/enabled': 'true' }
const OPERATOR_FINALIZER = 'finalizer.nimservice.apps.nvidia.com'

let api: Apiserver
let kubeconfig: string
let tmp: string
const running: RunningApplier[] = []

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
const sha = (s: string): string => createHash('sha256').update(s).digest('hex')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A NIMService as the mutating webhook leaves it: annotated with the HPA rendered from its spec. */
function annotatedNim (name: string, ns: string, hpa?: Json, extraSpec: Json = {}): Json {
  const object: Json = { ...autoscaled(hpa), metadata: { name, namespace: ns } }
  object.spec = { ...(object.spec as Json), ...extraSpec }
  return mutateNIMService({ operation: 'CREATE', object, namespace: ns } as never).object as Json
}

/** A NIMService whose annotation a user wrote by hand, with a matching sha: the issue's attack. */
function forgedNim (name: string, ns: string, opts: { autoscaling: boolean }): Json {
  const base = annotatedNim(name, ns)
  const forged = JSON.parse(base.metadata.annotations[HPA_ANNOTATION]) as Json
  forged.spec.scaleTargetRef = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'payments' }
  forged.spec.minReplicas = 200
  forged.spec.maxReplicas = 500
  const text = JSON.stringify(forged)
  const out = structuredClone(base)
  out.metadata.annotations = { [HPA_ANNOTATION]: text, [HPA_SHA_ANNOTATION]: sha(text) }
  if (!opts.autoscaling) out.spec.scale.enabled = false
  return out
}

/** The HPA the NIM operator creates for a stored NIMService (GetHPAParams: its labels, a controller owner). */
function operatorHpa (stored: Json): Json {
  const hpa = renderHpa(stored, stored.metadata.namespace) as Json
  hpa.metadata.labels['app.kubernetes.io/managed-by'] = 'k8s-nim-operator'
  hpa.metadata.ownerReferences = [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: stored.metadata.name, uid: stored.metadata.uid, controller: true, blockOwnerDeletion: true }]
  return hpa
}

/** A kubeconfig that acts as `user` (impersonated by the harness admin), for RBAC as in a cluster. */
function kubeconfigAs (user: string): string {
  const config = parse(readFileSync(kubeconfig, 'utf8')) as Json
  for (const u of config.users as Json[]) u.user.as = user
  const path = join(tmp, `${user.replace(/[^a-z0-9]/gi, '_')}.kubeconfig`)
  writeFileSync(path, stringify(config))
  return path
}

/** The chart's applier rules (charts/nim-admission/templates/applier-rbac.yaml) plus what --webhook-configuration reads; no nimservices/finalizers. */
function grant (sa: string, opts: { hpaVerbs: string[], namespace?: string }): void {
  const rules = [
    { apiGroups: ['apps.nvidia.com'], resources: ['nimservices'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: opts.hpaVerbs },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] }
  ]
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace: SYSTEM_NS }]
  const docs: Json[] = opts.namespace === undefined
    ? [
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: sa }, rules: [...rules, { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], verbs: ['get', 'list', 'watch'] }, { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] }] },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: sa }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: sa }, subjects }
      ]
    : [
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: sa, namespace: opts.namespace }, rules },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: sa, namespace: opts.namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa }, subjects }
      ]
  for (const d of docs) k(['apply', '-f', '-'], JSON.stringify(d))
}

async function startOne (opts: Partial<ApplierOptions>): Promise<RunningApplier> {
  const applier = await startApplier({ kubeconfig, metricsHost: '127.0.0.1', metricsPort: 0, logLevel: process.env.NIM_TEST_DEBUG === '1' ? 'debug' : 'silent', resyncPeriodMs: 0, graceMs: 1_000, ...opts },
    { defaultMetrics: false, watchBackoff: { initialMs: 200, maxMs: 1_000 } })
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

const eventsOf = (ns: string, name: string): Json[] =>
  ((getJson(['-n', ns, 'events'])?.items ?? []) as Json[]).filter((e) => e.involvedObject?.kind === 'NIMService' && e.involvedObject?.name === name)

async function waitEvent (ns: string, name: string, reason: string, timeoutMs = 20_000): Promise<Json> {
  return await waitFor(`a ${reason} Event on NIMService ${ns}/${name}`, () => eventsOf(ns, name).find((e) => e.reason === reason), timeoutMs, 200)
}

async function ready (applier: RunningApplier): Promise<void> {
  await waitFor('/readyz 200', async () => (await probe(applier, '/readyz')).status === 200 ? true : undefined, 30_000, 100)
}

const allHpas = (): Json[] => (getJson(['hpa', '-A'])?.items ?? []) as Json[]

describe('nim-admission apply against a real kube-apiserver', { skip: missing ? why : false, timeout: 300_000 }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'nim-applier-e2e-'))
    api = await startApiserver({ args: ['--enable-admission-plugins=OwnerReferencesPermissionEnforcement'] })
    kubeconfig = api.kubeconfig
    for (const ns of [VERIFY_NS, WRITE_NS, EXCLUDED_NS, FORBID_NS, LE_NS, SYSTEM_NS]) k(['create', 'namespace', ns])
    for (const ns of [VERIFY_NS, WRITE_NS]) k(['label', 'namespace', ns, 'nim-admission.io/enabled=true'])
    k(['apply', '--server-side', '-f', '-'], JSON.stringify(upstreamCrd()))
    await waitForCrdsEstablished(kubeconfig, ['nimservices.apps.nvidia.com'])
    // The webhook is not running (failurePolicy Ignore, nothing listens): only its selectors matter here.
    k(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: WEBHOOK_CONFIG },
      webhooks: [{
        name: 'mutate.nimservices.nim-admission.io',
        clientConfig: { url: 'https://127.0.0.1:1/mutate' },
        rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
        namespaceSelector: { matchLabels: ENABLED },
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        failurePolicy: 'Ignore',
        timeoutSeconds: 1
      }]
    }))
  })

  after(async () => {
    await Promise.all(running.map((a) => a.stop()))
    await api?.stop()
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
  })

  test('verify: the operator\'s HPA edited by hand is reported with its fields, never written; a missing one is "not found"', async () => {
    const verifier = await startOne({ webhookConfiguration: WEBHOOK_CONFIG, graceMs: 3_000 })
    await ready(verifier)
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('steady', VERIFY_NS)))
    const stored = nimOf(VERIFY_NS, 'steady')
    k(['create', '-f', '-'], JSON.stringify(operatorHpa(stored)))
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('absent', VERIFY_NS)))
    const missingEvent = await waitEvent(VERIFY_NS, 'absent', 'HPAMissing')
    assert.equal(missingEvent.type, 'Warning')
    assert.match(missingEvent.message, /HorizontalPodAutoscaler applier-verify\/absent not found/)
    assert.deepEqual(eventsOf(VERIFY_NS, 'steady'), [], 'the operator\'s HPA as created is in sync')

    // A hand edit of the live HPA: the annotation (and its sha) still match the spec, the HPA does not.
    k(['-n', VERIFY_NS, 'patch', 'hpa', 'steady', '--type', 'merge', '-p', JSON.stringify({ spec: { maxReplicas: 200 }, metadata: { labels: { 'app.kubernetes.io/name': 'other' } } })])
    const edited = hpaOf(VERIFY_NS, 'steady') as Json
    const drift = await waitEvent(VERIFY_NS, 'steady', 'HPADrift')
    assert.equal(drift.type, 'Warning')
    assert.equal(drift.involvedObject.uid, stored.metadata.uid)
    assert.match(drift.message, /spec\.maxReplicas: want 4, have 200/)
    assert.match(drift.message, /metadata\.labels\["app\.kubernetes\.io\/name"\]: want "steady", have "other"/)
    assert.match(drift.message, /managed-by k8s-nim-operator/)
    const metrics = (await probe(verifier, '/metrics')).body
    assert.equal(metric(metrics, 'nim_admission_applier_findings', 'reason="HPADrift"'), 1)
    assert.equal(metric(metrics, 'nim_admission_applier_findings', 'reason="HPAMissing"'), 1)
    assert.equal(metric(metrics, 'nim_admission_applier_writes_total'), 0)
    await sleep(500)
    assert.equal(hpaOf(VERIFY_NS, 'steady')?.metadata.resourceVersion, edited.metadata.resourceVersion, 'verify wrote the HPA')
    assert.equal(hpaOf(VERIFY_NS, 'absent'), undefined, 'verify created an HPA')
    await verifier.stop()
    k(['-n', VERIFY_NS, 'delete', 'nimservice', '--all']) // out of the writer's way in the next test
  })

  test('write, as a ServiceAccount with the chart\'s RBAC under OwnerReferencesPermissionEnforcement: creates the render; forged annotations create nothing', async () => {
    const sa = 'applier'
    grant(sa, { hpaVerbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] })
    const asApplier = kubeconfigAs(`system:serviceaccount:${SYSTEM_NS}:${sa}`)
    // The plugin is on: the same identity may not set blockOwnerDeletion (no update on nimservices/finalizers).
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('probe', EXCLUDED_NS, undefined, { scale: { enabled: false } })))
    const probeNim = nimOf(EXCLUDED_NS, 'probe')
    const denied = await apiRequest(asApplier, 'POST', `/apis/autoscaling/v2/namespaces/${EXCLUDED_NS}/horizontalpodautoscalers`, {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'probe', namespace: EXCLUDED_NS, ownerReferences: [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'probe', uid: probeNim.metadata.uid, controller: true, blockOwnerDeletion: true }] },
      spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'probe' }, maxReplicas: 2 }
    })
    assert.equal(denied.status, 403, `blockOwnerDeletion without RBAC on nimservices/finalizers: ${JSON.stringify(denied.body)}`)
    assert.match(denied.body.message, /blockOwnerDeletion|finalizers/)

    const writer = await startOne({ kubeconfig: asApplier, mode: 'write', webhookConfiguration: WEBHOOK_CONFIG })
    await ready(writer)
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('plain', WRITE_NS)))
    k(['create', '-f', '-'], JSON.stringify(forgedNim('forged-off', WRITE_NS, { autoscaling: false })))
    k(['create', '-f', '-'], JSON.stringify(forgedNim('forged-on', WRITE_NS, { autoscaling: true })))
    k(['create', '-f', '-'], JSON.stringify(forgedNim('excluded', EXCLUDED_NS, { autoscaling: true })))
    const operated = annotatedNim('operated', WRITE_NS)
    operated.metadata.finalizers = [OPERATOR_FINALIZER]
    k(['create', '-f', '-'], JSON.stringify(operated))

    const plain = await waitFor('the HPA of plain', () => hpaOf(WRITE_NS, 'plain'), 20_000, 200)
    const stored = nimOf(WRITE_NS, 'plain')
    assert.deepEqual(plain.spec, JSON.parse(stored.metadata.annotations[HPA_ANNOTATION]).spec)
    assert.deepEqual(plain.metadata.ownerReferences, [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'plain', uid: stored.metadata.uid, controller: true }])
    assert.equal(plain.metadata.labels['app.kubernetes.io/managed-by'], 'nim-admission')
    assert.equal((await waitEvent(WRITE_NS, 'plain', 'HPACreated')).type, 'Normal')

    // Forged, autoscaling on: the HPA is the spec's render, never the annotation's target or bounds.
    const onEvent = await waitEvent(WRITE_NS, 'forged-on', 'HPAAnnotationForged')
    assert.match(onEvent.message, /spec\.scaleTargetRef\.name: want "forged-on", have "payments"/)
    const forgedOn = await waitFor('the HPA of forged-on', () => hpaOf(WRITE_NS, 'forged-on'), 20_000, 200)
    assert.deepEqual(forgedOn.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'forged-on' })
    assert.equal(forgedOn.spec.maxReplicas, 4)
    // Forged, autoscaling off: reported, nothing created.
    assert.match((await waitEvent(WRITE_NS, 'forged-off', 'HPAAnnotationForged')).message, /renders no HPA/)
    // The operator's NIMService: refused, nothing created.
    assert.match((await waitEvent(WRITE_NS, 'operated', 'HPAWriteRefused')).message, /finalizer finalizer\.nimservice\.apps\.nvidia\.com/)
    await sleep(1_500) // past the grace period: anything that would be written is written by now
    assert.equal(hpaOf(WRITE_NS, 'forged-off'), undefined)
    assert.equal(hpaOf(WRITE_NS, 'operated'), undefined)
    assert.equal(hpaOf(EXCLUDED_NS, 'excluded'), undefined, 'an HPA was created outside the webhook\'s namespaces')
    assert.deepEqual(eventsOf(EXCLUDED_NS, 'excluded'), [])
    assert.deepEqual(allHpas().filter((h) => h.spec.scaleTargetRef.name === 'payments' || (h.metadata.namespace !== VERIFY_NS && h.spec.maxReplicas >= 200)).map((h) => h.metadata.name), [])
    const metrics = (await probe(writer, '/metrics')).body
    assert.equal(metric(metrics, 'nim_admission_applier_writes_total', 'action="create",dry_run="false"'), 2)
    assert.equal(metric(metrics, 'nim_admission_applier_findings', 'reason="HPAAnnotationForged"'), 2)
    assert.equal(metric(metrics, 'nim_admission_applier_forbidden_total'), 0)

    // Its own HPA edited by hand is put back; autoscaling off deletes it.
    k(['-n', WRITE_NS, 'patch', 'hpa', 'plain', '--type', 'merge', '-p', JSON.stringify({ spec: { maxReplicas: 99 } })])
    await waitFor('plain restored', () => hpaOf(WRITE_NS, 'plain')?.spec.maxReplicas === 4 ? true : undefined, 20_000, 200)
    k(['-n', WRITE_NS, 'patch', 'nimservice', 'plain', '--type', 'merge', '-p', JSON.stringify({ spec: { scale: { enabled: false } } })])
    await waitFor('plain deleted', () => hpaOf(WRITE_NS, 'plain') === undefined ? true : undefined, 20_000, 200)

    // The operator shows up on a NIMService the writer served: its HPA is handed back.
    k(['-n', WRITE_NS, 'patch', 'nimservice', 'forged-on', '--type', 'merge', '-p', JSON.stringify({ metadata: { finalizers: [OPERATOR_FINALIZER] } })])
    await waitEvent(WRITE_NS, 'forged-on', 'HPAHandedOver')
    await waitFor('forged-on handed back', () => hpaOf(WRITE_NS, 'forged-on') === undefined ? true : undefined, 20_000, 200)
    await writer.stop()
  })

  test('a 403 from the apiserver is a Warning Event, a metric and a failing /readyz', async () => {
    const sa = 'applier-readonly'
    grant(sa, { hpaVerbs: ['get', 'list', 'watch'], namespace: FORBID_NS })
    const writer = await startOne({ kubeconfig: kubeconfigAs(`system:serviceaccount:${SYSTEM_NS}:${sa}`), mode: 'write', namespaces: [FORBID_NS] })
    await ready(writer)
    k(['create', '-f', '-'], JSON.stringify(annotatedNim('denied', FORBID_NS)))
    const event = await waitEvent(FORBID_NS, 'denied', 'HPAForbidden')
    assert.equal(event.type, 'Warning')
    assert.match(event.message, /403 Forbidden/)
    const readyz = await probe(writer, '/readyz')
    assert.equal(readyz.status, 503)
    assert.match(readyz.body, /403 Forbidden on create horizontalpodautoscalers/)
    assert.ok(metric((await probe(writer, '/metrics')).body, 'nim_admission_applier_forbidden_total', 'request="create horizontalpodautoscalers"') >= 1)
    await writer.stop()
  })

  test('leader election: one writer; killing the leader hands over within the lease and the new leader writes', async () => {
    const lease = { mode: 'write' as const, graceMs: 0, leaderElect: true, leaseName: 'nim-admission-applier', leaseNamespace: LE_NS, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500, namespaces: [LE_NS] }
    const a = await startOne({ ...lease, identity: 'replica-a' })
    const b = await startOne({ ...lease, identity: 'replica-b' })
    let both = 0
    const watchdog = setInterval(() => { if (a.controller.canWrite() && b.controller.canWrite()) both++ }, 10)
    try {
      const holder = await waitFor('a Lease holder', () => getJson(['-n', LE_NS, 'lease', 'nim-admission-applier'])?.spec?.holderIdentity as string | undefined, 15_000, 100)
      const [leader, follower] = holder === 'replica-a' ? [a, b] : [b, a]
      await waitFor('the leader to lead', () => leader.controller.isLeading() ? true : undefined, 5_000, 20)
      for (const r of [a, b]) await ready(r)
      k(['create', '-f', '-'], JSON.stringify(annotatedNim('ha', LE_NS)))
      await waitFor('the HPA of ha', () => hpaOf(LE_NS, 'ha'), 15_000, 100)
      assert.equal(metric((await probe(follower, '/metrics')).body, 'nim_admission_applier_writes_total'), 0)
      const killedAt = Date.now()
      await leader.stop({ release: false })
      k(['create', '-f', '-'], JSON.stringify(annotatedNim('ha2', LE_NS)))
      await waitFor('the HPA of ha2', () => hpaOf(LE_NS, 'ha2'), 20_000, 100)
      const handover = Date.now() - killedAt
      assert.equal(getJson(['-n', LE_NS, 'lease', 'nim-admission-applier'])?.spec.holderIdentity, follower.controller.identity)
      assert.ok(handover <= lease.leaseDurationMs + 2 * lease.retryPeriodMs + 2_000, `handover and write took ${handover} ms`)
      assert.ok(handover >= lease.leaseDurationMs - lease.retryPeriodMs - 500, `taken over after only ${handover} ms: the Lease did not hold`)
      assert.equal(both, 0, 'both replicas could write at the same time')
    } finally {
      clearInterval(watchdog)
    }
  })
})
