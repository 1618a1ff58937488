// `nim-admission apply`: turns the mutating webhook's nim-admission.io/hpa annotation into real
// HorizontalPodAutoscalers, with leader election, probes and metrics.
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
    .description('watch NIMServices and server-side apply the HPA rendered into their nim-admission.io/hpa annotation')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
    .addOption(new Option('--namespace <name>', 'watch this namespace (repeatable)').argParser(collect).default([], 'all namespaces'))
    .option('--take-over', 'adopt an HPA of the same name owned by someone else (server-side apply with force)', false)
    .option('--dry-run', 'print what would be applied or deleted, write nothing', false)
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
Only HPAs labelled app.kubernetes.io/managed-by=nim-admission and controlled by their NIMService are
updated or deleted; an HPA of the same name owned by anyone else is left alone and reported with an
HPAConflict Event, unless --take-over.

Examples:
  $ nim-admission apply --dry-run                          # print the plan for every namespace
  $ nim-admission apply --namespace llm --leader-elect     # in-cluster, one writer among replicas`)
    .action(async (flags: Record<string, unknown>) => {
      const { startApplier, ApplierOptionsError } = await import('../applier/run.js')
      let applier: Awaited<ReturnType<typeof startApplier>>
      try {
        applier = await startApplier({
          ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig as string } : {}),
          namespaces: flags.namespace as string[],
          takeOver: flags.takeOver === true,
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
