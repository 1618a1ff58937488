// The offline gate against the real thing: each of the operator's 31 sample NIMServices, and each
// reproduction of issue 20, goes through `nim-admission validate` and through a real kube-apiserver
// (the upstream CRD with its CEL rules, the webhook registered) with `kubectl apply --dry-run=server`,
// and the two must give the same verdict.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { startApiserver, type Apiserver, requireApiserverBinary } from '../helpers/apiserver.js'
import { kubectl, kubectlOk, startWebhook, waitFor, type WebhookProcess, webhookConfigurations } from '../helpers/kube.js'
import { upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { runCli } from '../fixtures/cli/harness.js'

type Json = Record<string, unknown>
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SAMPLES = join(ROOT, 'test/fixtures/cli/samples')
const NS = 'nim-service'

requireApiserverBinary()

let apiserver: Apiserver
let webhook: WebhookProcess
let kubeconfig: string
let tmp: string

function webhookConfigs (port: number, caBundle: string): Json[] {
  return webhookConfigurations({ port, caBundle })
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nim-parity-'))
  apiserver = await startApiserver()
  kubeconfig = apiserver.kubeconfig
  mkdirSync(join(tmp, 'certs'))
  webhook = await startWebhook(ROOT, join(tmp, 'certs'))
  const caBundle = readFileSync(join(tmp, 'certs', 'ca.crt')).toString('base64')
  kubectlOk(kubeconfig, ['create', 'namespace', NS])
  kubectlOk(kubeconfig, ['apply', '--server-side', '-f', '-'], stringify(upstreamCrd()))
  await waitForCrdsEstablished(kubeconfig, ['nimservices.apps.nvidia.com'])
  kubectlOk(kubeconfig, ['apply', '--server-side', '-f', '-'], webhookConfigs(webhook.port, caBundle).map((o) => stringify(o)).join('---\n'))
  // Registration takes a moment to be honoured: wait until our webhook denies what only it denies.
  const denied = `apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: probe, namespace: ${NS}}\nspec:\n  image: {repository: r, tag: "1"}\n  authSecret: s\n  replicas: 2\n  scale: {enabled: true, hpa: {maxReplicas: 3}}\n`
  await waitFor('the webhook to be called', () => /spec\.replicas/.test(kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], denied).output) ? true : undefined, 60_000, 500)
})

after(async () => {
  await webhook?.stop()
  await apiserver?.stop()
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true })
})

function files (dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : /\.ya?ml$/.test(name) ? [path] : []
  })
}

/** The NIMService documents of a sample file, each as its own text (other kinds need CRDs not installed). */
function nimServiceDocs (file: string): string[] {
  return readFileSync(file, 'utf8').split(/^---[ \t]*$/m).filter((d) => /^kind:\s*NIMService\s*$/m.test(d))
}

interface Verdicts { cli: boolean, cluster: boolean, cliOut: string, clusterOut: string }

/** One document's verdict both ways: admitted (true) or refused. */
async function both (name: string, text: string | Buffer, strict = false): Promise<Verdicts> {
  const path = join(tmp, `${name.replace(/[^\w.-]+/g, '_')}.yaml`)
  writeFileSync(path, text)
  const cli = await runCli(['validate', '--disable', 'NIM121', ...(strict ? ['--strict'] : []), path])
  const cluster = kubectl(kubeconfig, ['apply', '--dry-run=server', '-n', NS, '-f', path])
  return { cli: cli.code === 0, cluster: cluster.status === 0, cliOut: cli.stdout + cli.stderr, clusterOut: cluster.output }
}

describe('the operator\'s sample NIMServices: the CLI and the cluster agree', () => {
  test('31 samples, each NIMService document', async () => {
    const all = files(SAMPLES)
    let documents = 0
    for (const file of all) {
      const docs = nimServiceDocs(file)
      for (const [i, doc] of docs.entries()) {
        documents++
        const name = `${file.slice(SAMPLES.length + 1)}#${i}`
        const v = await both(name, doc)
        assert.equal(v.cli, v.cluster, `${name}\n  cli: ${v.cliOut}\n  cluster: ${v.clusterOut}`)
      }
    }
    assert.equal(all.length, 31)
    assert.ok(documents >= 31, `${documents} NIMService documents`)
  })
})

const nim = (metadata: string, spec = ''): string =>
  `apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata:\n${metadata}spec:\n  image: {repository: nvcr.io/nim/x, tag: "1"}\n  authSecret: ngc\n  expose: {service: {port: 8000}}\n${spec}`
const NAMED = `  name: repro\n  namespace: ${NS}\n`

describe('issue 20\'s reproductions: the CLI and the cluster agree', () => {
  const cases: Array<[string, string | Buffer, boolean]> = [
    ['multiNode mpi defaulted', nim(NAMED, '  multiNode: {parallelism: {tensor: 8}, mpi: {}}\n'), true],
    ['a byte-order mark before a later document', Buffer.from(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ${NS}}\n---\n\uFEFF${nim(NAMED, '  replicas: 2\n  scale: {enabled: true, hpa: {minReplicas: 2, maxReplicas: 3}}\n')}`), false],
    ['annotations that are not strings', nim(`${NAMED}  annotations:\n    replicas: 3\n`), false],
    ['a name that is no DNS subdomain', nim(`  name: Bad_Name\n  namespace: ${NS}\n`), false],
    ['no name', nim(`  namespace: ${NS}\n`), false],
    ['a label key with a space', nim(`${NAMED}  labels:\n    "bad key": v\n`), false],
    ['spec.labels the Deployment could not carry', nim(NAMED, '  labels:\n    "bad key": v\n'), false],
    ['spec.scale.annotations the HPA could not carry', nim(NAMED, '  scale:\n    enabled: true\n    annotations:\n      "a/b/c": v\n    hpa: {minReplicas: 2, maxReplicas: 3}\n'), false],
    ['an unquoted 0o17 tag', nim(NAMED).replace('tag: "1"', 'tag: 0o17'), false],
    ['a quoted 0o17 tag', nim(NAMED).replace('tag: "1"', 'tag: "0o17"'), true],
    ['a JSON stream', `${JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'j', namespace: NS } })}\n${JSON.stringify({ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', metadata: { name: 'j', namespace: NS }, spec: { image: { repository: 'r', tag: '1' }, authSecret: 's', replicas: 2, scale: { enabled: true, hpa: { maxReplicas: 3 } } } })}\n`, false],
    ['one newline (helm template that renders nothing)', '\n', true]
  ]
  for (const [name, text, admitted] of cases) {
    test(name, async () => {
      const v = await both(name, text)
      // kubectl refuses to apply nothing; the gate passes it: that one differs by design.
      if (name.startsWith('one newline')) {
        assert.equal(v.cli, admitted, v.cliOut)
        return
      }
      assert.deepEqual([v.cli, v.cluster], [admitted, admitted], `cli: ${v.cliOut}\ncluster: ${v.clusterOut}`)
    })
  }

  for (const [kind, apiVersion] of [['NimService', 'apps.nvidia.com/v1alpha1'], ['NIMService', 'apps.nvidia.com/v1']] as const) {
    test(`kind ${kind} in ${apiVersion}: kubectl finds no such kind; the CLI warns, and fails with --strict`, async () => {
      const text = nim(NAMED).replace('kind: NIMService', `kind: ${kind}`).replace('apps.nvidia.com/v1alpha1', apiVersion)
      const v = await both(`near-${kind}-${apiVersion}`, text, true)
      assert.equal(v.cluster, false, v.clusterOut)
      assert.match(v.clusterOut, /no matches for kind|could not find the requested resource/)
      assert.equal(v.cli, false, v.cliOut)
      assert.match(v.cliOut, /warning NIM120/)
    })
  }
})
