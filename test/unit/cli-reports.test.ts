// Report formats for CI checked against their specifications: SARIF 2.1.0 against the OASIS JSON
// schema (vendored in test/fixtures/cli), with the rule catalogue, regions and input errors.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
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
