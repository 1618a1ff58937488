// Certificates against a real kube-apiserver: `certs generate` + `certs inject` make admission work,
// and a CA rotation with the overlap bundle keeps it working throughout, without a restart.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { connect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { apiRequest, kubectlOk, startWebhook, waitFor, type WebhookProcess } from '../helpers/kube.js'
import { crdWithoutCel, waitForCrdsEstablished } from '../helpers/crd.js'
import { autoscaled } from '../helpers/nimservice.js'

type Json = Record<string, unknown>
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NS = 'certs-e2e'

let apiserver: Apiserver
let webhook: WebhookProcess
let dir: string

function cli (...args: string[]): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`nim-admission ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`)
  return `${r.stdout}${r.stderr}`
}

const generate = (...extra: string[]) => cli('certs', 'generate', '--service', 'nim-admission', '--namespace', 'nim-system',
  '--out', dir, '--ip', '127.0.0.1', '--dns-name', 'localhost', ...extra)
const inject = () => cli('certs', 'inject', '--webhook', 'nim-admission', '--ca-file', join(dir, 'ca.crt'), '--kubeconfig', apiserver.kubeconfig)

const denied = (): Json => {
  const o = autoscaled(undefined, { replicas: 2 })
  ;(o.metadata as Json).namespace = NS
  return o
}

/** One admission round trip through the apiserver: 'denied' by our webhook, or what went wrong. */
async function probe (): Promise<string> {
  const res = await apiRequest(apiserver.kubeconfig, 'POST', `/apis/apps.nvidia.com/v1alpha1/namespaces/${NS}/nimservices?dryRun=All`, denied())
  const message = String(res.body?.message ?? res.body)
  return /admission webhook "validate\.nim-admission\.io" denied the request/.test(message) ? 'denied' : `${res.status} ${message}`
}

async function servedIssuer (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate()
      socket.end()
      resolve(cert?.issuer ?? '')
    })
    socket.on('error', reject)
  })
}

before(async () => {
  apiserver = await startApiserver()
  dir = mkdtempSync(join(tmpdir(), 'nim-certs-e2e-'))
  kubectlOk(apiserver.kubeconfig, ['create', 'namespace', NS])
  kubectlOk(apiserver.kubeconfig, ['apply', '--server-side', '-f', '-'], stringify(crdWithoutCel()))
  await waitForCrdsEstablished(apiserver.kubeconfig, ['nimservices.apps.nvidia.com'])
  generate()
  webhook = await startWebhook(ROOT, dir)
})

after(async () => {
  await webhook?.stop()
  await apiserver?.stop()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

test('certs inject writes the caBundle, after which admission works', async () => {
  const config = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'nim-admission' },
    webhooks: [{
      name: 'validate.nim-admission.io',
      clientConfig: { url: `https://127.0.0.1:${webhook.port}/validate` },
      rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'] }],
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      failurePolicy: 'Fail'
    }]
  }
  kubectlOk(apiserver.kubeconfig, ['apply', '-f', '-'], stringify(config))
  const before = await waitFor('the unregistered CA to be refused', async () => { const p = await probe(); return p !== 'denied' && /x509|certificate/.test(p) ? p : undefined })
  assert.match(before, /failed calling webhook/)
  inject()
  const stored = JSON.parse(kubectlOk(apiserver.kubeconfig, ['get', 'validatingwebhookconfiguration', 'nim-admission', '-o', 'json']))
  assert.equal(Buffer.from(stored.webhooks[0].clientConfig.caBundle, 'base64').toString(), readFileSync(join(dir, 'ca.crt'), 'utf8'))
  assert.equal(await waitFor('the injected caBundle to be honoured', async () => (await probe()) === 'denied' ? 'denied' : undefined), 'denied')
})

test('a CA rotation with the overlap bundle keeps admission working throughout, without a restart', async () => {
  const oldIssuer = await servedIssuer(webhook.port)
  const failures: string[] = []
  let probes = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const p = await probe()
      probes++
      if (p !== 'denied') failures.push(p)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  try {
    // 1. A new CA joins ca.crt beside the old one; the serving certificate still comes from the old CA.
    generate('--ca-renew-before', '36500d')
    assert.equal(new X509Certificate(readFileSync(join(dir, 'tls.crt'))).issuer, oldIssuer)
    inject()
    const bundle = JSON.parse(kubectlOk(apiserver.kubeconfig, ['get', 'validatingwebhookconfiguration', 'nim-admission', '-o', 'json'])).webhooks[0].clientConfig.caBundle as string
    assert.equal((Buffer.from(bundle, 'base64').toString().match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'both CAs are trusted')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    // 2. The serving certificate moves to the new CA; the running server picks it up from disk.
    generate('--renew-before', '36500d')
    const newIssuer = new X509Certificate(readFileSync(join(dir, 'tls.crt'))).issuer
    assert.notEqual(newIssuer, oldIssuer)
    await waitFor('the server to load the new certificate', async () => (await servedIssuer(webhook.port)) === newIssuer ? true : undefined, 15_000)
    await new Promise((resolve) => setTimeout(resolve, 1500))
  } finally {
    running = false
    await loop
  }
  assert.ok(probes >= 10, `enough round trips (${probes})`)
  assert.deepEqual(failures, [])
})

test('created Ignore without a caBundle, NIMService writes pass; armed by inject --failure-policy they are judged; uninstall removes both kinds', async () => {
  // The earlier tests' configuration would answer for this one: take it away first.
  kubectlOk(apiserver.kubeconfig, ['delete', 'validatingwebhookconfiguration', 'nim-admission'])
  const entry = (name: string, path: string) => ({
    name,
    clientConfig: { url: `https://127.0.0.1:${webhook.port}${path}` },
    rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'] }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: 'Ignore'
  })
  const configs = [
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'nim-armed' }, webhooks: [entry('validate.nim-admission.io', '/validate')] },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'nim-armed' }, webhooks: [{ ...entry('mutate.nim-admission.io', '/mutate'), reinvocationPolicy: 'Never' }] }
  ]
  kubectlOk(apiserver.kubeconfig, ['apply', '-f', '-'], configs.map((c) => stringify(c)).join('---\n'))
  // The state a failed install leaves: the call fails (no trusted CA) and is ignored, so the write goes through.
  const passed = await waitFor('the unarmed configuration to be in effect', async () => { const p = await probe(); return /^201 /.test(p) ? p : undefined })
  assert.match(passed, /^201 /)
  const armed = cli('certs', 'inject', '--webhook', 'nim-armed', '--ca-file', join(dir, 'ca.crt'), '--failure-policy', 'Fail', '--kubeconfig', apiserver.kubeconfig)
  assert.match(armed, /ValidatingWebhookConfiguration\/nim-armed: updated, .*failurePolicy Fail on 1/)
  assert.match(armed, /MutatingWebhookConfiguration\/nim-armed: updated, .*failurePolicy Fail on 1/)
  for (const kind of ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration']) {
    const stored = JSON.parse(kubectlOk(apiserver.kubeconfig, ['get', kind, 'nim-armed', '-o', 'json']))
    assert.equal(stored.webhooks[0].failurePolicy, 'Fail', kind)
  }
  assert.equal(await waitFor('the armed webhook to judge the write', async () => (await probe()) === 'denied' ? 'denied' : undefined), 'denied')
  const removed = cli('certs', 'uninstall', '--webhook', 'nim-armed', '--kubeconfig', apiserver.kubeconfig)
  assert.match(removed, /ValidatingWebhookConfiguration\/nim-armed: deleted\nMutatingWebhookConfiguration\/nim-armed: deleted/)
  assert.equal(kubectlOk(apiserver.kubeconfig, ['get', 'validatingwebhookconfigurations,mutatingwebhookconfigurations', '-o', 'name']).trim(), '')
})
