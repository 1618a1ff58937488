// The real CLI (src/cli/main.ts) in a subprocess: what a CI job sees, exit statuses included.
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { spawnSync } from 'node:child_process'
import { CLI_ENTRY, FIX, ROOT, spawnCli, unwiredReason } from '../fixtures/cli/harness.js'

const skip = unwiredReason()
let tmp: string
before(() => { tmp = mkdtempSync(join(tmpdir(), 'nim-cli-sub-')) })
after(() => { rmSync(tmp, { recursive: true, force: true }) })

describe('nim-admission validate, render, review as a process', { skip }, () => {
  test('validate: a finding per line at file:line:col, the summary, exit 1 on a denial, no colour in a pipe', () => {
    const r = spawnCli(['validate', `${FIX}/positions.yaml`])
    assert.equal(r.code, 1)
    assert.equal(r.stderr, '')
    assert.deepEqual(r.stdout.split('\n').map((l) => l.split(' ').slice(0, 4).join(' ')), [
      `${FIX}/positions.yaml:20:3: error NIM010 spec.replicas:`,
      `${FIX}/positions.yaml:35:15: error NIM024 spec.scale.hpa.metrics[0].resource.target.averageUtilization:`,
      '3 documents, 2 NIMServices,',
      ''
    ])
  })

  test('validate: exit 0 when all are allowed, 1 with --strict when one warns', () => {
    assert.equal(spawnCli(['validate', `${FIX}/tree`]).code, 0)
    assert.equal(spawnCli(['validate', '--strict', `${FIX}/tree`]).code, 1)
  })

  test('validate: unreadable input is one line on stderr, exit 2 over 1, the other files still reported', () => {
    const bad = join(tmp, 'bad.yaml')
    writeFileSync(bad, 'kind: [\n')
    const r = spawnCli(['validate', bad, join(tmp, 'missing.yaml'), `${FIX}/positions.yaml`])
    assert.equal(r.code, 2)
    assert.deepEqual(r.stderr.split('\n'), [
      `nim-admission: ${bad}:2:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      `nim-admission: ${join(tmp, 'missing.yaml')}: cannot read: no such file or directory`,
      ''
    ])
    assert.match(r.stdout, /^3 documents, 2 NIMServices, 1 denied, 0 warnings, 2 unreadable$/m)
  })

  test('validate -: a helm template stream on stdin, JSON report', () => {
    const stream = `---\n# Source: chart/templates/nim.yaml\n${readFileSync(`${FIX}/list.yaml`, 'utf8')}`
    const r = spawnCli(['validate', '-o', 'json', '-'], { stdin: stream })
    assert.equal(r.code, 1)
    const report = JSON.parse(r.stdout) as { results: Array<{ file: string, name: string, allowed: boolean }> }
    assert.deepEqual(report.results.map((x) => [x.file, x.name, x.allowed]), [['<stdin>', 'listed-ok', true], ['<stdin>', 'listed-typo', false]])
  })

  test('validate -o junit is a JUnit document', () => {
    const r = spawnCli(['validate', '-o', 'junit', `${FIX}/seed`])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="nim-admission validate" tests="13" failures="0" errors="0" time="\d+\.\d{3}">\n/)
  })

  test('render: a YAML stream of NIMService and HPA pairs; the denial on stderr, exit 1', () => {
    const r = spawnCli(['render', `${FIX}/positions.yaml`])
    assert.equal(r.code, 1)
    assert.deepEqual(parseAllDocuments(r.stdout).map((d) => (d.toJS() as { kind: string }).kind), ['NIMService', 'HorizontalPodAutoscaler'])
    assert.match(r.stderr, /NIMService nim\/llm-bad denied: NIMService "llm-bad" is invalid: spec\.replicas: /)
  })

  test('review: a malformed review exits 2 with the server\'s body', () => {
    const r = spawnCli(['review', '-'], { stdin: '{"kind":"AdmissionReview"}' })
    assert.equal(r.code, 2)
    assert.equal(r.stdout, '{"error":"Bad Request","reason":"unsupported_version","message":"apiVersion must be one of admission.k8s.io/v1, admission.k8s.io/v1beta1, got null"}\n')
    assert.equal(r.stderr.split('\n').length, 2)
  })

  test('--help of every command shows examples; usage errors exit 2', () => {
    for (const command of ['validate', 'render', 'review']) {
      const r = spawnCli([command, '--help'])
      assert.equal(r.code, 0, command)
      assert.match(r.stdout, /Examples:\n/, command)
    }
    const usage = spawnCli(['validate'])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /^error: missing required argument 'path'/)
  })

  test('a mistyped command exits 2 (1 means denied)', () => {
    const r = spawnCli(['valdate', 'x.yaml'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /unknown command 'valdate'/)
  })

  test('validate | head -1: the reader going away is no crash; the exit status is still the verdict', () => {
    const nim = readFileSync(`${FIX}/positions.yaml`, 'utf8')
    const path = join(tmp, 'many.yaml')
    writeFileSync(path, Array.from({ length: 400 }, () => nim).join('---\n'))
    const res = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" --import tsx ${CLI_ENTRY} validate "${path}" | head -1`], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } })
    assert.equal(res.stderr.toString(), '', 'no EPIPE stack trace')
    assert.match(res.stdout.toString(), /^\S+many\.yaml:\d+:3: error NIM010 spec\.replicas/)
    assert.equal(res.status, 1)
  })
})
