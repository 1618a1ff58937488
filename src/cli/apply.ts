// `nim-admission apply`: checks (default, --mode verify) or writes (--mode write, for clusters without the
// NIM operator) the HorizontalPodAutoscaler rendered from each NIMService's spec, with leader election,
// probes and metrics.
import { InvalidArgumentError, Option, type Command } from 'commander'
import { stopOnSignals } from './signals.js'
import { durationMs } from './serve.js'
import { CliError } from './errors.js'

const int = (name: string) => (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`--${name} must be a non-negative integer, got "${value}"`)
  return Number(value)
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

const duration = (flags: string, description: string, ms: number, shown: string): Option =>
  new Option(flags, description).default(ms, shown).argParser((value: string) => {
    try {
      return durationMs(value)
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
  })

export function registerApplyCommand (program: Command): void {
  program.command('apply')
    .description('compare each autoscaled NIMService\'s live HPA with the one rendered from its spec (--mode verify), or write it where the NIM operator does not (--mode write)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .addOption(new Option('--mode <mode>', 'verify: report drift as Events and metrics, never write; write: create and update HPAs, only for NIMServices the NIM operator does not manage').choices(['verify', 'write']).default('verify'))
    .addOption(new Option('--namespace <name>', 'watch this namespace (repeatable)').argParser(collect).default([], 'all namespaces'))
    .option('--webhook-configuration <name>', 'act only where this MutatingWebhookConfiguration\'s NIMService webhooks select (namespaceSelector, objectSelector), read live; nowhere until it is read')
    .addOption(duration('--grace <duration>', 'verify: how long an autoscaled NIMService may lack its HPA before it is reported; write: how long a new NIMService is left for the operator to claim', 30_000, '30s'))
    .option('--dry-run', 'with --mode write: print what would be written, write nothing', false)
    .option('--leader-elect', 'elect one writing replica through a coordination.k8s.io Lease', false)
    .option('--lease-name <name>', 'name of the Lease', 'nim-admission-applier')
    .option('--lease-namespace <name>', 'namespace of the Lease (default: $POD_NAMESPACE, else the kubeconfig namespace)')
    .addOption(duration('--lease-duration <duration>', 'how long an unrenewed Lease holds', 15_000, '15s'))
    .addOption(duration('--renew-deadline <duration>', 'how long the leader retries renewing before it stops writing', 10_000, '10s'))
    .addOption(duration('--retry-period <duration>', 'interval between Lease attempts', 2_000, '2s'))
    .addOption(duration('--resync-period <duration>', 'reconcile every NIMService again this often (0 disables)', 300_000, '5m'))
    .option('--workers <n>', 'concurrent reconciles', int('workers'), 2)
    .option('--metrics-port <port>', 'plain-HTTP port for /healthz, /readyz and /metrics', int('metrics-port'), 9091)
    .option('--metrics-host <host>', 'address to bind the metrics port to', '0.0.0.0')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .addHelpText('after', `
The HPA is always rendered from the NIMService's spec; the nim-admission.io/hpa annotation is only
compared with it (a mismatch is reported as HPAAnnotationForged) and never applied. --mode write never
touches an HPA it did not create, and refuses (HPAWriteRefused) any NIMService the NIM operator
reconciles (its finalizer or status on the NIMService, or its label or owner on the HPA).

Examples:
  $ nim-admission apply                                                      # verify every namespace
  $ nim-admission apply --webhook-configuration nim-admission --leader-elect # in-cluster, as the chart runs it
  $ nim-admission apply --mode write --dry-run                               # no operator: print the plan`)
    .action(async (flags: Record<string, unknown>) => {
      const { startApplier, ApplierOptionsError } = await import('../applier/run.js')
      let applier: Awaited<ReturnType<typeof startApplier>>
      try {
        applier = await startApplier({
          ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig as string } : {}),
          mode: flags.mode as 'verify' | 'write',
          namespaces: flags.namespace as string[],
          ...(flags.webhookConfiguration !== undefined ? { webhookConfiguration: flags.webhookConfiguration as string } : {}),
          graceMs: flags.grace as number,
          dryRun: flags.dryRun === true,
          leaderElect: flags.leaderElect === true,
          leaseName: flags.leaseName as string,
          ...(flags.leaseNamespace !== undefined ? { leaseNamespace: flags.leaseNamespace as string } : {}),
          leaseDurationMs: flags.leaseDuration as number,
          renewDeadlineMs: flags.renewDeadline as number,
          retryPeriodMs: flags.retryPeriod as number,
          resyncPeriodMs: flags.resyncPeriod as number,
          workers: flags.workers as number,
          metricsPort: flags.metricsPort as number,
          metricsHost: flags.metricsHost as string,
          logLevel: flags.logLevel as never
        })
      } catch (err) {
        if (err instanceof ApplierOptionsError) throw new CliError(`${err.code}: ${err.message}`, { code: err.code, exitCode: 2 })
        throw err
      }
      stopOnSignals(applier.logger, 'releasing the lease and stopping', async () => await applier.stop({ release: true }))
    })
}
