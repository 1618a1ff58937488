// The container image recipe, proved without a Docker engine: (a) a lint of the Dockerfile's instructions and of
// .dockerignore, and (b) a replay of its steps in temporary folders (the build stage's COPYs and build, then the
// runtime stage's COPYs, production install and ENTRYPOINT + CMD), which must answer GET /healthz.
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { get as httpGet } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join, posix, relative, resolve } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { after, before, describe, it } from 'node:test'
import forge from 'node-forge'
import { parse as parseYaml } from 'yaml'
import { freePort } from '../helpers/ports.js'

const repoRoot = resolve(import.meta.dirname, '..', '..')

// ---------------------------------------------------------------------------------------------------------------
// A small Dockerfile parser: enough of the reference syntax for this file (continuations, comments, parser
// directives, flags, exec and shell forms, ARG defaults).

interface Instruction {
  keyword: string
  /** The text after the keyword and its --flags. */
  args: string
  flags: Record<string, string>
  /** The JSON array of an exec-form instruction. */
  exec?: string[]
  line: number
}

interface Stage {
  image: string
  name?: string
  instructions: Instruction[]
}

const FLAGGED = new Set(['FROM', 'COPY', 'ADD', 'RUN'])

export function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = []
  const lines = text.split('\n')
  let buffer = ''
  let start = 0
  let inDirectives = true
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string
    const trimmed = raw.trim()
    if (inDirectives && /^#\s*\w+\s*=/.test(trimmed)) continue // parser directive, e.g. # syntax=
    if (trimmed !== '') inDirectives = false
    if (trimmed.startsWith('#') || (trimmed === '' && buffer === '')) continue // comments, also inside continuations
    if (buffer === '') start = i + 1
    if (trimmed.endsWith('\\')) {
      buffer += `${trimmed.slice(0, -1)} `
      continue
    }
    buffer += trimmed
    if (buffer.trim() !== '') {
      const match = /^(\S+)\s*(.*)$/s.exec(buffer.trim()) as RegExpExecArray
      const keyword = (match[1] as string).toUpperCase()
      let rest = match[2] as string
      const flags: Record<string, string> = {}
      if (FLAGGED.has(keyword)) {
        let flag: RegExpExecArray | null
        while ((flag = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(rest)) !== null) {
          flags[flag[1] as string] = flag[2] ?? 'true'
          rest = rest.slice(flag[0].length)
        }
      }
      const instruction: Instruction = { keyword, args: rest, flags, line: start }
      if (rest.startsWith('[')) instruction.exec = JSON.parse(rest) as string[]
      instructions.push(instruction)
    }
    buffer = ''
  }
  const globalArgs: Instruction[] = []
  const stages: Stage[] = []
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.split(/\s+/)
      assert.ok(image, `FROM without an image at line ${instruction.line}`)
      const stage: Stage = { image, instructions: [] }
      if (as?.toUpperCase() === 'AS' && name) stage.name = name
      stages.push(stage)
    } else if (stages.length === 0) {
      assert.equal(instruction.keyword, 'ARG', `only ARG may come before the first FROM (line ${instruction.line})`)
      globalArgs.push(instruction)
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return { globalArgs, stages }
}

function all(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword)
}

/** KEY=value pairs of LABEL, ENV or ARG (values may be double-quoted). */
function keyValues(instructions: Instruction[]): Map<string, string> {
  const pairs = new Map<string, string>()
  for (const instruction of instructions) {
    for (const m of instruction.args.matchAll(/([A-Za-z0-9_.-]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g)) {
      const value = m[2] ?? ''
      pairs.set(m[1] as string, value.startsWith('"') ? (JSON.parse(value) as string) : value)
    }
  }
  return pairs
}

/** Splits a shell-form RUN into its `&&` steps. */
function runSteps(run: Instruction): string[] {
  return run.args
    .split('&&')
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .filter((s) => s !== '')
}

// ---------------------------------------------------------------------------------------------------------------
// .dockerignore, with the builder's rules: patterns in order, the last that matches the path or one of its parent
// folders decides, `!` re-includes, `*` and `?` stay within a path segment, `**` spans segments.

function globToRegExp(pattern: string): RegExp {
  let out = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string
    if (c === '*' && pattern[i + 1] === '*') {
      if (pattern[i + 2] === '/') {
        out += '(?:.*/)?'
        i += 2
      } else {
        out += '.*'
        i += 1
      }
    } else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${out}$`)
}

export function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const exclusion = l.startsWith('!')
      const body = posix.normalize((exclusion ? l.slice(1) : l).trim()).replace(/^\/+/, '').replace(/\/+$/, '')
      return { exclusion, re: globToRegExp(body) }
    })
  return (path: string): boolean => {
    const clean = posix.normalize(path).replace(/^\.\/|\/+$/g, '')
    const segments = clean.split('/')
    const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
    let ignored = false
    for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) ignored = !rule.exclusion
    return ignored
  }
}

// ---------------------------------------------------------------------------------------------------------------

const dockerfileText = await readFile(join(repoRoot, 'Dockerfile'), 'utf8')
const dockerignoreText = await readFile(join(repoRoot, '.dockerignore'), 'utf8')
const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string
  license: string
  bin: Record<string, string>
  devDependencies: Record<string, string>
}
const { stages } = parseDockerfile(dockerfileText)
const runtime = stages.at(-1) as Stage
const build = stages.find((s) => s.name === 'build')
const ignored = dockerIgnore(dockerignoreText)

function exec(stage: Stage, keyword: 'ENTRYPOINT' | 'CMD'): string[] {
  const found = all(stage, keyword)
  assert.equal(found.length, 1, `one ${keyword} in the final stage`)
  const instruction = found[0] as Instruction
  assert.ok(instruction.exec, `${keyword} uses the exec form (JSON array), so node is PID 1 and gets SIGTERM`)
  return instruction.exec
}

describe('Dockerfile lint', () => {
  it('is multi-stage with a named build stage and a final runtime stage', () => {
    assert.ok(stages.length >= 2, 'at least two stages')
    assert.ok(build, 'a stage named "build"')
    assert.notEqual(runtime, build, 'the final stage is not the build stage')
  })

  it('builds FROM pinned images of the newest Node.js LTS line (24), the same in every stage', () => {
    for (const stage of stages) {
      assert.match(
        stage.image,
        /^node:24\.\d+\.\d+-(bookworm|trixie|bullseye|alpine3\.\d+)(-slim)?(@sha256:[0-9a-f]{64})?$/,
        `${stage.name ?? 'stage'} FROM ${stage.image} is a pinned node:24.x.y-<distro> tag`
      )
    }
    assert.equal(new Set(stages.map((s) => s.image)).size, 1, 'one base image, so build and runtime share the ABI')
  })

  it('compiles in the build stage with the full toolchain', () => {
    const steps = all(build as Stage, 'RUN').flatMap(runSteps)
    assert.ok(steps.some((s) => /^npm ci\b/.test(s) && !s.includes('--omit=dev')), 'npm ci with devDependencies')
    assert.ok(steps.includes('npm run build'), 'npm run build')
  })

  it('installs production dependencies only in the runtime stage, from the lock file', () => {
    const steps = all(runtime, 'RUN').flatMap(runSteps)
    const install = steps.filter((s) => /^npm (ci|install|i)\b/.test(s))
    assert.equal(install.length, 1, 'one install step')
    assert.match(install[0] as string, /^npm ci\b.*--omit=dev/)
    const copied = all(runtime, 'COPY').filter((c) => !c.flags.from)
    assert.ok(copied.some((c) => /\bpackage-lock\.json\b/.test(c.args)), 'package-lock.json is copied before npm ci')
  })

  it('takes only the compiled output from the build stage', () => {
    const fromBuild = all(runtime, 'COPY').filter((c) => c.flags.from)
    assert.ok(fromBuild.length > 0)
    for (const copy of fromBuild) {
      assert.equal(copy.flags.from, 'build')
      assert.match(copy.args, /^\/app\/dist\/src\s/, `only dist/src comes from the build stage: ${copy.args}`)
    }
  })

  it('runs as a numeric non-root user, the same one the chart sets', async () => {
    const users = all(runtime, 'USER')
    assert.ok(users.length > 0, 'the final stage sets USER')
    const user = (users.at(-1) as Instruction).args
    const m = /^(\d+)(?::(\d+))?$/.exec(user)
    assert.ok(m, `USER ${user} is numeric, so runAsNonRoot can verify it`)
    assert.notEqual(Number(m[1]), 0)
    const lastUser = runtime.instructions.lastIndexOf(users.at(-1) as Instruction)
    assert.ok(runtime.instructions.slice(lastUser).every((i) => i.keyword !== 'RUN'), 'nothing runs as root after USER')
    const values = parseYaml(await readFile(join(repoRoot, 'charts', 'nim-admission', 'values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number }
      server: { port: number; metricsPort: number }
    }
    assert.equal(values.podSecurityContext.runAsUser, Number(m[1]), "chart's runAsUser matches the image's USER")
  })

  it('runs the CLI as ENTRYPOINT with `serve` as the default CMD', () => {
    assert.deepEqual(exec(runtime, 'ENTRYPOINT'), ['node', pkg.bin['nim-admission']])
    assert.deepEqual(exec(runtime, 'CMD'), ['serve'])
    assert.equal(keyValues(all(runtime, 'ENV')).get('NODE_ENV'), 'production')
  })

  it('exposes the ports the chart uses', async () => {
    const values = parseYaml(await readFile(join(repoRoot, 'charts', 'nim-admission', 'values.yaml'), 'utf8')) as {
      server: { port: number; metricsPort: number }
    }
    const exposed = all(runtime, 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => Number.parseInt(p, 10))
    assert.deepEqual(exposed.sort(), [values.server.port, values.server.metricsPort].sort())
  })

  it('carries the OCI labels, with the package version and licence', () => {
    const labels = keyValues(all(runtime, 'LABEL'))
    const args = keyValues(all(runtime, 'ARG'))
    for (const key of ['title', 'description', 'licenses', 'version', 'revision']) {
      assert.ok(labels.get(`org.opencontainers.image.${key}`), `label org.opencontainers.image.${key}`)
    }
    assert.equal(labels.get('org.opencontainers.image.title'), 'nim-admission')
    assert.equal(labels.get('org.opencontainers.image.licenses'), pkg.license)
    assert.equal(labels.get('org.opencontainers.image.version'), '${VERSION}')
    assert.equal(args.get('VERSION'), pkg.version, 'ARG VERSION defaults to package.json version')
  })

  it('fetches nothing by URL and has no (or an exec-form) HEALTHCHECK', () => {
    for (const stage of stages) {
      for (const add of all(stage, 'ADD')) assert.doesNotMatch(add.args, /(https?|git):\/\/|git@/, `ADD of a URL at line ${add.line}`)
      for (const run of all(stage, 'RUN')) assert.doesNotMatch(run.args, /\b(curl|wget)\b/, `download at line ${run.line}`)
      for (const hc of all(stage, 'HEALTHCHECK')) assert.ok(hc.args === 'NONE' || /^(--\S+\s+)*CMD \[/.test(hc.args))
    }
  })

  it('.dockerignore keeps node_modules, tests, certificates, dist, .git and caches out of the context', () => {
    for (const path of [
      'node_modules',
      'node_modules/fastify/package.json',
      'src/server/node_modules/x.js',
      'test/unit/chart.test.ts',
      'src/server/serve.test.ts',
      'certs/tls.key',
      'dist/src/cli/main.js',
      '.git/HEAD',
      '.cache/bin/helm',
      'charts/nim-admission/values.yaml',
      'coverage/lcov.info'
    ]) {
      assert.equal(ignored(path), true, `${path} is ignored`)
    }
  })

  it('every file the Dockerfile COPYs from the context exists and is not ignored', () => {
    for (const stage of stages) {
      for (const copy of all(stage, 'COPY').filter((c) => !c.flags.from)) {
        const parts = copy.exec ?? copy.args.split(/\s+/)
        for (const source of parts.slice(0, -1)) {
          assert.ok(existsSync(join(repoRoot, source)), `COPY source ${source} exists (line ${copy.line})`)
          assert.equal(ignored(source), false, `COPY source ${source} is not in .dockerignore (line ${copy.line})`)
        }
      }
    }
  })
})

// ---------------------------------------------------------------------------------------------------------------
// Replay: the Dockerfile's steps, in temporary folders standing in for each stage's WORKDIR.

type StageDirs = Map<string, { dir: string; workdir: string }>

/** Maps a path in a stage's filesystem to the stand-in folder (only paths under its WORKDIR exist here). */
function hostPath(stageDir: string, workdir: string, containerPath: string): string {
  const absolute = posix.isAbsolute(containerPath) ? containerPath : posix.join(workdir, containerPath)
  const inside = posix.relative(workdir, absolute)
  assert.ok(!inside.startsWith('..'), `${containerPath} is outside WORKDIR ${workdir}; the replay cannot follow it`)
  return join(stageDir, inside)
}

async function copyFromContext(source: string, dest: string): Promise<void> {
  const from = join(repoRoot, source)
  await mkdir(dirname(dest), { recursive: true })
  // Honour .dockerignore as the builder does, so that an ignored file the image needs breaks the replay too.
  await cp(from, dest, {
    recursive: true,
    filter: (path) => !ignored(relative(repoRoot, path) || '.') || path === from
  })
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): void {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 300_000 })
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed in ${cwd}:\n${result.stdout}\n${result.stderr}`)
}

async function replay(root: string): Promise<StageDirs> {
  const stageDirs = new Map<string, { dir: string; workdir: string }>()
  for (const [index, stage] of stages.entries()) {
    const dir = join(root, stage.name ?? `stage${index}`)
    await mkdir(dir, { recursive: true })
    let workdir = '/'
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME ?? root }
    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR':
          workdir = posix.resolve(workdir, instruction.args)
          break
        case 'ENV':
          for (const [k, v] of keyValues([instruction])) env[k] = v
          break
        case 'COPY': {
          const parts = instruction.exec ?? instruction.args.split(/\s+/)
          const dest = parts.at(-1) as string
          const sources = parts.slice(0, -1)
          const from = instruction.flags.from
          for (const source of sources) {
            const target = dest.endsWith('/') || sources.length > 1
              ? hostPath(dir, workdir, posix.join(dest, posix.basename(source)))
              : hostPath(dir, workdir, dest)
            if (from) {
              const other = stageDirs.get(from)
              assert.ok(other, `COPY --from=${from} names an earlier stage`)
              await cp(hostPath(other.dir, other.workdir, source), target, { recursive: true })
            } else {
              await copyFromContext(source, target)
            }
          }
          break
        }
        case 'RUN':
          for (const step of runSteps(instruction)) {
            const cwd = hostPath(dir, workdir, '.')
            if (/^npm ci\b/.test(step) && !step.includes('--omit=dev')) {
              // The build stage's full install is the repository's own, already installed from the same lock file.
              await symlink(join(repoRoot, 'node_modules'), join(cwd, 'node_modules'), 'dir')
            } else if (/^npm ci\b/.test(step)) {
              const args = step.split(' ').slice(1)
              run('npm', [...args, '--prefer-offline'], cwd, env)
            } else if (/^npm run [\w:-]+$/.test(step)) {
              run('npm', step.split(' ').slice(1), cwd, env)
            } else if (/^rm -rf( \/usr\/local\/(lib\/node_modules|bin)\/[\w-]+)+$/.test(step)) {
              // Removes the image's global npm and corepack; nothing to do outside an image.
            } else {
              assert.fail(`the replay does not know RUN step "${step}" (line ${instruction.line}); teach test/unit/dockerfile.test.ts`)
            }
          }
          break
        default:
          // ARG, LABEL, USER, EXPOSE, ENTRYPOINT, CMD: metadata, read where needed.
          break
      }
    }
    stageDirs.set(stage.name ?? `stage${index}`, { dir, workdir })
  }
  return stageDirs
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const req = httpGet(url, { timeout: 2000 }, (res) => {
      res.resume()
      resolveStatus(res.statusCode ?? 0)
    })
    req.once('timeout', () => req.destroy(new Error('timeout')))
    req.once('error', reject)
  })
}

/** A self-signed serving certificate for localhost, written as the Secret's keys (tls.crt, tls.key, ca.crt). */
async function writeCertDir(dir: string): Promise<string> {
  const keys = forge.pki.rsa.generateKeyPair(2048)
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '01' + forge.util.bytesToHex(forge.random.getBytesSync(15))
  cert.validity.notBefore = new Date(Date.now() - 60_000)
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000)
  const subject = [{ name: 'commonName', value: 'localhost' }]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }
  ])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  const pem = forge.pki.certificateToPem(cert)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'tls.crt'), pem)
  await writeFile(join(dir, 'tls.key'), forge.pki.privateKeyToPem(keys.privateKey), { mode: 0o600 })
  await writeFile(join(dir, 'ca.crt'), pem)
  await chmod(dir, 0o555) // a Secret volume is read-only
  return pem
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<number | string> {
  return new Promise((resolveExit, reject) => {
    if (child.exitCode !== null) {
      resolveExit(child.exitCode)
      return
    }
    const timer = setTimeout(() => reject(new Error(`still running ${timeoutMs} ms after SIGTERM`)), timeoutMs)
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolveExit(code ?? signal ?? 'unknown')
    })
  })
}

describe('Dockerfile replay without a Docker engine', () => {
  let root = ''
  let app = ''

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'nim-admission-image-'))
    const stageDirs = await replay(root)
    const final = stageDirs.get(runtime.name ?? `stage${stages.length - 1}`)
    assert.ok(final)
    app = hostPath(final.dir, final.workdir, '.')
  }, { timeout: 600_000 })

  after(async () => {
    if (root && !process.env.KEEP_IMAGE_REPLAY) await rm(root, { recursive: true, force: true })
  })

  it('the runtime folder holds the compiled CLI, schemas and production dependencies only', async () => {
    assert.deepEqual((await readdir(app)).sort(), ['dist', 'node_modules', 'package-lock.json', 'package.json', 'schemas'])
    assert.ok(existsSync(join(app, pkg.bin['nim-admission'] as string)), 'the package bin exists')
    assert.ok(existsSync(join(app, 'node_modules', 'fastify')), 'a dependency is installed')
    // Type packages may come in through dependencies (@kubernetes/client-node needs @types/node); tools may not.
    const tools = Object.keys(pkg.devDependencies).filter((name) => !name.startsWith('@types/'))
    assert.ok(tools.includes('typescript'))
    for (const dev of tools) {
      assert.ok(!existsSync(join(app, 'node_modules', dev)), `devDependency ${dev} is not installed`)
    }
    assert.ok(!existsSync(join(app, 'dist', 'test')), 'no compiled tests')
  })

  it('ENTRYPOINT + CMD serves /healthz and the mounted certificate, and exits 0 on SIGTERM', { timeout: 120_000 }, async () => {
    const [entry, ...entryArgs] = exec(runtime, 'ENTRYPOINT')
    const cmd = exec(runtime, 'CMD')
    assert.equal(entry, 'node', 'the entrypoint runs node')
    const certDir = join(dirname(app), 'certs')
    const pem = await writeCertDir(certDir)
    const [port, metricsPort] = [await freePort(), await freePort()]
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: app }
    for (const [k, v] of keyValues(all(runtime, 'ENV'))) env[k] = v
    const args = [
      ...entryArgs,
      ...cmd,
      '--port', String(port),
      '--metrics-port', String(metricsPort),
      '--cert-dir', certDir,
      '--dns-name', 'localhost',
      '--shutdown-delay', '1s',
      '--log-level', 'warn'
    ]
    const child = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()))
    try {
      const deadline = Date.now() + 20_000
      let status = 0
      while (status !== 200) {
        assert.equal(child.exitCode, null, `\`${args.join(' ')}\` exited with ${child.exitCode}:\n${output}`)
        assert.ok(Date.now() < deadline, `GET /healthz did not answer 200 within 20 s:\n${output}`)
        status = await httpStatus(`http://127.0.0.1:${metricsPort}/healthz`).catch(() => 0)
        if (status !== 200) await new Promise((r) => setTimeout(r, 100))
      }
      assert.equal(await httpStatus(`http://127.0.0.1:${metricsPort}/readyz`), 200)

      // The webhook port serves the certificate from --cert-dir.
      const served = await new Promise<string>((resolveCert, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: pem }, () => {
          const raw = socket.getPeerCertificate().raw
          socket.end()
          resolveCert(new X509Certificate(raw).fingerprint256)
        })
        socket.once('error', reject)
      })
      assert.equal(served, new X509Certificate(pem).fingerprint256)
    } finally {
      child.kill('SIGTERM')
    }
    assert.equal(await waitForExit(child, 15_000), 0, `exit after SIGTERM:\n${output}`)
  })
})

