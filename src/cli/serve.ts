// `nim-admission serve`: the webhook server, with drain on SIGTERM.
import type { Command } from 'commander'
import { defaultOptions } from '../server/options.js'
import { stopOnSignals } from './signals.js'

const int = (name: string) => (value: string): number => {
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a non-negative integer, got "${value}"`)
  return Number(value)
}

/** `10s`, `1500ms`, `2m` or a bare number of seconds, in milliseconds. */
export function durationMs (value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value)
  if (m === null) throw new Error(`expected a duration such as 10s, 1500ms or 2m, got "${value}"`)
  const n = Number(m[1])
  return Math.round(m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000)
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

export function registerServeCommand (program: Command): void {
  program.command('serve')
    .description('serve POST /validate and /mutate over HTTPS, and /healthz, /readyz, /metrics over HTTP')
    .option('--port <port>', 'HTTPS port for admission reviews', int('port'), defaultOptions.port)
    .option('--host <host>', 'address to bind the HTTPS port to', defaultOptions.host)
    .option('--metrics-port <port>', 'plain-HTTP port for health probes and metrics', int('metrics-port'), defaultOptions.metricsPort)
    .option('--metrics-host <host>', 'address to bind the metrics port to', defaultOptions.metricsHost)
    .option('--cert-dir <dir>', 'directory with tls.crt, tls.key and ca.crt (created for development when absent)', defaultOptions.certDir)
    .option('--dns-name <name>', 'extra DNS name for self-generated certificates (repeatable)', collect, [])
    .option('--client-ca <file>', 'require client certificates signed by this CA (mutual TLS)')
    .option('--shutdown-delay <duration>', 'keep answering after SIGTERM while endpoints drain', durationMs, defaultOptions.shutdownDelayMs)
    .option('--request-timeout <duration>', 'whole-request deadline (keep it below the webhook timeoutSeconds)', durationMs, defaultOptions.requestTimeoutMs)
    .option('--review-budget <duration>', 'time from a body received to its answer; a large review still running then is stopped and answered by the budget (keep it well below timeoutSeconds)', durationMs, defaultOptions.reviewBudgetMs)
    .option('--budget-failure-policy <policy>', 'what /validate answers for a review stopped by its budget: Fail (deny) or Ignore (allow with NIM114); /mutate always allows it unchanged', defaultOptions.budgetFailurePolicy)
    .option('--review-workers <n>', 'worker threads judging large bodies', int('review-workers'), defaultOptions.reviewWorkers)
    .option('--review-worker-heap <MB>', 'heap of a review worker; a review needing more is answered like one over its time', int('review-worker-heap'), defaultOptions.reviewWorkerHeapMb)
    .option('--max-connections-per-ip <n>', 'connections from one source address at once', int('max-connections-per-ip'), defaultOptions.maxConnectionsPerIp)
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', defaultOptions.logLevel)
    .addHelpText('after', `
Examples:
  $ nim-admission serve                                  # development certificates in ./certs
  $ nim-admission serve --cert-dir /etc/nim-admission/tls --shutdown-delay 10s
  $ nim-admission serve --port 0 --metrics-port 0        # free ports, printed in the log`)
    .action(async (flags: Record<string, unknown>) => {
      const { startServer } = await import('../server/serve.js')
      const server = await startServer({
        port: flags.port as number,
        host: flags.host as string,
        metricsPort: flags.metricsPort as number,
        metricsHost: flags.metricsHost as string,
        certDir: flags.certDir as string,
        dnsNames: flags.dnsName as string[],
        ...(flags.clientCa !== undefined ? { clientCaFile: flags.clientCa as string } : {}),
        shutdownDelayMs: flags.shutdownDelay as number,
        requestTimeoutMs: flags.requestTimeout as number,
        reviewBudgetMs: flags.reviewBudget as number,
        budgetFailurePolicy: flags.budgetFailurePolicy as never,
        maxConnectionsPerIp: flags.maxConnectionsPerIp as number,
        reviewWorkers: flags.reviewWorkers as number,
        reviewWorkerHeapMb: flags.reviewWorkerHeap as number,
        logLevel: flags.logLevel as never
      })
      stopOnSignals(server.logger, 'draining, then stopping', server.shutdown)
    })
}
