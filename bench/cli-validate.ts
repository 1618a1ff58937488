// Benchmark: `nim-admission validate` on a generated file of 10,000 NIMServices (allowed, denied and
// warned), beside the throughput of parsing alone, in the same run. Goal: validation costs no more than
// parsing. Run: node --import tsx bench/cli-validate.ts [documents] [rounds]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseAllDocuments, stringify } from 'yaml'
import { manifestsOf } from '../src/cli/input.js'
import { checkSources, validatePaths } from '../src/cli/validate.js'
import { formatText, summarize } from '../src/cli/report.js'

const DOCUMENTS = Number(process.argv[2] ?? 10_000)
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

await main()
