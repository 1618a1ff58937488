// Runs the real NVIDIA NIM operator (built from its source by scripts/build-operator.sh) against the
// harness kube-apiserver, on loopback, with its own webhooks off.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { freePort } from './ports.js'

export interface OperatorOptions {
  kubeconfig: string
  /** Path to the operator binary; defaults to operatorBinary(). */
  binary?: string
  /** How long to wait for its health probe and its NIMService controller; default 120 s. */
  timeoutMs?: number
}

export interface OperatorProcess {
  probePort: number
  /** The last 64 KiB of the operator's log (JSON lines on stderr), to print when a test fails. */
  logs (): string
  /** The log tail, or a note that the operator exited, ready to append to an assertion message. */
  describe (): string
  /** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. Safe to call twice. */
  stop (): Promise<void>
}

const LOG_TAIL_BYTES = 64 * 1024
const KILL_AFTER_MS = 10_000
// controller-runtime's JSON log line once the NIMService controller's caches have synced.
const STARTED = /"Starting workers".*"controller":"nimservice"|"controller":"nimservice".*"Starting workers"/

/** Path of the operator binary: <repo>/.cache/nim-operator/nim-operator (its templates sit beside it). */
export function operatorBinary (): string {
  return join(PACKAGE_ROOT, '.cache', 'nim-operator', 'nim-operator')
}

/**
 * Starts the operator and waits until its health probe answers and its NIMService controller has
 * started its workers (the probe alone answers before the caches have synced). The operator reads
 * discovery once at start: install the CRDs before calling this.
 */
export async function startOperator (opts: OperatorOptions): Promise<OperatorProcess> {
  // A port picked by freePort() can be taken by another process before the operator binds it.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts, await freePort())
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startOnce (opts: OperatorOptions, probePort: number): Promise<OperatorProcess> {
  const binary = opts.binary ?? operatorBinary()
  const timeoutMs = opts.timeoutMs ?? 120_000
  const child = spawn(binary, [`--health-probe-bind-address=127.0.0.1:${probePort}`, '--metrics-bind-address=0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: opts.kubeconfig, ENABLE_WEBHOOKS: 'false' }
  })
  let tail = ''
  let workersStarted = false
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-LOG_TAIL_BYTES)
    workersStarted ||= STARTED.test(tail)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  let spawnError: Error | undefined
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', (err) => { spawnError = err; resolve() })
  })
  const onProcessExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', onProcessExit)
  void exited.then(() => process.removeListener('exit', onProcessExit))

  const running = (): boolean => child.exitCode === null && child.signalCode === null && spawnError === undefined
  const describe = (): string => {
    const state = running() ? '' : `the operator exited (code ${child.exitCode}, signal ${child.signalCode}${spawnError !== undefined ? `, ${spawnError.message}` : ''}); `
    return `${state}operator log tail:\n${tail.trimEnd() || '(empty)'}`
  }

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running()) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS)
      await exited
      clearTimeout(killer)
    })()
    return stopping
  }

  const deadline = Date.now() + timeoutMs
  while (true) {
    if (!running()) {
      await exited
      const hint = (spawnError as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' ? ' (build it with scripts/build-operator.sh)' : ''
      throw new Error(`cannot run ${binary}${hint}: ${describe()}`)
    }
    const res = await fetch(`http://127.0.0.1:${probePort}/readyz`).catch(() => undefined)
    if (res?.status === 200 && workersStarted) break
    if (Date.now() >= deadline) {
      await stop()
      throw new Error(`the NIM operator did not start its NIMService controller within ${timeoutMs} ms (probe ${res?.status ?? 'unreachable'}): ${describe()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return { probePort, logs: () => tail, describe, stop }
}
