// Peak memory of `nim-admission apply` at scale, against the real test kube-apiserver: N NIMServices
// (default 10,000, spread over 10 namespaces, as the webhook stores them: annotated, with managedFields)
// and as many HPAs as the NIM operator creates for them (1% edited by hand, so that drift is reported),
// then the applier (the built CLI, --mode verify --webhook-configuration, as the chart runs it) in its own
// process, sampled from /proc until every NIMService is decided and one resync has passed.
//
//   node --import tsx bench/applier-memory.ts [--count 10000] [--concurrency 16] [--resync 20s] [--heap default,128]
//
// Prints, for each --heap (V8's --max-old-space-size in MiB, or default), the applier's peak RSS (VmHWM),
// its RSS and heap once settled, and how long it took to decide every NIMService.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { Agent, request } from 'node:https'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { KubeConfig } from '@kubernetes/client-node'
import { startApiserver } from '../test/helpers/apiserver.js'
import { kubectlOk } from '../test/helpers/kube.js'
import { upstreamCrd, waitForCrdsEstablished } from '../test/helpers/crd.js'
import { freePort } from '../test/helpers/ports.js'
import { autoscaled } from '../test/helpers/nimservice.js'
import { mutateNIMService, renderHpa } from '../src/nimservice/index.js'
import { PACKAGE_ROOT } from '../src/paths.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, concurrency: { type: 'string', default: '16' }, resync: { type: 'string', default: '20s' }, heap: { type: 'string', default: 'default,128' } } })
const COUNT = Number(values.count)
const CONCURRENCY = Number(values.concurrency)
const NAMESPACES = 10
const OUT = join(PACKAGE_ROOT, '.cache', 'bench-dist')
const log = (line: string): void => { process.stderr.write(`# ${line}\n`) }

// The applier as shipped: compiled JavaScript with the prebuilt validator, not tsx.
log('compiling to .cache/bench-dist')
spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', join(OUT, 'src'), '--rootDir', 'src'], { cwd: PACKAGE_ROOT, stdio: 'ignore' })
const main = join(OUT, 'src', 'cli', 'main.js')
if (!existsSync(main)) throw new Error(`tsc wrote no ${main}`)
spawnSync(process.execPath, [join(OUT, 'src', 'nimservice', 'build-validator.js')], { cwd: PACKAGE_ROOT, stdio: 'ignore' })

const api = await startApiserver()
const kc = new KubeConfig()
kc.loadFromFile(api.kubeconfig)
const opts: Json = {}
await kc.applyToHTTPSOptions(opts)
const agent = new Agent({ ca: opts.ca, cert: opts.cert, key: opts.key, keepAlive: true, maxSockets: CONCURRENCY })
const server = new URL(api.url)

function post (path: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.hostname, port: server.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`POST ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`)))
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

async function pool (n: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await work(next++)
  }))
}

try {
  const k = (args: string[], input?: string): string => kubectlOk(api.kubeconfig, args, input)
  k(['apply', '--server-side', '-f', '-'], JSON.stringify(upstreamCrd()))
  await waitForCrdsEstablished(api.kubeconfig, ['nimservices.apps.nvidia.com'])
  for (let i = 0; i < NAMESPACES; i++) k(['create', 'namespace', `bench-${i}`])
  for (let i = 0; i < NAMESPACES; i++) k(['label', 'namespace', `bench-${i}`, 'nim-admission.io/enabled=true'])

  const t0 = Date.now()
  // A NIMService as users write them: an image, env, resources, storage, labels; then the webhook's annotations.
  const nimFor = (i: number): Json => {
    const ns = `bench-${i % NAMESPACES}`
    const object: Json = { ...autoscaled(), metadata: { name: `llm-${i}`, namespace: ns, labels: { team: `t${i % 7}`, 'app.kubernetes.io/part-of': 'bench' } } }
    object.spec = {
      ...object.spec,
      env: Array.from({ length: 8 }, (_, j) => ({ name: `NIM_SETTING_${j}`, value: `value-${j}-${i}` })),
      storage: { pvc: { create: true, size: '100Gi', volumeAccessMode: 'ReadWriteOnce' } },
      expose: { service: { type: 'ClusterIP', port: 8000 } },
      labels: { tier: 'gpu' }
    }
    return mutateNIMService({ operation: 'CREATE', object, namespace: ns } as never).object as Json
  }
  await pool(COUNT, async (i) => {
    const nim = nimFor(i)
    await post(`/apis/apps.nvidia.com/v1alpha1/namespaces/${nim.metadata.namespace as string}/nimservices`, nim)
  })
  log(`created ${COUNT} NIMServices in ${Date.now() - t0} ms`)
  // The HPAs the operator would create (owner uids are not checked by verify; a fixed one keeps this fast).
  const t1 = Date.now()
  await pool(COUNT, async (i) => {
    const nim = nimFor(i)
    const hpa = renderHpa(nim, nim.metadata.namespace) as Json
    hpa.metadata.labels['app.kubernetes.io/managed-by'] = 'k8s-nim-operator'
    hpa.metadata.ownerReferences = [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: nim.metadata.name, uid: '00000000-0000-0000-0000-000000000000', controller: true }]
    if (i % 100 === 0) hpa.spec.maxReplicas = 50 // edited by hand
    await post(`/apis/autoscaling/v2/namespaces/${nim.metadata.namespace as string}/horizontalpodautoscalers`, hpa)
  })
  log(`created ${COUNT} HPAs in ${Date.now() - t1} ms`)

  // Registered only now, so that creating the objects above did not call it.
  k(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'nim-admission' },
    webhooks: [{ name: 'mutate.nimservices.nim-admission.io', clientConfig: { url: 'https://127.0.0.1:1/mutate' }, rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'] }], namespaceSelector: { matchLabels: { 'nim-admission.io/enabled': 'true' } }, sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 'Ignore', timeoutSeconds: 1 }]
  }))

  async function measure (nodeArgs: string[]): Promise<void> {
    const port = await freePort()
    const child = spawn(process.execPath, [...nodeArgs, main, 'apply', '--kubeconfig', api.kubeconfig, '--metrics-host', '127.0.0.1', '--metrics-port', String(port), '--log-level', 'error', '--webhook-configuration', 'nim-admission', '--resync-period', values.resync as string, '--grace', '5s'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const started = Date.now()
    const status = (): { rss: number, hwm: number } => {
      const text = readFileSync(`/proc/${child.pid as number}/status`, 'utf8')
      const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(text)?.[1] ?? 0)
      return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 }
    }
    const metrics = async (): Promise<string> => await (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.text() ?? ''
    const sum = (text: string, name: string): number => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
    let decidedAt: number | undefined
    let peak = 0
    const resyncMs = (Number(/^(\d+)/.exec(values.resync as string)?.[1] ?? 20)) * 1000
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      if (child.exitCode !== null) throw new Error(`the applier exited with ${child.exitCode}`)
      peak = Math.max(peak, status().rss)
      const text = await metrics()
      const decided = sum(text, 'nim_admission_applier_nimservices')
      if (decidedAt === undefined && decided >= COUNT && sum(text, 'nim_admission_applier_queue_depth') === 0) {
        decidedAt = Date.now()
        const drift = text.split('\n').find((l) => l.startsWith('nim_admission_applier_findings{reason="HPADrift"}'))
        log(`every NIMService decided ${decidedAt - started} ms after start; ${drift ?? 'no drift'}`)
      }
      if (decidedAt !== undefined && Date.now() - decidedAt > resyncMs + 5_000) break
    }
    const text = await metrics()
    const s = status()
    const heap = sum(text, 'nodejs_heap_size_used_bytes')
    const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`
    process.stdout.write(`${JSON.stringify({ node: nodeArgs.join(' ') || '(defaults)', nimServices: COUNT, hpas: COUNT, peakRss: mib(Math.max(peak, s.hwm)), vmHWM: mib(s.hwm), rssSettled: mib(s.rss), heapUsedSettled: mib(heap), firstDecisionOfAllMs: (decidedAt ?? 0) - started })}\n`)
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  }
  for (const heap of (values.heap as string).split(',')) await measure(heap === 'default' ? [] : [`--max-old-space-size=${heap}`])
} finally {
  agent.destroy()
  await api.stop()
}
