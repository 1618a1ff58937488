// Errors a command reports to the user: one line on stderr and an exit code, never a stack trace.
// The root (main.ts) prints `message` and exits with `exitCode`.
import { isCertError } from '../certs/errors.js'

export class CliError extends Error {
  readonly exitCode: number
  /** The published error code (NIMCERT_...), when there is one. */
  readonly code?: string

  constructor (message: string, opts: { exitCode?: number; code?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'CliError'
    this.exitCode = opts.exitCode ?? 1
    if (opts.code !== undefined) this.code = opts.code
  }
}

const firstLine = (text: string): string => text.split('\n')[0] ?? text

/** Any error as a CliError: coded errors keep their code in front of the message. */
export function toCliError (err: unknown): CliError {
  if (err instanceof CliError) return err
  if (isCertError(err)) return new CliError(`${err.code}: ${firstLine(err.message)}`, { code: err.code, cause: err })
  const message = err instanceof Error ? err.message : String(err)
  return new CliError(`unexpected error: ${firstLine(message)}`, { cause: err })
}

/** Runs a command body and turns whatever it throws into a CliError. */
export async function reportErrors<T> (body: () => Promise<T>): Promise<T> {
  try {
    return await body()
  } catch (err) {
    throw toCliError(err)
  }
}
