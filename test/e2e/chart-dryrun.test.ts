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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parse as parseYaml, stringify } from 'yaml'
import { startApiserver, type Apiserver, requireApiserverBinary } from '../helpers/apiserver.js'
import { helmBinary, helmTemplate, repoRoot, type HelmTemplateOptions, type Manifest } from '../helpers/helm.js'
import { upstreamCrd, waitForCrdsEstablished } from '../helpers/crd.js'
import { kubectl, kubectlOk } from '../helpers/kube.js'

const NS = 'nim-system'
const APPLIER_NAMESPACES = ['team-a', 'team-b']

requireApiserverBinary()

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
  ['selfSigned with the apiserver CIDRs and the PrometheusRule auto-detected', { networkPolicy: { apiserverCIDRs: ['10.0.0.0/28', 'fd00::/120'] } }, { extraArgs: ['--api-versions', 'monitoring.coreos.com/v1/PrometheusRule', '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor'] }],
  ['existingSecret without a caBundle (arming Job)', { certificates: { mode: 'existingSecret', existingSecret: { name: 'my-tls' } } }],
  ['the applier in write mode', { applier: { enabled: true, mode: 'write' } }],
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
    assert.match(output, /matchConditions\[\d+\]\.expression: Invalid value: "request\.userInfo =="/)
  })

  describe('the selfSigned certificate Jobs, the renewal CronJob and the uninstall hook, run as their ServiceAccounts', () => {
    // The RBAC is created for real (it is not a webhook configuration), then the Jobs' own container args run
    // through the CLI with a token of each Job's ServiceAccount: the chart's RBAC must be enough, and no more.
    const RELEASE_FULLNAME = 'nim-nim-admission'
    const CERTS_SA = `${RELEASE_FULLNAME}-certs`
    const RENEW_SA = `${RELEASE_FULLNAME}-certs-renew`
    const UNINSTALL_SA = `${RELEASE_FULLNAME}-uninstall`
    const SA = `system:serviceaccount:${NS}:${CERTS_SA}`
    let manifests: Manifest[]
    let dir = ''
    const kubeconfigs = new Map<string, string>()

    /** The same cluster and CA as the admin kubeconfig, with a token of the ServiceAccount instead of its client certificate. */
    function kubeconfigFor (sa: string): string {
      const known = kubeconfigs.get(sa)
      if (known !== undefined) return known
      const token = kubectlOk(kubeconfig, ['create', 'token', '-n', NS, sa]).trim()
      const admin = parseYaml(readFileSync(kubeconfig, 'utf8')) as { clusters: { name: string; cluster: object }[] }
      const cluster = admin.clusters[0] as { name: string; cluster: object }
      const file = join(dir, `kubeconfig-${sa}`)
      writeFileSync(file, stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [cluster],
        users: [{ name: sa, user: { token } }],
        contexts: [{ name: sa, context: { cluster: cluster.name, user: sa, namespace: NS } }],
        'current-context': sa
      }))
      kubeconfigs.set(sa, file)
      return file
    }

    before(async () => {
      manifests = await helmTemplate({}, { namespace: NS, isUpgrade: true })
      const rbac = manifests.filter((m) => ['certs', 'certs-renewal', 'uninstall'].includes(m.metadata.labels?.['app.kubernetes.io/component'] ?? '') && !['Job', 'CronJob'].includes(m.kind))
      assert.deepEqual(rbac.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'certs').map((m) => m.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount'])
      kubectlOk(kubeconfig, ['apply', '-f', '-'], rbac.map((m) => stringify(m)).join('---\n'))
      dir = mkdtempSync(join(tmpdir(), 'nim-admission-certs-job-'))
    })

    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    /** The pod spec of a rendered Job, or of a CronJob's Jobs. */
    function jobPod (kind: 'Job' | 'CronJob', name: string): { serviceAccountName: string; containers: { name: string; args: string[] }[]; initContainers?: { name: string; args: string[] }[] } {
      const m = manifests.find((x) => x.kind === kind && x.metadata.name === name) as Manifest
      assert.ok(m, `${kind} ${name} is rendered`)
      const spec = m.spec as { template?: { spec: unknown }; jobTemplate?: { spec: { template: { spec: unknown } } } }
      return (kind === 'Job' ? spec.template?.spec : spec.jobTemplate?.spec.template.spec) as ReturnType<typeof jobPod>
    }

    /** Runs a container of a rendered Job (or CronJob) through the CLI (from source) as that Job's ServiceAccount. */
    function runContainer(jobName: string, container: 'generate' | 'inject' | 'uninstall', kind: 'Job' | 'CronJob' = 'Job', opts: { noWait?: boolean; extraArgs?: string[] } = {}): { status: number; output: string } {
      const spec = jobPod(kind, jobName)
      const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === container)
      assert.ok(c, `${jobName} has a ${container} container`)
      // Without its --wait, a Job fails at once where it would otherwise retry for minutes.
      const args = [...(opts.noWait === true ? c.args.filter((a, i) => a !== '--wait' && c.args[i - 1] !== '--wait') : c.args), ...(opts.extraArgs ?? [])]
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), ...args, '--kubeconfig', kubeconfigFor(spec.serviceAccountName)], {
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

    it('the renewal CronJob renews what the hook created, with its own ServiceAccount, once renewal is due', () => {
      const served = (): string => (JSON.parse(kubectlOk(kubeconfig, ['get', 'secret', '-n', NS, `${RELEASE_FULLNAME}-tls`, '-o', 'json'])) as { data: Record<string, string> }).data['tls.crt'] ?? ''
      const before = served()
      const idle = runContainer(RENEW_SA, 'generate', 'CronJob')
      assert.equal(idle.status, 0, idle.output)
      assert.equal(served(), before, 'nothing due: nothing written')
      // A later --renew-before wins over the rendered one: as if the certificate had aged into the renewal window.
      const due = runContainer(RENEW_SA, 'generate', 'CronJob', { extraArgs: ['--renew-before', '36500d'] })
      assert.equal(due.status, 0, due.output)
      assert.doesNotMatch(due.output, /forbidden/i)
      assert.notEqual(served(), before, 'renewed in place')
    })

    for (const [job, kind] of [[`${RELEASE_FULLNAME}-certs-inject`, 'Job'], [RENEW_SA, 'CronJob']] as const) {
      it(`${kind} ${job}: certs inject may read the webhook configurations of its name (absent here: not found, not forbidden)`, () => {
        const { status, output } = runContainer(job, 'inject', kind, { noWait: true })
        assert.notEqual(status, 0)
        assert.match(output, new RegExp(`no ValidatingWebhookConfiguration or MutatingWebhookConfiguration named ${RELEASE_FULLNAME}`))
        assert.doesNotMatch(output, /forbidden/i)
      })
    }

    it('arming for real: created Ignore, the inject Job injects and arms Fail, lookup keeps Fail on upgrade, the uninstall hook deletes both', async () => {
      // The chart's own configurations with one change: a url nothing listens on instead of the Service, and a
      // namespaceSelector that matches no namespace, so that nothing in this apiserver is ever sent to them.
      const regular = (await helmTemplate({}, { namespace: NS })).filter((m) => /WebhookConfiguration$/.test(m.kind))
      const harmless = regular.map((m) => ({
        ...m,
        webhooks: (m.webhooks as Record<string, unknown>[]).map((w) => ({
          ...w,
          clientConfig: { url: `https://127.0.0.1:1${String((w.clientConfig as { service: { path: string } }).service.path)}` },
          namespaceSelector: { matchLabels: { 'nim-admission.test/never': 'true' } }
        }))
      }))
      kubectlOk(kubeconfig, ['apply', '-f', '-'], harmless.map((m) => stringify(m)).join('---\n'))
      const live = (): Array<{ kind: string; policy: string; caBundle: boolean }> => ['validatingwebhookconfiguration', 'mutatingwebhookconfiguration'].flatMap((k) => {
        const o = JSON.parse(kubectlOk(kubeconfig, ['get', k, RELEASE_FULLNAME, '-o', 'json'])) as { webhooks: { failurePolicy: string; clientConfig: { caBundle?: string } }[] }
        return o.webhooks.map((w) => ({ kind: k, policy: w.failurePolicy, caBundle: (w.clientConfig.caBundle ?? '') !== '' }))
      })
      try {
        assert.deepEqual(live().map((w) => w.policy), ['Ignore', 'Ignore'], 'created Ignore')
        // Before arming, an upgrade's lookup sees nothing armed and keeps Ignore.
        const lookup = async (): Promise<string[]> => (await helmTemplate({}, { namespace: NS, isUpgrade: true, extraArgs: ['--dry-run=server', '--kubeconfig', kubeconfig] }))
          .filter((m) => /WebhookConfiguration$/.test(m.kind)).map((m) => String((m.webhooks as { failurePolicy: string }[])[0]?.failurePolicy))
        assert.deepEqual(await lookup(), ['Ignore', 'Ignore'])
        const { status, output } = runContainer(`${RELEASE_FULLNAME}-certs-inject`, 'inject')
        assert.equal(status, 0, output)
        assert.deepEqual(live(), [
          { kind: 'validatingwebhookconfiguration', policy: 'Fail', caBundle: true },
          { kind: 'mutatingwebhookconfiguration', policy: 'Fail', caBundle: true }
        ])
        // The renewal run after it has nothing to write.
        const renewal = runContainer(RENEW_SA, 'inject', 'CronJob')
        assert.equal(renewal.status, 0, renewal.output)
        assert.match(renewal.output, /unchanged/)
        // `helm upgrade` renders what is live, so its three-way merge does not reset the armed policy.
        assert.deepEqual(await lookup(), ['Fail', 'Fail'])
        const uninstall = runContainer(UNINSTALL_SA, 'uninstall')
        assert.equal(uninstall.status, 0, uninstall.output)
        assert.match(uninstall.output, new RegExp(`ValidatingWebhookConfiguration/${RELEASE_FULLNAME}: deleted`))
        assert.match(uninstall.output, new RegExp(`MutatingWebhookConfiguration/${RELEASE_FULLNAME}: deleted`))
        const again = runContainer(UNINSTALL_SA, 'uninstall')
        assert.equal(again.status, 0, again.output)
        assert.match(again.output, /: absent/)
      } finally {
        kubectl(kubeconfig, ['delete', 'validatingwebhookconfiguration,mutatingwebhookconfiguration', '-l', `app.kubernetes.io/part-of=nim-admission,app.kubernetes.io/instance=nim,nim-admission.io/release-namespace=${NS}`, '--ignore-not-found'])
      }
    })

    it('the documented cleanup command finds both configurations by label', async () => {
      const regular = (await helmTemplate({}, { namespace: NS })).filter((m) => /WebhookConfiguration$/.test(m.kind))
      const labels = regular.map((m) => m.metadata.labels ?? {})
      for (const l of labels) {
        assert.equal(l['app.kubernetes.io/part-of'], 'nim-admission')
        assert.equal(l['app.kubernetes.io/instance'], 'nim')
        assert.equal(l['nim-admission.io/release-namespace'], NS)
      }
    })

    for (const [sa, verb, resource, allowed] of [
      [SA, 'get', `secrets/${RELEASE_FULLNAME}-tls`, 'yes'],
      [SA, 'update', `secrets/${RELEASE_FULLNAME}-tls-ca`, 'yes'],
      [SA, 'create', 'secrets', 'yes'],
      [SA, 'list', 'secrets', 'no'],
      [SA, 'get', 'secrets/some-other-secret', 'no'],
      [SA, 'delete', `secrets/${RELEASE_FULLNAME}-tls`, 'no'],
      [SA, 'update', `validatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      [SA, 'update', `mutatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      [SA, 'update', 'validatingwebhookconfigurations/someone-elses', 'no'],
      [SA, 'list', 'validatingwebhookconfigurations', 'no'],
      [SA, 'get', 'pods', 'no'],
      [SA, 'list', 'endpointslices.discovery.k8s.io', 'yes'],
      [`system:serviceaccount:${NS}:${RENEW_SA}`, 'list', 'endpointslices.discovery.k8s.io', 'yes'],
      [`system:serviceaccount:${NS}:${RENEW_SA}`, 'update', `secrets/${RELEASE_FULLNAME}-tls`, 'yes'],
      [`system:serviceaccount:${NS}:${RENEW_SA}`, 'create', 'secrets', 'no'],
      [`system:serviceaccount:${NS}:${RENEW_SA}`, 'update', `mutatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      [`system:serviceaccount:${NS}:${RENEW_SA}`, 'delete', `mutatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'no'],
      [`system:serviceaccount:${NS}:${UNINSTALL_SA}`, 'delete', `validatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'yes'],
      [`system:serviceaccount:${NS}:${UNINSTALL_SA}`, 'delete', 'validatingwebhookconfigurations/someone-elses', 'no'],
      [`system:serviceaccount:${NS}:${UNINSTALL_SA}`, 'update', `mutatingwebhookconfigurations/${RELEASE_FULLNAME}`, 'no'],
      [`system:serviceaccount:${NS}:${UNINSTALL_SA}`, 'get', `secrets/${RELEASE_FULLNAME}-tls`, 'no']
    ] as const) {
      it(`${sa.split(':').at(-1) ?? sa} ${allowed === 'yes' ? 'may' : 'may not'} ${verb} ${resource}`, () => {
        const r = kubectl(kubeconfig, ['auth', 'can-i', verb, resource, '-n', NS, '--as', sa])
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
      ['watch', 'horizontalpodautoscalers.autoscaling', 'team-a', 'yes'],
      ['patch', 'horizontalpodautoscalers.autoscaling', 'team-a', 'no'],
      ['create', 'horizontalpodautoscalers.autoscaling', 'team-a', 'no'],
      ['delete', 'horizontalpodautoscalers.autoscaling', 'team-a', 'no'],
      ['watch', 'namespaces', '', 'yes'],
      ['watch', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/nim-nim-admission', '', 'yes'],
      ['get', 'mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses', '', 'no'],
      ['create', 'events', 'team-a', 'yes'],
      ['get', 'secrets', 'team-a', 'no'],
      ['update', 'leases.coordination.k8s.io/nim-nim-admission-applier', NS, 'yes'],
      ['update', 'leases.coordination.k8s.io/kube-controller-manager', NS, 'no'],
      ['create', 'leases.coordination.k8s.io', 'team-a', 'no']
    ] as const) {
      it(`${allowed === 'yes' ? 'may' : 'may not'} ${verb} ${resource} in ${ns}`, () => {
        const r = kubectl(kubeconfig, ['auth', 'can-i', verb, resource, ...(ns === '' ? [] : ['-n', ns]), '--as', SA])
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
