// Benchmark: `nim-admission validate` on a generated file of 10,000 NIMServices (allowed, denied and
// warned), beside the throughput of parsing alone, in the same run. Goal: validation costs no more than
// parsing. Then, each in its own process (time, CPU and peak memory): a 10,000-document release with
// 1 NIMService in 10 (issue 17 wants >= 5,000 documents/s), a ConfigMap of 200,000 and 400,000 keys
// parsed in full (the duplicate-key check must stay linear), and 25 MB and 50 MB streams (linear time,
// memory bounded by the largest document). Run: node --import tsx bench/cli-validate.ts [documents] [rounds]
// (NIM_BENCH_SCALE=0 skips the per-process scenarios).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { parseAllDocuments, stringify } from 'yaml'
import { spawnSync } from 'node:child_process'
import { manifestsOf, manifestsOfPiece } from '../src/cli/input.js'
import { documentsOf, isNotText } from '../src/cli/documents.js'
import { createReadStream } from 'node:fs'
import { checkSources, validatePaths } from '../src/cli/validate.js'
import { formatText, summarize } from '../src/cli/report.js'

const DOCUMENTS = process.argv[2] === '--child' ? 0 : Number(process.argv[2] ?? 10_000)
const ROUNDS = Number(process.argv[3] ?? 5)

type Json = Record<string, unknown>

const cpu = (averageUtilization: number): Json => ({ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization } } })
const gpuCache = (name: string): Json => ({
  type: 'Object',
  object: { metric: { name: 'gpu_cache_usage_perc' }, describedObject: { apiVersion: 'v1', kind: 'Service', name }, target: { type: 'Value', value: '0.7' } }
})

/** The i-th NIMService: 6 in 10 allowed cleanly, 2 in 10 allowed with warnings, 2 in 10 denied. */
function nimService (i: number): Json {
  const name = `llm-${i}`
  const spec: Json = {
    image: { repository: 'nvcr.io/nim/meta/llama-3.1-8b-instruct', tag: '1.3.3', pullSecrets: ['ngc-secret'] },
    authSecret: 'ngc-api-secret',
    storage: { nimCache: { name: 'meta-llama-3-8b-instruct' } },
    resources: { limits: { 'nvidia.com/gpu': 1 }, requests: { cpu: '4', memory: '16Gi' } },
    expose: { service: { type: 'ClusterIP', port: 8000 } },
    metrics: { enabled: true },
    scale: {
      enabled: true,
      hpa: {
        minReplicas: 2,
        maxReplicas: 8,
        metrics: [gpuCache(name), cpu(70)],
        behavior: { scaleUp: { stabilizationWindowSeconds: 60 }, scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } }
      }
    }
  }
  const hpa = (spec.scale as Json).hpa as Json
  switch (i % 10) {
    case 6: hpa.minReplicas = 1; break // NIM101
    case 7: hpa.metrics = [gpuCache('someone-else')]; spec.inferencePlatform = 'kserve'; break // NIM106, NIM107
    case 8: spec.replicas = 3; break // NIM010
    case 9: hpa.metrics = [{ type: 'Pods', resource: { name: 'cpu' } }]; hpa.maxReplicas = 1; break // NIM021, NIM022...
  }
  return { apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', metadata: { name, namespace: `team-${i % 7}` }, spec }
}

/** A typical other document of a release: a Deployment of ~60 lines. */
function deployment (i: number): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `web-${i}`, namespace: `team-${i % 7}`, labels: { app: `web-${i}`, tier: 'frontend' }, annotations: { 'deployment.kubernetes.io/revision': '3' } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: `web-${i}` } },
      template: {
        metadata: { labels: { app: `web-${i}`, tier: 'frontend' } },
        spec: {
          containers: [{
            name: 'web',
            image: 'registry.example.com/web:1.2.3',
            ports: [{ containerPort: 8080, name: 'http' }],
            env: [{ name: 'MODE', value: 'production' }, { name: 'LOG_LEVEL', value: 'info' }],
            resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
            readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10 }
          }],
          nodeSelector: { 'kubernetes.io/os': 'linux' }
        }
      }
    }
  }
}

/** A release as helm template prints it: 1 document in 10 a NIMService, the rest Deployments. */
export function mixedStream (documents: number): string {
  return Array.from({ length: documents }, (_, i) => `---\n${stringify(i % 10 === 0 ? nimService(i) : deployment(i))}`).join('')
}

/** One ConfigMap with `keys` data keys (the case that made the yaml library's duplicate check quadratic). */
export function bigConfigMap (keys: number): string {
  const lines = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: big', 'data:']
  for (let i = 0; i < keys; i++) lines.push(`  key-${i}: "value ${i}"`)
  return lines.join('\n') + '\n'
}

/** A stream of about `mb` megabytes: the mixed release, repeated. */
export function bigStream (mb: number): string {
  const unit = mixedStream(1000)
  return unit.repeat(Math.max(1, Math.round(mb * 1e6 / Buffer.byteLength(unit))))
}

interface Row { mode: string, ms: number }

function time (mode: string, body: () => unknown): Row {
  const started = performance.now()
  body()
  return { mode, ms: performance.now() - started }
}

async function timeAsync (mode: string, body: () => Promise<unknown>): Promise<Row> {
  const started = performance.now()
  await body()
  return { mode, ms: performance.now() - started }
}

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nim-bench-'))
  try {
    const file = join(dir, 'nimservices.yaml')
    const text = Array.from({ length: DOCUMENTS }, (_, i) => `---\n${stringify(nimService(i))}`).join('')
    writeFileSync(file, text)
    console.log(`${DOCUMENTS} NIMServices, ${(Buffer.byteLength(text) / 1e6).toFixed(1)} MB of YAML, ${ROUNDS} rounds (best of), node ${process.version}`)

    const source = { file, text }
    let sanity = ''
    const modes: Array<() => Promise<Row>> = [
      // What the goal compares with: the yaml library's parse and toJS, nothing else.
      async () => time('parse only (parseAllDocuments + toJS)', () => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as unknown)),
      // The CLI's reading: YAML 1.1 scalars, a LineCounter for positions, List expansion, one document at a time.
      async () => time('parse + positions (manifestsOf)', () => {
        let n = 0
        for (const m of manifestsOf({ file, text: readFileSync(file, 'utf8') })) if ('object' in m) n++
        return n
      }),
      // The verdict: parse + positions + validateNIMService, every finding placed.
      async () => time('validate (parse + positions + verdict)', () => checkSources([{ ...source, text: readFileSync(file, 'utf8') }])),
      // The whole command minus the process: read, check, format the text report.
      async () => timeAsync('validate command (read + check + text)', async () => {
        const report = await validatePaths([file], { readStdin: async () => Buffer.alloc(0), stderr: () => {} })
        sanity = formatText(report, { strict: false }).split('\n').at(-2) ?? ''
        return summarize(report)
      })
    ]
    const best = new Map<string, number>()
    for (let round = 0; round <= ROUNDS; round++) {
      // Each round starts with a different mode, so that none always runs on a fresh heap.
      for (let k = 0; k < modes.length; k++) {
        const row = await (modes[(round + k) % modes.length] as () => Promise<Row>)()
        if (round === 0) continue // warm-up
        best.set(row.mode, Math.min(best.get(row.mode) ?? Infinity, row.ms))
      }
    }
    const order = ['parse only (parseAllDocuments + toJS)', 'parse + positions (manifestsOf)', 'validate (parse + positions + verdict)', 'validate command (read + check + text)']
    const parseMs = best.get(order[0] as string) as number
    const rows = order.map((mode): [string, number] => [mode, best.get(mode) as number]).map(([mode, ms]) => [mode, ms.toFixed(0), Math.round(DOCUMENTS / (ms / 1000)).toLocaleString('en-US'), `${(ms / parseMs).toFixed(2)}x`])
    const header = ['mode', 'ms', 'docs/s', 'vs parse']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)))
    const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')
    console.log(line(header))
    console.log(widths.map((w) => '-'.repeat(w)).join('  '))
    for (const r of rows) console.log(line(r))
    console.log(`report: ${sanity}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface ChildRow { scenario: string, mb: number, documents: number, ms: number, cpuMs: number, maxRssMb: number }

/** One scenario in this process (run as a child): the CLI's own reading and checking of one file. */
async function child (mode: string, file: string): Promise<void> {
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  let documents = 0
  if (mode === 'full') {
    // Every document parsed in full (duplicate keys checked), as a NIMService is.
    const next = { index: 0 }
    for await (const piece of documentsOf(createReadStream(file, { highWaterMark: 1 << 20 }))) {
      if (isNotText(piece)) throw new Error(piece.message)
      for (const m of manifestsOfPiece(file, piece, next, true)) if ('object' in m) documents++
      else if ('message' in m) throw new Error(m.message)
    }
  } else {
    const report = await validatePaths([file], { readStdin: async () => Buffer.alloc(0), stderr: (t) => { process.stderr.write(t) } })
    documents = report.documents
  }
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(JSON.stringify({ documents, ms: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n')
}

function scenarios (dir: string): ChildRow[] {
  const cases: Array<[string, string, string]> = [
    ['release: 10,000 documents, 1 in 10 a NIMService', 'check', mixedStream(10_000)],
    ['ConfigMap, 200,000 keys, parsed in full', 'full', bigConfigMap(200_000)],
    ['ConfigMap, 400,000 keys, parsed in full', 'full', bigConfigMap(400_000)],
    ['ConfigMap, 400,000 keys (validate)', 'check', bigConfigMap(400_000)],
    ['stream, 25 MB (validate)', 'check', bigStream(25)],
    ['stream, 50 MB (validate)', 'check', bigStream(50)]
  ]
  return cases.map(([scenario, mode, text], i) => {
    const file = join(dir, `scenario-${i}.yaml`)
    writeFileSync(file, text)
    const res = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, file], { encoding: 'utf8', maxBuffer: 1 << 20 })
    if (res.status !== 0) throw new Error(`${scenario}: ${res.stderr}`)
    rmSync(file)
    return { scenario, mb: Buffer.byteLength(text) / 1e6, ...(JSON.parse(res.stdout) as Omit<ChildRow, 'scenario' | 'mb'>) }
  })
}

function printScenarios (rows: ChildRow[]): void {
  console.log('\nscenario (own process)                            MB  documents     ms  cpu ms  docs/s (cpu)  MB/s (cpu)  peak RSS MB')
  for (const r of rows) {
    console.log(`${r.scenario.padEnd(48)} ${r.mb.toFixed(1).padStart(5)} ${String(r.documents).padStart(10)} ${r.ms.toFixed(0).padStart(6)} ${r.cpuMs.toFixed(0).padStart(7)} ${Math.round(r.documents / (r.cpuMs / 1000)).toLocaleString('en-US').padStart(13)} ${(r.mb / (r.cpuMs / 1000)).toFixed(1).padStart(11)} ${r.maxRssMb.toFixed(0).padStart(12)}`)
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] as string, process.argv[4] as string)
} else if (process.env.NIM_BENCH_IMPORT === undefined) {
  await main()
  if (process.env.NIM_BENCH_SCALE !== '0') {
    const dir = mkdtempSync(join(tmpdir(), 'nim-bench-scale-'))
    try {
      printScenarios(scenarios(dir))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
