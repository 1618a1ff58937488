// The chart's Grafana dashboard and PrometheusRule name only metrics and labels that a running `serve` and
// `apply` expose: both are started, driven so that labelled series exist, and scraped; every query of the
// dashboard and every alert expression is parsed with lezer-promql (the grammar of Prometheus' own UI), and the
// rules also go through `promtool check rules`. A renamed metric or label fails here, not on a dashboard.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { parser } from '@prometheus-io/lezer-promql'
import type { SyntaxNode } from '@lezer/common'
import type { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { startServer, type RunningServer } from '../../src/server/serve.js'
import { startApplier, type RunningApplier } from '../../src/applier/run.js'
import { mutateNIMService, HPA_ANNOTATION } from '../../src/nimservice/index.js'
import { autoscaled, review } from '../helpers/nimservice.js'
import { get, postReview } from '../helpers/https.js'
import { chartDir, helmTemplate, repoRoot, type Manifest } from '../helpers/helm.js'

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const DASHBOARD_FILE = join(chartDir, 'dashboards', 'nim-admission.json')
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Json

/**
 * Labels Prometheus puts on every series of a target found through the Prometheus Operator's ServiceMonitor or
 * PodMonitor, besides what the process exposes; `up` is the series Prometheus writes for each target itself.
 */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint']
const SYNTHETIC_METRICS = new Map([['up', new Set<string>()]])

// ---- what the processes expose ----

/** Series names and their label names, from Prometheus' text exposition format. */
export function parseExposition (text: string): { names: Set<string>, families: Map<string, string>, labels: Map<string, Set<string>> } {
  const names = new Set<string>()
  const families = new Map<string, string>()
  const labels = new Map<string, Set<string>>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) {
      const [, family = '', kind = ''] = type
      families.set(family, kind)
      const series = kind === 'histogram' ? ['_bucket', '_sum', '_count'].map((s) => family + s) : kind === 'summary' ? [family, family + '_sum', family + '_count'] : [family]
      for (const s of series) names.add(s)
      continue
    }
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line)
    assert.ok(sample !== null, `unparsable exposition line: ${line}`)
    const name = sample[1] ?? ''
    names.add(name)
    const set = labels.get(name) ?? new Set<string>()
    labels.set(name, set)
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(m[1] ?? '')
  }
  return { names, families, labels }
}

interface Exposed {
  /** Series name to its label names. */
  series: Map<string, Set<string>>
  /** Series whose labels came from the live registry's declaration because no sample existed yet. */
  declaredOnly: string[]
}

/**
 * What a process exposes on /metrics. A labelled metric with no sample yet shows only its HELP and TYPE lines;
 * its label names are then read from the same live registry's declaration (what its samples will carry).
 */
async function scrape (url: string, registry: Registry, into: Exposed): Promise<void> {
  const res = await get(url)
  assert.equal(res.status, 200, `GET ${url}`)
  const { names, families, labels } = parseExposition(res.body)
  for (const name of names) {
    let set = labels.get(name)
    if (set === undefined) {
      const family = [...families.keys()].find((f) => name === f || (families.get(f) === 'histogram' && ['_bucket', '_sum', '_count'].some((s) => name === f + s)))
      const declared = family === undefined ? undefined : (registry.getSingleMetric(family) as unknown as { labelNames?: string[] } | undefined)?.labelNames
      assert.ok(declared !== undefined, `${name} is on /metrics without samples and is not in the registry`)
      set = new Set([...declared, ...(name.endsWith('_bucket') ? ['le'] : [])])
      into.declaredOnly.push(name)
    }
    into.series.set(name, new Set([...(into.series.get(name) ?? []), ...set]))
  }
}

// ---- what the queries name ----

interface Reference {
  metric: string
  /** Label names the query reads: matchers, by/without, on/ignoring/group_*. */
  labels: string[]
  /** Where the selector starts in the expression. */
  at: number
}

/** Grafana's interval macros are not PromQL; any duration stands in for them. */
function substituteGrafanaMacros (expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m').replace(/\$\{__(rate_interval|interval|range)\}/g, '5m')
}

const text = (expr: string, n: SyntaxNode): string => expr.slice(n.from, n.to)
const unquote = (s: string): string => s.replace(/^["'`]|["'`]$/g, '')

/**
 * Every metric a PromQL expression selects and the labels it reads of it. Labels of a grouping (by, without,
 * on, ignoring, group_left/right) are attributed to every metric selected under that aggregation or binary
 * operation: each must expose the label. Throws on a syntax error, with the position.
 */
export function references (expr: string): Reference[] {
  const tree = parser.parse(expr)
  const refs: Reference[] = []
  const groupings: Array<{ scope: SyntaxNode, labels: string[] }> = []
  tree.iterate({
    enter: (ref) => {
      if (ref.type.isError) throw new Error(`PromQL syntax error at ${ref.from} in: ${expr}\n${' '.repeat(ref.from + 3)}^`)
      const n = ref.node
      if (n.name === 'VectorSelector') {
        const id = n.getChild('Identifier')
        const matchers = [...n.getChildren('LabelMatchers').flatMap((m) => [...m.getChildren('UnquotedLabelMatcher'), ...m.getChildren('QuotedLabelMatcher')])]
        const labels = matchers.map((m) => {
          const l = m.getChild('LabelName') ?? m.getChild('QuotedLabelName')
          assert.ok(l !== null, `a matcher without a label name in: ${expr}`)
          return unquote(text(expr, l))
        })
        // {__name__="x"} and {"x"} select by name without an identifier.
        const nameMatcher = matchers.find((m) => text(expr, m.getChild('LabelName') ?? m).startsWith('__name__'))
        const bare = n.getChild('LabelMatchers')?.getChildren('QuotedLabelName') ?? []
        const metric = id !== null ? text(expr, id) : nameMatcher !== undefined ? unquote(text(expr, nameMatcher.getChild('StringLiteral') ?? nameMatcher)) : bare[0] !== undefined ? unquote(text(expr, bare[0])) : ''
        assert.ok(metric !== '', `a selector without a metric name in: ${expr}`)
        refs.push({ metric, labels: labels.filter((l) => l !== '__name__'), at: n.from })
      }
      if (n.name === 'GroupingLabels') {
        const labels = [...n.getChildren('LabelName'), ...n.getChildren('QuotedLabelName')].map((l) => unquote(text(expr, l)))
        // by/without belong to the AggregateExpr; on/ignoring and group_left/right to the BinaryExpr.
        let scope: SyntaxNode | null = n.parent
        while (scope !== null && scope.name !== 'AggregateExpr' && scope.name !== 'BinaryExpr') scope = scope.parent
        assert.ok(scope !== null, `grouping labels outside an aggregation or a binary operation in: ${expr}`)
        groupings.push({ scope, labels })
      }
    }
  })
  for (const g of groupings) for (const r of refs) if (r.at >= g.scope.from && r.at < g.scope.to) r.labels.push(...g.labels)
  return refs
}

interface Query { where: string, expr: string, legend?: string }

function dashboardQueries (): Query[] {
  const out: Query[] = []
  const walk = (panels: Json[]): void => {
    for (const p of panels) {
      if (Array.isArray(p.panels)) walk(p.panels)
      for (const t of (p.targets ?? []) as Json[]) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: substituteGrafanaMacros(t.expr), legend: t.legendFormat })
    }
  }
  walk(dashboard.panels)
  for (const v of dashboard.templating.list as Json[]) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : v.query.query
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q)
    assert.ok(m !== null, `variable ${v.name}: only label_values(selector, label) is checked, got ${q}`)
    // The label the variable lists is read from the selector's metric, like a matcher.
    out.push({ where: `variable ${v.name}`, expr: m[1] ?? '', legend: `{{${m[2]}}}` })
  }
  return out
}

/** The problems of one query against what is exposed; empty when it only names what exists. */
function problems (q: Query, exposed: Exposed): string[] {
  const errors: string[] = []
  let refs: Reference[]
  try {
    refs = references(q.expr)
  } catch (err) {
    return [`${q.where}: ${(err as Error).message}`]
  }
  if (refs.length === 0) errors.push(`${q.where}: selects no metric: ${q.expr}`)
  const known = (metric: string): Set<string> | undefined => exposed.series.get(metric) ?? SYNTHETIC_METRICS.get(metric)
  for (const r of refs) {
    const labels = known(r.metric)
    if (labels === undefined) {
      errors.push(`${q.where}: metric ${r.metric} is not exposed by serve or apply (${q.expr})`)
      continue
    }
    for (const l of r.labels) if (!labels.has(l) && !TARGET_LABELS.includes(l)) errors.push(`${q.where}: ${r.metric} has no label "${l}" (it has ${[...labels].join(', ') || 'none'})`)
  }
  // A legend shows labels of the result: each must be a label some selected metric has.
  for (const m of (q.legend ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)) {
    const l = m[1] ?? ''
    if (!TARGET_LABELS.includes(l) && !refs.some((r) => known(r.metric)?.has(l) === true)) errors.push(`${q.where}: legend names label "${l}" that no selected metric has`)
  }
  return errors
}

// ---- the chart ----

async function renderedRule (): Promise<Manifest> {
  const manifests = await helmTemplate(['metrics.prometheusRule.enabled=true'])
  const rule = manifests.find((m) => m.kind === 'PrometheusRule')
  assert.ok(rule !== undefined, 'the chart renders a PrometheusRule with metrics.prometheusRule.enabled=true')
  return rule
}

/** promtool from PATH, $PROMTOOL, or Debian's prometheus package (scripts/install-promtool.sh); throws, never skips. */
function promtool (): string {
  const run = spawnSync('bash', [join(repoRoot, 'scripts', 'install-promtool.sh')], { encoding: 'utf8' })
  if (run.status !== 0) {
    throw new Error(`promtool is needed to check the PrometheusRule and could not be installed (scripts/install-promtool.sh exit ${run.status ?? run.signal}):\n${run.stderr}`)
  }
  return run.stdout.trim().split('\n').pop() ?? 'promtool'
}

// ---- the running processes ----

/** A NIMService as stored after the mutating webhook, with the operator's finalizer. */
function storedNim (): Json {
  const m = mutateNIMService({ operation: 'CREATE', object: { ...autoscaled(), metadata: { name: 'llm', namespace: 'nim' } }, namespace: 'nim' } as never)
  const o = structuredClone(m.object) as Json
  o.metadata = { ...o.metadata, uid: 'llm-uid', resourceVersion: '5', generation: 1, finalizers: ['finalizer.nimservice.apps.nvidia.com'] }
  return o
}

/** The NIM operator's HPA for that NIMService, hand-edited: what the applier reports as drift. */
function driftedHpa (nim: Json): Json {
  const hpa = JSON.parse(nim.metadata.annotations[HPA_ANNOTATION]) as Json
  hpa.spec.maxReplicas = 200
  hpa.metadata = { ...hpa.metadata, uid: 'hpa-uid', resourceVersion: '6', labels: { ...hpa.metadata.labels, 'app.kubernetes.io/managed-by': 'k8s-nim-operator' }, ownerReferences: [{ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', name: 'llm', uid: 'llm-uid', controller: true }] }
  return hpa
}

/** Just enough of an apiserver on loopback for `apply` to list, watch and post Events. */
async function fakeApiserver (nim: Json, hpa: Json): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (req.method !== 'GET') {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' })
        res.end(Buffer.concat(chunks).length > 0 ? Buffer.concat(chunks) : '{}')
      })
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    if (url.searchParams.has('watch')) return // held open, no events, until the applier stops
    const items = url.pathname.endsWith('/nimservices') ? [nim] : url.pathname.endsWith('/horizontalpodautoscalers') ? [hpa] : []
    res.end(JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '10' }, items }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
  }
}

async function until (what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('dashboard and alerts name only what serve and apply expose', () => {
  const exposed: Exposed = { series: new Map(), declaredOnly: [] }
  const dir = mkdtempSync(join(tmpdir(), 'nim-dashboard-'))
  let server: RunningServer | undefined
  let applier: RunningApplier | undefined
  let api: { url: string, close: () => Promise<void> } | undefined

  before(async () => {
    server = await startServer({ host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, certDir: join(dir, 'certs'), shutdownDelayMs: 0 }, pino({ level: 'silent' }))
    const ca = readFileSync(server.caPath, 'utf8')
    const base = `https://127.0.0.1:${server.port}`
    // Labelled series: a denial (rule), warnings (code), a patch, a bad request (reason), a failed handshake.
    await postReview(`${base}/validate`, review(autoscaled(undefined, { replicas: 2 })), { ca })
    await postReview(`${base}/validate`, review(autoscaled({ minReplicas: 1, maxReplicas: 4 })), { ca })
    await postReview(`${base}/mutate`, review(autoscaled()), { ca })
    assert.equal((await postReview(`${base}/validate`, '{not json', { ca })).status, 400)
    await new Promise<void>((resolve) => {
      const socket = connect(server?.port ?? 0, '127.0.0.1', () => socket.end('not a TLS hello\r\n\r\n'))
      socket.on('close', () => resolve())
      socket.on('error', () => resolve())
    })
    await until('the failed handshake to be counted', async () => /nim_admission_connections_refused_total\{reason="tls_handshake"\}/.test((await get(`http://127.0.0.1:${server?.metricsPort ?? 0}/metrics`)).body))
    await scrape(`http://127.0.0.1:${server.metricsPort}/metrics`, server.metrics.registry, exposed)

    const nim = storedNim()
    api = await fakeApiserver(nim, driftedHpa(nim))
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'u', namespace: 'nim' } }], 'current-context': 'fake' }))
    applier = await startApplier({ kubeconfig, mode: 'verify', graceMs: 0, metricsHost: '127.0.0.1', metricsPort: 0, logLevel: 'silent', resyncPeriodMs: 0 }, { logger: pino({ level: 'silent' }), defaultMetrics: false })
    const applierMetrics = `http://127.0.0.1:${applier.metricsPort}/metrics`
    // The HPA differs from the spec's render: a reconcile state and a finding (drift) have samples.
    await until('the applier to report the NIMService\'s state and finding', async () => {
      const body = (await get(applierMetrics)).body
      return /^nim_admission_applier_nimservices\{state="/m.test(body) && /^nim_admission_applier_findings\{reason="/m.test(body)
    })
    await scrape(applierMetrics, applier.metrics.registry, exposed)
  })

  after(async () => {
    await applier?.stop()
    await api?.close()
    await server?.shutdown()
    rmSync(dir, { recursive: true, force: true })
  })

  it('the scrape has the series every panel needs, most with samples', (t) => {
    t.diagnostic(`labels read from the registry's declarations (no sample yet): ${exposed.declaredOnly.join(', ')}`)
    for (const name of ['nim_admission_requests_total', 'nim_admission_request_duration_seconds_bucket', 'nim_admission_rule_violations_total', 'nim_admission_warnings_total', 'nim_admission_bad_requests_total', 'nim_admission_certificate_expiry_seconds', 'nim_admission_applier_nimservices', 'nim_admission_applier_findings', 'nim_admission_applier_findings_total', 'nim_admission_applier_queue_depth']) {
      assert.ok(exposed.series.has(name), `${name} is exposed`)
      assert.ok(!exposed.declaredOnly.includes(name), `${name} has samples, driven by this test`)
    }
    assert.ok(exposed.series.get('nim_admission_request_duration_seconds_bucket')?.has('le'))
    // Series no unit test can provoke (a bug, a review over its budget) are checked by their declared labels.
    assert.ok(exposed.declaredOnly.includes('nim_admission_internal_errors_total'))
  })

  it('every dashboard query and variable parses and names only exposed metrics and labels', () => {
    const queries = dashboardQueries()
    assert.ok(queries.length >= 15, `the dashboard has its queries (${queries.length})`)
    assert.deepEqual(queries.flatMap((q) => problems(q, exposed)), [])
  })

  it('the dashboard covers what operators asked for, on the templated datasource and variables', () => {
    const metrics = new Set(dashboardQueries().flatMap((q) => references(q.expr).map((r) => r.metric)))
    for (const m of ['nim_admission_requests_total', 'nim_admission_request_duration_seconds_bucket', 'nim_admission_rule_violations_total', 'nim_admission_warnings_total', 'nim_admission_bad_requests_total', 'nim_admission_internal_errors_total', 'nim_admission_certificate_expiry_seconds', 'nim_admission_applier_writes_total', 'nim_admission_applier_findings', 'nim_admission_applier_nimservices', 'nim_admission_applier_queue_depth']) {
      assert.ok(metrics.has(m), `a panel shows ${m}`)
    }
    const quantiles = dashboardQueries().filter((q) => q.expr.includes('histogram_quantile')).map((q) => /histogram_quantile\(([0-9.]+)/.exec(q.expr)?.[1])
    assert.deepEqual(quantiles, ['0.5', '0.99'])
    assert.equal(dashboard.uid, 'nim-admission')
    assert.deepEqual((dashboard.templating.list as Json[]).map((v) => v.name), ['datasource', 'namespace', 'job'])
    const panels = (dashboard.panels as Json[]).filter((p) => p.type !== 'row')
    for (const p of panels) {
      assert.equal(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the datasource variable`)
      for (const t of p.targets as Json[]) {
        assert.match(t.expr, /namespace=~"\$namespace"/, `panel "${p.title}" filters by $namespace`)
        // The applier is not behind the webhook's Service, so its series carry another job.
        if (!t.expr.includes('nim_admission_applier_')) assert.match(t.expr, /job=~"\$job"/, `panel "${p.title}" filters by $job`)
      }
    }
    const ids = panels.map((p) => p.id)
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  })

  it('a renamed metric or label, or a syntax error, is reported with the panel', () => {
    const q = { where: 'panel "x" A', expr: 'sum by (endpoint) (rate(nim_admission_request_total{job=~"$job"}[5m]))' }
    assert.deepEqual(problems(q, exposed), ['panel "x" A: metric nim_admission_request_total is not exposed by serve or apply (sum by (endpoint) (rate(nim_admission_request_total{job=~"$job"}[5m])))'])
    assert.deepEqual(problems({ where: 'p', expr: 'sum by (verdict) (rate(nim_admission_requests_total[5m]))' }, exposed), ['p: nim_admission_requests_total has no label "verdict" (it has endpoint, operation, allowed, dry_run)'])
    assert.deepEqual(problems({ where: 'p', expr: 'sum(rate(nim_admission_requests_total{rule="NIM010"}[5m]))' }, exposed).length, 1)
    assert.deepEqual(problems({ where: 'p', expr: 'sum(rate(nim_admission_requests_total[5m]))', legend: '{{rule}}' }, exposed), ['p: legend names label "rule" that no selected metric has'])
    assert.match(problems({ where: 'p', expr: 'sum(rate(nim_admission_requests_total[5m])' }, exposed)[0] ?? '', /^p: PromQL syntax error/)
  })

  it('the PrometheusRule passes promtool check rules, and its expressions name only exposed metrics and labels', async () => {
    const rule = await renderedRule()
    const groups = (rule.spec as Json).groups as Json[]
    const rules = groups.flatMap((g) => g.rules as Json[])
    assert.ok(rules.some((r) => r.alert === 'NimAdmissionCertificateExpiringSoon'), 'the certificate-expiry alert is rendered')
    const file = join(dir, 'rules.yaml')
    writeFileSync(file, stringify({ groups }))
    const bin = promtool()
    let out: string
    try {
      out = execFileSync(bin, ['check', 'rules', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (err) {
      const e = err as { stdout?: string, stderr?: string }
      throw new Error(`promtool check rules failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err })
    }
    assert.match(out, new RegExp(`SUCCESS: ${rules.length} rules found`))
    assert.deepEqual(rules.flatMap((r) => problems({ where: `alert ${r.alert}`, expr: String(r.expr) }, exposed)), [])
  })

  it('promtool itself refuses a broken rule (the check is live)', () => {
    const file = join(dir, 'broken.yaml')
    writeFileSync(file, stringify({ groups: [{ name: 'x', rules: [{ alert: 'Broken', expr: 'sum(rate(nim_admission_requests_total[5m])' }] }] }))
    const run = spawnSync(promtool(), ['check', 'rules', file], { encoding: 'utf8' })
    assert.notEqual(run.status, 0)
    assert.match(run.stdout + run.stderr, /parse error|unclosed|expected/)
  })
})

describe('the dashboard ConfigMap for the Grafana sidecar', () => {
  const dashboardMap = (manifests: Manifest[]): Manifest | undefined => manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name.endsWith('-dashboard'))

  it('ships with the ServiceMonitor, labelled grafana_dashboard: "1", carrying the dashboard file as is', async () => {
    const cm = dashboardMap(await helmTemplate(['metrics.serviceMonitor.enabled=true']))
    assert.ok(cm !== undefined)
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1')
    assert.equal(cm.metadata.namespace, 'nim-system')
    assert.equal(cm.metadata.annotations, undefined)
    assert.deepEqual(JSON.parse((cm.data as Record<string, string>)['nim-admission.json'] ?? ''), dashboard)
  })

  it('auto follows the ServiceMonitor: on when the cluster serves it, off otherwise', async () => {
    assert.equal(dashboardMap(await helmTemplate(undefined, { extraArgs: ['--api-versions', 'monitoring.coreos.com/v1/ServiceMonitor'] }))?.kind, 'ConfigMap')
    assert.equal(dashboardMap(await helmTemplate()), undefined)
    assert.equal(dashboardMap(await helmTemplate(['metrics.serviceMonitor.enabled=true', 'metrics.grafanaDashboard.enabled=false'])), undefined)
    assert.equal(dashboardMap(await helmTemplate(['metrics.serviceMonitor.enabled=false', 'metrics.grafanaDashboard.enabled=true']))?.kind, 'ConfigMap')
  })

  it('label, folder annotation and namespace are configurable', async () => {
    const cm = dashboardMap(await helmTemplate({ metrics: { grafanaDashboard: { enabled: true, labels: { dashboards: 'nim' }, folder: 'Platform', folderAnnotation: 'k8s-sidecar-target-directory', namespace: 'monitoring' } } }))
    assert.ok(cm !== undefined)
    assert.equal(cm.metadata.labels?.dashboards, 'nim')
    // Helm merges maps into the defaults: `grafana_dashboard: null` drops the default label.
    assert.deepEqual(cm.metadata.annotations, { 'k8s-sidecar-target-directory': 'Platform' })
    assert.equal(cm.metadata.namespace, 'monitoring')
  })
})
