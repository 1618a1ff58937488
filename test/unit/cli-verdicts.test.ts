// The offline gate's verdicts where they used to differ from the cluster's (issue 20): the CRD's
// defaults applied first, byte-order marks inside a stream, metadata, labels and annotations that end
// up on created objects, near-miss kinds and versions, YAML 1.1 `0o` integers.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { withCrdDefaults, crdVersionSchema, servedVersions, type StructuralSchema } from '../../src/nimservice/crd-defaults.js'
import { objectMetaCauses, renderedMetadataCauses, isQualifiedName } from '../../src/nimservice/metadata.js'
import { validateNIMService } from '../../src/nimservice/index.js'
import { SERVED_VERSIONS, nimServiceSchema } from '../../src/cli/crd.js'
import { FIX, ROOT, runCli } from '../fixtures/cli/harness.js'
import { scratchDir } from '../helpers/scratch.js'

process.chdir(ROOT)

type Json = Record<string, unknown>
interface JsonFinding { field: string, code: string, message: string, line: number }
interface JsonResult { name: string | null, kind: string, checked: boolean, allowed: boolean, causes: JsonFinding[], warnings: JsonFinding[] }
const resultsOf = (stdout: string): JsonResult[] => (JSON.parse(stdout) as { results: JsonResult[] }).results

const CRD = parse(readFileSync(join(ROOT, 'schemas/upstream/apps.nvidia.com_nimservices.yaml'), 'utf8')) as unknown

const scratch = scratchDir('nim-verdicts-')
const write = scratch.write

const nim = (extra: { metadata?: string, spec?: string, kind?: string, apiVersion?: string } = {}): string =>
  `apiVersion: ${extra.apiVersion ?? 'apps.nvidia.com/v1alpha1'}\nkind: ${extra.kind ?? 'NIMService'}\n` +
  `metadata:\n${extra.metadata ?? '  name: llm\n  namespace: nim\n'}` +
  `spec:\n  image: {repository: nvcr.io/nim/x, tag: "1"}\n  authSecret: ngc\n  expose: {service: {port: 8000}}\n${extra.spec ?? ''}`

describe('CRD defaults (structural defaulting, as the apiserver decodes a custom resource)', () => {
  const schema: StructuralSchema = {
    type: 'object',
    properties: {
      a: { type: 'string', default: 'x' },
      n: { type: 'integer' },
      keep: { type: 'string', nullable: true },
      obj: { type: 'object', default: {}, properties: { inner: { type: 'integer', default: 3 } } },
      list: { type: 'array', items: { type: 'object', properties: { count: { type: 'integer', default: 1 } } } },
      map: { type: 'object', additionalProperties: { type: 'object', properties: { v: { type: 'string', default: 'd' } } } }
    }
  }

  test('absent properties get their default, recursively, inside objects and array items that exist', () => {
    assert.deepEqual(withCrdDefaults({ list: [{}, { count: 5 }], map: { k: {} } }, schema),
      { a: 'x', obj: { inner: 3 }, list: [{ count: 1 }, { count: 5 }], map: { k: { v: 'd' } } })
  })

  test('a null without a default and not nullable is dropped; one with a default is defaulted; a nullable one stays', () => {
    assert.deepEqual(withCrdDefaults({ a: null, n: null, keep: null, list: [{ count: null }] }, schema),
      { a: 'x', keep: null, obj: { inner: 3 }, list: [{ count: 1 }] })
  })

  test('the input is not written, and defaults are not shared between objects', () => {
    const input = { list: [{}] }
    const one = withCrdDefaults(input, schema) as Json
    const two = withCrdDefaults(input, schema) as Json
    assert.deepEqual(input, { list: [{}] })
    ;(one.obj as Json).inner = 9
    assert.equal((two.obj as Json).inner, 3)
  })

  test('the shipped schema gives what the vendored CRD gives, and the CLI knows the versions it serves', () => {
    assert.deepEqual(SERVED_VERSIONS, servedVersions(CRD))
    for (const file of ['example0', 'example1', 'example2']) {
      const text = readFileSync(`${FIX}/upstream/nim/serving/advanced/dra/auto-creation/${file}/llm.yaml`, 'utf8')
      const object = text.split(/^---$/m).map((d) => parse(d) as Json | null).find((o) => o?.kind === 'NIMService')
      assert.deepEqual(withCrdDefaults(object, nimServiceSchema()), withCrdDefaults(object, crdVersionSchema(CRD, 'v1alpha1')), file)
    }
  })

  test('the DRA auto-creation samples are admitted: devices[].count and deviceClassName come from the CRD', async () => {
    const dir = `${FIX}/upstream/nim/serving/advanced/dra/auto-creation`
    const r = await runCli(['validate', '-o', 'json', `${dir}/example0/llm.yaml`, `${dir}/example1/llm.yaml`, `${dir}/example2/llm.yaml`])
    assert.equal(r.code, 0, r.stdout)
    const results = resultsOf(r.stdout)
    assert.equal(results.length, 3)
    for (const x of results) assert.deepEqual(x.causes, [])
  })

  test('multiNode: {mpi: {}} is admitted (the CRD defaults what mpi needs)', async () => {
    const path = write('mpi.yaml', nim({ spec: '  multiNode: {parallelism: {tensor: 8}, mpi: {}}\n' }))
    const r = await runCli(['validate', path])
    assert.equal(r.code, 0, r.stdout)
  })
})

describe('streams', () => {
  test('a byte-order mark at the start of a later document does not hide it', async () => {
    const denied = nim({ spec: '  replicas: 2\n  scale: {enabled: true, hpa: {minReplicas: 2, maxReplicas: 3}}\n' })
    for (const stream of [
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n\uFEFF${denied}`,
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n\uFEFF---\n${denied}`,
      `\uFEFF${denied}`
    ]) {
      const r = await runCli(['validate', '-'], { stdin: Buffer.from(stream) })
      assert.equal(r.code, 1, JSON.stringify(stream.slice(0, 60)))
      assert.match(r.stdout, /error NIM010 spec\.replicas/)
    }
  })

  test('YAML 1.1 as kubectl reads it: an unquoted 0o17 is the integer 15, so tag: 0o17 is not a string', async () => {
    const path = write('octal.yaml', nim().replace('tag: "1"', 'tag: 0o17'))
    const r = await runCli(['validate', '-o', 'json', path])
    assert.equal(r.code, 1)
    assert.deepEqual(resultsOf(r.stdout)[0]?.causes.map((c) => [c.code, c.field]), [['NIM001', 'spec.image.tag']])
    assert.equal((await runCli(['validate', write('quoted.yaml', nim().replace('tag: "1"', 'tag: "0o17"'))])).code, 0)
  })
})

describe('metadata (NIM005) and labels and annotations that end up on created objects (NIM006)', () => {
  const subdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
  const nameErr = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
  const valueErr = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

  const cases: Array<[string, Json, Array<[string, string]>]> = [
    ['a name that is no DNS subdomain', { name: 'Bad_Name' }, [['metadata.name', `Invalid value: "Bad_Name": ${subdomain}`]]],
    ['no name', { namespace: 'nim' }, [['metadata.name', 'Required value: name or generateName is required']]],
    ['generateName instead of a name', { generateName: 'llm-' }, []],
    ['a namespace that is no DNS label', { name: 'x', namespace: 'Prod' }, [['metadata.namespace', "Invalid value: \"Prod\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]]],
    ['a label key with a space', { name: 'x', labels: { 'bad key': 'v' } }, [['metadata.labels', `Invalid value: "bad key": ${nameErr}`]]],
    ['a label value with a slash', { name: 'x', labels: { team: 'a/b' } }, [['metadata.labels', `Invalid value: "a/b": ${valueErr}`]]],
    ['an annotation that is not a string', { name: 'x', annotations: { replicas: 3 } }, [['metadata.annotations[replicas]', 'Invalid value: "integer": metadata.annotations[replicas] in body must be of type string: "integer"']]],
    ['an annotation key with an empty prefix', { name: 'x', annotations: { '/x': 'v' } }, [['metadata.annotations', 'Invalid value: "/x": prefix part must be non-empty']]],
    ['upper-case annotation keys (checked lowercased)', { name: 'x', annotations: { 'Example.com/Note': 'v' } }, []]
  ]
  for (const [name, metadata, want] of cases) {
    test(`NIM005: ${name}`, () => {
      assert.deepEqual(objectMetaCauses({ metadata }).map((c) => [c.field, c.message]), want)
      for (const c of objectMetaCauses({ metadata })) assert.equal(c.code, 'NIM005')
    })
  }

  test('qualified names: 63 characters for the name part, a DNS subdomain prefix, one slash at most', () => {
    assert.deepEqual(isQualifiedName(`a/${'b'.repeat(63)}`), [])
    assert.deepEqual(isQualifiedName('b'.repeat(64)), ['name part must be no more than 63 characters'])
    assert.match(isQualifiedName('Example.com/x')[0] ?? '', /^prefix part a lowercase RFC 1123 subdomain/)
    assert.match(isQualifiedName('a/b/c')[0] ?? '', /^a qualified name must consist of/)
  })

  test('NIM006: spec.labels, spec.scale.annotations and spec.annotations are checked as on the objects they end up on', () => {
    const causes = renderedMetadataCauses({
      labels: { 'app.kubernetes.io/name': 'ok', 'bad key': 'v', tier: 'not ok' },
      annotations: { 'a..b/c': 'x' },
      scale: { annotations: { 'x/y/z': 'v', fine: 'any value at all, spaces too' } }
    })
    assert.deepEqual(causes.map((c) => [c.code, c.field]), [
      ['NIM006', 'spec.labels[bad key]'],
      ['NIM006', 'spec.labels[tier]'],
      ['NIM006', 'spec.annotations[a..b/c]'],
      ['NIM006', 'spec.scale.annotations[x/y/z]']
    ])
  })

  test('the webhook denies a NIMService whose spec.labels the Deployment could not carry', () => {
    const verdict = validateNIMService({ operation: 'CREATE', object: { metadata: { name: 'x' }, spec: { image: { repository: 'r', tag: '1' }, authSecret: 's', labels: { 'bad key': 'v' } } } })
    assert.equal(verdict.allowed, false)
    assert.deepEqual(verdict.causes.map((c) => c.code), ['NIM006'])
  })

  test('validate reports metadata causes in the denial message, placed at the field', async () => {
    const path = write('meta.yaml', nim({ metadata: '  name: Bad_Name\n  annotations:\n    replicas: 3\n', spec: '  labels:\n    "bad key": v\n' }))
    const r = await runCli(['validate', '-o', 'json', path])
    assert.equal(r.code, 1)
    const [result] = resultsOf(r.stdout)
    assert.deepEqual(result?.causes.map((c) => [c.code, c.field, c.line]), [
      ['NIM005', 'metadata.name', 4],
      ['NIM005', 'metadata.annotations[replicas]', 6],
      ['NIM006', 'spec.labels[bad key]', 12]
    ])
  })
})

describe('near-misses (NIM120): kubectl would say "no matches for kind", nothing would check them', () => {
  const misses: Array<[string, string]> = [['NimService', 'apps.nvidia.com/v1alpha1'], ['nimservice', 'apps.nvidia.com/v1alpha1'], ['NIMService', 'apps.nvidia.com/v1'], ['NIMServices', 'nvidia.com/v1alpha1']]
  for (const [kind, apiVersion] of misses) {
    test(`kind ${kind}, apiVersion ${apiVersion}: a warning naming the document; --strict fails`, async () => {
      const path = write(`near-${kind}-${apiVersion.replace(/\//g, '_')}.yaml`, nim({ kind, apiVersion }))
      const r = await runCli(['validate', path])
      assert.equal(r.code, 0)
      assert.match(r.stdout, new RegExp(`^${path.replace(/[.]/g, '\\.')}:2:1: warning NIM120 kind: .*not checked`, 'm'))
      assert.match(r.stdout, /^1 documents, 0 NIMServices, 0 denied, 1 warnings$/m)
      assert.equal((await runCli(['validate', '--strict', path])).code, 1)
    })
  }

  test('other kinds of other groups are no near-miss', async () => {
    const path = write('other.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: apps.nvidia.com/v1alpha1\nkind: NIMCache\nmetadata: {name: c}\n')
    const r = await runCli(['validate', '--strict', path])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, '2 documents, 0 NIMServices, 0 denied, 0 warnings\n')
  })
})
