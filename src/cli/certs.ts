// `nim-admission certs generate|inject`: certificates for the webhook without cert-manager.
import { InvalidArgumentError, type Command } from 'commander'

import { describeBundle, requireUsableBundle } from '../certs/bundle.js'
import { CertError } from '../certs/errors.js'
import { parseDuration } from '../certs/expiry.js'
import { certPaths, readCertDir, writeCertDir } from '../certs/files.js'
import { generateDefaults, requestedNames, type PemPair } from '../certs/generate.js'
import { deleteWebhookConfigurations, failurePolicies, injectCaBundle, type FailurePolicy, type WebhookKind } from '../certs/inject.js'
import { kubeClients, serviceHasReadyEndpoint, type KubeClients } from '../certs/kube.js'
import { readPemFile } from '../certs/pair.js'
import { planRotation, type RotationPlan } from '../certs/rotation.js'
import { readCaBundleFromSecret, readSecretState, writeSecretState, type SecretStore } from '../certs/secret.js'
import { reportErrors } from './errors.js'

export interface CertsCommandDeps {
  /** One line of normal output (default: stdout). */
  out?: (line: string) => void
  /** One line of warning (default: stderr). */
  warn?: (line: string) => void
  /** Kubernetes clients for a kubeconfig path (default: @kubernetes/client-node). */
  kube?: (kubeconfig?: string) => Promise<KubeClients>
  now?: () => Date
  /** Pause between `inject --wait` attempts (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>
}

export const defaultOutDir = 'certs'

const positiveDays = (flag: string) => (value: string): number => {
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0)) throw new InvalidArgumentError(`${flag} expects a positive number of days.`)
  return n
}

const duration = (flag: string) => (value: string): number => {
  try {
    return parseDuration(value, flag)
  } catch {
    throw new InvalidArgumentError(`${flag} expects a duration such as 720h, 30d, 1h30m or a number of days.`)
  }
}

export interface GenerateFlags {
  service?: string
  namespace?: string
  out?: string
  caDays: number
  days: number
  dnsName?: string[]
  ip?: string[]
  renewBefore?: number
  caRenewBefore?: number
  caCert?: string
  caKey?: string
  secret?: string
  secretNamespace?: string
  caSecret?: string
  kubeconfig?: string
}

export interface InjectFlags {
  webhook: string[]
  caFile?: string
  secret?: string
  secretNamespace?: string
  failurePolicy?: Partial<Record<WebhookKind, FailurePolicy>>
  /** Milliseconds to keep retrying while what is injected or armed does not exist yet. */
  wait?: number
  kubeconfig?: string
  dryRun?: boolean
}

export interface UninstallFlags {
  webhook: string[]
  kubeconfig?: string
}

const policyKinds: Record<string, WebhookKind> = { validating: 'ValidatingWebhookConfiguration', mutating: 'MutatingWebhookConfiguration' }

/** `Fail` (every kind) or `validating=Fail,mutating=Ignore`; repeated flags add up. */
export function parseFailurePolicy (value: string, previous: Partial<Record<WebhookKind, FailurePolicy>> = {}): Partial<Record<WebhookKind, FailurePolicy>> {
  const result = { ...previous }
  for (const part of value.split(',')) {
    const [kindOrPolicy = '', policy] = part.trim().split('=')
    const kinds = policy === undefined ? Object.values(policyKinds) : [policyKinds[kindOrPolicy]]
    const chosen = policy ?? kindOrPolicy
    if (kinds.includes(undefined) || !(failurePolicies as readonly string[]).includes(chosen)) {
      throw new InvalidArgumentError(`--failure-policy expects ${failurePolicies.join(' or ')}, or validating=POLICY,mutating=POLICY; got ${JSON.stringify(part)}.`)
    }
    for (const kind of kinds as WebhookKind[]) result[kind] = chosen as FailurePolicy
  }
  return result
}

/** What may still appear while `inject --wait` waits: the Secret, the configurations, cert-manager's caBundle, a ready pod. */
const notYet = new Set(['NIMCERT_SECRET_NOT_FOUND', 'NIMCERT_WEBHOOK_NOT_FOUND', 'NIMCERT_NO_CA_BUNDLE', 'NIMCERT_WEBHOOK_NOT_READY'])
const waitStepMs = 2000

function externalCa (flags: GenerateFlags): PemPair | undefined {
  if (flags.caCert === undefined && flags.caKey === undefined) return undefined
  if (flags.caCert === undefined || flags.caKey === undefined) {
    throw new CertError('NIMCERT_BAD_OPTION', '--ca-cert and --ca-key go together: give both to sign with an existing CA, or neither to let this command manage one')
  }
  return { certPem: readPemFile(flags.caCert, 'CA certificate'), keyPem: readPemFile(flags.caKey, 'CA key') }
}

function report (plan: RotationPlan, deps: Required<Pick<CertsCommandDeps, 'out' | 'warn'>>): void {
  for (const note of plan.notes) deps.out(note)
  for (const warning of plan.warnings) deps.warn(`warning: ${warning}`)
}

/** `certs generate`: make or renew the CA and serving certificate in a directory or Secrets. */
export async function runGenerate (flags: GenerateFlags, deps: CertsCommandDeps = {}): Promise<RotationPlan> {
  const out = deps.out ?? ((line: string) => { process.stdout.write(`${line}\n`) })
  const warn = deps.warn ?? ((line: string) => { process.stderr.write(`${line}\n`) })
  const now = deps.now?.() ?? new Date()
  if (flags.secret !== undefined && flags.out !== undefined) {
    throw new CertError('NIMCERT_BAD_OPTION', '--out and --secret exclude each other: write files or a Secret')
  }
  const names = requestedNames({
    ...(flags.service === undefined ? {} : { service: flags.service }),
    ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
    dnsNames: flags.dnsName ?? [],
    ipAddresses: flags.ip ?? []
  })
  if (names.dnsNames.length === 0 && names.ipAddresses.length === 0) {
    throw new CertError('NIMCERT_BAD_OPTION', 'give --service and --namespace (the certificate names <service>.<namespace>.svc), or --dns-name/--ip')
  }
  const ca = externalCa(flags)
  const options = {
    ...names,
    caDays: flags.caDays,
    days: flags.days,
    now,
    ...(flags.renewBefore === undefined ? {} : { renewBeforeMs: flags.renewBefore }),
    ...(flags.caRenewBefore === undefined ? {} : { caRenewBeforeMs: flags.caRenewBefore }),
    ...(ca === undefined ? {} : { ca, caNames: { cert: `CA certificate ${flags.caCert ?? ''}`, key: `CA key ${flags.caKey ?? ''}` } })
  }

  if (flags.secret !== undefined) {
    const clients = await (deps.kube ?? kubeClients)(flags.kubeconfig)
    const namespace = flags.secretNamespace ?? flags.namespace ?? clients.namespace
    const store: SecretStore = { serving: { namespace, name: flags.secret }, ca: { namespace, name: flags.caSecret ?? `${flags.secret}-ca` } }
    const previous = await readSecretState(clients.core, store)
    const plan = planRotation(previous.state, options)
    report(plan, { out, warn })
    if (plan.changed) {
      const written = await writeSecretState(clients.core, store, plan.state, previous)
      out(`wrote ${written.join(', ')}`)
      if (plan.caCreated !== undefined || plan.servingIssued) {
        out(`next: nim-admission certs inject --webhook <name> --secret ${store.serving.name} --secret-namespace ${namespace}`)
      }
    }
    return plan
  }

  const dir = flags.out ?? defaultOutDir
  const previous = await readCertDir(dir)
  const plan = planRotation(previous, options)
  report(plan, { out, warn })
  if (plan.changed) {
    const written = await writeCertDir(dir, plan.state, previous)
    out(`wrote ${written.join(', ')}`)
    if (plan.caCreated !== undefined || plan.servingIssued) {
      out(`next: nim-admission certs inject --webhook <name> --ca-file ${certPaths(dir).caPath}`)
    }
  }
  return plan
}

/** `certs inject`: merge the CA bundle into caBundle of the named webhook configurations, and arm them. */
export async function runInject (flags: InjectFlags, deps: CertsCommandDeps = {}): Promise<void> {
  const out = deps.out ?? ((line: string) => { process.stdout.write(`${line}\n`) })
  const now = deps.now?.() ?? new Date()
  if (flags.caFile !== undefined && flags.secret !== undefined) {
    throw new CertError('NIMCERT_BAD_OPTION', '--ca-file and --secret exclude each other: give one source of the CA bundle')
  }
  if (flags.caFile === undefined && flags.secret === undefined && flags.failurePolicy === undefined) {
    throw new CertError('NIMCERT_BAD_OPTION', 'give --ca-file PATH or --secret NAME as the source of the CA bundle, or --failure-policy alone to arm entries that already have one')
  }
  // A file is checked before any cluster call, so a bad file fails fast even without a cluster.
  const fileBundle = flags.caFile === undefined ? undefined : requireUsableBundle(readPemFile(flags.caFile, 'CA bundle'), `CA bundle ${flags.caFile}`, { now })
  const clients = await (deps.kube ?? kubeClients)(flags.kubeconfig)
  const sleep = deps.sleep ?? (async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) })
  const retries = Math.floor((flags.wait ?? 0) / waitStepMs)
  let waitingFor = ''
  for (let attempt = 0; ; attempt++) {
    try {
      await injectOnce(flags, clients, fileBundle?.pem, deps.now?.() ?? new Date(), out)
      return
    } catch (err) {
      if (!(err instanceof CertError) || !notYet.has(err.code) || attempt >= retries) throw err
      if (err.message !== waitingFor) out(`waiting: ${err.message}`)
      waitingFor = err.message
      await sleep(waitStepMs)
    }
  }
}

async function injectOnce (flags: InjectFlags, clients: KubeClients, fileBundle: string | undefined, now: Date, out: (line: string) => void): Promise<void> {
  let bundle = fileBundle
  if (bundle === undefined && flags.secret !== undefined) {
    const ref = { namespace: flags.secretNamespace ?? clients.namespace, name: flags.secret }
    bundle = requireUsableBundle(await readCaBundleFromSecret(clients.core, ref), `ca.crt of Secret ${ref.namespace}/${ref.name}`, { now }).pem
  }
  const results = await injectCaBundle({
    api: clients.admission,
    webhooks: flags.webhook,
    ...(bundle === undefined ? {} : { caBundle: bundle }),
    ...(flags.failurePolicy === undefined ? {} : { failurePolicy: flags.failurePolicy }),
    serviceReady: async (namespace, name) => await serviceHasReadyEndpoint(clients.discovery, namespace, name),
    now,
    dryRun: flags.dryRun === true
  })
  for (const r of results) {
    const verb = !r.changed ? 'unchanged' : flags.dryRun === true ? 'would update' : 'updated'
    const detail = [
      ...(r.added + r.expired > 0 ? [`+${r.added} CA, -${r.expired} expired`] : []),
      ...(r.armed > 0 ? [`failurePolicy ${flags.failurePolicy?.[r.kind] ?? ''} on ${r.armed}`] : [])
    ]
    out(`${r.kind}/${r.name}: ${verb}, ${r.webhooks} webhook(s) trust ${describeBundle(r.bundle)}${detail.length > 0 ? ` (${detail.join('; ')})` : ''}`)
  }
}

/** `certs uninstall`: delete the named webhook configurations before the webhook itself goes. */
export async function runUninstall (flags: UninstallFlags, deps: CertsCommandDeps = {}): Promise<void> {
  const out = deps.out ?? ((line: string) => { process.stdout.write(`${line}\n`) })
  const clients = await (deps.kube ?? kubeClients)(flags.kubeconfig)
  for (const r of await deleteWebhookConfigurations(clients.admission, flags.webhook)) {
    out(`${r.kind}/${r.name}: ${r.deleted ? 'deleted' : 'absent'}`)
  }
}

const rotationHelp = `
Files (--out DIR, default ./${defaultOutDir}): ca.crt (CA bundle), ca.key (CA keys, 0600), tls.crt, tls.key (0600).
Secrets (--secret NAME): NAME is type kubernetes.io/tls with tls.crt, tls.key, ca.crt (mount it in the Pod);
NAME-ca (--ca-secret) is Opaque with ca.crt and ca.key and is never mounted.

Rotation:
  - Re-running while the serving certificate is valid does nothing. It is renewed when less than
    --renew-before is left (default: 30 days, or a third of --days if shorter), or when it lacks a name.
  - A renewal re-signs with the same CA while that CA is valid: caBundle needs no change.
  - --ca-renew-before ahead of the CA's expiry (default: a third of --ca-days) a new CA is ADDED to ca.crt
    next to the old one; the run that creates it keeps signing with the old CA. Run \`certs inject\` after
    every generate: it publishes both CAs. The serving certificate moves to the new CA at its next
    renewal, when every caBundle already trusts it. Expired CAs leave ca.crt and caBundle on later runs.
  - A serving certificate never outlives its CA (its notAfter is capped at the CA's).

Examples:
  $ nim-admission certs generate --service nim-admission --namespace nim-system --out ./certs
  $ nim-admission certs generate --service nim-admission --namespace nim-system --secret nim-admission-tls
  $ nim-admission certs inject --webhook nim-admission --secret nim-admission-tls --secret-namespace nim-system
  $ nim-admission certs inject --webhook nim-admission --ca-file ./certs/ca.crt
  $ nim-admission certs inject --webhook nim-admission --secret nim-admission-tls --failure-policy Fail`

export function registerCertsCommand (program: Command, deps: CertsCommandDeps = {}): void {
  const certs = program.command('certs').description('make, renew and publish the webhook certificates (no cert-manager needed)')

  certs.command('generate')
    .description('create or renew a CA and a serving certificate for the webhook Service')
    .option('--service <name>', 'Service name: SANs <service>, <service>.<ns>, <service>.<ns>.svc, <service>.<ns>.svc.cluster.local')
    .option('--namespace <ns>', 'namespace of the Service')
    .option('--out <dir>', `directory to write ca.crt, ca.key, tls.crt, tls.key (default: ./${defaultOutDir})`)
    .option('--ca-days <days>', 'CA lifetime in days', positiveDays('--ca-days'), generateDefaults.caDays)
    .option('--days <days>', 'serving certificate lifetime in days', positiveDays('--days'), generateDefaults.days)
    .option('--dns-name <name...>', 'extra DNS SAN (repeatable)')
    .option('--ip <address...>', 'extra IP SAN (repeatable)')
    .option('--renew-before <duration>', 'renew the serving certificate when less than this is left (720h, 30d, or days)', duration('--renew-before'))
    .option('--ca-renew-before <duration>', 'add a new CA when less than this is left on the current one', duration('--ca-renew-before'))
    .option('--ca-cert <file>', 'sign with this existing CA instead of managing one (needs --ca-key)')
    .option('--ca-key <file>', 'private key of --ca-cert (RSA, unencrypted PEM)')
    .option('--secret <name>', 'write Secrets instead of files: <name> (kubernetes.io/tls) and <name>-ca')
    .option('--secret-namespace <ns>', 'namespace of the Secrets (default: --namespace, else the kubeconfig namespace)')
    .option('--ca-secret <name>', 'name of the Secret holding the CA key (default: <secret>-ca)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .addHelpText('after', rotationHelp)
    .action(async (flags: GenerateFlags) => {
      await reportErrors(async () => { await runGenerate(flags, deps) })
    })

  certs.command('inject')
    .description('add the CA bundle to caBundle of every webhook of the named Validating/MutatingWebhookConfigurations')
    .requiredOption('--webhook <name...>', 'webhook configuration name (repeatable); Validating and Mutating ones of that name are both updated')
    .option('--ca-file <path>', 'CA bundle file (ca.crt from certs generate)')
    .option('--secret <name>', 'read ca.crt from this Secret instead')
    .option('--secret-namespace <ns>', 'namespace of --secret (default: the kubeconfig namespace)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .option('--failure-policy <policy>', 'also set failurePolicy: Fail or Ignore on every entry, or per kind (validating=Fail,mutating=Ignore); Fail only where caBundle holds an unexpired CA and the Service has a ready endpoint. Alone (no --ca-file/--secret): only arm', parseFailurePolicy)
    .option('--wait <duration>', 'keep retrying this long while the Secret, the configurations, their caBundle or a ready webhook pod do not exist yet (e.g. 5m)', duration('--wait'))
    .option('--dry-run', 'show what would change, write nothing')
    .addHelpText('after', `
The new caBundle is the old one plus the given CAs, expired CAs dropped, each CA once: during a CA
rotation it trusts the old and the new CA, so no admission call fails while the webhook switches.

The chart creates its webhook configurations with failurePolicy Ignore and arms them with
--failure-policy once the certificate and caBundle exist and a webhook pod is ready behind the Service:
until then NIMService writes are admitted unchecked instead of refused.`)
    .action(async (flags: InjectFlags) => {
      await reportErrors(async () => { await runInject(flags, deps) })
    })

  certs.command('uninstall')
    .description('delete the Validating and Mutating WebhookConfigurations of the given names (before the webhook goes away)')
    .requiredOption('--webhook <name...>', 'webhook configuration name (repeatable); absent ones are skipped')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .action(async (flags: UninstallFlags) => {
      await reportErrors(async () => { await runUninstall(flags, deps) })
    })
}
