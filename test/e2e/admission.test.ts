// End to end against a real kube-apiserver (test/apiserver) and the real `nim-admission serve`
// process: kubectl apply, --dry-run=server, warnings, the apiserver's own HPA verdicts, failurePolicy.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { startApiserver, type Apiserver, requireApiserverBinary } from '../helpers/apiserver.js'
import { apiRequest, kubectl, kubectlOk, startWebhook, waitFor, type WebhookProcess, webhookConfigurations } from '../helpers/kube.js'
import { crdWithoutCel, upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { SEED_EXAMPLES } from '../fixtures/seed-examples.js'
import { HPA_CASES } from '../fixtures/hpa-cases.js'
import { autoscaled, nim } from '../helpers/nimservice.js'
import { validateNIMService, mutateNIMService, HPA_ANNOTATION, MSG_REPLICAS, MSG_MULTINODE } from '../../src/nimservice/index.js'

type Json = Record<string, unknown>
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NS = 'nim-service'

requireApiserverBinary()

let apiserver: Apiserver
let webhook: WebhookProcess
let kubeconfig: string
let certDir: string
let caBundle: string

const yaml = (o: unknown): string => stringify(o)
const withNs = (o: Json, ns = NS): Json => ({ ...o, metadata: { ...(o.metadata as Json), namespace: ns } })

function webhookConfigs (port: number, failurePolicy: 'Fail' | 'Ignore'): Json[] {
  return webhookConfigurations({ port, caBundle, failurePolicy, timeoutSeconds: 5 })
}

function register (failurePolicy: 'Fail' | 'Ignore'): void {
  kubectlOk(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], webhookConfigs(webhook.port, failurePolicy).map(yaml).join('---\n'))
}

async function installCrd (crd: Json): Promise<void> {
  kubectlOk(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], yaml(crd))
  await waitForCrdsEstablished(kubeconfig, ['nimservices.apps.nvidia.com'])
}

/** The webhooks take a moment to be honoured after registration: wait until a denial comes from ours. */
async function waitForWebhook (): Promise<void> {
  const bad = withNs(autoscaled(undefined, { replicas: 2 }))
  await waitFor('the validating webhook to be called', () => {
    const r = kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(bad))
    return /is invalid: spec\.replicas: /.test(r.output) ? true : undefined
  }, 30_000, 300)
}

before(async () => {
  apiserver = await startApiserver()
  kubeconfig = apiserver.kubeconfig
  certDir = mkdtempSync(join(tmpdir(), 'nim-e2e-certs-'))
  webhook = await startWebhook(ROOT, certDir)
  caBundle = Buffer.from(readFileSync(join(certDir, 'ca.crt'))).toString('base64')
  kubectlOk(kubeconfig, ['create', 'namespace', NS])
  await installCrd(crdWithoutCel())
  register('Fail')
  await waitForWebhook()
})

after(async () => {
  await webhook?.stop()
  await apiserver?.stop()
  if (certDir !== undefined) rmSync(certDir, { recursive: true, force: true })
})

describe('with a NIMService CRD that has no CEL rules (generated from schemas/)', () => {
  test('kubectl apply of every seed example succeeds, and the stored object carries defaults and the rendered HPA', () => {
    for (const { name, object } of SEED_EXAMPLES) {
      const r = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(withNs(object)))
      assert.equal(r.status, 0, `${name}: ${r.output}`)
      const stored = JSON.parse(kubectlOk(kubeconfig, ['get', 'nimservice', '-n', NS, String((object.metadata as Json).name), '-o', 'json'])) as Json
      const spec = stored.spec as Json
      const annotations = ((stored.metadata as Json).annotations ?? {}) as Record<string, string>
      if ((spec.scale as Json).enabled === true) {
        assert.equal(((spec.scale as Json).hpa as Json).minReplicas !== undefined, true, name)
        assert.equal(((spec.expose as Json).service as Json).port, 8000, name)
        const hpa = JSON.parse(annotations[HPA_ANNOTATION] ?? 'null') as Json
        assert.equal((hpa.metadata as Json).name, (object.metadata as Json).name, name)
      } else {
        assert.equal(annotations[HPA_ANNOTATION], undefined, name)
      }
    }
  })

  // kubectl renders a 422 Invalid status from its causes (`The NIMService "x" is invalid: field: message`),
  // so the apiserver's "admission webhook ... denied the request" prefix is read from the Status itself.
  for (const [what, extra, field, code, message] of [
    ['replicas', { replicas: 2 }, 'spec.replicas', 'NIM010', MSG_REPLICAS],
    ['multiNode', { multiNode: { parallelism: { pipeline: 2, tensor: 8 } } }, 'spec.scale.enabled', 'NIM011', MSG_MULTINODE]
  ] as const) {
    test(`kubectl apply of ${what} with autoscaling is denied by the webhook with the exact message`, async () => {
      const object = withNs(autoscaled(undefined, extra as unknown as Json))
      const r = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(object))
      assert.notEqual(r.status, 0)
      assert.ok(r.output.includes(`The NIMService "llm" is invalid: ${field}: ${message}`), r.output)
      const res = await apiRequest(kubeconfig, 'POST', `/apis/apps.nvidia.com/v1alpha1/namespaces/${NS}/nimservices`, object)
      assert.equal(res.status, 422)
      assert.match(res.body.message, /^admission webhook "validate\.nim-admission\.io" denied the request: /)
      assert.ok(String(res.body.message).includes(message))
      assert.deepEqual(res.body.details.causes[0], { field, message, reason: code })
    })
  }

  test('--dry-run=server gives the same verdict and warnings, and stores nothing', () => {
    const denied = withNs(autoscaled({ minReplicas: 1, maxReplicas: 3 }, { replicas: 2 }), NS)
    ;(denied.metadata as Json).name = 'dry-run-denied'
    const real = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(denied))
    const dry = kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(denied))
    assert.notEqual(dry.status, 0)
    assert.equal(dry.stderr.replace(/ \(server dry run\)/g, ''), real.stderr)
    const allowed = withNs(autoscaled({ minReplicas: 1, maxReplicas: 3, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] }))
    ;(allowed.metadata as Json).name = 'dry-run-allowed'
    const ok = kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(allowed))
    assert.equal(ok.status, 0, ok.output)
    assert.match(ok.stderr, /Warning: NIM101 spec\.scale\.hpa\.minReplicas/)
    assert.notEqual(kubectl(kubeconfig, ['get', 'nimservice', '-n', NS, 'dry-run-allowed']).status, 0, 'nothing stored')
  })

  test('warnings from the webhook reach kubectl output', () => {
    const object = withNs(autoscaled({ minReplicas: 2, maxReplicas: 2, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] }))
    ;(object.metadata as Json).name = 'warned'
    const r = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(object))
    assert.equal(r.status, 0, r.output)
    assert.match(r.stderr, /Warning: NIM108 spec\.scale\.hpa\.maxReplicas: minReplicas equals maxReplicas/)
  })
})

describe("the apiserver's own HorizontalPodAutoscaler validation agrees with nim-admission", () => {
  test(`every case of the HPA table (${HPA_CASES.length}) gets the same verdict from a real HPA dry-run create`, async () => {
    const disagreements: string[] = []
    for (const c of HPA_CASES) {
      const body = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'case', namespace: NS }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'llm' }, ...c.hpa } }
      const res = await apiRequest(kubeconfig, 'POST', `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers?dryRun=All&fieldValidation=Strict`, body)
      const kubeAllowed = res.status === 201 || res.status === 200
      const ours = validateNIMService({ operation: 'CREATE', object: autoscaled(c.hpa) })
      if (kubeAllowed !== ours.allowed) {
        disagreements.push(`${c.name}: apiserver ${res.status} ${JSON.stringify(res.body?.message ?? '')}, nim-admission ${JSON.stringify(ours.causes[0] ?? 'allowed')}`)
        continue
      }
      if (!kubeAllowed && c.firstField !== undefined) {
        const kubeField = String(res.body?.details?.causes?.[0]?.field ?? '')
        const want = c.firstField.replace(/^spec\.scale\.hpa\./, 'spec.')
        if (kubeField !== '' && kubeField !== want) disagreements.push(`${c.name}: apiserver names ${kubeField} first, the table ${want}`)
      }
    }
    assert.deepEqual(disagreements, [])
  })

  test('the HPA rendered into the annotation is accepted, and what the apiserver would store equals it', async () => {
    for (const { name, object } of SEED_EXAMPLES) {
      const { hpa } = mutateNIMService({ operation: 'CREATE', object: withNs(object), namespace: NS })
      if (hpa === undefined) continue
      const res = await apiRequest(kubeconfig, 'POST', `/apis/autoscaling/v2/namespaces/${NS}/horizontalpodautoscalers?dryRun=All&fieldValidation=Strict`, hpa)
      assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`)
      assert.deepEqual(res.body.spec, hpa.spec, `${name}: stored spec differs from the annotation`)
      assert.deepEqual(res.body.metadata.labels, (hpa.metadata as Json).labels, name)
      assert.deepEqual(res.body.metadata.annotations, (hpa.metadata as Json).annotations, name)
    }
  })
})

describe('with the upstream CRD (its CEL rules answer before the validating webhook)', () => {
  before(async () => {
    await installCrd(upstreamCrd())
  })

  test('replicas with autoscaling is rejected, by the CRD rule with the same words', async () => {
    const r = await waitFor('the upstream CRD rule to apply', () => {
      const out = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(withNs(autoscaled(undefined, { replicas: 2 }))))
      return /is invalid/.test(out.output) ? out : undefined
    })
    assert.notEqual(r.status, 0)
    // The CEL rule sits on `spec`; the webhook would have named `spec.replicas`.
    assert.ok(r.output.includes(`The NIMService "llm" is invalid: spec: Invalid value: ${MSG_REPLICAS}`), `the CRD's CEL rule answers first: ${r.output}`)
  })

  test('multiNode with autoscaling is rejected too', () => {
    const r = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(withNs(autoscaled(undefined, { multiNode: { parallelism: { pipeline: 2, tensor: 8 } } }))))
    assert.notEqual(r.status, 0)
    assert.ok(r.output.includes(MSG_MULTINODE), r.output)
  })

  test('an invalid HPA spec, which no CEL rule covers, is still denied by the webhook', () => {
    const object = withNs(autoscaled({ minReplicas: 3, maxReplicas: 2 }))
    ;(object.metadata as Json).name = 'hpa-invalid'
    const r = kubectl(kubeconfig, ['apply', '-f', '-'], yaml(object))
    assert.notEqual(r.status, 0)
    assert.match(r.output, /The NIMService "hpa-invalid" is invalid: spec\.scale\.hpa\.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`/)
  })
})

describe('when the webhook is down', () => {
  test('failurePolicy Fail rejects with a clear error, Ignore lets the object through, and a restart restores service', async () => {
    const object = withNs(nim({ replicas: 1 }))
    ;(object.metadata as Json).name = 'while-down'
    const port = webhook.port
    await webhook.stop()
    const failed = kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(object))
    assert.notEqual(failed.status, 0)
    assert.match(failed.output, /failed calling webhook "(mutate|validate)\.nim-admission\.io"/)
    assert.match(failed.output, /connection refused|connect:/)

    register('Ignore')
    await waitFor('failurePolicy Ignore to apply', () => kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(object)).status === 0 ? true : undefined)

    register('Fail')
    webhook = await startWebhook(ROOT, certDir, port)
    const denied = await waitFor('the restarted webhook to answer', () => {
      const r = kubectl(kubeconfig, ['apply', '--dry-run=server', '-f', '-'], yaml(withNs(autoscaled({ minReplicas: 3, maxReplicas: 2 }))))
      return /is invalid: spec\.scale\.hpa\.maxReplicas/.test(r.output) ? r : undefined
    })
    assert.match(denied.output, /spec\.scale\.hpa\.maxReplicas/)
  })
})
