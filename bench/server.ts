// `npm run bench`: the real webhook server against a bare fastify HTTPS endpoint, in one run, over HTTPS
// with keep-alive (autocannon), with the seed's multi-metric NIMService review (~2.3 KB).
//
//   node --import tsx bench/server.ts [--duration 10] [--connections 10] [--rounds 3] [--soak]
//        [--soak-duration 300] [--rate 1000] [--rate-connections 2,10] [--cpu-prof] [--no-pin]
//        [--main dist/src/cli/main.js] [--log-level info]
//
// Both servers run as child processes, so the load generator (this process) does not share their event
// loop. With `taskset` and at least two CPUs, the load generator is pinned to CPU 0 and the servers to
// CPU 1 (`--no-pin` turns that off): unpinned, the generator, the server and V8's helper threads
// scramble for the same cores and the same build measured anywhere from 0.45 to 0.6 of bare between
// runs. Bare and nim-admission alternate within each round, and the median round is reported.
// Prints a markdown table for the README.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { get } from 'node:http'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { review } from '../test/helpers/nimservice.js'
import { seedExample } from '../test/fixtures/seed-examples.js'
import { freePort } from '../test/helpers/ports.js'

// ---- options --------------------------------------------------------------------------------------

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const value = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] as string : fallback
}
const seconds = (s: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s)
  if (m === null) throw new Error(`not a duration: ${s}`)
  const n = Number(m[1])
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n
}
const DURATION = seconds(value('duration', '10'))
/** Throughput ratios to bare fastify that must not fall (see the README's performance table). */
const GUARD = { validate: 0.45, mutate: 0.32 }
const WARMUP = Math.min(3, DURATION)
const CONNECTIONS = Number(value('connections', '10'))
const ROUNDS = Number(value('rounds', '3'))
const SOAK = flag('soak')
const SOAK_DURATION = seconds(value('soak-duration', '300'))
const FIXED_RATE = Number(value('rate', '1000'))
/** autocannon paces each connection on its own timer, all in step: 10 connections arrive as bursts of 10. */
const RATE_CONNECTIONS = value('rate-connections', `2,${CONNECTIONS}`).split(',').map(Number)
const CPU_PROF = flag('cpu-prof')
const PIN = !flag('no-pin') && cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0
/**
 * The command line for a server process: on CPU 1 when pinning. Children inherit this process's
 * affinity (CPU 0 once pinned), so a server started with `pin` false is given all CPUs back.
 */
const serverCommand = (args: string[], pin = PIN): [string, string[]] =>
  PIN ? ['taskset', ['-c', pin ? '1' : `0-${cpus().length - 1}`, process.execPath, ...args]] : [process.execPath, args]
const MAIN = resolve(value('main', join(ROOT, 'dist', 'src', 'cli', 'main.js')))
const LOG_LEVEL = value('log-level', 'info')
const COMMAND = `node --import tsx bench/server.ts ${argv.join(' ')}`.trim()

if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`)

// ---- autocannon (CommonJS, untyped) -----------------------------------------------------------------

interface CannonResult { requests: { average: number, total: number }, errors: number, timeouts: number, non2xx: number, duration: number }
interface CannonInstance extends PromiseLike<CannonResult> { on (event: 'response', f: (client: unknown, status: number, bytes: number, ms: number) => void): void }
type Cannon = (opts: Record<string, unknown>) => CannonInstance
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon

// ---- processes --------------------------------------------------------------------------------------

function httpStatus (port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 500 }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

interface Server { name: string, child: ChildProcess, port: number, metricsPort?: number, startMs: number }

const devNull = openSync('/dev/null', 'w')

/** The real `serve`, logging as in production (one line per review) to /dev/null. */
async function startReal (certDir: string, extraNodeArgs: string[] = [], pin = PIN): Promise<Server> {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const started = performance.now()
  const child = spawn(...serverCommand([...extraNodeArgs, MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--metrics-host', '127.0.0.1', '--metrics-port', String(metricsPort), '--cert-dir', certDir, '--shutdown-delay', '0s', '--log-level', LOG_LEVEL], pin), { stdio: ['ignore', devNull, 'inherit'] })
  const deadline = Date.now() + 20_000
  while (await httpStatus(metricsPort, '/readyz') !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not become ready (exit ${String(child.exitCode)})`)
    await sleep(2)
  }
  return { name: 'nim-admission', child, port, metricsPort, startMs: performance.now() - started }
}

async function startBare (certDir: string): Promise<Server> {
  const port = await freePort()
  const started = performance.now()
  const child = spawn(...serverCommand(['--import', 'tsx', join(ROOT, 'bench', 'bare-server.ts'), String(port), certDir]), { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bare server did not start')), 20_000)
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', () => { clearTimeout(timer); resolve() })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bare server exited ${String(code)}`)) })
  })
  return { name: 'bare fastify', child, port, startMs: performance.now() - started }
}

async function stop (s: Server): Promise<void> {
  if (s.child.exitCode !== null) return
  const exited = new Promise((resolve) => s.child.once('exit', resolve))
  s.child.kill('SIGTERM')
  await Promise.race([exited, sleep(10_000).then(() => s.child.kill('SIGKILL'))])
}

/** Resident memory of a process from /proc: now, and the peak so far (VmHWM). */
function rss (pid: number | undefined): { now: number, peak: number } {
  try {
    const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8')
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0)
    return { now: kb('VmRSS') * 1024, peak: kb('VmHWM') * 1024 }
  } catch {
    return { now: 0, peak: 0 }
  }
}

/** CPU time (user + system) a process has used, in microseconds, from /proc/<pid>/stat (100 ticks/s). */
function cpuMicros (pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${String(pid)}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return NaN
  }
}

// ---- load -------------------------------------------------------------------------------------------

const BODY = JSON.stringify(review(seedExample('multi-metric')))

interface Run { label: string, rps: number, p50: number, p99: number, p999: number, total: number, failed: number, cpuPerReq: number }

function percentile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

/** Drives `path` for `durationS`; latency percentiles from every response time (ms, not rounded). */
async function drive (label: string, server: Server, path: string, durationS: number, opts: { rate?: number, connections?: number } = {}): Promise<Run> {
  const times: number[] = []
  const instance = autocannon({
    url: `https://127.0.0.1:${server.port}${path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: opts.connections ?? CONNECTIONS,
    pipelining: 1,
    duration: durationS,
    servername: 'localhost',
    ...(opts.rate !== undefined ? { overallRate: opts.rate } : {})
  })
  instance.on('response', (_c, status, _b, ms) => { if (status === 200) times.push(ms) })
  const cpu0 = cpuMicros(server.child.pid)
  const result = await instance
  const cpu = cpuMicros(server.child.pid) - cpu0
  const sorted = Float64Array.from(times).sort()
  return {
    label,
    rps: result.requests.total / result.duration,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    total: result.requests.total,
    failed: result.errors + result.timeouts + result.non2xx,
    cpuPerReq: cpu / Math.max(1, result.requests.total)
  }
}

// ---- CPU profile summary ------------------------------------------------------------------------------

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }

function summariseProfile (dir: string): string[] {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) return ['(no profile written)']
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[], samples: number[] }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let busy = 0
  for (const id of profile.samples) {
    const n = byId.get(id)
    if (n === undefined || n.callFrame.functionName === '(idle)') continue
    busy++
    const where = n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')
    const key = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + 1)
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, n]) => `${(100 * n / busy).toFixed(1).padStart(5)}%  ${k}`)
}

// ---- main ---------------------------------------------------------------------------------------------

const fmt = (ms: number): string => Number.isNaN(ms) ? 'n/a' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0)

async function main (): Promise<void> {
  // Every thread of this process (autocannon's sockets, TLS) onto CPU 0; the servers get CPU 1.
  if (PIN) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
  const loadBefore = loadavg()[0] ?? 0
  const certDir = mkdtempSync(join(tmpdir(), 'nim-bench-'))
  const profDir = mkdtempSync(join(tmpdir(), 'nim-bench-prof-'))
  const servers: Server[] = []
  try {
    // First start generates the development certificates; its time is not the cold start.
    const first = await startReal(certDir)
    await stop(first)
    // Cold starts are not pinned: nothing else runs then, and V8 compiles on helper threads.
    const colds: number[] = []
    for (let i = 0; i < 5; i++) {
      const s = await startReal(certDir, [], false)
      colds.push(s.startMs)
      await stop(s)
    }
    colds.sort((a, b) => a - b)

    const real = await startReal(certDir, CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])
    const bare = await startBare(certDir)
    servers.push(real, bare)
    console.error(`bench: ${BODY.length}-byte review, ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} round(s); warming up`)
    for (const s of [bare, real]) for (const path of ['/validate', '/mutate']) await drive('warm-up', s, path, WARMUP)

    const runs: Record<string, Run[]> = {}
    for (let r = 0; r < ROUNDS; r++) {
      for (const path of ['/validate', '/mutate']) {
        for (const s of [bare, real]) {
          const run = await drive(`${s.name} ${path}`, s, path, DURATION)
          ;(runs[run.label] ??= []).push(run)
          console.error(`  ${run.label}: ${run.rps.toFixed(0)} req/s, p99 ${fmt(run.p99)} ms, server CPU ${run.cpuPerReq.toFixed(0)} µs/review${run.failed > 0 ? `, ${run.failed} FAILED` : ''}`)
        }
      }
    }
    // Median round per scenario (by throughput).
    const pick = (label: string): Run => {
      const list = [...(runs[label] ?? [])].sort((a, b) => a.rps - b.rps)
      return list[Math.floor(list.length / 2)] as Run
    }
    const fixed: Run[] = []
    for (const connections of RATE_CONNECTIONS) {
      for (const path of ['/validate', '/mutate']) {
        fixed.push(await drive(`nim-admission ${path} at ${FIXED_RATE} req/s, ${connections} conn.`, real, path, DURATION, { rate: FIXED_RATE, connections }))
      }
    }

    let soak: string[] = []
    if (SOAK) {
      console.error(`bench: soak, ${SOAK_DURATION} s at ${FIXED_RATE} req/s on each endpoint`)
      const samples: Array<[number, number]> = []
      const t0 = Date.now()
      const sampler = setInterval(() => samples.push([(Date.now() - t0) / 1000, rss(real.child.pid).now]), 5000)
      const soakRuns = await Promise.all([
        drive('soak /validate', real, '/validate', SOAK_DURATION, { rate: FIXED_RATE }),
        drive('soak /mutate', real, '/mutate', SOAK_DURATION, { rate: FIXED_RATE })
      ])
      clearInterval(sampler)
      // Growth: mean RSS of the last fifth against the first fifth after the first minute.
      const settled = samples.filter(([t]) => t >= Math.min(60, SOAK_DURATION / 5))
      const fifth = Math.max(1, Math.floor(settled.length / 5))
      const mean = (xs: Array<[number, number]>): number => xs.reduce((n, [, v]) => n + v, 0) / Math.max(1, xs.length)
      const early = mean(settled.slice(0, fifth))
      const late = mean(settled.slice(-fifth))
      const growth = late - early
      soak = [
        `| soak ${SOAK_DURATION} s, ${FIXED_RATE} req/s per endpoint | ${soakRuns.reduce((n, r) => n + r.total, 0)} reviews, ${soakRuns.reduce((n, r) => n + r.failed, 0)} failed; RSS ${mb(early)} MB after warm-up, ${mb(late)} MB at the end (${growth >= 0 ? '+' : ''}${(growth / 1048576).toFixed(1)} MB) | no growth | ${growth < 8 * 1048576 ? 'yes' : 'NO'} |`
      ]
      console.error(`  RSS samples (s, MB): ${samples.map(([t, v]) => `${t.toFixed(0)}:${mb(v)}`).join(' ')}`)
    }

    const peak = rss(real.child.pid).peak
    const bareV = pick('bare fastify /validate')
    const bareM = pick('bare fastify /mutate')
    const realV = pick('nim-admission /validate')
    const realM = pick('nim-admission /mutate')
    const ratioV = realV.rps / bareV.rps
    const ratioM = realM.rps / bareM.rps
    const failed = [...Object.values(runs).flat(), ...fixed].reduce((n, r) => n + r.failed, 0)
    await stop(real)
    const profile = CPU_PROF ? summariseProfile(profDir) : []
    await stop(bare)

    const cpu = cpus()[0]?.model ?? 'unknown CPU'
    const row = (r: Run, ratio?: number): string => `| ${r.label} | ${r.rps.toFixed(0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.p999)} | ${r.cpuPerReq.toFixed(0)} | ${ratio === undefined ? '' : ratio.toFixed(2)} |`
    const ok = (b: boolean): string => (b ? 'yes' : 'NO')
    const coldMedian = colds[Math.floor(colds.length / 2)] ?? NaN
    const lines = [
      `Machine: ${cpus().length} CPUs (${cpu}), Node ${process.version}, ${process.platform}. Command: \`${COMMAND}\`. ` +
        `Review: the seed's multi-metric NIMService, ${BODY.length} bytes; HTTPS with keep-alive, ${CONNECTIONS} connections, ${DURATION} s per run (median of ${ROUNDS} alternating rounds); server log level ${LOG_LEVEL}; ${PIN ? 'load generator pinned to CPU 0, servers to CPU 1' : 'nothing pinned: load generator and servers share the CPUs'}. ` +
        `Load average before/after: ${loadBefore.toFixed(2)}/${(loadavg()[0] ?? 0).toFixed(2)} (other work on the machine skews throughput more than CPU per review).`,
      '',
      '| scenario | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/review | ratio to bare |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      row(bareV), row(realV, ratioV), row(bareM), row(realM, ratioM),
      ...fixed.map((r) => row(r)),
      '',
      '| target | measured | goal | met |',
      '| --- | --- | --- | --- |',
      // No longer targets (issue 17): guards. The floors are the last measured ratios (0.53, 0.38) less this
      // shared machine's run-to-run noise (about 15%); below one, the bench exits non-zero.
      `| /validate throughput vs bare (guard) | ${ratioV.toFixed(2)} | ≥ ${GUARD.validate} | ${ok(ratioV >= GUARD.validate)} |`,
      `| /mutate throughput vs bare (guard) | ${ratioM.toFixed(2)} | ≥ ${GUARD.mutate} | ${ok(ratioM >= GUARD.mutate)} |`,
      ...fixed.map((r) => `| p99 ${r.label.replace('nim-admission ', '')} | ${fmt(r.p99)} ms (${r.rps.toFixed(0)} req/s achieved) | < 3 ms | ${ok(r.p99 < 3)} |`),
      `| peak RSS of the server | ${mb(peak)} MB | < 120 MB | ${ok(peak > 0 && peak < 120 * 1048576)} |`,
      `| cold start to /readyz 200 (median of 5; max) | ${coldMedian.toFixed(0)} ms; ${(colds[colds.length - 1] ?? NaN).toFixed(0)} ms | < 500 ms | ${ok(coldMedian < 500)} |`,
      ...soak,
      `| failed requests (errors, timeouts, non-2xx) | ${failed} | 0 | ${ok(failed === 0)} |`
    ]
    console.log(lines.join('\n'))
    if (ratioV < GUARD.validate || ratioM < GUARD.mutate) {
      console.log(`guard: throughput against bare fastify fell below ${GUARD.validate} (/validate) or ${GUARD.mutate} (/mutate)`)
      process.exitCode = 1
    }
    if (CPU_PROF) console.log(['', 'CPU profile of the server (whole run, start-up included), self time as a share of busy samples:', ...profile].join('\n'))
  } finally {
    for (const s of servers) await stop(s)
    rmSync(certDir, { recursive: true, force: true })
    rmSync(profDir, { recursive: true, force: true })
  }
}

await main()
