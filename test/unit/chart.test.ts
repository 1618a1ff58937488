// The Helm chart: lint, render for each certificate mode, and read the manifests the way an apiserver would
// use them. Needs the pinned helm from scripts/install-helm.sh (built on first use with Go; fails loudly without).
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { chartDir, helmBinary, helmLint, helmTemplate, helmTemplateRaw, type HelmTemplateOptions, type Manifest } from '../helpers/helm.js'

const NS = 'nim-system'
const RELEASE = 'nim'
const FULLNAME = 'nim-nim-admission'
const RENEW = `${FULLNAME}-certs-renew`
const UNINSTALL = `${FULLNAME}-uninstall`
const TLS_SECRET = `${FULLNAME}-tls`
const CA_SECRET = `${TLS_SECRET}-ca`
/** Both webhook configurations are named after the release: `certs inject --webhook NAME` updates both kinds. */
const WEBHOOK_CONFIG = FULLNAME

type Obj = Record<string, unknown>

/** Reads a dotted path ('spec.template.spec'); numeric segments index arrays. */
function dig(value: unknown, path: string): unknown {
  let current: unknown = value
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined
    current = (current as Obj)[key]
  }
  return current
}

function find(manifests: Manifest[], kind: string, name?: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name))
}

function one(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = find(manifests, kind, name)
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, got ${found.length}`)
  return found[0] as Manifest
}

function kinds(manifests: Manifest[]): string[] {
  return manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()
}

interface Container {
  name: string
  args?: string[]
  ports?: { name: string; containerPort: number }[]
  securityContext?: Obj
  resources?: { requests?: Obj; limits?: Obj }
  env?: Obj[]
  livenessProbe?: Obj
  readinessProbe?: Obj
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[]
}

interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  securityContext?: Obj
  volumes?: Obj[]
  automountServiceAccountToken?: boolean
  serviceAccountName?: string
  terminationGracePeriodSeconds?: number
  affinity?: Obj
  topologySpreadConstraints?: Obj[]
}

function podSpec(workload: Manifest): PodSpec {
  const spec = dig(workload, 'spec.template.spec')
  assert.ok(spec, `${workload.kind} ${workload.metadata.name} has a pod template`)
  return spec as PodSpec
}

function podLabels(workload: Manifest): Record<string, string> {
  return dig(workload, 'spec.template.metadata.labels') as Record<string, string>
}

/** Value following a flag in an args list, e.g. argValue(args, '--port'). */
function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag)
  return i >= 0 ? args[i + 1] : undefined
}

function argValues(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && args[i + 1] !== undefined ? [args[i + 1] as string] : []))
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

/** The restricted Pod Security Standard, field by field, for every container of a pod. */
function assertRestricted(workload: Manifest): void {
  const spec = podSpec(workload)
  const where = `${workload.kind} ${workload.metadata.name}`
  const pod = spec.securityContext ?? {}
  assert.equal(pod.runAsNonRoot, true, `${where}: pod runAsNonRoot`)
  assert.equal(typeof pod.runAsUser, 'number', `${where}: numeric pod runAsUser`)
  assert.notEqual(pod.runAsUser, 0, `${where}: runAsUser is not root`)
  assert.equal(dig(pod, 'seccompProfile.type'), 'RuntimeDefault', `${where}: pod seccomp`)
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const sc = c.securityContext ?? {}
    assert.equal(sc.allowPrivilegeEscalation, false, `${where}/${c.name}: allowPrivilegeEscalation`)
    assert.equal(sc.readOnlyRootFilesystem, true, `${where}/${c.name}: readOnlyRootFilesystem`)
    assert.equal(sc.runAsNonRoot, true, `${where}/${c.name}: runAsNonRoot`)
    assert.notEqual(sc.privileged, true, `${where}/${c.name}: not privileged`)
    assert.deepEqual(dig(sc, 'capabilities.drop'), ['ALL'], `${where}/${c.name}: drops ALL capabilities`)
    assert.equal(dig(sc, 'capabilities.add'), undefined, `${where}/${c.name}: adds no capability`)
    assert.equal(dig(sc, 'seccompProfile.type'), 'RuntimeDefault', `${where}/${c.name}: seccomp`)
    for (const kind of ['requests', 'limits'] as const) {
      for (const resource of ['cpu', 'memory']) {
        assert.ok(c.resources?.[kind]?.[resource], `${where}/${c.name}: resources.${kind}.${resource}`)
      }
    }
    // A read-only root filesystem needs a writable /tmp for Node.
    const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp')
    assert.ok(tmp, `${where}/${c.name}: mounts /tmp`)
    assert.ok(spec.volumes?.some((v) => v.name === tmp.name && v.emptyDir !== undefined), `${where}: /tmp is an emptyDir`)
  }
}

interface Rule {
  apiGroups?: string[]
  resources?: string[]
  resourceNames?: string[]
  verbs: string[]
}

function rules(role: Manifest): Rule[] {
  return (role.rules as Rule[] | undefined) ?? []
}

/** Every permission as "group/resource[name]:verb", sorted, for exact least-privilege comparisons. */
function permissions(role: Manifest): string[] {
  return rules(role)
    .flatMap((r) =>
      (r.apiGroups ?? ['']).flatMap((g) =>
        (r.resources ?? []).flatMap((res) =>
          (r.resourceNames ?? ['*any*']).flatMap((n) => r.verbs.map((v) => `${g}/${res}[${n}]:${v}`))
        )
      )
    )
    .sort()
}

const modes = {
  selfSigned: {},
  certManager: { certificates: { mode: 'certManager' } },
  existingSecret: { certificates: { mode: 'existingSecret', existingSecret: { name: 'my-tls', caBundle: 'Q0EK' } } }
} as const

/** Every optional part switched on, for checks that must hold for all of it. */
const everything = {
  metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } },
  networkPolicy: { enabled: true },
  applier: { enabled: true }
}

describe('helm chart charts/nim-admission', () => {
  before(() => {
    // Builds helm on first use; throws (fails every test) rather than skipping when it cannot.
    helmBinary()
  })

  describe('helm lint --strict', () => {
    const cases: [string, object][] = [
      ['default values (selfSigned)', {}],
      ['certManager mode', modes.certManager],
      ['existingSecret mode', modes.existingSecret],
      ['every optional part enabled', everything]
    ]
    for (const [name, values] of cases) {
      it(`passes for ${name}`, async () => {
        const result = await helmLint(values)
        assert.equal(result.code, 0, `helm lint failed:\n${result.stdout}\n${result.stderr}`)
        assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
      })
    }
  })

  describe('default values', () => {
    let manifests: Manifest[]
    let deployment: Manifest
    let pod: PodSpec
    let server: Container
    before(async () => {
      manifests = await helmTemplate()
      deployment = one(manifests, 'Deployment', FULLNAME)
      pod = podSpec(deployment)
      server = pod.containers[0] as Container
    })

    it('renders the webhook, its certificate hooks, the renewal, the uninstall hook and the NetworkPolicy; no monitoring without its CRDs', () => {
      assert.deepEqual(kinds(manifests), [
        `ClusterRole/${NS}-${FULLNAME}-certs`,
        `ClusterRole/${NS}-${RENEW}`,
        `ClusterRole/${NS}-${UNINSTALL}`,
        `ClusterRoleBinding/${NS}-${FULLNAME}-certs`,
        `ClusterRoleBinding/${NS}-${RENEW}`,
        `ClusterRoleBinding/${NS}-${UNINSTALL}`,
        `CronJob/${RENEW}`,
        `Deployment/${FULLNAME}`,
        `Job/${FULLNAME}-certs`,
        `Job/${FULLNAME}-certs-inject`,
        `Job/${UNINSTALL}`,
        `MutatingWebhookConfiguration/${WEBHOOK_CONFIG}`,
        `NetworkPolicy/${FULLNAME}`,
        `PodDisruptionBudget/${FULLNAME}`,
        `Role/${FULLNAME}-certs`,
        `Role/${RENEW}`,
        `RoleBinding/${FULLNAME}-certs`,
        `RoleBinding/${RENEW}`,
        `Service/${FULLNAME}`,
        `ServiceAccount/${FULLNAME}`,
        `ServiceAccount/${FULLNAME}-certs`,
        `ServiceAccount/${RENEW}`,
        `ServiceAccount/${UNINSTALL}`,
        `ValidatingWebhookConfiguration/${WEBHOOK_CONFIG}`
      ])
    })

    it('puts the standard labels on every resource', () => {
      for (const m of manifests) {
        const labels = m.metadata.labels ?? {}
        for (const key of ['helm.sh/chart', 'app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by']) {
          assert.ok(labels[key], `${m.kind} ${m.metadata.name} has label ${key}`)
        }
        assert.equal(labels['app.kubernetes.io/instance'], RELEASE)
      }
    })

    it('runs two replicas under the restricted Pod Security Standard', () => {
      assert.equal(dig(deployment, 'spec.replicas'), 2)
      assertRestricted(deployment)
      assert.equal(pod.automountServiceAccountToken, false, 'the server makes no API calls, so no token')
    })

    it('starts `serve` with the ports, cert dir, service DNS names and drain delay', () => {
      const args = server.args ?? []
      assert.equal(args[0], 'serve')
      const port = (name: string) => server.ports?.find((p) => p.name === name)?.containerPort
      assert.equal(argValue(args, '--port'), String(port('webhook')))
      assert.equal(argValue(args, '--metrics-port'), String(port('metrics')))
      assert.equal(port('webhook'), 8443)
      assert.equal(port('metrics'), 9090)
      assert.equal(argValue(args, '--shutdown-delay'), '10s')
      assert.equal(argValue(args, '--log-level'), 'info')
      assert.ok(argValues(args, '--dns-name').includes(`${FULLNAME}.${NS}.svc`))
      const certDir = argValue(args, '--cert-dir')
      const mount = server.volumeMounts?.find((m) => m.mountPath === certDir)
      assert.ok(mount, 'the Secret is mounted at --cert-dir')
      assert.equal(mount.subPath, undefined, 'no subPath, so renewed certificates reach the running server')
      assert.equal(mount.readOnly, true)
      const volume = pod.volumes?.find((v) => v.name === mount.name)
      assert.equal(dig(volume, 'secret.secretName'), TLS_SECRET)
    })

    it('probes /healthz (liveness) and /readyz (readiness) on the metrics port', () => {
      assert.equal(dig(server.livenessProbe, 'httpGet.path'), '/healthz')
      assert.equal(dig(server.livenessProbe, 'httpGet.port'), 'metrics')
      assert.equal(dig(server.readinessProbe, 'httpGet.path'), '/readyz')
      assert.equal(dig(server.readinessProbe, 'httpGet.port'), 'metrics')
    })

    it('gives the pod a grace period longer than the drain delay plus one review timeout', () => {
      const delay = Number.parseInt(argValue(server.args ?? [], '--shutdown-delay') ?? '', 10)
      const webhookTimeout = dig(one(manifests, 'ValidatingWebhookConfiguration'), 'webhooks.0.timeoutSeconds') as number
      assert.equal(pod.terminationGracePeriodSeconds, 30)
      assert.ok((pod.terminationGracePeriodSeconds ?? 0) > delay + webhookTimeout)
    })

    it('spreads replicas across nodes with anti-affinity and a topology spread constraint', () => {
      const labels = podLabels(deployment)
      const term = dig(pod.affinity, 'podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.0.podAffinityTerm') as Obj
      assert.equal(term.topologyKey, 'kubernetes.io/hostname')
      assert.ok(selects(dig(term, 'labelSelector.matchLabels') as Record<string, string>, labels))
      const spread = pod.topologySpreadConstraints?.[0] as Obj
      assert.equal(spread.topologyKey, 'kubernetes.io/hostname')
      assert.equal(spread.maxSkew, 1)
      assert.ok(selects(dig(spread, 'labelSelector.matchLabels') as Record<string, string>, labels))
    })

    it('guards the pods with a PodDisruptionBudget of minAvailable 1', () => {
      const pdb = one(manifests, 'PodDisruptionBudget')
      assert.equal(dig(pdb, 'spec.minAvailable'), 1)
      assert.equal(dig(pdb, 'spec.maxUnavailable'), undefined)
      assert.ok(selects(dig(pdb, 'spec.selector.matchLabels') as Record<string, string>, podLabels(deployment)))
      assert.deepEqual(dig(pdb, 'spec.selector.matchLabels'), dig(deployment, 'spec.selector.matchLabels'))
    })

    it('exposes the webhook through the Service port the webhook configurations call', () => {
      const service = one(manifests, 'Service')
      assert.ok(selects(dig(service, 'spec.selector') as Record<string, string>, podLabels(deployment)))
      const ports = dig(service, 'spec.ports') as { name: string; port: number; targetPort: string }[]
      const https = ports.find((p) => p.name === 'https')
      assert.equal(https?.port, 443)
      assert.equal(https?.targetPort, 'webhook')
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        const svc = dig(one(manifests, kind), 'webhooks.0.clientConfig.service') as Obj
        assert.equal(svc.name, service.metadata.name)
        assert.equal(svc.namespace, NS)
        assert.equal(svc.port, 443)
      }
    })

    for (const [kind, path, failurePolicy] of [
      ['ValidatingWebhookConfiguration', '/validate', 'Ignore'],
      ['MutatingWebhookConfiguration', '/mutate', 'Ignore']
    ] as const) {
      it(`${kind}: only apps.nvidia.com nimservices CREATE+UPDATE, sideEffects None, v1, 5 s, ${failurePolicy} until armed`, () => {
        const config = one(manifests, kind)
        const webhooks = config.webhooks as Obj[]
        assert.equal(webhooks.length, 1)
        const hook = webhooks[0] as Obj
        assert.deepEqual(hook.rules, [
          {
            apiGroups: ['apps.nvidia.com'],
            apiVersions: ['v1alpha1'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['nimservices'],
            scope: 'Namespaced'
          }
        ])
        assert.equal(hook.sideEffects, 'None')
        assert.deepEqual(hook.admissionReviewVersions, ['v1'])
        assert.equal(hook.timeoutSeconds, 5)
        assert.equal(hook.failurePolicy, failurePolicy, 'configured Fail, created Ignore: the inject Job arms it')
        assert.equal(config.metadata.labels?.['nim-admission.io/release-namespace'], NS)
        assert.equal(dig(hook, 'clientConfig.service.path'), path)
        assert.equal(dig(hook, 'clientConfig.caBundle'), undefined, 'selfSigned: caBundle is left to `certs inject`')
        // The mutating webhook's own condition: /mutate is called only for what it may change.
        if (kind === 'MutatingWebhookConfiguration') assert.deepEqual((hook.matchConditions as Obj[]).map((c) => c.name), ['nim-admission-may-patch', 'nim-admission-not-deleting'])
        else assert.deepEqual((hook.matchConditions as Obj[]).map((c) => c.name), ['nim-admission-not-deleting'])
        assert.deepEqual(hook.namespaceSelector, {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NS, 'kube-system'] }]
        })
        if (kind === 'MutatingWebhookConfiguration') assert.equal(hook.reinvocationPolicy, 'IfNeeded')
        else assert.equal(hook.reinvocationPolicy, undefined)
      })
    }

    it('binds no role to the webhook server ServiceAccount', () => {
      const serverSA = pod.serviceAccountName
      for (const binding of [...find(manifests, 'RoleBinding'), ...find(manifests, 'ClusterRoleBinding')]) {
        const subjects = binding.subjects as { name: string }[]
        assert.ok(!subjects.some((s) => s.name === serverSA), `${binding.metadata.name} binds the server's ServiceAccount`)
      }
    })

    it('gives the certificate Jobs only their two Secrets and the webhook configurations of their name', () => {
      const role = one(manifests, 'Role', `${FULLNAME}-certs`)
      assert.deepEqual(permissions(role), [
        '/secrets[*any*]:create',
        `/secrets[${CA_SECRET}]:get`,
        `/secrets[${CA_SECRET}]:update`,
        `/secrets[${TLS_SECRET}]:get`,
        `/secrets[${TLS_SECRET}]:update`,
        'discovery.k8s.io/endpointslices[*any*]:list'
      ])
      const clusterRole = one(manifests, 'ClusterRole', `${NS}-${FULLNAME}-certs`)
      assert.deepEqual(permissions(clusterRole), [
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:update`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:update`
      ])
      for (const m of [role, clusterRole, one(manifests, 'RoleBinding', `${FULLNAME}-certs`), one(manifests, 'ClusterRoleBinding', `${NS}-${FULLNAME}-certs`)]) {
        assert.match(m.metadata.annotations?.['helm.sh/hook'] ?? '', /pre-install.*post-install/, `${m.kind} exists only while hooks run`)
      }
      assert.deepEqual(dig(one(manifests, 'ClusterRoleBinding', `${NS}-${FULLNAME}-certs`), 'subjects'), [
        { kind: 'ServiceAccount', name: `${FULLNAME}-certs`, namespace: NS }
      ])
    })

    it('generates the Secret before install and injects the CA after the webhook configurations exist', () => {
      const generate = one(manifests, 'Job', `${FULLNAME}-certs`)
      const inject = one(manifests, 'Job', `${FULLNAME}-certs-inject`)
      assert.equal(generate.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade')
      assert.equal(inject.metadata.annotations?.['helm.sh/hook'], 'post-install,post-upgrade,post-rollback')
      for (const job of [generate, inject]) {
        assertRestricted(job)
        assert.equal(podSpec(job).serviceAccountName, `${FULLNAME}-certs`)
      }
      const genArgs = podSpec(generate).containers[0]?.args ?? []
      assert.deepEqual(genArgs.slice(0, 2), ['certs', 'generate'])
      assert.equal(argValue(genArgs, '--service'), FULLNAME)
      assert.equal(argValue(genArgs, '--namespace'), NS)
      assert.equal(argValue(genArgs, '--secret'), TLS_SECRET)
      assert.equal(argValue(genArgs, '--ca-days'), '3650')
      assert.equal(argValue(genArgs, '--days'), '365')
      assert.equal(argValue(genArgs, '--renew-before'), '60d')
      assert.equal(podSpec(generate).initContainers, undefined, 'nothing to inject into before the first install')
      const injArgs = podSpec(inject).containers[0]?.args ?? []
      assert.deepEqual(injArgs.slice(0, 2), ['certs', 'inject'])
      assert.deepEqual(argValues(injArgs, '--webhook'), [WEBHOOK_CONFIG])
      assert.equal(argValue(injArgs, '--secret'), TLS_SECRET)
      assert.equal(argValue(injArgs, '--secret-namespace'), NS)
      assert.equal(argValue(injArgs, '--failure-policy'), 'validating=Fail,mutating=Fail', 'arms both webhooks as configured')
      assert.equal(argValue(injArgs, '--wait'), '300s', 'for a ready webhook pod')
      assert.ok((dig(inject, 'spec.activeDeadlineSeconds') as number) > 300, 'the Job outlives its wait')
    })

    it('renews the certificates with a daily CronJob running generate, then inject, as a ServiceAccount of its own', () => {
      const cron = one(manifests, 'CronJob', RENEW)
      assert.equal(dig(cron, 'spec.schedule'), '23 3 * * *')
      assert.equal(dig(cron, 'spec.concurrencyPolicy'), 'Forbid')
      assert.equal(cron.metadata.annotations?.['helm.sh/hook'], undefined, 'a regular resource, not a hook')
      const job = { kind: 'Job', metadata: { name: RENEW }, spec: dig(cron, 'spec.jobTemplate.spec') } as unknown as Manifest
      assertRestricted(job)
      const spec = podSpec(job)
      assert.equal(spec.serviceAccountName, RENEW)
      // The same arguments as the install's hook Jobs: the same Secrets, the same renewal rule, the same arming.
      const hookGenerate = podSpec(one(manifests, 'Job', `${FULLNAME}-certs`)).containers[0]?.args
      const hookInject = podSpec(one(manifests, 'Job', `${FULLNAME}-certs-inject`)).containers[0]?.args
      assert.deepEqual(spec.initContainers?.map((c) => c.args), [hookGenerate])
      assert.deepEqual(spec.containers.map((c) => c.args), [hookInject])
      assert.ok(hookGenerate?.includes('--renew-before'))
      assert.ok(hookInject?.includes('--failure-policy'))
    })

    it('gives the renewal ServiceAccount read and update of the two Secrets and the two configurations, nothing more', () => {
      assert.deepEqual(permissions(one(manifests, 'Role', RENEW)), [
        `/secrets[${CA_SECRET}]:get`,
        `/secrets[${CA_SECRET}]:update`,
        `/secrets[${TLS_SECRET}]:get`,
        `/secrets[${TLS_SECRET}]:update`,
        'discovery.k8s.io/endpointslices[*any*]:list'
      ])
      assert.deepEqual(permissions(one(manifests, 'ClusterRole', `${NS}-${RENEW}`)), [
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:update`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:update`
      ])
      for (const binding of [one(manifests, 'RoleBinding', RENEW), one(manifests, 'ClusterRoleBinding', `${NS}-${RENEW}`)]) {
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: RENEW, namespace: NS }])
        assert.equal(binding.metadata.annotations?.['helm.sh/hook'], undefined, 'the CronJob needs it between releases')
      }
    })

    it('deletes both webhook configurations in a pre-delete hook, with RBAC that only lives for the hook', () => {
      const job = one(manifests, 'Job', UNINSTALL)
      assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-delete')
      assertRestricted(job)
      const spec = podSpec(job)
      assert.equal(spec.serviceAccountName, UNINSTALL)
      assert.deepEqual(spec.containers[0]?.args, ['certs', 'uninstall', '--webhook', WEBHOOK_CONFIG])
      const role = one(manifests, 'ClusterRole', `${NS}-${UNINSTALL}`)
      assert.deepEqual(permissions(role), [
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:delete`,
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:delete`,
        `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`
      ])
      const binding = one(manifests, 'ClusterRoleBinding', `${NS}-${UNINSTALL}`)
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: UNINSTALL, namespace: NS }])
      for (const m of [role, binding, one(manifests, 'ServiceAccount', UNINSTALL)]) {
        assert.equal(m.metadata.annotations?.['helm.sh/hook'], 'pre-delete', `${m.kind} exists only for the hook`)
        assert.ok(Number(m.metadata.annotations?.['helm.sh/hook-weight']) < Number(job.metadata.annotations?.['helm.sh/hook-weight']), `${m.kind} is created before the Job`)
      }
    })
  })

  it('with only the validating webhook, the certificate Jobs may update only that configuration', async () => {
    const manifests = await helmTemplate({ webhook: { mutating: { enabled: false } } })
    assert.deepEqual(find(manifests, 'MutatingWebhookConfiguration'), [])
    // `certs inject` reads both kinds of the name and skips the missing one (404), so it may read but not write it.
    assert.deepEqual(permissions(one(manifests, 'ClusterRole', `${NS}-${FULLNAME}-certs`)), [
      `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
      `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
      `admissionregistration.k8s.io/validatingwebhookconfigurations[${WEBHOOK_CONFIG}]:update`
    ])
  })

  it('a 50-character full name keeps every name and label Kubernetes limits within 63 characters', async () => {
    const long = 'a'.repeat(60)
    const manifests = await helmTemplate({ ...everything, fullnameOverride: long.slice(0, 50) })
    for (const m of manifests) {
      if (['Service', 'Job', 'Deployment'].includes(m.kind)) {
        assert.ok(m.metadata.name.length <= 63, `${m.kind} ${m.metadata.name} is ${m.metadata.name.length} characters`)
      }
      if (m.kind === 'CronJob') assert.ok(m.metadata.name.length <= 52, `CronJob ${m.metadata.name} is ${m.metadata.name.length} characters (its Jobs add 11)`)
      for (const [k, v] of Object.entries({ ...m.metadata.labels, ...(dig(m, 'spec.template.metadata.labels') as object) })) {
        assert.ok(String(v).length <= 63, `label ${k} of ${m.kind} ${m.metadata.name} is too long`)
      }
    }
    const refused = await helmTemplateRaw({ fullnameOverride: long })
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /fullnameOverride': maxLength: got 60, want 50/)
  })

  it('on upgrade the pre-upgrade Job generates, then injects, in one pod', async () => {
    const manifests = await helmTemplate({}, { isUpgrade: true })
    const spec = podSpec(one(manifests, 'Job', `${FULLNAME}-certs`))
    assert.deepEqual(spec.initContainers?.map((c) => c.args?.slice(0, 2)), [['certs', 'generate']])
    assert.deepEqual(spec.containers.map((c) => c.args?.slice(0, 2)), [['certs', 'inject']])
    assert.deepEqual(argValues(spec.containers[0]?.args ?? [], '--webhook'), [WEBHOOK_CONFIG])
  })

  it('uses the release namespace in the exclusion and adds excludeNamespaces and selector terms', async () => {
    const manifests = await helmTemplate(
      { webhook: { excludeNamespaces: ['gpu-operator'], namespaceSelector: { matchLabels: { 'nim.example/admission': 'on' } } } },
      { namespace: 'platform' }
    )
    for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
      assert.deepEqual(dig(one(manifests, kind), 'webhooks.0.namespaceSelector'), {
        matchLabels: { 'nim.example/admission': 'on' },
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['platform', 'kube-system', 'gpu-operator'] }
        ]
      })
    }
  })

  it('renders the configured failurePolicy, timeout, reinvocationPolicy and matchConditions', async () => {
    const matchConditions = [{ name: 'not-gc', expression: "request.userInfo.username != 'system:serviceaccount:kube-system:generic-garbage-collector'" }]
    const manifests = await helmTemplate({
      webhook: {
        timeoutSeconds: 3,
        validating: { failurePolicy: 'Ignore' },
        mutating: { failurePolicy: 'Ignore', reinvocationPolicy: 'Never' },
        matchConditions
      }
    })
    const validating = dig(one(manifests, 'ValidatingWebhookConfiguration'), 'webhooks.0') as Obj
    const mutating = dig(one(manifests, 'MutatingWebhookConfiguration'), 'webhooks.0') as Obj
    for (const hook of [validating, mutating]) {
      assert.equal(hook.failurePolicy, 'Ignore')
      assert.equal(hook.timeoutSeconds, 3)
    }
    assert.deepEqual((validating.matchConditions as Obj[]).slice(1), matchConditions, 'after the chart\'s own condition')
    assert.deepEqual((mutating.matchConditions as Obj[]).slice(2), matchConditions, 'after the chart\'s own conditions')
    assert.equal(mutating.reinvocationPolicy, 'Never')
    assert.equal(argValue(podSpec(one(manifests, 'Job', `${FULLNAME}-certs-inject`)).containers[0]?.args ?? [], '--failure-policy'), 'validating=Ignore,mutating=Ignore')
  })

  it('arms each webhook with its own configured policy', async () => {
    const manifests = await helmTemplate({ webhook: { mutating: { failurePolicy: 'Ignore' } } })
    assert.equal(argValue(podSpec(one(manifests, 'Job', `${FULLNAME}-certs-inject`)).containers[0]?.args ?? [], '--failure-policy'), 'validating=Fail,mutating=Ignore')
    const cron = one(manifests, 'CronJob', RENEW)
    const cronArgs = (dig(cron, 'spec.jobTemplate.spec.template.spec.containers.0.args') as string[])
    assert.equal(argValue(cronArgs, '--failure-policy'), 'validating=Fail,mutating=Ignore')
  })

  describe('an install whose certificate Jobs fail leaves no Fail webhook configuration pointing at nothing', () => {
    // What the cluster holds when the post-install Job never succeeded: the regular resources, no hook ran (and the
    // apiserver defaults an absent failurePolicy to Fail, so absent counts as Fail). Not even a caBundle in the
    // manifest is enough for Fail: the pods behind it may never have become ready.
    const cases: [string, object, HelmTemplateOptions?][] = [
      ['selfSigned (defaults)', {}],
      ['selfSigned on upgrade (lookup reads nothing)', {}, { isUpgrade: true }],
      ['selfSigned without the renewal CronJob', { certificates: { selfSigned: { renewal: { enabled: false } } } }],
      ['certManager', modes.certManager],
      ['certManager with an existing ClusterIssuer', { certificates: { mode: 'certManager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } }],
      ['existingSecret without a caBundle', { certificates: { mode: 'existingSecret', existingSecret: { name: 'my-tls' } } }],
      ['existingSecret with a caBundle', modes.existingSecret],
      ['only the validating webhook', { webhook: { mutating: { enabled: false } } }]
    ]
    for (const [name, values, opts] of cases) {
      it(name, async () => {
        const manifests = await helmTemplate(values, opts)
        const regular = manifests.filter((m) => m.metadata.annotations?.['helm.sh/hook'] === undefined)
        const configs = [...find(regular, 'ValidatingWebhookConfiguration'), ...find(regular, 'MutatingWebhookConfiguration')]
        assert.ok(configs.length > 0)
        for (const config of configs) {
          for (const hook of config.webhooks as Obj[]) {
            const policy = hook.failurePolicy ?? 'Fail'
            assert.equal(policy, 'Ignore', `${config.kind} ${String(hook.name)} is ${String(policy)} before anything armed it`)
          }
        }
        // And whenever a configuration is created Ignore in place of a configured Fail, a hook Job is there to arm it.
        const unarmed = configs.some((c) => (c.webhooks as Obj[]).some((h) => h.failurePolicy === 'Ignore'))
        if (unarmed) {
          const arming = find(manifests, 'Job', `${FULLNAME}-certs-inject`)
          assert.equal(arming.length, 1, 'an arming Job')
          assert.match(arming[0]?.metadata.annotations?.['helm.sh/hook'] ?? '', /post-install/)
          assert.ok((podSpec(arming[0] as Manifest).containers[0]?.args ?? []).includes('--failure-policy'))
        }
      })
    }

    it('the webhook pods still need the certificate: only the webhook configurations are softened', async () => {
      const manifests = await helmTemplate({})
      const volume = podSpec(one(manifests, 'Deployment', FULLNAME)).volumes?.find((v) => v.name === 'certs')
      assert.equal(dig(volume, 'secret.optional'), undefined)
    })
  })

  describe('certificates.mode certManager', () => {
    let manifests: Manifest[]
    before(async () => {
      manifests = await helmTemplate(modes.certManager)
    })

    it('builds a private CA chain: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate', () => {
      const selfSigned = one(manifests, 'Issuer', `${FULLNAME}-selfsigned`)
      assert.deepEqual(dig(selfSigned, 'spec.selfSigned'), {})
      const ca = one(manifests, 'Certificate', `${FULLNAME}-ca`)
      assert.equal(dig(ca, 'spec.isCA'), true)
      assert.equal(dig(ca, 'spec.issuerRef.name'), selfSigned.metadata.name)
      const caIssuer = one(manifests, 'Issuer', `${FULLNAME}-ca`)
      assert.equal(dig(caIssuer, 'spec.ca.secretName'), dig(ca, 'spec.secretName'))
      const serving = one(manifests, 'Certificate', `${FULLNAME}-serving`)
      assert.equal(dig(serving, 'spec.issuerRef.name'), caIssuer.metadata.name)
      assert.equal(dig(serving, 'spec.issuerRef.kind'), 'Issuer')
      assert.equal(dig(serving, 'spec.secretName'), TLS_SECRET)
      assert.ok((dig(serving, 'spec.dnsNames') as string[]).includes(`${FULLNAME}.${NS}.svc`))
      assert.ok((dig(serving, 'spec.usages') as string[]).includes('server auth'))
      const volume = podSpec(one(manifests, 'Deployment')).volumes?.find((v) => v.name === 'certs')
      assert.equal(dig(volume, 'secret.secretName'), TLS_SECRET)
    })

    it('annotates both webhook configurations for the cainjector with the serving Certificate', () => {
      const serving = one(manifests, 'Certificate', `${FULLNAME}-serving`)
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        const config = one(manifests, kind)
        assert.equal(config.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${serving.metadata.namespace}/${serving.metadata.name}`)
        assert.equal(dig(config, 'webhooks.0.clientConfig.caBundle'), undefined)
      }
    })

    it('renders only the arming Job, which waits for the cainjector and may touch no Secret', () => {
      const certs = manifests.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'certs' && !['Issuer', 'Certificate'].includes(m.kind))
      assert.deepEqual(kinds(certs), [
        `ClusterRole/${NS}-${FULLNAME}-certs`,
        `ClusterRoleBinding/${NS}-${FULLNAME}-certs`,
        `Job/${FULLNAME}-certs-inject`,
        `Role/${FULLNAME}-certs`,
        `RoleBinding/${FULLNAME}-certs`,
        `ServiceAccount/${FULLNAME}-certs`
      ])
      const job = one(manifests, 'Job', `${FULLNAME}-certs-inject`)
      assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'post-install,post-upgrade,post-rollback')
      const args = podSpec(job).containers[0]?.args ?? []
      assert.deepEqual(args, ['certs', 'inject', '--webhook', WEBHOOK_CONFIG, '--failure-policy', 'validating=Fail,mutating=Fail', '--wait', '300s'])
      assert.ok((dig(job, 'spec.activeDeadlineSeconds') as number) > 300, 'the Job outlives its wait')
      assert.deepEqual(find(manifests, 'CronJob'), [], 'cert-manager renews')
      assert.deepEqual(permissions(one(manifests, 'Role', `${FULLNAME}-certs`)), ['discovery.k8s.io/endpointslices[*any*]:list'], 'no Secret')
    })

    it('uses a given issuerRef instead of creating the CA chain', async () => {
      const withIssuer = await helmTemplate({
        certificates: { mode: 'certManager', certManager: { issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } }
      })
      assert.deepEqual(find(withIssuer, 'Issuer'), [])
      assert.deepEqual(dig(one(withIssuer, 'Certificate'), 'spec.issuerRef'), {
        name: 'corp-ca',
        kind: 'ClusterIssuer',
        group: 'cert-manager.io'
      })
    })
  })

  describe('certificates.mode existingSecret', () => {
    it('mounts the given Secret and writes the given caBundle into both webhooks, armed like the other modes', async () => {
      const manifests = await helmTemplate(modes.existingSecret)
      const volume = podSpec(one(manifests, 'Deployment')).volumes?.find((v) => v.name === 'certs')
      assert.equal(dig(volume, 'secret.secretName'), 'my-tls')
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        const config = one(manifests, kind)
        assert.equal(dig(config, 'webhooks.0.clientConfig.caBundle'), 'Q0EK')
        assert.equal(config.metadata.annotations, undefined)
      }
      for (const kind of ['Issuer', 'Certificate', 'CronJob']) assert.deepEqual(find(manifests, kind), [], kind)
      // The caBundle is in the manifest, but a pod that never becomes ready must not refuse writes either.
      assert.deepEqual(kinds(find(manifests, 'Job')), [`Job/${FULLNAME}-certs-inject`, `Job/${UNINSTALL}`])
      assert.deepEqual(podSpec(one(manifests, 'Job', `${FULLNAME}-certs-inject`)).containers[0]?.args,
        ['certs', 'inject', '--webhook', WEBHOOK_CONFIG, '--failure-policy', 'validating=Fail,mutating=Fail', '--wait', '300s'])
      assert.deepEqual(permissions(one(manifests, 'Role', `${FULLNAME}-certs`)), ['discovery.k8s.io/endpointslices[*any*]:list'], 'no Secret')
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        assert.equal(dig(one(manifests, kind), 'webhooks.0.failurePolicy'), 'Ignore')
      }
    })

    it('without a caBundle, creates the webhooks Ignore and arms them once a caBundle is there', async () => {
      const manifests = await helmTemplate({ certificates: { mode: 'existingSecret', existingSecret: { name: 'my-tls' } } })
      for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
        assert.equal(dig(one(manifests, kind), 'webhooks.0.failurePolicy'), 'Ignore')
      }
      assert.equal(argValue(podSpec(one(manifests, 'Job', `${FULLNAME}-certs-inject`)).containers[0]?.args ?? [], '--wait'), '300s')
    })

    it('refuses to render without the Secret name', async () => {
      const result = await helmTemplateRaw({ certificates: { mode: 'existingSecret' } })
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /certificates\.existingSecret\.name is required/)
    })
  })

  describe('optional parts', () => {
    let manifests: Manifest[]
    before(async () => {
      manifests = await helmTemplate(everything)
    })

    it('keeps every workload restricted and no Role grants a wildcard', () => {
      for (const kind of ['Deployment', 'Job']) for (const w of find(manifests, kind)) assertRestricted(w)
      for (const role of [...find(manifests, 'Role'), ...find(manifests, 'ClusterRole')]) {
        for (const r of rules(role)) {
          for (const field of [r.verbs, r.resources ?? [], r.apiGroups ?? []]) {
            assert.ok(!field.includes('*'), `${role.metadata.name} grants a wildcard`)
          }
          if ((r.resources ?? []).includes('secrets')) {
            assert.ok(!r.verbs.includes('list') && !r.verbs.includes('watch'), `${role.metadata.name} can read all Secrets`)
          }
        }
      }
    })

    it('ServiceMonitor scrapes the Service metrics port', () => {
      const monitor = one(manifests, 'ServiceMonitor')
      const service = one(manifests, 'Service')
      assert.ok(selects(dig(monitor, 'spec.selector.matchLabels') as Record<string, string>, service.metadata.labels ?? {}))
      const endpoint = dig(monitor, 'spec.endpoints.0') as Obj
      assert.equal(endpoint.port, 'metrics')
      assert.equal(endpoint.path, '/metrics')
      assert.ok((dig(service, 'spec.ports') as { name: string }[]).some((p) => p.name === 'metrics'))
    })

    it('PrometheusRule alerts on certificate expiry (14 d), denials, errors and p99 latency (1 s)', () => {
      const rulesByAlert = new Map(
        (dig(one(manifests, 'PrometheusRule'), 'spec.groups.0.rules') as { alert: string; expr: string }[]).map((r) => [r.alert, r.expr])
      )
      const expiry = rulesByAlert.get('NimAdmissionCertificateExpiringSoon') ?? ''
      assert.match(expiry, /nim_admission_certificate_expiry_seconds\{[^}]*\} < 1209600$/)
      assert.match(rulesByAlert.get('NimAdmissionDenialsSpiking') ?? '', /rate\(nim_admission_requests_total\{[^}]*allowed="false"\}\[5m\]\)/)
      assert.match(rulesByAlert.get('NimAdmissionBadRequestsSpiking') ?? '', /rate\(nim_admission_bad_requests_total\{[^}]*\}\[5m\]\)/)
      assert.match(
        rulesByAlert.get('NimAdmissionLatencyHigh') ?? '',
        /^histogram_quantile\(0\.99, sum by \([^)]*\ble\b[^)]*\) \(rate\(nim_admission_request_duration_seconds_bucket\{[^}]*\}\[5m\]\)\)\) > 1$/
      )
      assert.ok(rulesByAlert.has('NimAdmissionDown'))
    })

    it('NetworkPolicy admits traffic only to the webhook port (from anywhere: the apiserver is unknown), and to metrics from cluster pods', () => {
      const policy = one(manifests, 'NetworkPolicy')
      assert.ok(selects(dig(policy, 'spec.podSelector.matchLabels') as Record<string, string>, podLabels(one(manifests, 'Deployment', FULLNAME))))
      assert.deepEqual(dig(policy, 'spec.policyTypes'), ['Ingress'])
      const ingress = dig(policy, 'spec.ingress') as { ports: { port: string }[]; from?: Obj[] }[]
      assert.deepEqual(ingress.map((r) => r.ports.map((p) => p.port)), [['webhook'], ['metrics']])
      assert.equal(ingress[0]?.from, undefined)
      assert.deepEqual(ingress[1]?.from, [{ namespaceSelector: {} }])
    })

    it('the applier runs `apply --mode verify --leader-elect` with its own ServiceAccount and read-only RBAC', () => {
      const applier = one(manifests, 'Deployment', `${FULLNAME}-applier`)
      const spec = podSpec(applier)
      assert.equal(spec.serviceAccountName, `${FULLNAME}-applier`)
      const args = spec.containers[0]?.args ?? []
      assert.equal(args[0], 'apply')
      assert.equal(argValue(args, '--mode'), 'verify')
      assert.equal(argValue(args, '--webhook-configuration'), WEBHOOK_CONFIG)
      assert.ok(!args.includes('--take-over'))
      assert.ok(args.includes('--leader-elect'))
      assert.equal(argValue(args, '--metrics-port'), '9091')
      assert.deepEqual(permissions(one(manifests, 'ClusterRole', `${NS}-${FULLNAME}-applier`)), [
        '/events[*any*]:create',
        '/events[*any*]:patch',
        '/namespaces[*any*]:get',
        '/namespaces[*any*]:list',
        '/namespaces[*any*]:watch',
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:list`,
        `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:watch`,
        'apps.nvidia.com/nimservices[*any*]:get',
        'apps.nvidia.com/nimservices[*any*]:list',
        'apps.nvidia.com/nimservices[*any*]:watch',
        'autoscaling/horizontalpodautoscalers[*any*]:get',
        'autoscaling/horizontalpodautoscalers[*any*]:list',
        'autoscaling/horizontalpodautoscalers[*any*]:watch'
      ])
      const lease = one(manifests, 'Role', `${FULLNAME}-applier-leader-election`)
      assert.equal(lease.metadata.namespace, NS)
      assert.deepEqual(permissions(lease), [
        'coordination.k8s.io/leases[*any*]:create',
        `coordination.k8s.io/leases[${FULLNAME}-applier]:get`,
        `coordination.k8s.io/leases[${FULLNAME}-applier]:update`
      ])
      assert.equal(argValue(args, '--lease-name'), `${FULLNAME}-applier`)
      assert.equal(argValue(args, '--lease-namespace'), NS)
    })
  })

  it('the applier in write mode may also write HPAs, and nothing else', async () => {
    const manifests = await helmTemplate({ applier: { enabled: true, mode: 'write' } })
    const args = podSpec(one(manifests, 'Deployment', `${FULLNAME}-applier`)).containers[0]?.args ?? []
    assert.equal(argValue(args, '--mode'), 'write')
    const granted = permissions(one(manifests, 'ClusterRole', `${NS}-${FULLNAME}-applier`))
    for (const verb of ['create', 'update', 'patch', 'delete']) assert.ok(granted.includes(`autoscaling/horizontalpodautoscalers[*any*]:${verb}`), verb)
    // Its owner references carry no blockOwnerDeletion, so OwnerReferencesPermissionEnforcement asks for no finalizers RBAC.
    assert.ok(!granted.some((p) => p.includes('nimservices/finalizers')))
    assert.ok(!granted.some((p) => p.startsWith('apps.nvidia.com/nimservices[') && !/:(get|list|watch)$/.test(p)), 'never writes NIMServices')
  })

  it('refuses an unknown applier mode and the removed takeOver value', async () => {
    const mode = await helmTemplateRaw({ applier: { enabled: true, mode: 'takeover' } })
    assert.match(mode.stderr, /\/applier\/mode': value must be one of 'verify', 'write'/)
    const takeOver = await helmTemplateRaw({ applier: { enabled: true, takeOver: true } })
    assert.match(takeOver.stderr, /additional properties 'takeOver' not allowed/)
  })

  it('the applier limited to namespaces gets a Role in each, and a ClusterRole only for namespaces and its webhook configuration', async () => {
    const manifests = await helmTemplate({ applier: { enabled: true, namespaces: ['team-a', 'team-b'], leaderElect: false } })
    const roles = find(manifests, 'Role', `${FULLNAME}-applier`)
    assert.deepEqual(roles.map((r) => r.metadata.namespace), ['team-a', 'team-b'])
    assert.ok(permissions(roles[0] as Manifest).includes('autoscaling/horizontalpodautoscalers[*any*]:watch'))
    assert.deepEqual(permissions(one(manifests, 'ClusterRole', `${NS}-${FULLNAME}-applier`)), [
      '/namespaces[*any*]:get',
      '/namespaces[*any*]:list',
      '/namespaces[*any*]:watch',
      `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:get`,
      `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:list`,
      `admissionregistration.k8s.io/mutatingwebhookconfigurations[${WEBHOOK_CONFIG}]:watch`
    ])
    assert.deepEqual(find(manifests, 'Role', `${FULLNAME}-applier-leader-election`), [])
    const args = podSpec(one(manifests, 'Deployment', `${FULLNAME}-applier`)).containers[0]?.args ?? []
    assert.deepEqual(argValues(args, '--namespace'), ['team-a', 'team-b'])
    assert.ok(!args.includes('--leader-elect'))
  })

  describe('defaults that depend on the cluster', () => {
    const monitoringApis = ['--api-versions', 'monitoring.coreos.com/v1/PrometheusRule', '--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor']

    it('renders the PrometheusRule, certificate-expiry alert included, and the ServiceMonitor wherever the cluster serves them', async () => {
      const manifests = await helmTemplate({}, { extraArgs: monitoringApis })
      const rule = one(manifests, 'PrometheusRule')
      const alerts = (dig(rule, 'spec.groups.0.rules') as { alert: string }[]).map((r) => r.alert)
      assert.ok(alerts.includes('NimAdmissionCertificateExpiringSoon'))
      one(manifests, 'ServiceMonitor')
    })

    it('renders neither without the monitoring.coreos.com CRDs, and false turns them off where the CRDs exist', async () => {
      const without = await helmTemplate({})
      assert.deepEqual([...find(without, 'PrometheusRule'), ...find(without, 'ServiceMonitor')], [])
      const off = await helmTemplate({ metrics: { prometheusRule: { enabled: false }, serviceMonitor: { enabled: false } } }, { extraArgs: monitoringApis })
      assert.deepEqual([...find(off, 'PrometheusRule'), ...find(off, 'ServiceMonitor')], [])
    })

    it('the install notes say when nothing alerts on certificate expiry and when the webhook port is open to all', async () => {
      const rendered = await runNotes({})
      assert.match(rendered, /nothing alerts on certificate expiry/)
      assert.match(rendered, /the webhook port accepts any source/)
      assert.match(rendered, new RegExp(`kubectl delete validatingwebhookconfiguration,mutatingwebhookconfiguration -l app.kubernetes.io/part-of=nim-admission,nim-admission.io/release-namespace=${NS},app.kubernetes.io/instance=${RELEASE}`))
      const quiet = await runNotes({ networkPolicy: { apiserverCIDRs: ['10.0.0.0/28'] } }, monitoringApis)
      assert.doesNotMatch(quiet, /nothing alerts|accepts any source/)
    })

    it('admits only apiserverCIDRs and webhookFrom to the webhook port when they are given', async () => {
      const webhookFrom = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'konnectivity' } } }]
      const manifests = await helmTemplate({ networkPolicy: { apiserverCIDRs: ['10.0.0.0/28', 'fd00::/120'], webhookFrom } })
      const ingress = dig(one(manifests, 'NetworkPolicy'), 'spec.ingress') as { ports: { port: string }[]; from?: Obj[] }[]
      assert.deepEqual(ingress[0]?.ports.map((p) => p.port), ['webhook'])
      assert.deepEqual(ingress[0]?.from, [{ ipBlock: { cidr: '10.0.0.0/28' } }, { ipBlock: { cidr: 'fd00::/120' } }, ...webhookFrom])
      const refused = await helmTemplateRaw({ networkPolicy: { apiserverCIDRs: ['10.0.0.1'] } })
      assert.match(refused.stderr, /apiserverCIDRs\/0': '10\.0\.0\.1' does not match pattern/)
    })

    // The measured worst case (README, "Bounds and limits"): ~420 MB when a review fills its worker's 160 MB heap.
    it('sizes the webhook memory limit above the measured worst-case peak', async () => {
      const server = podSpec(one(await helmTemplate({}), 'Deployment', FULLNAME)).containers[0] as Container
      assert.equal(server.resources?.limits?.memory, '512Mi')
    })

    it('answers a review stopped by its budget as the validating failurePolicy says', async () => {
      for (const policy of ['Fail', 'Ignore']) {
        const server = podSpec(one(await helmTemplate({ webhook: { validating: { failurePolicy: policy } } }), 'Deployment', FULLNAME)).containers[0] as Container
        const args = (server as { args?: string[] }).args ?? []
        assert.equal(args[args.indexOf('--budget-failure-policy') + 1], policy)
      }
    })
  })

  describe('values.schema.json refuses bad values', () => {
    const cases: [string, object, RegExp][] = [
      ['a wrong type', { replicaCount: 'two' }, /\/replicaCount': got string, want integer/],
      ['an unknown certificate mode', { certificates: { mode: 'vault' } }, /\/certificates\/mode': value must be one of/],
      ['a typo in a nested key', { webhook: { timeoutSecond: 5 } }, /\/webhook': additional properties 'timeoutSecond' not allowed/],
      ['a typo in a top-level key', { replicas: 3 }, /additional properties 'replicas' not allowed/],
      ['an unknown failurePolicy', { webhook: { validating: { failurePolicy: 'Sometimes' } } }, /failurePolicy': value must be one of 'Fail', 'Ignore'/],
      ['a timeout beyond the apiserver limit', { webhook: { timeoutSeconds: 31 } }, /\/webhook\/timeoutSeconds': maximum: got 31, want 30/]
    ]
    for (const [name, values, message] of cases) {
      it(`helm template and helm lint fail on ${name}`, async () => {
        const template = await helmTemplateRaw(values)
        assert.notEqual(template.code, 0, 'helm template accepted the values')
        assert.match(template.stderr, /values don't meet the specifications of the schema/)
        assert.match(template.stderr, message)
        const lint = await helmLint(values)
        assert.notEqual(lint.code, 0, 'helm lint accepted the values')
        assert.match(lint.stdout + lint.stderr, message)
      })
    }
  })

  describe('template guards', () => {
    it('refuses a grace period that cannot hold the drain delay plus a review', async () => {
      const result = await helmTemplateRaw({ terminationGracePeriodSeconds: 15 })
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /terminationGracePeriodSeconds \(15\) must be greater than .* \(15\)/)
    })

    it('refuses the applier without the mutating webhook whose namespaceSelector bounds where it acts', async () => {
      const result = await helmTemplateRaw({ applier: { enabled: true }, webhook: { mutating: { enabled: false } } })
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /applier\.enabled needs webhook\.mutating\.enabled/)
    })

    it('refuses a PodDisruptionBudget that would block every drain', async () => {
      const result = await helmTemplateRaw(['replicaCount=1'])
      assert.notEqual(result.code, 0)
      assert.match(result.stderr, /podDisruptionBudget\.minAvailable \(1\) must be less than replicaCount \(1\)/)
      const withMaxUnavailable = await helmTemplate({ replicaCount: 1, podDisruptionBudget: { maxUnavailable: 1 } })
      const pdb = one(withMaxUnavailable, 'PodDisruptionBudget')
      assert.equal(dig(pdb, 'spec.maxUnavailable'), 1)
      assert.equal(dig(pdb, 'spec.minAvailable'), undefined)
    })
  })

  it('the chart README documents every key of values.yaml', async () => {
    const values = parseYaml(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as Obj
    const readme = await readFile(join(chartDir, 'README.md'), 'utf8')
    const leaves: string[] = []
    const walk = (value: unknown, prefix: string): void => {
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0 && !isKubernetesObject(prefix)) {
        for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k)
      } else leaves.push(prefix)
    }
    walk(values, '')
    const missing = leaves.filter((key) => !readme.includes(`| \`${key}\` |`))
    assert.deepEqual(missing, [], 'values missing from the README table')
  })
})

/**
 * The rendered NOTES.txt. `helm template` never renders it and `helm install --dry-run` needs a cluster, so a copy of
 * the chart renders it through `tpl` into a ConfigMap.
 */
async function runNotes (values: object, extraArgs: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nim-admission-notes-'))
  try {
    const chart = join(dir, 'nim-admission')
    await cp(chartDir, chart, { recursive: true })
    await cp(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes-probe.txt'))
    await writeFile(join(chart, 'templates', 'notes-probe.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes-probe.txt") . | quote }}\n')
    const probe = one(await helmTemplate(values, { chart, extraArgs: [...extraArgs, '--show-only', 'templates/notes-probe.yaml'] }), 'ConfigMap')
    return String(dig(probe, 'data.notes'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Values that are Kubernetes objects passed through whole; the README documents them as one row. */
function isKubernetesObject(path: string): boolean {
  return /(^|\.)(podSecurityContext|securityContext|resources|requests|limits|livenessProbe|readinessProbe|metricsFrom)$/.test(path)
}
