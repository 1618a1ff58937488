// Stopping a long-running command: the first SIGTERM or SIGINT runs `stop` and exits 0 (1 when it
// fails); a second signal exits at once.
import type { Logger } from 'pino'

export function stopOnSignals (logger: Logger, what: string, stop: () => Promise<void>): void {
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = true
    logger.info({ signal }, `signal received: ${what}`)
    stop().then(() => process.exit(0), (err: unknown) => {
      logger.error({ err }, 'stop failed')
      process.exit(1)
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
