// The offline commands through their register functions (in process, captured output): inputs,
// positions, reports, exit codes, render and review.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { mutateNIMService } from '../../src/nimservice/index.js'
import { parseFieldPath, loadManifests } from '../../src/cli/input.js'
import { xml } from '../../src/cli/report.js'
import { withCrdDefaults } from '../../src/nimservice/crd-defaults.js'
import { nimServiceSchema } from '../../src/cli/crd.js'
import { FIX, ROOT, runCli } from '../fixtures/cli/harness.js'
import { scratchDir } from '../helpers/scratch.js'

process.chdir(ROOT)

type Json = Record<string, unknown>
interface JsonFinding { field: string, line: number, column: number, code: string, message: string, fix: string | null }
interface JsonResult { file: string, index: number, item: number | null, line: number, column: number, name: string | null, namespace: string | null, allowed: boolean, message: string | null, causes: JsonFinding[], warnings: JsonFinding[] }
interface JsonReport { summary: Json, results: JsonResult[], errors: Array<{ file: string, line: number | null, column: number | null, message: string }> }

const jsonReport = (stdout: string): JsonReport => JSON.parse(stdout) as JsonReport
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

const scratch = scratchDir('nim-cli-')
const write = scratch.write

describe('field paths', () => {
  const cases: Array<[string, Array<string | number>]> = [
    ['spec.replicas', ['spec', 'replicas']],
    ['spec.scale.hpa.metrics[0].resource.target.averageUtilization', ['spec', 'scale', 'hpa', 'metrics', 0, 'resource', 'target', 'averageUtilization']],
    ['spec.resources.limits[nvidia.com/gpu]', ['spec', 'resources', 'limits', 'nvidia.com/gpu']],
    ['spec.draResources[1].claimCreationSpec.devices[0]', ['spec', 'draResources', 1, 'claimCreationSpec', 'devices', 0]],
    ['spec.labels[a[b]].x', ['spec', 'labels', 'a[b]', 'x']]
  ]
  for (const [field, want] of cases) {
    test(`splits ${field}`, () => assert.deepEqual(parseFieldPath(field), want))
  }
})

describe('validate: positions', () => {
  test('places spec.replicas and a metric target at their line:column in multi-document YAML', async () => {
    const r = await runCli(['validate', `${FIX}/positions.yaml`])
    assert.equal(r.code, 1)
    assert.deepEqual(lines(r.stdout), [
      `${FIX}/positions.yaml:20:3: error NIM010 spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true (fix: remove spec.replicas: the HPA owns the replica count)`,
      `${FIX}/positions.yaml:35:15: error NIM024 spec.scale.hpa.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0 (fix: give target.type Utilization, Value or AverageValue with a positive matching value)`,
      '3 documents, 2 NIMServices, 1 denied, 0 warnings'
    ])
    assert.equal(r.stderr, '')
  })

  test('places a field of a JSON document (the key of spec.scale.enabled)', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/nim.json`])
    const [result] = jsonReport(r.stdout).results
    assert.deepEqual(result?.causes.map((c) => [c.code, c.field, c.line, c.column]), [['NIM011', 'spec.scale.enabled', 21, 7]])
    assert.equal(r.code, 1)
  })

  test('a missing field is placed at its deepest parent present', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/corpus.yaml`])
    const noHpa = jsonReport(r.stdout).results.find((x) => x.name === 'no-hpa')
    assert.deepEqual(noHpa?.causes.map((c) => [c.code, c.field, c.line, c.column]), [['NIM012', 'spec.scale.hpa', 24, 3]])
  })

  test('follows << merge keys to the merged source', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/corpus.yaml`])
    const warned = jsonReport(r.stdout).results.find((x) => x.name === 'warned')
    const w = warned?.warnings.find((x) => x.code === 'NIM103')
    assert.deepEqual([w?.line, w?.column], [109, 29])
  })

  test('reads YAML 1.1 booleans as kubectl does (enabled: on is true)', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/corpus.yaml`])
    const quiet = jsonReport(r.stdout).results.find((x) => x.name === 'quiet')
    assert.equal(quiet?.allowed, true)
    assert.deepEqual(quiet?.warnings, [])
    const [m] = loadManifests({ file: 'x', text: 'kind: X\nspec: {a: yes, b: off, c: 010, d: 2024-01-01, e: 1:20}\n' }).manifests
    assert.deepEqual(m?.object.spec, { a: true, b: false, c: 8, d: '2024-01-01', e: '1:20' })
  })
})

describe('validate: inputs', () => {
  test('kind: List items are documents, placed in the list', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/list.yaml`])
    const report = jsonReport(r.stdout)
    assert.equal(report.summary.documents, 3)
    assert.deepEqual(report.results.map((x) => [x.name, x.index, x.item, x.line, x.allowed]), [['listed-ok', 0, 1, 12, true], ['listed-typo', 0, 2, 24, false]])
    assert.deepEqual(report.results[1]?.causes.map((c) => [c.code, c.field, c.line, c.column]), [['NIM003', 'spec.scale.hpa.minReplica', 35, 11]])
  })

  test('walks folders recursively over .yaml, .yml and .json, skipping hidden folders and other files', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/tree`])
    const report = jsonReport(r.stdout)
    assert.deepEqual(report.results.map((x) => x.file), [`${FIX}/tree/a.yaml`, `${FIX}/tree/sub/b.yml`])
    assert.deepEqual(report.summary, { documents: 3, nimServices: 2, denied: 0, warnings: 1, skipped: 0, unreadable: 0, strict: false, passed: true })
    assert.equal(r.code, 0)
  })

  test('reads stdin for -, named <stdin>, beside files', async () => {
    const stream = `---\n# Source: chart/templates/empty.yaml\n---\n# Source: chart/templates/nim.yaml\n${readFileSync(`${FIX}/positions.yaml`, 'utf8')}`
    const r = await runCli(['validate', '-', `${FIX}/tree/a.yaml`], { stdin: stream })
    assert.equal(r.code, 1)
    assert.match(r.stdout, /^<stdin>:24:3: error NIM010 spec\.replicas: /m)
    assert.match(r.stdout, /^4 documents, 3 NIMServices, 1 denied, 0 warnings$/m)
  })

  test('other kinds are counted and skipped', async () => {
    const r = await runCli(['validate', `${FIX}/tree/sub/deeper/c.json`])
    assert.equal(r.stdout, '1 documents, 0 NIMServices, 0 denied, 0 warnings\n')
    assert.equal(r.code, 0)
  })
})

describe('validate: exit status', () => {
  test('0 when every NIMService is allowed, warnings or not', async () => {
    const r = await runCli(['validate', `${FIX}/seed`])
    assert.equal(r.code, 0, r.stdout)
    assert.match(r.stdout, /^13 documents, 13 NIMServices, 0 denied, \d+ warnings$/m)
  })

  test('--strict: warnings fail too', async () => {
    assert.equal((await runCli(['validate', `${FIX}/tree/sub/b.yml`])).code, 0)
    assert.equal((await runCli(['validate', '--strict', `${FIX}/tree/sub/b.yml`])).code, 1)
    assert.equal((await runCli(['validate', '--strict', `${FIX}/tree/a.yaml`])).code, 0)
  })

  test('1 when any NIMService is denied', async () => {
    assert.equal((await runCli(['validate', `${FIX}/tree`, `${FIX}/positions.yaml`])).code, 1)
  })
})

describe('validate: unreadable input', () => {
  test('each bad input gets one line naming file and position, exit 2 wins, the other files are still checked', async () => {
    const syntax = write('bad/syntax.yaml', 'apiVersion: v1\nkind: ConfigMap\ndata: [1, 2\nmore: x\n')
    const scalar = write('bad/scalar.yaml', 'just a string\n')
    const seq = write('bad/seq.yaml', 'kind: ConfigMap\n---\n- a\n- b\n')
    const garbage = write('bad/garbage.yaml', Buffer.concat([Buffer.from('kind: X\nab'), Buffer.from([0x00, 0x9f, 0x92, 0x01, 0xff])]))
    const latin1 = write('bad/latin1.yaml', Buffer.concat([Buffer.from('kind: X\nname: caf'), Buffer.from([0xe9, 0x0a])]))
    const empty = write('bad/empty.yaml', '')
    const blank = write('bad/blank.yaml', '\n  \n')
    const dup = write('bad/dup.yaml', 'kind: X\nkind: Y\n')
    const missing = scratch.path('bad/nope.yaml')
    const r = await runCli(['validate', syntax, scalar, seq, garbage, latin1, empty, blank, dup, missing, `${FIX}/positions.yaml`])
    assert.equal(r.code, 2)
    assert.deepEqual(lines(r.stderr), [
      `nim-admission: ${syntax}:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      `nim-admission: ${garbage}:2:3: not a text file: control character 0x00 (binary content?)`,
      `nim-admission: ${latin1}:2:10: not a text file: invalid UTF-8 (binary content?)`,
      `nim-admission: ${dup}:2:1: YAML syntax error: Map keys must be unique`,
      `nim-admission: ${missing}: cannot read: no such file or directory`
    ])
    // The readable documents were still checked and reported.
    assert.match(r.stdout, /positions\.yaml:20:3: error NIM010 spec\.replicas/)
    // A scalar or list document is no Kubernetes object: skipped, as empty files are (kubectl skips them).
    assert.match(r.stdout, /^4 documents, 2 NIMServices, 1 denied, 0 warnings, 2 skipped \(not Kubernetes objects\), 5 unreadable$/m)
    void scalar; void empty; void blank
    assert.doesNotMatch(r.stderr + r.stdout, /\n\s+at /, 'no stack trace')
  })

  test('a NUL byte in otherwise valid UTF-8 is binary content', async () => {
    const bin = write('bin.yaml', Buffer.from([0x6b, 0x69, 0x6e, 0x64, 0x00, 0x01]))
    const r = await runCli(['validate', bin])
    assert.equal(r.stderr, `nim-admission: ${bin}:1:5: not a text file: control character 0x00 (binary content?)\n`)
    assert.equal(r.code, 2)
  })

  test('an alias without its anchor is placed at the alias', async () => {
    const alias = write('alias.yaml', 'a: &x 1\n---\nkind: Foo\nb: *x\n')
    const r = await runCli(['validate', alias])
    assert.equal(r.stderr, `nim-admission: ${alias}:4:4: YAML error: Unresolved alias (the anchor must be set before the alias): x\n`)
    assert.equal(r.code, 2)
  })

  test('a folder without manifests is an error; empty stdin is not', async () => {
    mkdirSync(scratch.path('nothing-here'), { recursive: true })
    write('nothing-here/notes.md', '# no manifests\n')
    const r = await runCli(['validate', scratch.path('nothing-here'), '-'], { stdin: '' })
    assert.deepEqual(lines(r.stderr), [`nim-admission: ${scratch.path('nothing-here')}: no .yaml, .yml or .json file in this folder`])
    assert.equal(r.code, 2)
  })

  test('JSON and JUnit reports carry the input errors too', async () => {
    const dup = write('dup2.yaml', 'kind: X\nkind: Y\n')
    const json = jsonReport((await runCli(['validate', '-o', 'json', dup])).stdout)
    assert.deepEqual(json.errors, [{ file: dup, line: 2, column: 1, message: 'YAML syntax error: Map keys must be unique' }])
    const junit = (await runCli(['validate', '-o', 'junit', dup])).stdout
    assert.match(junit, /<testsuites name="nim-admission validate" tests="1" failures="0" errors="1" time=/)
    assert.match(junit, /<error type="input" message="YAML syntax error: Map keys must be unique"/)
  })
})

describe('validate: reports', () => {
  test('json: one document with summary, results (causes with field, line, code, fix) and errors', async () => {
    const r = await runCli(['validate', '-o', 'json', `${FIX}/positions.yaml`, `${FIX}/tree/sub/b.yml`])
    const report = jsonReport(r.stdout)
    assert.deepEqual(Object.keys(report), ['summary', 'results', 'errors'])
    assert.deepEqual(report.summary, { documents: 4, nimServices: 3, denied: 1, warnings: 1, skipped: 0, unreadable: 0, strict: false, passed: false })
    const bad = report.results[0] as JsonResult
    assert.deepEqual({ ...bad, causes: bad.causes.length }, {
      file: `${FIX}/positions.yaml`,
      index: 1,
      item: null,
      line: 10,
      column: 1,
      apiVersion: 'apps.nvidia.com/v1alpha1',
      kind: 'NIMService',
      checked: true,
      name: 'llm-bad',
      namespace: 'nim',
      allowed: false,
      message: 'NIMService "llm-bad" is invalid: spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true; spec.scale.hpa.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0',
      causes: 2,
      warnings: []
    })
    assert.deepEqual(bad.causes[0], {
      field: 'spec.replicas', line: 20, column: 3, code: 'NIM010',
      message: 'spec.replicas cannot be set when spec.scale.enabled is true', fix: 'remove spec.replicas: the HPA owns the replica count'
    })
    assert.deepEqual(report.results[2]?.warnings.map((w) => [w.code, w.field, w.line, w.column]), [['NIM101', 'spec.scale.hpa.minReplicas', 14, 7]])
  })

  test('junit: a testcase per NIMService, a failure per denial cause; warnings as output, or failures with --strict', async () => {
    const paths = [`${FIX}/positions.yaml`, `${FIX}/tree/sub/b.yml`]
    const plain = (await runCli(['validate', '-o', 'junit', ...paths])).stdout
    assert.match(plain, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="nim-admission validate" tests="3" failures="1" errors="0" time="\d+\.\d{3}">/)
    assert.equal(plain.match(/<testcase /g)?.length, 3)
    assert.equal(plain.match(/<failure /g)?.length, 2)
    assert.match(plain, /<testsuite name="test\/fixtures\/cli\/positions.yaml" tests="2" failures="1" errors="0" skipped="0" time="\d+\.\d{3}">/)
    // Named namespace/name (stable when lines move), classname without dots, a time on every testcase.
    assert.match(plain, /<testcase classname="NIMService" name="nim\/llm-bad" file="test\/fixtures\/cli\/positions.yaml" line="10" time="\d+\.\d{3}">/)
    assert.match(plain, /<failure type="NIM010" message="spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true">/)
    assert.match(plain, /<system-out>test\/fixtures\/cli\/tree\/sub\/b.yml:14:7: warning NIM101 /)
    assert.equal(plain.match(/<testcase [^>]*\/>/g)?.length, 1, 'the allowed NIMService without warnings is an empty testcase')

    const strict = await runCli(['validate', '-o', 'junit', '--strict', ...paths])
    assert.match(strict.stdout, /<testsuites name="nim-admission validate" tests="3" failures="2" errors="0" time=/)
    assert.match(strict.stdout, /<failure type="NIM101" message="warning: spec.scale.hpa.minReplicas: /)
    assert.equal(strict.code, 1)
  })

  test('junit escapes what XML cannot carry', () => {
    assert.equal(xml('a<b & "c" \'d\' \u0001 \ud800\n'), 'a&lt;b &amp; &quot;c&quot; &apos;d&apos; \ufffd \ufffd&#10;')
  })

  test('colour only on a terminal, and never with --no-color or NO_COLOR', async () => {
    const path = `${FIX}/positions.yaml`
    const ESC = '\u001b['
    assert.ok((await runCli(['validate', path], { tty: true })).stdout.includes(`${ESC}31merror`))
    assert.ok(!(await runCli(['validate', path], { tty: false })).stdout.includes(ESC))
    assert.ok(!(await runCli(['validate', '--no-color', path], { tty: true })).stdout.includes(ESC))
    assert.ok(!(await runCli(['validate', path], { tty: true, env: { NO_COLOR: '1' } })).stdout.includes(ESC))
  })
})

describe('usage', () => {
  for (const command of ['validate', 'render', 'review']) {
    test(`${command} --help shows examples, exit 0`, async () => {
      const r = await runCli([command, '--help'])
      assert.equal(r.code, 0)
      assert.match(r.stdout, /Examples:\n {2}\$ nim-admission /)
    })
  }

  test('usage errors exit 2, not 1 (1 means denied)', async () => {
    assert.equal((await runCli(['validate'])).code, 2)
    assert.equal((await runCli(['validate', '-o', 'xml', 'x.yaml'])).code, 2)
    assert.equal((await runCli(['render', '--bogus', 'x.yaml'])).code, 2)
    assert.equal((await runCli(['review', 'a.json', 'b.json'])).code, 2)
  })
})

describe('render', () => {
  test('prints each admitted NIMService as /mutate leaves it, then its HPA; denials go to stderr, exit 1', async () => {
    const r = await runCli(['render', `${FIX}/positions.yaml`])
    assert.equal(r.code, 1)
    const docs = parseAllDocuments(r.stdout, { version: '1.1' }).map((d) => d.toJS() as Json)
    const [good] = loadManifests({ file: 'p', text: readFileSync(`${FIX}/positions.yaml`, 'utf8') }).manifests.filter((m) => (m.object.metadata as Json).name === 'llm-good')
    const mutation = mutateNIMService({ operation: 'CREATE', object: withCrdDefaults(good?.object, nimServiceSchema()), namespace: 'default' })
    assert.deepEqual(docs, [mutation.object, mutation.hpa])
    assert.equal((docs[1] as Json).kind, 'HorizontalPodAutoscaler')
    assert.match(r.stdout, /^# NIMService nim\/llm-good from test\/fixtures\/cli\/positions.yaml:40:1, as the cluster stores it \(CRD defaults, then \/mutate\)$/m)
    assert.deepEqual(lines(r.stderr), [
      `${FIX}/positions.yaml:10:1: NIMService nim/llm-bad denied: NIMService "llm-bad" is invalid: spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true; spec.scale.hpa.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0`,
      `${FIX}/positions.yaml:20:3: error NIM010 spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true (fix: remove spec.replicas: the HPA owns the replica count)`,
      `${FIX}/positions.yaml:35:15: error NIM024 spec.scale.hpa.metrics[0].resource.target.averageUtilization: Invalid value: -5: must be greater than 0 (fix: give target.type Utilization, Value or AverageValue with a positive matching value)`
    ])
  })

  test('defaults go in, their warnings go to stderr once, the HPA lands in --namespace', async () => {
    const nim = write('render/minimal.yaml', 'apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: small, labels: {flag: "yes"}}\nspec:\n  image: {repository: r, tag: "1"}\n  authSecret: s\n  scale: {enabled: true, hpa: {minReplicas: 2, maxReplicas: 3}}\n')
    const r = await runCli(['render', '-n', 'team-a', nim])
    assert.equal(r.code, 0)
    const [object, hpa] = parseAllDocuments(r.stdout, { version: '1.1' }).map((d) => d.toJS() as Json)
    assert.deepEqual((object?.spec as Json).expose, { service: { port: 8000 } })
    assert.deepEqual((object?.metadata as Json).labels, { flag: 'yes' }, 'a string that YAML 1.1 reads as a boolean stays quoted')
    assert.equal((hpa?.metadata as Json).namespace, 'team-a')
    assert.deepEqual(lines(r.stderr).map((l) => l.split(' ').slice(1, 3).join(' ')), ['warning NIM109', 'warning NIM111'])
  })

  test('a NIMService without autoscaling renders no HPA; other kinds are not printed', async () => {
    const r = await runCli(['render', `${FIX}/seed/multi-node-without-autoscaling.yaml`, `${FIX}/tree/sub/deeper/c.json`])
    assert.equal(r.code, 0)
    assert.deepEqual(parseAllDocuments(r.stdout).map((d) => (d.toJS() as Json).kind), ['NIMService'])
  })

  test('unreadable input exits 2 and the rest is still rendered', async () => {
    const r = await runCli(['render', scratch.path('render/missing.yaml'), `${FIX}/tree/a.yaml`])
    assert.equal(r.code, 2)
    assert.equal(r.stderr, `nim-admission: ${scratch.path('render/missing.yaml')}: cannot read: no such file or directory\n`)
    assert.match(r.stdout, /kind: HorizontalPodAutoscaler/)
  })
})

describe('review', () => {
  const nimObject = (spec: Json): Json => ({ apiVersion: 'apps.nvidia.com/v1alpha1', kind: 'NIMService', metadata: { name: 'r', namespace: 'nim' }, spec: { image: { repository: 'r', tag: '1' }, authSecret: 's', ...spec } })
  const reviewOf = (object: Json, uid = 'u-1'): string => JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid, kind: { group: 'apps.nvidia.com', version: 'v1alpha1', kind: 'NIMService' }, operation: 'CREATE', name: 'r', namespace: 'nim', object, dryRun: false }
  })

  test('allowed: exit 0, the response on one line', async () => {
    const r = await runCli(['review', write('review/ok.json', reviewOf(nimObject({})))])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-1","allowed":true}}\n')
  })

  test('denied: exit 1, each cause with its fix on stderr', async () => {
    const r = await runCli(['review', '-'], { stdin: reviewOf(nimObject({ replicas: 2, scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 3 } } })) })
    assert.equal(r.code, 1)
    const response = (JSON.parse(r.stdout) as { response: Json }).response
    assert.equal(response.allowed, false)
    assert.match(r.stderr, /^error NIM010 spec\.replicas: .* \(fix: remove spec\.replicas: the HPA owns the replica count\)$/m)
  })

  test('--mutate prints the response, then the JSON Patch decoded', async () => {
    const r = await runCli(['review', '--mutate', write('review/mutate.json', reviewOf(nimObject({ scale: { enabled: true, hpa: { minReplicas: 2, maxReplicas: 3 } } })))])
    assert.equal(r.code, 0)
    const [first, ...rest] = r.stdout.split('\n')
    const response = (JSON.parse(first ?? '') as { response: { patch: string, patchType: string } }).response
    assert.equal(response.patchType, 'JSONPatch')
    assert.deepEqual(JSON.parse(rest.join('\n')), JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')))
  })

  test('not a NIMService: allowed unchecked, and stderr says why', async () => {
    const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: {} } })
    const r = await runCli(['review', write('review/pod.json', body)])
    assert.equal(r.code, 0)
    assert.match(r.stderr, /not checked \(other_kind\)/)
  })

  test('a malformed review gets the server\'s 4xx body, one line of stderr, exit 2', async () => {
    const r = await runCli(['review', write('review/bad.json', '{"kind":"Pod"}')])
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '{"error":"Bad Request","reason":"not_a_review","message":"kind must be \\"AdmissionReview\\", got \\"Pod\\""}\n')
    assert.equal(r.stderr, `nim-admission: ${scratch.path('review/bad.json')}: the server would answer HTTP 400 (not_a_review): kind must be "AdmissionReview", got "Pod"\n`)
  })

  test('a missing file: one line, exit 2', async () => {
    const r = await runCli(['review', scratch.path('review/none.json')])
    assert.deepEqual([r.code, r.stdout, r.stderr], [2, '', `nim-admission: ${scratch.path('review/none.json')}: cannot read: no such file or directory\n`])
  })
})
