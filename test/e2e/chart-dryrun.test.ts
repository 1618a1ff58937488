// Every manifest the chart renders, for each certificate mode, accepted by a real kube-apiserver with
// `kubectl apply --dry-run=server`: field validation is strict, the webhook configurations' rules and CEL
// matchConditions are compiled, RBAC is checked, and PodSecurity admission (restricted, in warn mode on the
// namespace) reports any workload that would break the restricted profile.
//
// The webhook configurations are only ever dry-run here: created for real, they would send NIMService requests to
// a Service ClusterIP that nothing serves on this machine.
//
// The Prometheus Operator and cert-manager CRDs are not installed in the test apiserver; minimal stand-ins with
// the real group, version, kind and scope (and a schema that keeps unknown fields) are created first, so those
// objects are checked for kind, scope and metadata only, not for their spec fields. The NIM Operator's NIMService
// CRD (vendored in schemas/upstream) is installed so that RBAC checks on nimservices resolve.
//
// Beyond the dry-run, the RBAC of the certificate Jobs and of the applier is created for real: the Jobs' own
// container args run through the CLI with a token of their ServiceAccount, and `kubectl auth can-i` pins what each
// ServiceAccount may and may not do.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml, stringify } from 'yaml'
import { apiserverBinary, startApiserver, type Apiserver } from '../helpers/apiserver.js'
import { helmBinary, helmTemplate, repoRoot, type HelmTemplateOptions, type Manifest } from '../helpers/helm.js'
import { upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { kubectl, kubectlOk } from '../helpers/kube.js'

const NS = 'nim-system'
const APPLIER_NAMESPACES = ['team-a', 'team-b']

if (!existsSync(apiserverBinary())) {
  throw new Error(`the test kube-apiserver is not built (${apiserverBinary()}): run \`bash scripts/build-apiserver.sh\` (needs Go), or \`npm test\`, which builds it`)
}

/** A CRD that accepts any spec: enough to dry-run the chart's objects of that kind. */
function stubCrd(group: string, kind: string, plural: string): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }
        }
      ]
    }
  }
}

const STUB_CRDS = [
  stubCrd('monitoring.coreos.com', 'ServiceMonitor', 'servicemonitors'),
  stubCrd('monitoring.coreos.com', 'PrometheusRule', 'prometheusrules'),
  stubCrd('cert-manager.io', 'Issuer', 'issuers'),
  stubCrd('cert-manager.io', 'Certificate', 'certificates')
]

/** Everything optional switched on, so that every template reaches the apiserver at least once. */
const optional = {
  metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } },
  networkPolicy: { enabled: true },
  applier: { enabled: true },
  webhook: {
    matchConditions: [
      { name: 'not-gc', expression: "request.userInfo.username != 'system:serviceaccount:kube-system:generic-garbage-collector'" }
    ]
  }
}

const cases: [string, object, HelmTemplateOptions?][] = [
  ['selfSigned (defaults)', {}],
  ['selfSigned on upgrade', {}, { isUpgrade: true }],
  ['selfSigned with every optional part', optional],
  ['certManager with every optional part', { ...optional, certificates: { mode: 'certManager' } }],
  ['certManager with an existing ClusterIssuer', { certificates: { mode: 'certManager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } }],
  ['existingSecret with a caBundle', { certificates: { mode: 'existingSecret', existingSecret: { name: 'my-tls', caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64') } } }],
  ['the applier limited to namespaces', { applier: { enabled: true, namespaces: APPLIER_NAMESPACES } }],
  ['the longest full name (50 characters)', { ...optional, fullnameOverride: 'n'.repeat(50) }]
]

let apiserver: Apiserver | undefined
let kubeconfig = ''

function dryRun(manifests: Manifest[]): { status: number; output: string } {
  const input = manifests.map((m) => stringify(m)).join('---\n')
  const result = kubectl(kubeconfig, ['apply', '--dry-run=server', '--validate=strict', '-f', '-'], input)
  return { status: result.status, output: result.output }
}

describe('chart manifests against a real kube-apiserver (kubectl apply --dry-run=server)', () => {
  before(async () => {
    helmBinary()
    apiserver = await startApiserver()
    kubeconfig = apiserver.kubeconfig
    // Namespaces are created for real: a namespaced dry-run needs its namespace. PodSecurity warns (and enforces)
    // the restricted profile in the release namespace.
    kubectlOk(kubeconfig, ['create', 'namespace', NS])
    kubectlOk(kubeconfig, [
      'label', 'namespace', NS,
      'pod-security.kubernetes.io/enforce=restricted',
      'pod-security.kubernetes.io/warn=restricted',
      'pod-security.kubernetes.io/audit=restricted'
    ])
    for (const ns of APPLIER_NAMESPACES) kubectlOk(kubeconfig, ['create', 'namespace', ns])
    // The NIM Operator's own NIMService CRD, so RBAC questions about nimservices resolve; no webhook is registered.
    const crds = [...STUB_CRDS, upstreamCrd()]
    kubectlOk(kubeconfig, ['apply', '--server-side', '-f', '-'], crds.map((c) => stringify(c)).join('---\n'))
    await waitForCrdsEstablished(kubeconfig, crds.map((c) => (c as { metadata: { name: string } }).metadata.name))
  }, { timeout: 600_000 })

  after(async () => {
    await apiserver?.stop()
  })

  for (const [name, values, opts] of cases) {
    it(`accepts every manifest for ${name}`, async () => {
      const manifests = await helmTemplate(values, { namespace: NS, ...opts })
      const { status, output } = dryRun(manifests)
      assert.equal(status, 0, `kubectl apply --dry-run=server failed:\n${output}`)
      const accepted = output.split('\n').filter((l) => l.endsWith('(server dry run)'))
      assert.equal(accepted.length, manifests.length, `one "(server dry run)" line per manifest:\n${output}`)
      assert.doesNotMatch(output, /would violate PodSecurity/, 'every workload meets the restricted profile')
      assert.doesNotMatch(output, /Warning:/, `no warnings:\n${output}`)
    })
  }

  it('the PodSecurity check is live: a privilege-escalating container draws the warning', async () => {
    const manifests = await helmTemplate({ securityContext: { allowPrivilegeEscalation: true } }, { namespace: NS })
    const { status, output } = dryRun(manifests.filter((m) => m.kind === 'Deployment'))
    assert.equal(status, 0, output)
    assert.match(output, /would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/)
  })

  it('the apiserver compiles matchConditions: a broken CEL expression is refused', async () => {
    const manifests = await helmTemplate({ webhook: { matchConditions: [{ name: 'broken', expression: 'request.userInfo ==' }] } }, { namespace: NS })
    const { status, output } = dryRun(manifests.filter((m) => m.kind === 'ValidatingWebhookConfiguration'))
    assert.notEqual(status, 0)
    assert.match(output, /matchConditions\[0\]\.expression: Invalid value/)
  })

  describe('the selfSigned certificate Jobs, run as their ServiceAccount', () => {
    // The hook RBAC is created for real (it is not a webhook configuration), then the Jobs' own container args
    // run through the CLI with a token of the Jobs' ServiceAccount: the chart's RBAC must be enough, and no more.
    const RELEASE_FULLNAME = 'nim-nim-admission'
    const SA = `system:serviceaccount:${NS}:${RELEASE_FULLNAME}-certs`
    let manifests: Manifest[]
    let saKubeconfig = ''
    let dir = ''

    before(async () => {
      manifests = await helmTemplate({}, { namespace: NS, isUpgrade: true })
      const rbac = manifests.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'certs' && m.kind !== 'Job')
      assert.deepEqual(rbac.map((m) => m.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount'])
      kubectlOk(kubeconfig, ['apply', '-f', '-'], rbac.map((m) => stringify(m)).join('---\n'))
      const token = kubectlOk(kubeconfig, ['create', 'token', '-n', NS, `${RELEASE_FULLNAME}-certs`]).trim()
      // The same cluster and CA as the admin kubeconfig, with the ServiceAccount's token instead of its client certificate.
      const admin = parseYaml(readFileSync(kubeconfig, 'utf8')) as { clusters: { name: string; cluster: object }[] }
      const cluster = admin.clusters[0] as { name: string; cluster: object }
      dir = mkdtempSync(join(tmpdir(), 'nim-admission-certs-job-'))
      saKubeconfig = join(dir, 'kubeconfig')
      writeFileSync(saKubeconfig, stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [cluster],
        users: [{ name: 'certs-job', user: { token } }],
        contexts: [{ name: 'certs-job', context: { cluster: cluster.name, user: 'certs-job', namespace: NS } }],
        'current-context': 'certs-job'
      }))
    })

    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    /** Runs a container of the rendered Job through the CLI (from source) as the Jobs' ServiceAccount. */
    function runContainer(jobName: string, container: 'generate' | 'inject'): { status: number; output: string } {
      const job = manifests.find((m) => m.kind === 'Job' && m.metadata.name === jobName) as Manifest
      const spec = (job.spec as { template: { spec: { containers: { name: string; args: string[] }[]; initContainers?: { name: string; args: string[] }[] } } }).template.spec
      const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === container)
      assert.ok(c, `${jobName} has a ${container} container`)
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), ...c.args, '--kubeconfig', saKubeconfig], {
        cwd: repoRoot,
        encoding: 'utf8',
        timeout: 60_000
      })
      return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` }
    }

    it('certs generate creates the serving and CA Secrets, and a second run (read, keep) is allowed too', () => {
      for (let run = 1; run <= 2; run++) {
        const { status, output } = runContainer(`${RELEASE_FULLNAME}-certs`, 'generate')
        assert.equal(status, 0, `run ${run}:\n${output}`)
      }
      const secret = JSON.parse(kubectlOk(kubeconfig, ['get', 'secret', '-n', NS, `${RELEASE_FULLNAME}-tls`, '-o', 'json'])) as { type: string; data: Record<string, string> }
      assert.equal(secret.type, 'kubernetes.io/tls')
      assert.deepEqual(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key'])
      kubectlOk(kubeconfig, ['get', 'secret', '-n', NS, `${RELEASE_FULLNAME}-tls-ca`])
    })

    it('certs inject may read the webhook configurations of its name (absent here: not found, not forbidden)', () => {
      const { status, output } = runContainer(`${RELEASE_FULLNAME}-certs-inject`, 'inject')
      assert.notEqual(status, 0)
      assert.match(output, new RegExp(`no ValidatingWebhookConfiguration or MutatingWebhookConfiguration named ${RELEASE_FULLNAME}`))
      assert.doesNotMatch(output, /forbidden/i)
    })

    for (const [verb, resource, allowed] of [
      ['get', `secrets/${RELEASE_FULLNAME}-tls`, 'yes'],
      ['update', `secrets/${RELEASE_FULLNAME}-tls-ca`, 'yes'],
      ['create', 'secrets', 'yes'],
      ['list', 'secrets', 'no'],
      ['get', 'secrets/some-other-secret', 'no'],
      ['delete', `secrets/${RELEASE_FULLNAME}-tls`, 'no'],
      ['update', `validatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      ['update', `mutatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      ['update', 'validatingwebhookconfigurations/someone-elses', 'no'],
      ['list', 'validatingwebhookconfigurations', 'no'],
      ['get', 'pods', 'no']
    ] as const) {
      it(`the Jobs' ServiceAccount ${allowed === 'yes' ? 'may' : 'may not'} ${verb} ${resource}`, () => {
        const r = kubectl(kubeconfig, ['auth', 'can-i', verb, resource, '-n', NS, '--as', SA])
        assert.equal(r.stdout.trim(), allowed, r.output)
      })
    }
  })

  describe('the applier ServiceAccount', () => {
    const SA = `system:serviceaccount:${NS}:nim-nim-admission-applier`
    before(async () => {
      // RBAC only, created for real so that the apiserver's authorizer can answer for it.
      const manifests = await helmTemplate({ applier: { enabled: true } }, { namespace: NS })
      const rbac = manifests.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'applier' && !['Deployment', 'PodDisruptionBudget'].includes(m.kind))
      kubectlOk(kubeconfig, ['apply', '-f', '-'], rbac.map((m) => stringify(m)).join('---\n'))
    })

    for (const [verb, resource, ns, allowed] of [
      ['watch', 'nimservices.apps.nvidia.com', 'team-a', 'yes'],
      ['update', 'nimservices.apps.nvidia.com', 'team-a', 'no'],
      ['patch', 'horizontalpodautoscalers.autoscaling', 'team-a', 'yes'],
      ['create', 'horizontalpodautoscalers.autoscaling', 'team-a', 'yes'],
      ['delete', 'horizontalpodautoscalers.autoscaling', 'team-a', 'yes'],
      ['create', 'events', 'team-a', 'yes'],
      ['get', 'secrets', 'team-a', 'no'],
      ['update', 'leases.coordination.k8s.io/nim-nim-admission-applier', NS, 'yes'],
      ['update', 'leases.coordination.k8s.io/kube-controller-manager', NS, 'no'],
      ['create', 'leases.coordination.k8s.io', 'team-a', 'no']
    ] as const) {
      it(`${allowed === 'yes' ? 'may' : 'may not'} ${verb} ${resource} in ${ns}`, () => {
        const r = kubectl(kubeconfig, ['auth', 'can-i', verb, resource, '-n', ns, '--as', SA])
        assert.equal(r.stdout.trim(), allowed, r.output)
      })
    }
  })

  it('no webhook configuration was left in the apiserver', () => {
    for (const kind of ['validatingwebhookconfigurations', 'mutatingwebhookconfigurations']) {
      assert.equal(kubectlOk(kubeconfig, ['get', kind, '-o', 'name']).trim(), '', `${kind} exist`)
    }
  })
})
