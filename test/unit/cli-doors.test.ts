// One verdict, two doors: the same NIMServices and reviews through the offline CLI and through the
// webhook server (fastify app, app.inject) give byte-identical responses and the same causes and warnings.
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildWebhookApp } from '../../src/server/webhook-app.js'
import { createMetrics } from '../../src/server/metrics.js'
import { defaultOptions } from '../../src/server/options.js'
import { formatWarnings } from '../../src/admission/review.js'
import { review } from '../helpers/nimservice.js'
import { withCrdDefaults } from '../../src/nimservice/crd-defaults.js'
import { nimServiceSchema } from '../../src/cli/crd.js'
import { FIX, ROOT, runCli, spawnCli, unwiredReason } from '../fixtures/cli/harness.js'

process.chdir(ROOT)

type Json = Record<string, unknown>
interface Doc { file: string, index: number, item: number | null, object: Json }
interface Finding { field: string, code: string, message: string }
interface Result { file: string, index: number, item: number | null, allowed: boolean, message: string | null, causes: Finding[], warnings: Finding[] }
interface Answer { statusCode: number, body: string }

function files (dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = `${dir}/${name}`
    return statSync(path).isDirectory() ? files(path) : /\.(ya?ml|json)$/.test(name) ? [path] : []
  })
}

const CORPUS_FILES = [...files(`${FIX}/seed`), ...files(`${FIX}/upstream`), `${FIX}/corpus.yaml`, `${FIX}/positions.yaml`, `${FIX}/list.yaml`, `${FIX}/nim.json`]

/** NIMService documents read independently of the CLI (the yaml library in YAML 1.1 mode, as kubectl reads). */
function corpus (): Doc[] {
  return CORPUS_FILES.flatMap((file): Doc[] => parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' }).flatMap((d: { toJS: () => unknown }, index: number): Doc[] => {
    const o = d.toJS() as Json | null
    if (o === null) return []
    if (o.kind === 'List') return (o.items as Json[]).map((object, item) => ({ file, index, item, object }))
    return [{ file, index, item: null, object: o }]
  })).filter((d) => d.object.kind === 'NIMService')
}

let app: FastifyInstance
let tmp: string
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nim-doors-'))
  app = buildWebhookApp({
    logger: pino({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    bodyLimitBytes: defaultOptions.bodyLimitBytes,
    requestTimeoutMs: 4000,
    keepAliveTimeoutMs: 5000,
    // Parity, not the budget, is under test: a cold review worker on a loaded machine must not change the answer.
    reviewBudgetMs: 60_000
  })
  await app.ready()
})
after(async () => {
  await app.close()
  rmSync(tmp, { recursive: true, force: true })
})

async function server (endpoint: 'validate' | 'mutate', body: string | Buffer): Promise<Answer> {
  const res = await app.inject({ method: 'POST', url: `/${endpoint}`, headers: { 'content-type': 'application/json' }, payload: body })
  return { statusCode: res.statusCode, body: res.body }
}

let n = 0
function reviewFile (body: string | Buffer): string {
  const path = join(tmp, `review-${++n}.json`)
  writeFileSync(path, body)
  return path
}

const firstLine = (s: string): string => s.slice(0, s.indexOf('\n'))

function reviews (): Array<{ name: string, body: string }> {
  const docs = corpus()
  const out = docs.map((d) => ({ name: `${d.file}#${d.index}${d.item !== null ? `.${d.item}` : ''}`, body: JSON.stringify(review(d.object)) }))
  // UPDATE, dry run, v1beta1, a subresource, DELETE: the request's other fields matter too.
  const multiNode = docs.find((d) => (d.object.spec as Json).multiNode !== undefined && (d.object.spec as Json).scale !== undefined)?.object as Json
  const changed = structuredClone(multiNode)
  ;((changed.spec as Json).multiNode as Json).parallelism = { pipeline: 4, tensor: 8 }
  out.push({ name: 'update changing multiNode', body: JSON.stringify(review(changed, { operation: 'UPDATE', oldObject: multiNode })) })
  out.push({ name: 'dry run', body: JSON.stringify(review(multiNode, { dryRun: true })) })
  out.push({ name: 'v1beta1', body: JSON.stringify(review(docs[0]?.object as Json, { apiVersion: 'admission.k8s.io/v1beta1' })) })
  out.push({ name: 'status subresource', body: JSON.stringify(review(multiNode, { operation: 'UPDATE', oldObject: multiNode, subResource: 'status' })) })
  out.push({ name: 'delete', body: JSON.stringify(review(null, { operation: 'DELETE', oldObject: multiNode })) })
  return out
}

describe('one verdict, two doors', () => {
  test('the corpus holds allowed, denied and warned NIMServices', () => {
    const docs = corpus()
    assert.ok(docs.length >= 25, `${docs.length} NIMServices`)
  })

  test('review (in process) answers byte for byte as POST /validate and /mutate', async () => {
    for (const { name, body } of reviews()) {
      const path = reviewFile(body)
      for (const endpoint of ['validate', 'mutate'] as const) {
        const want = await server(endpoint, body)
        assert.equal(want.statusCode, 200, name)
        const got = await runCli(endpoint === 'mutate' ? ['review', '--mutate', path] : ['review', path])
        assert.equal(firstLine(got.stdout), want.body, `${endpoint} ${name}`)
        const allowed = (JSON.parse(want.body) as { response: { allowed: boolean } }).response.allowed
        assert.equal(got.code, allowed ? 0 : 1, `${endpoint} ${name}`)
      }
    }
  })

  test('validate -o json gives the causes, warnings and denial message the server gives', async () => {
    const docs = corpus()
    // The corpus repeats names across files on purpose: NIM121 (duplicates) is the CLI's alone.
    const got = await runCli(['validate', '-o', 'json', '--disable', 'NIM121', ...CORPUS_FILES])
    const results = (JSON.parse(got.stdout) as { results: Result[] }).results
    assert.equal(results.length, docs.length)
    let denied = 0
    let warned = 0
    for (const d of docs) {
      const name = `${d.file}#${d.index}`
      const r = results.find((x) => x.file === d.file && x.index === d.index && x.item === d.item)
      assert.ok(r !== undefined, name)
      // The apiserver applies the CRD's defaults before it asks the webhook.
      const { response } = JSON.parse((await server('validate', JSON.stringify(review(withCrdDefaults(d.object, nimServiceSchema()))))).body) as { response: Json & { status?: Json & { details?: { causes: unknown[] } }, warnings?: string[] } }
      assert.equal(r.allowed, response.allowed, name)
      assert.deepEqual(r.causes.map((c) => ({ field: c.field, message: c.message, reason: c.code })), response.status?.details?.causes ?? [], name)
      assert.equal(r.message, response.status?.message ?? null, name)
      assert.deepEqual(formatWarnings(r.warnings), response.warnings ?? [], name)
      if (!r.allowed) denied++
      if (r.warnings.length > 0) warned++
    }
    assert.ok(denied >= 10 && warned >= 10 && docs.length - denied >= 10, `${denied} denied, ${warned} warned of ${docs.length}`)
  })

  test('malformed reviews get the same status and body from review as from the server', async () => {
    const valid = JSON.stringify(review(corpus()[0]?.object as Json))
    const bodies: Array<[string, string | Buffer]> = [
      ['empty', ''],
      ['whitespace', ' \n'],
      ['not JSON', 'apiVersion: v1\n'],
      ['truncated', valid.slice(0, 40)],
      ['an array', '[]'],
      ['a number', '42'],
      ['null', 'null'],
      ['wrong kind', '{"kind":"Pod","apiVersion":"v1"}'],
      ['unsupported version', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2"}'],
      ['no request', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}'],
      ['no uid', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"operation":"CREATE","kind":{"kind":"NIMService"}}}'],
      ['bad operation', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"1","operation":"PATCH","kind":{"kind":"NIMService"}}}'],
      ['bad dryRun', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"1","operation":"CREATE","kind":{"kind":"NIMService"},"dryRun":"yes"}}'],
      ['__proto__', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","__proto__":{"x":1}}'],
      ['constructor.prototype', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"constructor":{"prototype":{}}}}'],
      ['a byte-order mark', '\ufeff' + valid],
      ['invalid UTF-8', Buffer.concat([Buffer.from(valid.slice(0, -2)), Buffer.from([0xff]), Buffer.from('}}')])],
      ['too large', Buffer.alloc(defaultOptions.bodyLimitBytes + 1, 0x20)]
    ]
    for (const [name, body] of bodies) {
      const want = await server('validate', body)
      const got = await runCli(['review', reviewFile(body)])
      assert.equal(firstLine(got.stdout), want.body, name)
      if (want.statusCode === 200) {
        assert.notEqual(got.code, 2, name)
      } else {
        assert.equal(got.code, 2, name)
        assert.match(got.stderr, new RegExp(`would answer HTTP ${want.statusCode} `), name)
        assert.equal(got.stderr.split('\n').length, 2, `${name}: one line`)
      }
    }
  })
})

describe('one verdict, two doors: the real CLI in a subprocess', () => {
  const skip = unwiredReason()

  test('review and review --mutate print what the server answers', { skip }, async () => {
    for (const { name, body } of reviews().filter((_, i) => i % 6 === 0)) {
      const path = reviewFile(body)
      for (const endpoint of ['validate', 'mutate'] as const) {
        const want = await server(endpoint, body)
        const got = spawnCli(endpoint === 'mutate' ? ['review', '--mutate', path] : ['review', path])
        assert.equal(firstLine(got.stdout), want.body, `${endpoint} ${name}`)
      }
    }
  })

  test('validate -o json matches the server on the whole corpus', { skip }, async () => {
    const got = spawnCli(['validate', '-o', 'json', '--disable', 'NIM121', ...CORPUS_FILES])
    assert.equal(got.code, 1)
    const results = (JSON.parse(got.stdout) as { results: Result[] }).results
    for (const d of corpus()) {
      const r = results.find((x) => x.file === d.file && x.index === d.index && x.item === d.item) as Result
      const { response } = JSON.parse((await server('validate', JSON.stringify(review(withCrdDefaults(d.object, nimServiceSchema()))))).body) as { response: { allowed: boolean, warnings?: string[], status?: { message: string } } }
      assert.deepEqual([r.allowed, r.message, formatWarnings(r.warnings)], [response.allowed, response.status?.message ?? null, response.warnings ?? []], `${d.file}#${d.index}`)
    }
  })
})
