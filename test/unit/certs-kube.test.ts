// The Kubernetes-backed parts of `certs generate --secret` and `certs inject`, against an in-memory fake
// of the few API calls they make (the real-apiserver e2e suite covers the wire).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiException, type V1MutatingWebhookConfiguration, type V1Secret, type V1ValidatingWebhookConfiguration } from '@kubernetes/client-node'

import { CertError, DAY_MS, createCa, splitPemCertificates, type EndpointSliceApi, type KubeClients, type SecretApi, type WebhookApi } from '../../src/certs/index.js'
import { parseFailurePolicy, runGenerate, runInject, runUninstall } from '../../src/cli/certs.js'

const b64 = (s: string): string => Buffer.from(s).toString('base64')
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8')
const prints = (pem: string): string[] => splitPemCertificates(pem).map((p) => new X509Certificate(p).fingerprint256)
const notFound = (what: string): ApiException<string> => new ApiException(404, 'Not Found', JSON.stringify({ kind: 'Status', reason: 'NotFound', message: `${what} not found` }), {})
const conflict = (): ApiException<string> => new ApiException(409, 'Conflict', JSON.stringify({ kind: 'Status', reason: 'Conflict', message: 'the object has been modified' }), {})
const coded = (code: string, ...fragments: string[]) => (err: unknown): boolean => {
  assert.ok(err instanceof CertError, `expected a CertError, got ${String(err)}`)
  assert.equal(err.code, code)
  for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} should mention ${f}`)
  return true
}

/** An object store with resourceVersion checks, like the apiserver's optimistic concurrency. */
class Store<T extends { metadata?: { name?: string; resourceVersion?: string } }> {
  readonly items = new Map<string, T>()
  readonly writes: string[] = []
  private version = 1
  constructor (private readonly resource: string) {}
  get (key: string): T {
    const item = this.items.get(key)
    if (item === undefined) throw notFound(`${this.resource} "${key}"`)
    return structuredClone(item)
  }

  put (key: string, body: T, create: boolean): T {
    const existing = this.items.get(key)
    if (create && existing !== undefined) throw new ApiException(409, 'AlreadyExists', '{}', {})
    if (!create) {
      if (existing === undefined) throw notFound(`${this.resource} "${key}"`)
      if (body.metadata?.resourceVersion !== existing.metadata?.resourceVersion) throw conflict()
    }
    const stored = structuredClone(body)
    stored.metadata = { ...stored.metadata, resourceVersion: String(++this.version) }
    this.items.set(key, stored)
    this.writes.push(`${create ? 'create' : 'replace'} ${key}`)
    return structuredClone(stored)
  }

  delete (key: string): object {
    if (!this.items.delete(key)) throw notFound(`${this.resource} "${key}"`)
    this.writes.push(`delete ${key}`)
    return {}
  }
}

function fakeCluster (): { clients: KubeClients; secrets: Store<V1Secret>; validating: Store<V1ValidatingWebhookConfiguration>; mutating: Store<V1MutatingWebhookConfiguration>; failNextReplace: (err: unknown) => void; ready: Map<string, boolean>; endpointQueries: string[] } {
  const secrets = new Store<V1Secret>('secrets')
  const validating = new Store<V1ValidatingWebhookConfiguration>('validatingwebhookconfigurations')
  const mutating = new Store<V1MutatingWebhookConfiguration>('mutatingwebhookconfigurations')
  let nextFailure: unknown
  const maybeFail = (): void => {
    if (nextFailure !== undefined) { const err = nextFailure; nextFailure = undefined; throw err }
  }
  const core = {
    readNamespacedSecret: async ({ namespace, name }: { namespace: string; name: string }) => secrets.get(`${namespace}/${name}`),
    createNamespacedSecret: async ({ namespace, body }: { namespace: string; body: V1Secret }) => secrets.put(`${namespace}/${body.metadata?.name ?? ''}`, body, true),
    replaceNamespacedSecret: async ({ namespace, name, body }: { namespace: string; name: string; body: V1Secret }) => { maybeFail(); return secrets.put(`${namespace}/${name}`, body, false) }
  }
  const admission = {
    readValidatingWebhookConfiguration: async ({ name }: { name: string }) => validating.get(name),
    replaceValidatingWebhookConfiguration: async ({ name, body }: { name: string; body: V1ValidatingWebhookConfiguration }) => { maybeFail(); return validating.put(name, body, false) },
    readMutatingWebhookConfiguration: async ({ name }: { name: string }) => mutating.get(name),
    replaceMutatingWebhookConfiguration: async ({ name, body }: { name: string; body: V1MutatingWebhookConfiguration }) => { maybeFail(); return mutating.put(name, body, false) },
    deleteValidatingWebhookConfiguration: async ({ name }: { name: string }) => { maybeFail(); return validating.delete(name) },
    deleteMutatingWebhookConfiguration: async ({ name }: { name: string }) => { maybeFail(); return mutating.delete(name) }
  }
  // Services are ready unless a test says otherwise (`ready.set('ns/name', false)`).
  const ready = new Map<string, boolean>()
  const endpointQueries: string[] = []
  const discovery = {
    listNamespacedEndpointSlice: async ({ namespace, labelSelector }: { namespace: string; labelSelector: string }) => {
      const name = labelSelector.replace('kubernetes.io/service-name=', '')
      endpointQueries.push(`${namespace}/${name}`)
      return { items: [{ endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: ready.get(`${namespace}/${name}`) ?? true } }] }] }
    }
  }
  return {
    clients: { core: core as unknown as SecretApi, admission: admission as unknown as WebhookApi, discovery: discovery as unknown as EndpointSliceApi, namespace: 'default' },
    ready,
    endpointQueries,
    secrets,
    validating,
    mutating,
    failNextReplace: (err) => { nextFailure = err }
  }
}

const quiet = { out: () => {}, warn: () => {} }
const svc = { service: 'nim-admission', namespace: 'nim-system', caDays: 3650, days: 365 }

test('generate --secret writes a kubernetes.io/tls Secret for the Pod and keeps the CA key in a separate Secret', async () => {
  const cluster = fakeCluster()
  const deps = { ...quiet, kube: async () => cluster.clients }
  await runGenerate({ ...svc, secret: 'nim-admission-tls' }, deps)
  const serving = cluster.secrets.get('nim-system/nim-admission-tls')
  const ca = cluster.secrets.get('nim-system/nim-admission-tls-ca')
  assert.equal(serving.type, 'kubernetes.io/tls')
  assert.deepEqual(Object.keys(serving.data ?? {}).sort(), ['ca.crt', 'tls.crt', 'tls.key'])
  assert.equal(ca.type, 'Opaque')
  assert.deepEqual(Object.keys(ca.data ?? {}).sort(), ['ca.crt', 'ca.key'])
  assert.equal(serving.metadata?.labels?.['app.kubernetes.io/managed-by'], 'nim-admission')
  const leaf = new X509Certificate(unb64(serving.data?.['tls.crt']))
  assert.ok(leaf.verify(new X509Certificate(unb64(serving.data?.['ca.crt'])).publicKey))
  assert.equal(leaf.checkHost('nim-admission.nim-system.svc'), 'nim-admission.nim-system.svc')

  // Re-run: only reads. A renewal replaces the serving Secret only (same CA, same bundle).
  cluster.secrets.writes.length = 0
  assert.equal((await runGenerate({ ...svc, secret: 'nim-admission-tls' }, deps)).changed, false)
  assert.deepEqual(cluster.secrets.writes, [])
  await runGenerate({ ...svc, secret: 'nim-admission-tls', renewBefore: 400 * DAY_MS }, deps)
  assert.deepEqual(cluster.secrets.writes, ['replace nim-system/nim-admission-tls'])
  assert.notEqual(cluster.secrets.get('nim-system/nim-admission-tls').data?.['tls.crt'], serving.data?.['tls.crt'])
})

test('generate --secret refuses to turn an existing Secret of another type into a TLS Secret', async () => {
  const cluster = fakeCluster()
  cluster.secrets.put('nim-system/taken', { metadata: { name: 'taken' }, type: 'Opaque', data: { password: b64('x') } }, true)
  await assert.rejects(runGenerate({ ...svc, secret: 'taken' }, { ...quiet, kube: async () => cluster.clients }), coded('NIMCERT_SECRET_INVALID', 'Secret nim-system/taken', 'type Opaque'))
})

test('inject --secret for a missing Secret is NIMCERT_SECRET_NOT_FOUND naming it', async () => {
  const cluster = fakeCluster()
  await assert.rejects(runInject({ webhook: ['nim-admission'], secret: 'absent', secretNamespace: 'nim-system' }, { ...quiet, kube: async () => cluster.clients }),
    coded('NIMCERT_SECRET_NOT_FOUND', 'Secret nim-system/absent', 'certs generate --secret absent'))
})

const oldCa = createCa().certPem
const newCa = createCa().certPem
const expiredCa = createCa({ now: new Date(Date.now() - 100 * DAY_MS), days: 10 }).certPem

function seedWebhooks (cluster: ReturnType<typeof fakeCluster>): void {
  const entry = (name: string, caBundle?: string) => ({
    name, admissionReviewVersions: ['v1'], sideEffects: 'None',
    clientConfig: { service: { name: 'nim-admission', namespace: 'nim-system', path: '/validate' }, ...(caBundle === undefined ? {} : { caBundle: b64(caBundle) }) }
  })
  cluster.validating.put('nim-admission', { metadata: { name: 'nim-admission' }, webhooks: [entry('validate.nim.nvidia.com', expiredCa + oldCa), entry('validate2.nim.nvidia.com')] }, true)
  cluster.mutating.put('nim-admission', { metadata: { name: 'nim-admission' }, webhooks: [{ ...entry('mutate.nim.nvidia.com', oldCa), reinvocationPolicy: 'Never' }] }, true)
  cluster.validating.writes.length = 0
  cluster.mutating.writes.length = 0
}

test('inject puts the CA into every webhook entry of both kinds, keeping still-valid old CAs and dropping expired ones', async () => {
  const cluster = fakeCluster()
  seedWebhooks(cluster)
  const lines: string[] = []
  const deps = { out: (l: string) => lines.push(l), warn: () => {}, kube: async () => cluster.clients }
  cluster.secrets.put('nim-system/nim-admission-tls', { metadata: { name: 'nim-admission-tls' }, type: 'kubernetes.io/tls', data: { 'ca.crt': b64(newCa) } }, true)
  await runInject({ webhook: ['nim-admission'], secret: 'nim-admission-tls', secretNamespace: 'nim-system' }, deps)
  const validating = cluster.validating.get('nim-admission').webhooks ?? []
  assert.deepEqual(prints(unb64(validating[0]?.clientConfig.caBundle)), [...prints(oldCa), ...prints(newCa)], 'old CA kept, new CA added, expired CA dropped')
  assert.deepEqual(prints(unb64(validating[1]?.clientConfig.caBundle)), prints(newCa))
  const mutating = cluster.mutating.get('nim-admission').webhooks ?? []
  assert.deepEqual(prints(unb64(mutating[0]?.clientConfig.caBundle)), [...prints(oldCa), ...prints(newCa)])
  assert.equal(mutating[0]?.reinvocationPolicy, 'Never', 'the rest of the object is untouched')
  assert.match(lines[0] ?? '', /^ValidatingWebhookConfiguration\/nim-admission: updated, 2 webhook\(s\)/)
  assert.match(lines[1] ?? '', /^MutatingWebhookConfiguration\/nim-admission: updated/)

  // Idempotent: the same bundle again writes nothing.
  cluster.validating.writes.length = 0
  cluster.mutating.writes.length = 0
  await runInject({ webhook: ['nim-admission'], secret: 'nim-admission-tls', secretNamespace: 'nim-system' }, deps)
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], [])
})

test('inject for a webhook configuration that does not exist is NIMCERT_WEBHOOK_NOT_FOUND and writes nothing', async () => {
  const cluster = fakeCluster()
  seedWebhooks(cluster)
  const deps = { ...quiet, kube: async () => cluster.clients, now: () => new Date() }
  await assert.rejects(runInjectWithFile(['nim-admission', 'typo-admission'], deps), coded('NIMCERT_WEBHOOK_NOT_FOUND', 'typo-admission', 'kubectl get'))
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], [])
})

test('inject re-reads and re-merges when the configuration changed under it (409)', async () => {
  const cluster = fakeCluster()
  seedWebhooks(cluster)
  cluster.failNextReplace(conflict())
  await runInjectWithFile(['nim-admission'], { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(cluster.validating.writes, ['replace nim-admission'])
})

test('an API refusal is one coded line with the apiserver message', async () => {
  const cluster = fakeCluster()
  seedWebhooks(cluster)
  cluster.failNextReplace(new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', message: 'validatingwebhookconfigurations.admissionregistration.k8s.io "nim-admission" is forbidden: User "dev" cannot update resource' }), {}))
  await assert.rejects(runInjectWithFile(['nim-admission'], { ...quiet, kube: async () => cluster.clients }),
    coded('NIMCERT_KUBE_API', 'update ValidatingWebhookConfiguration nim-admission: HTTP 403', 'cannot update resource', 'RBAC'))
})

async function runInjectWithFile (webhook: string[], deps: Parameters<typeof runInject>[1]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nim-inject-'))
  try {
    await writeFile(join(dir, 'ca.crt'), newCa)
    await runInject({ webhook, caFile: join(dir, 'ca.crt') }, deps)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// The chart renders its configurations with failurePolicy Ignore; inject arms them only where a CA is trusted.
function seedUnarmed (cluster: ReturnType<typeof fakeCluster>, caBundle?: string): void {
  const entry = (name: string) => ({
    name, admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Ignore',
    clientConfig: { service: { name: 'nim-admission', namespace: 'nim-system', path: '/validate' }, ...(caBundle === undefined ? {} : { caBundle: b64(caBundle) }) }
  })
  cluster.validating.put('nim-admission', { metadata: { name: 'nim-admission' }, webhooks: [entry('validate.nim.nvidia.com')] }, true)
  cluster.mutating.put('nim-admission', { metadata: { name: 'nim-admission' }, webhooks: [entry('mutate.nim.nvidia.com')] }, true)
  cluster.validating.writes.length = 0
  cluster.mutating.writes.length = 0
}

const both = (policy: 'Fail' | 'Ignore') => ({ ValidatingWebhookConfiguration: policy, MutatingWebhookConfiguration: policy })

const policies = (cluster: ReturnType<typeof fakeCluster>): string[] => [
  ...(cluster.validating.get('nim-admission').webhooks ?? []).map((w) => `V:${w.failurePolicy ?? ''}:${w.clientConfig.caBundle === undefined ? 'no-ca' : 'ca'}`),
  ...(cluster.mutating.get('nim-admission').webhooks ?? []).map((w) => `M:${w.failurePolicy ?? ''}:${w.clientConfig.caBundle === undefined ? 'no-ca' : 'ca'}`)
]

test('inject --failure-policy Fail sets the policy together with the caBundle, in the same write', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster)
  cluster.secrets.put('nim-system/nim-admission-tls', { metadata: { name: 'nim-admission-tls' }, type: 'kubernetes.io/tls', data: { 'ca.crt': b64(newCa) } }, true)
  const lines: string[] = []
  await runInject({ webhook: ['nim-admission'], secret: 'nim-admission-tls', secretNamespace: 'nim-system', failurePolicy: both('Fail') }, { out: (l) => lines.push(l), warn: () => {}, kube: async () => cluster.clients })
  assert.deepEqual(policies(cluster), ['V:Fail:ca', 'M:Fail:ca'])
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], ['replace nim-admission', 'replace nim-admission'], 'one write per object')
  assert.match(lines[0] ?? '', /\(\+1 CA, -0 expired; failurePolicy Fail on 1\)$/)
  // A later run (the renewal CronJob) re-arms what a `helm upgrade` reset, and otherwise writes nothing.
  cluster.validating.writes.length = 0
  await runInject({ webhook: ['nim-admission'], secret: 'nim-admission-tls', secretNamespace: 'nim-system', failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(cluster.validating.writes, [])
})

test('inject --failure-policy Fail alone arms only entries whose caBundle already trusts an unexpired CA', async () => {
  const armed = fakeCluster()
  seedUnarmed(armed, newCa)
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => armed.clients })
  assert.deepEqual(policies(armed), ['V:Fail:ca', 'M:Fail:ca'])

  for (const [what, bundle] of [['no caBundle', undefined], ['only an expired CA', expiredCa]] as const) {
    const cluster = fakeCluster()
    seedUnarmed(cluster, bundle)
    await assert.rejects(runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients }),
      coded('NIMCERT_NO_CA_BUNDLE', 'ValidatingWebhookConfiguration nim-admission webhook validate.nim.nvidia.com', 'MutatingWebhookConfiguration nim-admission webhook mutate.nim.nvidia.com', 'failurePolicy Fail'), what)
    assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], [], `${what}: nothing written`)
    assert.equal(policies(cluster).filter((p) => p.includes('Fail')).length, 0, `${what}: no entry armed`)
  }
})

test('inject --failure-policy Fail refuses (writing nothing) when one of the configurations cannot be armed', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  const mutating = cluster.mutating.get('nim-admission')
  delete mutating.webhooks?.[0]?.clientConfig.caBundle
  cluster.mutating.put('nim-admission', mutating, false)
  cluster.mutating.writes.length = 0
  await assert.rejects(runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients }), coded('NIMCERT_NO_CA_BUNDLE', 'mutate.nim.nvidia.com'))
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], [])
})

test('inject --failure-policy Ignore disarms even without a caBundle', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster)
  const v = cluster.validating.get('nim-admission')
  ;(v.webhooks ?? [])[0]!.failurePolicy = 'Fail'
  cluster.validating.put('nim-admission', v, false)
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Ignore') }, { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(policies(cluster), ['V:Ignore:no-ca', 'M:Ignore:no-ca'])
})

test('inject without a CA source or a failure policy is a bad option', async () => {
  const cluster = fakeCluster()
  await assert.rejects(runInject({ webhook: ['nim-admission'] }, { ...quiet, kube: async () => cluster.clients }), coded('NIMCERT_BAD_OPTION', '--failure-policy alone'))
})

test('inject --wait retries while cert-manager has not injected yet, then arms; without --wait it fails at once', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster)
  const lines: string[] = []
  let sleeps = 0
  const sleep = async (): Promise<void> => {
    // The cainjector writes the caBundle during the third pause.
    if (++sleeps === 3) {
      for (const store of [cluster.validating, cluster.mutating] as Array<Store<V1ValidatingWebhookConfiguration>>) {
        const object = store.get('nim-admission')
        for (const w of object.webhooks ?? []) w.clientConfig.caBundle = b64(newCa)
        store.put('nim-admission', object, false)
      }
    }
  }
  await assert.rejects(runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients, sleep }), coded('NIMCERT_NO_CA_BUNDLE'))
  assert.equal(sleeps, 0)
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail'), wait: 60_000 }, { out: (l) => lines.push(l), warn: () => {}, kube: async () => cluster.clients, sleep })
  assert.equal(sleeps, 3)
  assert.deepEqual(policies(cluster), ['V:Fail:ca', 'M:Fail:ca'])
  assert.equal(lines.filter((l) => l.startsWith('waiting: ')).length, 1, 'the same reason is printed once')
})

test('inject --wait gives up after the duration with the last reason', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster)
  let sleeps = 0
  await assert.rejects(runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail'), wait: 10_000 }, { ...quiet, kube: async () => cluster.clients, sleep: async () => { sleeps++ } }), coded('NIMCERT_NO_CA_BUNDLE'))
  assert.equal(sleeps, 5, '10 s in 2 s steps')
})

test('uninstall deletes both configurations of the name and treats absent ones as done', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  const lines: string[] = []
  await runUninstall({ webhook: ['nim-admission'] }, { out: (l) => lines.push(l), warn: () => {}, kube: async () => cluster.clients })
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], ['delete nim-admission', 'delete nim-admission'])
  assert.deepEqual(lines, ['ValidatingWebhookConfiguration/nim-admission: deleted', 'MutatingWebhookConfiguration/nim-admission: deleted'])
  lines.length = 0
  await runUninstall({ webhook: ['nim-admission'] }, { out: (l) => lines.push(l), warn: () => {}, kube: async () => cluster.clients })
  assert.deepEqual(lines, ['ValidatingWebhookConfiguration/nim-admission: absent', 'MutatingWebhookConfiguration/nim-admission: absent'])
})

test('uninstall reports a refusal as one coded line', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  cluster.failNextReplace(new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', message: 'cannot delete resource' }), {}))
  await assert.rejects(runUninstall({ webhook: ['nim-admission'] }, { ...quiet, kube: async () => cluster.clients }),
    coded('NIMCERT_KUBE_API', 'delete ValidatingWebhookConfiguration nim-admission: HTTP 403', 'RBAC'))
})

test('inject arms each kind with its own policy: a mutating webhook configured Ignore stays Ignore', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  await runInject({ webhook: ['nim-admission'], failurePolicy: parseFailurePolicy('validating=Fail,mutating=Ignore') }, { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(policies(cluster), ['V:Fail:ca', 'M:Ignore:ca'])
})

test('--failure-policy parses one policy for both kinds or one per kind, and names a bad part', () => {
  assert.deepEqual(parseFailurePolicy('Fail'), both('Fail'))
  assert.deepEqual(parseFailurePolicy('mutating=Ignore', parseFailurePolicy('validating=Fail')), { ValidatingWebhookConfiguration: 'Fail', MutatingWebhookConfiguration: 'Ignore' })
  assert.throws(() => parseFailurePolicy('validating=Sometimes'), /--failure-policy expects Fail or Ignore.*"validating=Sometimes"/)
  assert.throws(() => parseFailurePolicy('conversion=Fail'), /"conversion=Fail"/)
})

test('inject --failure-policy Fail arms nothing while the Service behind the webhook has no ready pod, and --wait waits for one', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  cluster.ready.set('nim-system/nim-admission', false)
  await assert.rejects(runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients }),
    coded('NIMCERT_WEBHOOK_NOT_READY', 'Service nim-system/nim-admission', 'no ready endpoint', 'validate.nim.nvidia.com', 'mutate.nim.nvidia.com'))
  assert.deepEqual([...cluster.validating.writes, ...cluster.mutating.writes], [], 'a webhook that never started refuses nothing')
  assert.deepEqual(cluster.endpointQueries, ['nim-system/nim-admission'], 'one query per Service')
  let sleeps = 0
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail'), wait: 60_000 }, {
    ...quiet,
    kube: async () => cluster.clients,
    sleep: async () => { if (++sleeps === 2) cluster.ready.set('nim-system/nim-admission', true) }
  })
  assert.deepEqual(policies(cluster), ['V:Fail:ca', 'M:Fail:ca'])
})

test('inject checks no endpoint when nothing is armed Fail: injecting alone, disarming, or already armed', async () => {
  const cluster = fakeCluster()
  seedUnarmed(cluster, newCa)
  cluster.ready.set('nim-system/nim-admission', false)
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Ignore') }, { ...quiet, kube: async () => cluster.clients })
  await runInjectWithFile(['nim-admission'], { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(cluster.endpointQueries, [])
  cluster.ready.set('nim-system/nim-admission', true)
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients })
  cluster.ready.set('nim-system/nim-admission', false)
  cluster.endpointQueries.length = 0
  // The renewal CronJob while the webhook is down: the entries are armed already, nothing to decide.
  await runInject({ webhook: ['nim-admission'], failurePolicy: both('Fail') }, { ...quiet, kube: async () => cluster.clients })
  assert.deepEqual(cluster.endpointQueries, [])
  assert.deepEqual(policies(cluster), ['V:Fail:ca', 'M:Fail:ca'])
})
