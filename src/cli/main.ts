#!/usr/bin/env node
// The nim-admission command line: one program, a command per file.
import { Command, CommanderError } from 'commander'
import { packageVersion } from '../server/metrics.js'

type Register = (program: Command) => void

// Each command is loaded only when asked for, so that `serve` does not pay for the Kubernetes
// client that `certs` and `apply` pull in, and starts fast.
const COMMANDS: Record<string, () => Promise<Register>> = {
  serve: async () => (await import('./serve.js')).registerServeCommand,
  validate: async () => (await import('./validate.js')).registerValidateCommand,
  render: async () => (await import('./render.js')).registerRenderCommand,
  review: async () => (await import('./review.js')).registerReviewCommand,
  certs: async () => (await import('./certs.js')).registerCertsCommand,
  apply: async () => (await import('./apply.js')).registerApplyCommand
}

export async function main (argv: string[]): Promise<number> {
  const program = new Command('nim-admission')
    .description('Admission webhook and GitOps gate for NVIDIA NIM Operator NIMService autoscaling')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride()
  const wanted = argv[2]
  const names = wanted !== undefined && wanted in COMMANDS ? [wanted] : Object.keys(COMMANDS)
  for (const name of names) (await (COMMANDS[name] as () => Promise<Register>)())(program)
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    // A usage error (a mistyped command too) exits 2, like unreadable input: 1 always means denied.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    const exitCode = (err as { exitCode?: unknown }).exitCode
    process.stderr.write(`nim-admission: ${err instanceof Error ? err.message : String(err)}\n`)
    return typeof exitCode === 'number' ? exitCode : 1
  }
}

main(process.argv).then((code) => {
  if (code !== 0) process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`nim-admission: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
