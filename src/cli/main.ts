#!/usr/bin/env node
// The nim-admission command line: one program, a command per file.
import { Command, CommanderError } from 'commander'
import { registerServeCommand } from './serve.js'
import { packageVersion } from '../server/metrics.js'

export async function main (argv: string[]): Promise<number> {
  const program = new Command('nim-admission')
    .description('Admission webhook and GitOps gate for NVIDIA NIM Operator NIMService autoscaling')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride()
  registerServeCommand(program)
  // Commands that pull in heavy dependencies (the Kubernetes client) are loaded only when asked for,
  // so that `serve` starts fast.
  const wanted = argv[2]
  if (wanted === 'certs' || wanted === 'help' || wanted === undefined || wanted.startsWith('-')) {
    const { registerCertsCommand } = await import('./certs.js')
    registerCertsCommand(program)
  }
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
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
