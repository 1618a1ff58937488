// `npm run bench:latency`: the latency a `kubectl apply` feels, on the project's real kube-apiserver
// (test/apiserver): sequential server-side dry-run creates of the seed's multi-metric NIMService through the
// API, over one keep-alive HTTPS connection with the kubeconfig's credentials, side by side:
//   none           the CRD alone (its schema and CEL rules), no webhook
//   bare           a minimal fastify HTTPS server that parses the review and allows it, registered as
//                  validating and mutating webhook exactly like nim-admission
//   nim-admission  `serve` from dist/, both webhooks
// Scenarios alternate within each round (the apiserver's load and caches drift over a run); every request of a
// scenario is pooled. Prints p50, p99 and the added latency of nim-admission over the bare webhooks' as a ratio.
//
//   node --import tsx bench/apply-latency.ts [--requests 300] [--rounds 3] [--warmup 50] [--object multi-metric]
//        [--profile] [--pprof DIR]
//
// Both webhooks of every scenario are registered as the chart registers them, with the chart's matchConditions
// on the mutating one (rendered with helm): `--object multi-node-without-autoscaling` (any seed example) shows
// a NIMService for which the apiserver skips /mutate.
//
// --profile adds scenarios that split nim-admission's added time: each webhook alone, and the bare server
// answering /mutate with nim-admission's own patch (what the apiserver's applying of the patch costs), and
// prints the apiserver's own view of each webhook call (apiserver_admission_webhook_admission_duration_seconds)
// beside nim-admission's time to judge (nim_admission_request_duration_seconds) and the response sizes.
// --pprof DIR also takes a 10 s CPU profile of the apiserver (its /debug/pprof/profile) under each of bare,
// bare + nim patch and nim-admission, into DIR/<scenario>.pprof (read them with `go tool pprof -top`).
//
// Internally `--serve-bare <port> <cert-dir> [patch-file]` runs the bare server (the patch file makes /mutate
// answer that JSON Patch).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request, type RequestOptions } from 'node:https'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { KubeConfig } from '@kubernetes/client-node'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))
const argv = process.argv.slice(2)
const value = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] as string : fallback
}

// ---- the bare webhook ------------------------------------------------------------------------------

async function serveBare ([portArg, certDir, patchFile]: string[]): Promise<void> {
  if (portArg === undefined || certDir === undefined) throw new Error('usage: --serve-bare <port> <cert-dir> [patch-file]')
  const { default: Fastify } = await import('fastify')
  const app = Fastify({
    https: { cert: readFileSync(join(certDir, 'tls.crt')), key: readFileSync(join(certDir, 'tls.key')), minVersion: 'TLSv1.2' },
    bodyLimit: 10 * 1024 * 1024,
    keepAliveTimeout: 95_000
  })
  const patch = patchFile === undefined ? undefined : readFileSync(patchFile, 'utf8').trim()
  const answer = (mutate: boolean) => async (req: { body: unknown }): Promise<unknown> => {
    const body = req.body as { apiVersion?: string, kind?: string, request?: { uid?: string } }
    const response = { uid: body.request?.uid, allowed: true, ...(mutate && patch !== undefined ? { patchType: 'JSONPatch', patch } : {}) }
    return { apiVersion: body.apiVersion, kind: body.kind, response }
  }
  app.post('/validate', answer(false))
  app.post('/mutate', answer(true))
  await app.listen({ host: '127.0.0.1', port: Number(portArg) })
  process.stdout.write(`${JSON.stringify({ listening: Number(portArg) })}\n`)
  process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
}

// ---- the run -----------------------------------------------------------------------------------------

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

interface Scenario {
  name: string
  /** Webhook URLs (https://127.0.0.1:port/path), undefined for no webhook of that kind. */
  validate?: string
  mutate?: string
  /** Only for --profile. */
  profile?: boolean
  /** The created object must carry the rendered HPA annotation (nim-admission's /mutate ran). */
  mutated?: boolean
  /** Registered without the chart's matchConditions: /mutate called for every NIMService. */
  unconditional?: boolean
}

async function main (): Promise<void> {
  const REQUESTS = Number(value('requests', '300'))
  const ROUNDS = Number(value('rounds', '3'))
  const WARMUP = Number(value('warmup', '50'))
  const PPROF = value('pprof', '')
  const PROFILE = argv.includes('--profile') || PPROF !== ''

  const { startApiserver } = await import('../test/helpers/apiserver.js')
  const { upstreamCrd, waitForCrdsEstablished } = await import('../test/helpers/crd.js')
  const { startWebhook, freePort } = await import('../test/helpers/kube.js')
  const { seedExample } = await import('../test/fixtures/seed-examples.js')
  const { review } = await import('../test/helpers/nimservice.js')
  const { helmTemplate } = await import('../test/helpers/helm.js')
  const chartMutating = (await helmTemplate()).find((m) => m.kind === 'MutatingWebhookConfiguration')
  const matchConditions = ((chartMutating?.webhooks as Json[] | undefined)?.[0]?.matchConditions ?? []) as Json[]

  const children: ChildProcess[] = []
  const cleanups: Array<() => Promise<void> | void> = []
  const cleanup = async (): Promise<void> => { for (const c of cleanups.reverse()) await c() }
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)) })
  try {
    process.stderr.write('apply-latency: starting the test kube-apiserver\n')
    const apiserver = await startApiserver()
    cleanups.push(() => apiserver.stop())
    const api = await apiClient(apiserver.kubeconfig)
    cleanups.push(() => api.agent.destroy())

    const object = seedExample(value('object', 'multi-metric'))
    // What the chart's matchConditions let through to /mutate (test/e2e/match-conditions.test.ts proves the rule).
    const mutateCalled = (object.spec as Json)?.scale?.enabled === true || Object.keys(((object.metadata as Json).annotations ?? {}) as Json).some((k) => k.startsWith('nim-admission.io/hpa'))
    const namespace = (object.metadata as Json).namespace as string
    await api.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
    await api.ok('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', upstreamCrd())
    await waitForCrdsEstablished(apiserver.kubeconfig, ['nimservices.apps.nvidia.com'])

    const certDir = mkdtempSync(join(tmpdir(), 'nim-latency-certs-'))
    cleanups.push(() => rmSync(certDir, { recursive: true, force: true }))
    const nim = await startWebhook(ROOT, certDir)
    cleanups.push(() => nim.stop())
    const caBundle = readFileSync(join(certDir, 'ca.crt')).toString('base64')

    // nim-admission's patch for this object, for the bare server that answers with it (--profile).
    const direct = await directReviews(nim.port, certDir, review({ ...object }))
    const patchFile = join(certDir, 'patch.b64')
    writeFileSync(patchFile, String(direct.mutate.response.patch ?? ''))

    const startBare = async (patch?: string): Promise<number> => {
      const port = await freePort()
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve-bare', String(port), certDir, ...(patch !== undefined ? [patch] : [])], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT })
      children.push(child)
      cleanups.push(() => { child.kill('SIGTERM') })
      for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) if (line.includes('listening')) break
      return port
    }
    const bare = await startBare()
    const url = (port: number, path: string): string => `https://127.0.0.1:${port}${path}`
    const scenarios: Scenario[] = [
      { name: 'none' },
      { name: 'bare', validate: url(bare, '/validate'), mutate: url(bare, '/mutate') },
      { name: 'nim-admission', validate: url(nim.port, '/validate'), mutate: url(nim.port, '/mutate'), mutated: true }
    ]
    // For a NIMService the conditions skip, what they save.
    if (!mutateCalled) scenarios.push({ name: 'nim-admission without matchConditions', validate: url(nim.port, '/validate'), mutate: url(nim.port, '/mutate'), unconditional: true })
    if (PROFILE) {
      const barePatch = await startBare(patchFile)
      // nim-admission's patch split in its two operations, and a patch of one small annotation.
      const ops = JSON.parse(Buffer.from(String(direct.mutate.response.patch ?? ''), 'base64').toString()) as Json[]
      const patchOf = async (name: string, patch: Json[]): Promise<number> => {
        const file = join(certDir, `${name}.b64`)
        writeFileSync(file, Buffer.from(JSON.stringify(patch)).toString('base64'))
        return await startBare(file)
      }
      const specOnly = await patchOf('spec-only', ops.filter((o) => String(o.path).startsWith('/spec')))
      const annotationsOnly = await patchOf('annotations-only', ops.filter((o) => String(o.path).startsWith('/metadata')))
      const tiny = await patchOf('tiny', [{ op: 'add', path: '/metadata/annotations', value: { 'example.com/x': 'y' } }])
      scenarios.push(
        { name: 'nim validate only', validate: url(nim.port, '/validate'), profile: true },
        { name: 'nim mutate only', mutate: url(nim.port, '/mutate'), profile: true, mutated: true },
        { name: 'bare + nim patch', validate: url(bare, '/validate'), mutate: url(barePatch, '/mutate'), profile: true, mutated: true },
        { name: 'bare + nim patch spec op', validate: url(bare, '/validate'), mutate: url(specOnly, '/mutate'), profile: true },
        { name: 'bare + nim patch annotations op', validate: url(bare, '/validate'), mutate: url(annotationsOnly, '/mutate'), profile: true, mutated: true },
        { name: 'bare + tiny patch', validate: url(bare, '/validate'), mutate: url(tiny, '/mutate'), profile: true }
      )
    }

    const path = `/apis/apps.nvidia.com/v1alpha1/namespaces/${namespace}/nimservices?dryRun=All&fieldManager=kubectl-client-side-apply&fieldValidation=Strict`
    const body = JSON.stringify(object)
    const createOnce = async (): Promise<Json> => {
      const r = await api.send('POST', path, body)
      if (r.status !== 201) throw new Error(`dry-run create answered ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`)
      return r.body as Json
    }

    const samples = new Map<string, number[]>(scenarios.map((s) => [s.name, []]))
    const webhookTimes = new Map<string, { sum: number, count: number }>()
    process.stderr.write(`apply-latency: ${ROUNDS} rounds x ${REQUESTS} sequential dry-run creates per scenario (${WARMUP} warm-up each), ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`)
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of scenarios) {
        await register(api, s, caBundle, s.unconditional === true ? [] : matchConditions)
        await settle(api, s, createOnce, mutateCalled || s.unconditional === true)
        for (let i = 0; i < WARMUP; i++) await createOnce()
        const before = await webhookDurations(api)
        const out = samples.get(s.name) as number[]
        for (let i = 0; i < REQUESTS; i++) {
          const t0 = performance.now()
          const created = await createOnce()
          out.push(performance.now() - t0)
          if (i === 0 && s.mutated === true && mutateCalled && created.metadata?.annotations?.['nim-admission.io/hpa'] === undefined) throw new Error(`${s.name}: the created object lacks the rendered HPA annotation`)
        }
        const after = await webhookDurations(api)
        for (const [k, v] of after) {
          const b = before.get(k) ?? { sum: 0, count: 0 }
          const key = `${s.name}\t${k}`
          const acc = webhookTimes.get(key) ?? { sum: 0, count: 0 }
          webhookTimes.set(key, { sum: acc.sum + v.sum - b.sum, count: acc.count + v.count - b.count })
        }
        process.stderr.write(`  round ${round} ${s.name}: p50 ${quantile(out.slice(-REQUESTS), 0.5).toFixed(2)} ms\n`)
      }
    }
    if (PPROF !== '') {
      for (const s of scenarios.filter((x) => ['bare', 'bare + nim patch', 'nim-admission'].includes(x.name))) {
        await register(api, s, caBundle, matchConditions)
        await settle(api, s, createOnce, mutateCalled)
        const file = join(resolve(PPROF), `${s.name.replace(/[^a-z0-9]+/g, '-')}.pprof`)
        let done = false
        const profile = api.fetchOnce('/debug/pprof/profile?seconds=10').then((bytes) => { writeFileSync(file, bytes); done = true })
        let n = 0
        while (!done) { await createOnce(); n++ }
        await profile
        process.stderr.write(`  pprof ${s.name}: ${n} creates in 10 s -> ${file}\n`)
      }
    }
    await register(api, { name: 'none' }, caBundle, [])

    const stats = new Map([...samples].map(([k, v]) => [k, { p50: quantile(v, 0.5), p99: quantile(v, 0.99), mean: v.reduce((a, b) => a + b, 0) / v.length, n: v.length }]))
    const none = stats.get('none') as { p50: number, p99: number, mean: number }
    const bareS = stats.get('bare') as { p50: number, p99: number, mean: number }
    const nimS = stats.get('nim-admission') as { p50: number, p99: number, mean: number }
    const ratio = (q: 'p50' | 'p99' | 'mean'): number => (nimS[q] - none[q]) / (bareS[q] - none[q])

    const lines = [
      '| scenario | p50 | p99 | mean | added p50 (vs none) | added p99 |',
      '|---|---|---|---|---|---|'
    ]
    for (const s of scenarios) {
      const st = stats.get(s.name) as { p50: number, p99: number, mean: number, n: number }
      const added = s.name === 'none' ? '' : `${(st.p50 - none.p50).toFixed(2)} ms`
      const added99 = s.name === 'none' ? '' : `${(st.p99 - none.p99).toFixed(2)} ms`
      lines.push(`| ${s.name}${s.profile === true ? ' (profile)' : ''} | ${st.p50.toFixed(2)} ms | ${st.p99.toFixed(2)} ms | ${st.mean.toFixed(2)} ms | ${added} | ${added99} |`)
    }
    lines.push('', `nim-admission added / bare added: p50 ${ratio('p50').toFixed(2)}x, p99 ${ratio('p99').toFixed(2)}x, mean ${ratio('mean').toFixed(2)}x (goal: at most 1.25x at p50)`)
    lines.push(`object: seed example ${value('object', 'multi-metric')} (/mutate ${mutateCalled ? 'called' : 'skipped by the chart\'s matchConditions'}); ${ROUNDS} rounds x ${REQUESTS} requests per scenario, Node.js ${process.version}, ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)

    if (PROFILE) {
      lines.push('', '| scenario | webhook | calls | apiserver-side mean per call |', '|---|---|---|---|')
      for (const [key, v] of [...webhookTimes].sort()) {
        if (v.count <= 0) continue
        const [scenario, hook] = key.split('\t')
        lines.push(`| ${scenario} | ${hook} | ${v.count} | ${(1000 * v.sum / v.count).toFixed(2)} ms |`)
      }
      const judged = await nimJudgeTimes(nim.metricsPort)
      lines.push('', `nim-admission's own time to judge (body parsed to verdict encoded), mean: ${[...judged].map(([e, ms]) => `${e} ${ms.toFixed(3)} ms`).join(', ')}`)
      const bareDirect = await directReviews(bare, certDir, review({ ...object }))
      lines.push(`response bytes: nim-admission /validate ${direct.validateBytes}, /mutate ${direct.mutateBytes} (patch ${Buffer.from(String(direct.mutate.response.patch ?? ''), 'base64').length} bytes decoded, ${JSON.parse(Buffer.from(String(direct.mutate.response.patch ?? ''), 'base64').toString()).length} operations); bare /validate ${bareDirect.validateBytes}, /mutate ${bareDirect.mutateBytes}`)
      lines.push(`request body the apiserver sends: ${direct.requestBytes} bytes (the review of a ${body.length}-byte object)`)
    }
    process.stdout.write(lines.join('\n') + '\n')
  } finally {
    await cleanup()
  }
}

// ---- the API client ------------------------------------------------------------------------------------

interface ApiClient {
  agent: Agent
  /** A GET on a connection of its own (the keep-alive one stays with the measured requests). */
  fetchOnce (path: string): Promise<Buffer>
  send (method: string, path: string, body?: string): Promise<{ status: number, body: unknown, text: string }>
  ok (method: string, path: string, body?: unknown): Promise<unknown>
}

/** One keep-alive HTTPS connection with the kubeconfig's credentials, like kubectl's transport. */
async function apiClient (kubeconfig: string): Promise<ApiClient> {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfig)
  const server = kc.getCurrentCluster()?.server ?? ''
  const base: RequestOptions = { headers: { 'content-type': 'application/json', accept: 'application/json' } }
  await kc.applyToHTTPSOptions(base)
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: base.ca, cert: base.cert, key: base.key })
  const send: ApiClient['send'] = (method, path, body) => new Promise((resolvePromise, reject) => {
    const req = request(new URL(path, server), { ...base, method, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        let parsed: unknown = text
        try { parsed = JSON.parse(text) } catch { /* text */ }
        resolvePromise({ status: res.statusCode ?? 0, body: parsed, text })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
  return {
    agent,
    send,
    fetchOnce: (path) => new Promise((resolvePromise, reject) => {
      const req = request(new URL(path, server), { ...base, method: 'GET', agent: false }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          if (res.statusCode === 200) resolvePromise(Buffer.concat(chunks))
          else reject(new Error(`GET ${path}: ${res.statusCode}`))
        })
      })
      req.on('error', reject)
      req.end()
    }),
    ok: async (method, path, body) => {
      const r = await send(method, path, body === undefined ? undefined : JSON.stringify(body))
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 500)}`)
      return r.body
    }
  }
}

const CONFIG_NAME = 'latency-bench'
const HOOKS = '/apis/admissionregistration.k8s.io/v1'

/** Replaces both webhook configurations by the scenario's (none for a kind it does not register). */
async function register (api: ApiClient, s: Scenario, caBundle: string, matchConditions: Json[]): Promise<void> {
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const r = await api.send('DELETE', `${HOOKS}/${kind}/${CONFIG_NAME}`)
    if (r.status !== 200 && r.status !== 404) throw new Error(`delete ${kind}: ${r.status} ${r.text}`)
  }
  const webhook = (name: string, url: string): Json => ({
    name,
    clientConfig: { url, caBundle },
    rules: [{ apiGroups: ['apps.nvidia.com'], apiVersions: ['v1alpha1'], resources: ['nimservices'], operations: ['CREATE', 'UPDATE'], scope: 'Namespaced' }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    timeoutSeconds: 5
  })
  if (s.mutate !== undefined) {
    await api.ok('POST', `${HOOKS}/mutatingwebhookconfigurations`, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: CONFIG_NAME }, webhooks: [{ ...webhook(hookName(s, 'mutate'), s.mutate), reinvocationPolicy: 'IfNeeded', ...(matchConditions.length > 0 ? { matchConditions } : {}) }] })
  }
  if (s.validate !== undefined) {
    await api.ok('POST', `${HOOKS}/validatingwebhookconfigurations`, { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: CONFIG_NAME }, webhooks: [webhook(hookName(s, 'validate'), s.validate)] })
  }
}

const hookName = (s: Scenario, kind: 'mutate' | 'validate'): string => `${kind}.${s.name.replace(/[^a-z0-9]+/g, '-')}.bench.io`

/** The apiserver applies configurations from an informer: wait until a create calls exactly this scenario's webhooks. */
async function settle (api: ApiClient, s: Scenario, createOnce: () => Promise<Json>, mutateCalled: boolean): Promise<void> {
  const want = [s.mutate !== undefined && mutateCalled ? hookName(s, 'mutate') : undefined, s.validate !== undefined ? hookName(s, 'validate') : undefined].filter((n) => n !== undefined).sort()
  const deadline = Date.now() + 30_000
  for (;;) {
    const before = await webhookDurations(api)
    await createOnce()
    const after = await webhookDurations(api)
    const called = [...after].filter(([k, v]) => v.count > (before.get(k)?.count ?? 0)).map(([k]) => k.split(' ')[0] as string).sort()
    if (JSON.stringify(called) === JSON.stringify(want)) return
    if (Date.now() > deadline) throw new Error(`${s.name}: the apiserver still calls [${called.join(', ')}], want [${want.join(', ')}]`)
    await sleep(100)
  }
}

/** apiserver_admission_webhook_admission_duration_seconds sum and count, by "webhook-name type". */
async function webhookDurations (api: ApiClient): Promise<Map<string, { sum: number, count: number }>> {
  const r = await api.send('GET', '/metrics')
  const out = new Map<string, { sum: number, count: number }>()
  for (const line of r.text.split('\n')) {
    const m = /^apiserver_admission_webhook_admission_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/.exec(line)
    if (m === null) continue
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]))
    const key = `${labels.name} ${labels.type}`
    const acc = out.get(key) ?? { sum: 0, count: 0 }
    if (m[1] === 'sum') acc.sum += Number(m[3])
    else acc.count += Number(m[3])
    out.set(key, acc)
  }
  return out
}

/** Mean of nim_admission_request_duration_seconds per endpoint, in ms. */
async function nimJudgeTimes (metricsPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  const sums = new Map<string, number>()
  const counts = new Map<string, number>()
  for (const m of text.matchAll(/^nim_admission_request_duration_seconds_(sum|count)\{endpoint="(\w+)"\} (\S+)$/gm)) {
    ;(m[1] === 'sum' ? sums : counts).set(m[2] ?? '', Number(m[3]))
  }
  return new Map([...sums].map(([e, s]) => [e, 1000 * s / (counts.get(e) ?? 1)]))
}

/** Posts the review to /validate and /mutate directly: the answers and their sizes. */
async function directReviews (port: number, certDir: string, review: Json): Promise<{ validate: Json, mutate: Json, validateBytes: number, mutateBytes: number, requestBytes: number }> {
  const ca = readFileSync(join(certDir, 'ca.crt'))
  const payload = JSON.stringify(review)
  const post = (path: string): Promise<string> => new Promise((resolvePromise, reject) => {
    const req = request(`https://127.0.0.1:${port}${path}`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolvePromise(Buffer.concat(chunks).toString()))
    })
    req.on('error', reject)
    req.end(payload)
  })
  const v = await post('/validate')
  const m = await post('/mutate')
  return { validate: JSON.parse(v) as Json, mutate: JSON.parse(m) as Json, validateBytes: Buffer.byteLength(v), mutateBytes: Buffer.byteLength(m), requestBytes: Buffer.byteLength(payload) }
}

function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i] ?? NaN
}

if (argv[0] === '--serve-bare') await serveBare(argv.slice(1))
else await main()
