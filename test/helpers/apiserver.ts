// Starts the real kube-apiserver + embedded etcd test harness (test/apiserver, built by
// scripts/build-apiserver.sh) and waits for its READY line.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../src/paths.js'

export interface ApiserverOptions {
  /** Path to the harness binary; defaults to apiserverBinary(). */
  binary?: string
  /** How long to wait for READY; default 180 s (bootstrap RBAC alone can take a minute on a loaded 2-core box). */
  timeoutMs?: number
  /** Extra kube-apiserver flags, passed after `--`. */
  args?: string[]
}

export interface Apiserver {
  kubeconfig: string
  url: string
  /**
   * SIGTERM, then wait for exit (SIGKILL after 15 s). Rejects, with the stderr tail, when the
   * harness did not exit with code 0 (its temp dir may then be left behind). Safe to call twice.
   */
  stop(): Promise<void>
}

const STDERR_TAIL_BYTES = 16 * 1024
const KILL_AFTER_MS = 15_000

/** Path of the harness binary: <repo>/.cache/bin/nim-test-apiserver. */
export function apiserverBinary (): string {
  return join(PACKAGE_ROOT, '.cache', 'bin', 'nim-test-apiserver')
}

/** True when a `go` toolchain is on PATH (needed by scripts/build-apiserver.sh). */
export function haveGo (): boolean {
  const r = spawnSync('go', ['version'], { stdio: 'ignore', timeout: 10_000 })
  return r.status === 0
}

export async function startApiserver (opts: ApiserverOptions = {}): Promise<Apiserver> {
  const binary = opts.binary ?? apiserverBinary()
  const timeoutMs = opts.timeoutMs ?? 180_000
  const args = opts.args !== undefined && opts.args.length > 0 ? ['--', ...opts.args] : []

  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderrTail = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES)
  })

  // Settles on exit, or on a spawn error (e.g. ENOENT), after which no 'exit' event comes.
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', () => resolve({ code: null, signal: null }))
  })
  // Never leave an apiserver behind if the test process exits without calling stop().
  const onProcessExit = (): void => { child.kill('SIGTERM') }
  process.once('exit', onProcessExit)
  void exited.then(() => process.removeListener('exit', onProcessExit))

  const tail = (): string => stderrTail.trim() === '' ? '(no stderr)' : `stderr tail:\n${stderrTail.trimEnd()}`

  let ready: { kubeconfig: string, url: string }
  try {
    ready = await new Promise<{ kubeconfig: string, url: string }>((resolve, reject) => {
      let stdout = ''
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`${binary} was not ready after ${timeoutMs} ms; ${tail()}`))
      }, timeoutMs)
      const fail = (err: Error): void => { clearTimeout(timer); reject(err) }
      child.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' ? ' (build it with scripts/build-apiserver.sh)' : ''
        fail(new Error(`cannot start ${binary}${hint}: ${err.message}`))
      })
      void exited.then(({ code, signal }) => {
        // Give stderr a moment to drain so the tail holds the reason.
        setTimeout(() => fail(new Error(`${binary} exited before READY (code ${code}, signal ${signal}); ${tail()}`)), 50)
      })
      child.stdout.setEncoding('utf8')
      child.stdout.on('data', (chunk: string) => {
        stdout += chunk
        let nl: number
        while ((nl = stdout.indexOf('\n')) >= 0) {
          const line = stdout.slice(0, nl).trim()
          stdout = stdout.slice(nl + 1)
          if (!line.startsWith('READY ')) continue
          try {
            const info = JSON.parse(line.slice('READY '.length)) as { kubeconfig?: unknown, url?: unknown }
            if (typeof info.kubeconfig !== 'string' || typeof info.url !== 'string') throw new Error('missing kubeconfig or url')
            clearTimeout(timer)
            resolve({ kubeconfig: info.kubeconfig, url: info.url })
          } catch (err) {
            child.kill('SIGKILL')
            fail(new Error(`bad READY line ${JSON.stringify(line)}: ${(err as Error).message}`))
          }
        }
      })
    })
  } catch (err) {
    await exited
    throw err
  }
  child.stdout.resume() // keep draining; nothing else is expected on stdout

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS)
      const { code, signal } = await exited
      clearTimeout(killer)
      if (code !== 0) throw new Error(`${binary} did not stop cleanly (code ${code}, signal ${signal}); ${tail()}`)
    })()
    return stopping
  }

  return { ...ready, stop }
}

/** Throws, saying how to build it, when the harness binary is missing: e2e suites never skip silently. */
export function requireApiserverBinary (): void {
  if (!existsSync(apiserverBinary())) {
    throw new Error(`the test kube-apiserver is not built (${apiserverBinary()}): run \`bash scripts/build-apiserver.sh\` (needs Go), or \`npm test\`, which builds it`)
  }
}
