// Report formats for CI checked against their specifications: SARIF 2.1.0 against the OASIS JSON
// schema (vendored in test/fixtures/cli), with the rule catalogue, regions and input errors; JUnit read
// back by a JUnit consumer (junit2json, an XML parser underneath).
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { parse as parseJunit } from 'junit2json'
import { RULES } from '../../src/nimservice/index.js'
import { FIX, ROOT, runCli } from '../fixtures/cli/harness.js'

process.chdir(ROOT)

type Json = Record<string, unknown>

function sarifValidator (): (doc: unknown) => string[] {
  const ajv = new Ajv({ strict: false, allErrors: true })
  ajv.addFormat('uri', (s: string) => { try { return new URL(s).protocol !== '' } catch { return false } })
  ajv.addFormat('uri-reference', (s: string) => { try { return !/\s/.test(s) && new URL(s, 'file:///base/').href !== '' } catch { return false } })
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)))
  const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, FIX, 'sarif-schema-2.1.0.json'), 'utf8')) as Json)
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`))
}

describe('-o sarif', () => {
  const check = sarifValidator()

  test('validates against the SARIF 2.1.0 schema: denials, warnings, stdin and an unreadable input', async () => {
    const r = await runCli(['validate', '-o', 'sarif', `${FIX}/positions.yaml`, `${FIX}/tree/sub/b.yml`, '-', 'no/such.yaml'], { stdin: 'kind: X\nkind: Y\n' })
    assert.equal(r.code, 2)
    const doc = JSON.parse(r.stdout) as Json
    assert.deepEqual(check(doc), [])
    const run = (doc.runs as Json[])[0] as Json
    const results = run.results as Json[]
    assert.deepEqual(results.map((x) => [x.ruleId, x.level]), [['NIM010', 'error'], ['NIM024', 'error'], ['NIM101', 'warning']])
    const rules = ((run.tool as Json).driver as Json).rules as Json[]
    assert.equal(rules.length, RULES.size)
    const first = results[0] as Json
    assert.equal(rules[first.ruleIndex as number]?.id, 'NIM010')
    assert.deepEqual((((first.locations as Json[])[0] as Json).physicalLocation as Json), {
      artifactLocation: { uri: 'test/fixtures/cli/positions.yaml', uriBaseId: '%SRCROOT%' },
      region: { startLine: 20, startColumn: 3 }
    })
    const invocation = (run.invocations as Json[])[0] as Json
    assert.equal(invocation.executionSuccessful, false)
    assert.deepEqual((invocation.toolExecutionNotifications as Json[]).map((n) => (n.message as Json).text), ['YAML syntax error: Map keys must be unique', 'cannot read: no such file or directory'])
  })

  test('--strict makes warnings errors; an empty input is a valid log with no results', async () => {
    const strict = JSON.parse((await runCli(['validate', '-o', 'sarif', '--strict', `${FIX}/tree/sub/b.yml`])).stdout) as Json
    assert.deepEqual(check(strict), [])
    assert.deepEqual((((strict.runs as Json[])[0] as Json).results as Json[]).map((x) => x.level), ['error'])
    const empty = await runCli(['validate', '-o', 'sarif', '-'], { stdin: '' })
    assert.equal(empty.code, 0)
    assert.deepEqual(check(JSON.parse(empty.stdout)), [])
  })

  test('the schema check is real: a result without a message fails it', () => {
    assert.notDeepEqual(check({ version: '2.1.0', runs: [{ tool: { driver: { name: 'x' } }, results: [{ ruleId: 'NIM010' }] }] }), [])
  })
})

describe('-o junit, read back by a JUnit consumer', () => {
  interface Case { classname: string, name: string, time: number, failure?: Array<{ type: string, message: string, inner: string }>, error?: unknown[], 'system-out'?: string[] }
  interface Suite { name: string, tests: number, failures: number, errors: number, time: number, testcase: Case[] }
  interface Suites { tests: number, failures: number, errors: number, time: number, testsuite: Suite[] }

  test('counts add up, names are namespace/name, classnames have no dots, every testcase has a time, text survives', async () => {
    const tricky = 'apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: t, namespace: ns}\nspec:\n  image: {repository: r, tag: "1"}\n  authSecret: s\n  labels:\n    "a <b> & \\"c\\"\\nd": v\n'
    const r = await runCli(['validate', '-o', 'junit', `${FIX}/positions.yaml`, `${FIX}/tree/sub/b.yml`, '-', 'no/such.yaml'], { stdin: tricky })
    assert.equal(r.code, 2)
    const doc = await parseJunit(r.stdout) as unknown as Suites
    const suites = doc.testsuite
    assert.equal(doc.tests, suites.reduce((n, s) => n + s.tests, 0))
    assert.equal(doc.failures, suites.reduce((n, s) => n + s.failures, 0))
    assert.equal(doc.errors, suites.reduce((n, s) => n + s.errors, 0))
    for (const s of suites) {
      assert.equal(s.tests, s.testcase.length, s.name)
      assert.equal(s.failures, s.testcase.filter((c) => c.failure !== undefined).length, s.name)
      for (const c of s.testcase) {
        assert.equal(typeof c.time, 'number', c.name)
        assert.doesNotMatch(c.classname, /\./, c.classname)
      }
    }
    const cases = suites.flatMap((s) => s.testcase)
    assert.deepEqual(cases.map((c) => c.name), ['read no/such.yaml', 'nim/llm-bad', 'nim/llm-good', 'nim/tree-b', 'ns/t'])
    const tricky6 = cases.find((c) => c.name === 'ns/t')?.failure?.[0]
    assert.equal(tricky6?.type, 'NIM006')
    assert.match(tricky6?.message ?? '', /^spec\.labels\[a <b> & "c"\nd\]: Invalid value: "a <b> & \\"c\\"\\nd": /)
  })

  test('no NIMService: one passing testcase, not tests="0"', async () => {
    const doc = await parseJunit((await runCli(['validate', '-o', 'junit', '-'], { stdin: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n' })).stdout) as unknown as Suites
    assert.equal(doc.tests, 1)
    assert.equal(doc.failures, 0)
  })
})
