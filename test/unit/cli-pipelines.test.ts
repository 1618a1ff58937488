// The offline gate in pipelines and repositories (issue 20): empty helm output, repositories with
// other YAML, --exclude, unreadable folders, symbolic links, duplicates, JSON streams, streaming
// output, output that input cannot forge, report formats for CI, and the exit statuses.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, symlinkSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { FIX, ROOT, runCli } from '../fixtures/cli/harness.js'
import { excluder, listFiles, type Readdir } from '../../src/cli/walk.js'
import { manifestsOf, isManifest, quickKinds } from '../../src/cli/input.js'
import { escapeText } from '../../src/cli/escape.js'
import { registerValidateCommand } from '../../src/cli/validate.js'
import type { CliIo } from '../../src/cli/input.js'
import { Command } from 'commander'
import { scratchDir } from '../helpers/scratch.js'

process.chdir(ROOT)

type Json = Record<string, unknown>
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '')

const scratch = scratchDir('nim-pipes-')
const write = scratch.write

const nim = (name: string, spec = '', namespace = 'nim'): string =>
  `apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n` +
  `spec:\n  image: {repository: nvcr.io/nim/x, tag: "1"}\n  authSecret: ngc\n  expose: {service: {port: 8000}}\n${spec}`
const DENIED = '  replicas: 2\n  scale: {enabled: true, hpa: {minReplicas: 2, maxReplicas: 3}}\n'

describe('empty input is no error (kubectl skips it)', () => {
  test('helm template printing one newline, and 0-byte files in a folder', async () => {
    assert.deepEqual(await runCli(['validate', '-'], { stdin: '\n' }), { code: 0, stdout: '0 documents, 0 NIMServices, 0 denied, 0 warnings\n', stderr: '' })
    write('empties/zero.yaml', '')
    write('empties/comments.yaml', '# nothing\n---\n')
    write('empties/nim.yaml', nim('x'))
    const r = await runCli(['validate', scratch.path('empties')])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, '1 documents, 1 NIMServices, 0 denied, 0 warnings\n')
  })

  test('--fail-on-empty: no NIMService at all fails (exit 1), and JUnit still has a testcase', async () => {
    const r = await runCli(['validate', '--fail-on-empty', '-'], { stdin: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n' })
    assert.equal(r.code, 1)
    const junit = await runCli(['validate', '-o', 'junit', '-'], { stdin: '\n' })
    assert.equal(junit.code, 0)
    assert.match(junit.stdout, /<testsuites name="nim-admission validate" tests="1" failures="0" errors="0" time="0\.000">/)
    assert.match(junit.stdout, /<testcase classname="NIMService" name="no NIMService in the input" time="0\.000"\/>/)
  })
})

describe('repositories', () => {
  test('YAML that is no Kubernetes object is skipped; --exclude drops paths; the rest is checked', async () => {
    write('repo/.github/workflows/ci.yaml', 'on: push\njobs: {}\n')
    write('repo/ansible/site.yml', '- hosts: all\n  tasks: []\n')
    write('repo/values.yaml', 'replicaCount: 1\nimage: {tag: x}\n')
    write('repo/chart/templates/nim.yaml', 'apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata:\n  name: {{ .Values.name }}\n')
    write('repo/overlays/prod/patches/scale.yaml', 'apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: llm}\nspec: {scale: {enabled: true}}\n')
    write('repo/deploy/nim.yaml', nim('llm', DENIED))
    const r = await runCli(['validate', '--exclude', 'templates', '--exclude', '**/patches/*.yaml', scratch.path('repo')])
    assert.equal(r.stderr, '')
    assert.deepEqual(lines(r.stdout).map((l) => l.replace(scratch.path(), '')), [
      '/repo/deploy/nim.yaml:10:3: error NIM010 spec.replicas: spec.replicas cannot be set when spec.scale.enabled is true (fix: remove spec.replicas: the HPA owns the replica count)',
      '/repo/deploy/nim.yaml:11:26: warning NIM109 spec.scale.hpa.metrics: no metrics: Kubernetes defaults to CPU utilization 80%, which does not follow GPU load (fix: add an Object metric on gpu_cache_usage_perc, the metric the NIM guide recommends)',
      '1 documents, 1 NIMServices, 1 denied, 1 warnings, 2 skipped (not Kubernetes objects)'
    ])
    assert.equal(r.code, 1)
  })

  test('globs: no slash matches a segment, a slash matches a trailing part of the path', () => {
    const ex = excluder(['templates', '*.tpl.yaml', 'overlays/*/patches/**'])
    assert.equal(ex('chart/templates'), true)
    assert.equal(ex('a/b.tpl.yaml'), true)
    assert.equal(ex('/abs/repo/overlays/prod/patches/x/y.yaml'), true)
    assert.equal(ex('overlays/prod/base.yaml'), false)
    assert.equal(ex('templatesX/a.yaml'), false)
  })

  test('an unreadable sub-folder is reported under its own path; the rest of the tree is still listed', async () => {
    write('repo2/locked/x.yaml', nim('locked'))
    write('repo2/open/y.yaml', nim('open', DENIED))
    const locked = scratch.path('repo2/locked')
    // As root every folder is readable: a reader that fails where chmod 000 would make it fail.
    const readdir: Readdir = async (dir) => {
      if (dir === locked) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
      return readdirSync(dir, { withFileTypes: true })
    }
    assert.deepEqual(await listFiles([scratch.path('repo2')], [], [], readdir), [
      { file: locked, message: 'cannot read: permission denied' },
      { file: scratch.path('repo2/open/y.yaml') }
    ])
  })

  test('a symbolic link to a folder outside the tree is not followed; one inside is', async () => {
    write('outside/secret.yaml', nim('outside', DENIED))
    write('linked/real/a.yaml', nim('inside'))
    symlinkSync(scratch.path('outside'), scratch.path('linked/escape'))
    symlinkSync(scratch.path('linked/real'), scratch.path('linked/alias'))
    const r = await runCli(['validate', '-o', 'json', scratch.path('linked')])
    assert.equal(r.code, 0)
    const results = (JSON.parse(r.stdout) as { results: Array<{ name: string }> }).results
    assert.deepEqual(results.map((x) => x.name), ['inside'], 'the alias reaches the same folder, read once; the escape is not followed')
  })

  test('duplicates: the same NIMService twice warns (NIM121), a file named twice is read once', async () => {
    const a = write('dups/a.yaml', nim('same'))
    write('dups/b.yaml', `${nim('other')}---\n${nim('same')}`)
    const r = await runCli(['validate', a, scratch.path('dups')])
    assert.equal(r.stderr, `nim-admission: ${scratch.path('dups/a.yaml')}: named more than once, read once\n`)
    assert.match(r.stdout, new RegExp(`b\\.yaml:14:3: warning NIM121 metadata\\.name: NIMService nim/same is also at ${a.replace(/[.]/g, '\\.')}:1:1: applied together, the last one wins`))
    assert.match(r.stdout, /^3 documents, 3 NIMServices, 0 denied, 1 warnings$/m)
    assert.equal(r.code, 0)
    assert.equal((await runCli(['validate', '--strict', a, scratch.path('dups')])).code, 1)
  })
})

describe('streams', () => {
  test('a concatenated JSON stream (jq -c) is read object by object, placed on its line', async () => {
    const one = JSON.stringify(JSON.parse(JSON.stringify(parseAllDocuments(nim('j1', DENIED))[0]?.toJS())))
    const two = JSON.stringify(parseAllDocuments(nim('j2'))[0]?.toJS())
    const r = await runCli(['validate', '-o', 'json', '-'], { stdin: `${one}\n${two}{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}\n` })
    const report = JSON.parse(r.stdout) as { summary: Json, results: Array<{ name: string, line: number, allowed: boolean }> }
    assert.deepEqual(report.results.map((x) => [x.name, x.line, x.allowed]), [['j1', 1, false], ['j2', 2, true]])
    assert.equal(report.summary.documents, 3)
    assert.equal(r.code, 1)
  })

  test('findings come out as each document is checked, before the rest of the stream is read', async () => {
    const out: string[] = []
    let printedBeforeSecond = ''
    async function * chunks (): AsyncGenerator<string> {
      yield nim('first', DENIED)
      yield '---\n'
      printedBeforeSecond = out.join('')
      yield nim('second')
    }
    let code = -1
    const io: CliIo = { stdout: (t) => { out.push(t) }, stderr: () => {}, readStdin: async () => Buffer.alloc(0), stdinChunks: chunks, stdoutIsTTY: false, env: {}, setExitCode: (c) => { code = c } }
    const program = new Command('nim-admission').exitOverride()
    registerValidateCommand(program, io)
    await program.parseAsync(['node', 'nim-admission', 'validate', '-'])
    assert.match(printedBeforeSecond, /^<stdin>:10:3: error NIM010 spec\.replicas/)
    assert.doesNotMatch(printedBeforeSecond, /documents/)
    assert.match(out.join(''), /^2 documents, 2 NIMServices, 1 denied, 1 warnings$/m)
    assert.equal(code, 1)
  })

  test('duplicate keys are still refused, in one pass over a large mapping', () => {
    const keys = Array.from({ length: 20000 }, (_, i) => `    k${i}: v`).join('\n')
    const head = 'apiVersion: apps.nvidia.com/v1alpha1\nkind: NIMService\nmetadata: {name: x}\nspec:\n  labels:\n'
    const ok = [...manifestsOf({ file: 'nim', text: `${head}${keys}\n` })]
    assert.equal(ok.length, 1)
    assert.ok(isManifest(ok[0] as never))
    const dup = [...manifestsOf({ file: 'nim', text: `${head}${keys}\n    k7: again\n` })]
    assert.deepEqual(dup, [{ file: 'nim', line: 20006, column: 5, message: 'YAML syntax error: Map keys must be unique' }])
    // Other kinds are read as far as their kind; a repeated top-level key still sends them to the parser.
    assert.deepEqual([...manifestsOf({ file: 'cm', text: 'apiVersion: v1\nkind: ConfigMap\ndata: {}\ndata: {}\n' })],
      [{ file: 'cm', line: 4, column: 1, message: 'YAML syntax error: Map keys must be unique' }])
  })
})

describe('reading other kinds no further than their kind', () => {
  const cases: Array<[string, string, { apiVersion: string, kind: string } | undefined]> = [
    ['a plain manifest', '---\napiVersion: apps/v1\nkind: Deployment # web\nmetadata:\n  name: w\nspec:\n  replicas: 1\n', { apiVersion: 'apps/v1', kind: 'Deployment' }],
    ['quoted values', 'apiVersion: "v1"\nkind: \'ConfigMap\'\ndata: {a: b}\nx: "y: z"\n', { apiVersion: 'v1', kind: 'ConfigMap' }],
    ['a quoted value going on below', 'apiVersion: v1\nnote: "a\nkind: NIMService"\nkind: ConfigMap\n', undefined],
    ['a flow value going on below', 'apiVersion: v1\nx: [a,\nkind: b]\nkind: ConfigMap\n', undefined],
    ['a merge key', 'apiVersion: v1\n<<: *base\nkind: ConfigMap\n', undefined],
    ['an anchored kind', 'apiVersion: v1\nkind: &k ConfigMap\n', undefined],
    ['a repeated key', 'apiVersion: v1\nkind: A\nkind: B\n', undefined],
    ['JSON', '{"apiVersion": "v1", "kind": "ConfigMap"}', undefined],
    ['no kind', 'apiVersion: v1\n', undefined]
  ]
  for (const [name, text, want] of cases) {
    test(`${name}: ${want === undefined ? 'parsed in full' : 'kind found without parsing'}`, () => assert.deepEqual(quickKinds(text), want))
  }

  test('a tricky document is parsed in full, so a NIMService cannot hide behind a quoted value', async () => {
    const stream = `note: "x\n  kind: ConfigMap"\n${nim('hidden', DENIED)}`
    const r = await runCli(['validate', '-'], { stdin: stream })
    assert.equal(r.code, 1, r.stdout + r.stderr)
  })
})

describe('output that input cannot forge', () => {
  const forged = 'x\n/etc/passwd:1:1: error NIM001 fake\u001b[2J\u009b'

  test('keys with line breaks and escape codes are printed escaped, on one line', async () => {
    const path = write('forge.yaml', nim('forge', `  labels:\n    ${JSON.stringify(forged)}: v\n`))
    const r = await runCli(['validate', path])
    const out = lines(r.stdout)
    assert.equal(out.length, 2, r.stdout)
    // eslint-disable-next-line no-control-regex -- looking for control characters is the point
    assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(r.stdout.replace(/\n/g, '')), 'no control character reaches the terminal')
    assert.ok(out[0]?.includes('spec.labels[x\\n/etc/passwd:1:1: error NIM001 fake\\u001b[2J\\u009b]'))
  })

  test('escapeText makes every control character visible', () => {
    assert.equal(escapeText('a\nb\r\t\u0007\u2028\u202e'), 'a\\nb\\r\\t\\u0007\\u2028\\u202e')
  })

  test('a file named like a workflow command does not start a line with ::', async () => {
    const dir = scratch.path('wf')
    write('wf/::error title=pwned::owned.yaml', nim('wf', DENIED))
    const r = await runCli(['validate', dir], {})
    for (const line of lines(r.stdout)) assert.ok(!line.startsWith('::'), line)
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const here = await runCli(['validate', '.'])
      assert.match(here.stdout, /^\.\/::error title=pwned::owned\.yaml:\d+:3: error NIM010/m)
    } finally {
      process.chdir(cwd)
    }
  })

  test('-o github: one escaped annotation per finding; nothing in the input ends the command', async () => {
    const path = write('gh.yaml', nim('gh', `${DENIED}  labels:\n    ${JSON.stringify('a,b::c%\nd')}: v\n`))
    const r = await runCli(['validate', '-o', 'github', path])
    assert.equal(r.code, 1)
    const out = lines(r.stdout)
    assert.equal(out.length, 4, r.stdout)
    assert.match(out[0] ?? '', /^::error file=.*gh\.yaml,line=10,col=3,title=NIM010 spec\.replicas::spec\.replicas cannot be set/)
    assert.match(out[1] ?? '', /title=NIM006 spec\.labels\[a%2Cb%3A%3Ac%25\\nd\]::Invalid value: "a,b::c%25\\nd"/)
    assert.match(out[2] ?? '', /^::warning file=.*title=NIM109 spec\.scale\.hpa\.metrics::no metrics/)
    assert.match(out[3] ?? '', /^::notice title=nim-admission validate::1 documents, 1 NIMServices, 1 denied, 1 warnings$/)
  })
})

describe('exit statuses and text detail', () => {
  const warned = (): string => write('warned.yaml', nim('warned', '  scale: {enabled: true, hpa: {minReplicas: 1, maxReplicas: 3}}\n'))

  test('--warn-exit-code N: warnings alone exit N; a denial still exits 1', async () => {
    assert.equal((await runCli(['validate', warned()])).code, 0)
    assert.equal((await runCli(['validate', '--warn-exit-code', '3', warned()])).code, 3)
    assert.equal((await runCli(['validate', '--warn-exit-code', '3', `${FIX}/positions.yaml`])).code, 1)
    assert.equal((await runCli(['validate', '--warn-exit-code', 'x', warned()])).code, 2)
  })

  test('--disable CODE silences a rule (its warnings and its denials); an unknown code is a usage error', async () => {
    const w = await runCli(['validate', '--strict', '--disable', 'NIM101,NIM109', warned()])
    assert.doesNotMatch(w.stdout, /NIM101|NIM109/)
    assert.equal(w.code, 0)
    assert.equal((await runCli(['validate', '--disable', 'NIM010', '--disable', 'NIM024', `${FIX}/positions.yaml`])).code, 0)
    const bad = await runCli(['validate', '--disable', 'NIM999', warned()])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /unknown code NIM999/)
  })

  test('--summary prints the summary only; --quiet prints only what fails, nothing when all pass', async () => {
    const summary = await runCli(['validate', '--summary', `${FIX}/positions.yaml`])
    assert.equal(summary.stdout, '3 documents, 2 NIMServices, 1 denied, 0 warnings\n')
    assert.equal(summary.code, 1)
    assert.deepEqual(await runCli(['validate', '--quiet', warned()]), { code: 0, stdout: '', stderr: '' })
    const quietFail = await runCli(['validate', '--quiet', `${FIX}/positions.yaml`, warned()])
    assert.equal(lines(quietFail.stdout).length, 3, 'two causes and the summary, no warning')
    assert.equal(quietFail.code, 1)
  })
})

describe('render', () => {
  test('puts the namespace on the NIMService as well as on the HPA (render | kubectl apply -n prod)', async () => {
    const r = await runCli(['render', '-n', 'prod', write('r.yaml', nim('r', '  scale: {enabled: true, hpa: {minReplicas: 2, maxReplicas: 3}}\n').replace('  namespace: nim\n', ''))])
    const [object, hpa] = parseAllDocuments(r.stdout).map((d) => d.toJS() as Json)
    assert.equal((object?.metadata as Json).namespace, 'prod')
    assert.equal((hpa?.metadata as Json).namespace, 'prod')
  })
})
