// The chart's matchConditions on the mutating webhook, evaluated by the real kube-apiserver: /mutate is
// skipped only for NIMServices it would not change. Every object of a corpus is created (server-side dry run)
// through a MutatingWebhookConfiguration with the chart's own conditions, pointing at the real `serve`; its
// log says which ones it was called for, and mutateNIMService says which ones need a patch.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { apiRequest, freePort, startWebhook, waitFor, type WebhookProcess } from '../helpers/kube.js'
import { helmTemplate, repoRoot } from '../helpers/helm.js'
import { SEED_EXAMPLES, seedExample } from '../fixtures/seed-examples.js'
import { mutateNIMService, HPA_ANNOTATION, HPA_SHA_ANNOTATION } from '../../src/nimservice/index.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any
const NS = 'nim-service'

const named = (name: string, edit: (o: Json) => void, base = 'enable-autoscaling'): Json => {
  const o = seedExample(base) as Json
  o.metadata.name = name
  edit(o)
  return o
}
const stored = (name: string): Json => {
  const o = named(name, () => {}, 'multi-metric')
  return mutateNIMService({ operation: 'CREATE', object: o, namespace: NS } as never).object as Json
}

/** One row per object: whether the apiserver must call /mutate for it. */
const CASES: Array<{ object: Json, called: boolean }> = [
  ...SEED_EXAMPLES.map(({ object }) => ({ object, called: (object as Json).spec.scale?.enabled === true })),
  { object: named('disabled-with-rendered-hpa', (o) => { o.spec.scale.enabled = false; o.metadata.annotations = { [HPA_ANNOTATION]: '{}', [HPA_SHA_ANNOTATION]: 'x' } }), called: true },
  { object: named('no-scale-with-sha-only', (o) => { delete o.spec.scale; o.metadata.annotations = { [HPA_SHA_ANNOTATION]: 'x' } }), called: true },
  // What the apiserver stores after /mutate: autoscaled, so still called (for an empty patch).
  { object: stored('already-rendered'), called: true },
  { object: named('no-scale', (o) => { delete o.spec.scale }), called: false },
  { object: named('scale-disabled', (o) => { o.spec.scale.enabled = false }), called: false },
  { object: named('scale-without-enabled', (o) => { delete o.spec.scale.enabled }), called: false },
  { object: named('enabled-as-string', (o) => { o.spec.scale.enabled = 'true' }), called: false },
  { object: named('other-annotations', (o) => { o.spec.scale.enabled = false; o.metadata.annotations = { 'example.com/team': 'ml' } }), called: false },
  { object: named('scale-not-an-object', (o) => { o.spec.scale = 'on' }), called: false },
  { object: named('spec-not-an-object', (o) => { o.spec = 'x' }), called: false }
]

let apiserver: Apiserver
let webhook: WebhookProcess
let certDir: string

before(async () => {
  apiserver = await startApiserver()
  certDir = mkdtempSync(join(tmpdir(), 'nim-match-certs-'))
  webhook = await startWebhook(repoRoot, certDir)
  assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } })).status, 201)
  assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', upstreamCrd())).status, 201)
  await waitForCrdsEstablished(apiserver.kubeconfig, ['nimservices.apps.nvidia.com'])
  const chart = (await helmTemplate()).find((m) => m.kind === 'MutatingWebhookConfiguration')
  const matchConditions = (chart?.webhooks as Json[] | undefined)?.[0]?.matchConditions as Json[] | undefined
  assert.ok(matchConditions !== undefined && matchConditions.length > 0, 'the chart renders matchConditions on the mutating webhook')
  const config = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'nim-admission' },
    webhooks: [{
      name: 'mutate.nimservices.nim-admission.io',
      clientConfig: { url: `https://127.0.0.1:${webhook.port}/mutate`, caBundle: readFileSync(join(certDir, 'ca.crt')).toString('base64') },
      rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded',
      matchConditions
    }]
  }
  assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', config)).status, 201)
  await waitFor('the mutating webhook to be called', async () => {
    await create(named('probe', () => {}))
    return mutatedNames().has('probe') ? true : undefined
  }, 30_000, 300)
})

after(async () => {
  await webhook?.stop()
  await apiserver?.stop()
  if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true })
})

async function create (object: Json): Promise<{ status: number, body: Json }> {
  return await apiRequest(apiserver.kubeconfig, 'POST', `/apis/apps.nvidia.com/v1alpha1/namespaces/${NS}/nimservices?dryRun=All&fieldValidation=Strict`, object)
}

/** Names of the NIMServices serve answered on /mutate, from its one log line per review. */
function mutatedNames (): Set<string> {
  const names = new Set<string>()
  for (const line of webhook.logs().split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const l = JSON.parse(line) as Json
      if (l.endpoint === 'mutate' && typeof l.name === 'string') names.add(l.name)
    } catch { /* not a log line */ }
  }
  return names
}

describe('matchConditions of the mutating webhook, on the real apiserver', () => {
  test('/mutate is called for every NIMService it would patch, and skipped for those it would not', async () => {
    const statuses = new Map<string, { status: number, message: string }>()
    for (const { object } of CASES) {
      const r = await create(object)
      statuses.set(object.metadata.name, { status: r.status, message: String(r.body?.message ?? '') })
    }
    const called = mutatedNames()
    const rows = CASES.map(({ object, called: want }) => {
      const name = object.metadata.name as string
      const needsPatch = mutateNIMService({ operation: 'CREATE', object, namespace: NS } as never).patch.length > 0
      return { name, needsPatch, want, called: called.has(name), ...statuses.get(name) }
    })
    for (const r of rows) {
      // A condition that fails to evaluate would refuse the write (failurePolicy Fail) with the apiserver's words.
      assert.doesNotMatch(r.message ?? '', /nim-admission-may-patch|matchCondition|expression/, `${r.name}: ${r.message}`)
      if (r.needsPatch) assert.ok(r.called, `${r.name}: mutateNIMService patches it, so /mutate must be called`)
    }
    assert.deepEqual(rows.map((r) => [r.name, r.called]), rows.map((r) => [r.name, r.want]))
    assert.ok(rows.some((r) => !r.called && r.status === 201), 'a valid NIMService is admitted without the /mutate call')
  })
})

describe('with nim-admission down and both webhooks Fail, the chart\'s conditions let a deletion finish', () => {
  test('an update of a live NIMService is refused, and the finalizer removal of one being deleted passes', async () => {
    const rendered = await helmTemplate()
    const conditionsOf = (kind: string): Json[] => ((rendered.find((m) => m.kind === kind)?.webhooks as Json[] | undefined)?.[0]?.matchConditions ?? []) as Json[]
    const path = `/apis/apps.nvidia.com/v1alpha1/namespaces/${NS}/nimservices`
    // Created while the live /mutate answers; held by a finalizer as the operator's would hold it.
    const held = named('held', (o) => { o.metadata.finalizers = ['example.com/hold'] })
    assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', path, held)).status, 201)

    // Nothing listens on this port: every call fails, as when no webhook pod answers.
    const dead = `https://127.0.0.1:${await freePort()}`
    const caBundle = readFileSync(join(certDir, 'ca.crt')).toString('base64')
    const hook = (name: string, endpoint: string, kind: string): Json => ({
      name,
      clientConfig: { url: `${dead}${endpoint}`, caBundle },
      rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail',
      timeoutSeconds: 2,
      matchConditions: conditionsOf(kind)
    })
    assert.deepEqual(conditionsOf('ValidatingWebhookConfiguration').map((c) => c.name), ['nim-admission-not-deleting'])
    assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations',
      { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'down' }, webhooks: [hook('validate.down.nim-admission.io', '/validate', 'ValidatingWebhookConfiguration')] })).status, 201)
    assert.equal((await apiRequest(apiserver.kubeconfig, 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'down' }, webhooks: [hook('mutate.down.nim-admission.io', '/mutate', 'MutatingWebhookConfiguration')] })).status, 201)

    // The failing webhooks are in force once a label change on the live object is refused.
    const refused = await waitFor('a label change to be refused by the unreachable webhook', async () => {
      const current = (await apiRequest(apiserver.kubeconfig, 'GET', `${path}/held`)).body as Json
      current.metadata.labels = { ...(current.metadata.labels ?? {}), touched: String(Date.now()) }
      const r = await apiRequest(apiserver.kubeconfig, 'PUT', `${path}/held`, current)
      return r.status >= 400 && /failed calling webhook/.test(String(r.body?.message)) ? r : undefined
    }, 30_000, 300)
    assert.equal(refused.status, 500)

    assert.equal((await apiRequest(apiserver.kubeconfig, 'DELETE', `${path}/held`)).status, 200)
    const deleting = (await apiRequest(apiserver.kubeconfig, 'GET', `${path}/held`)).body as Json
    assert.equal(typeof deleting.metadata.deletionTimestamp, 'string', 'the finalizer holds it: being deleted')
    deleting.metadata.finalizers = []
    const removed = await apiRequest(apiserver.kubeconfig, 'PUT', `${path}/held`, deleting)
    assert.equal(removed.status, 200, `finalizer removal: ${JSON.stringify(removed.body?.message)}`)
    assert.equal((await apiRequest(apiserver.kubeconfig, 'GET', `${path}/held`)).status, 404, 'the deletion completed')

    await apiRequest(apiserver.kubeconfig, 'DELETE', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/down')
    await apiRequest(apiserver.kubeconfig, 'DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/down')
  })
})
