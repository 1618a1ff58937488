// Reading manifests for the offline commands: files, folders and stdin; multi-document YAML, JSON and
// `kind: List`; and, for every document, a way back from a field path (`spec.scale.hpa.metrics[0]...`)
// to the line and column in the source, using the yaml library's own node ranges.
import { readFile, readdir, realpath, stat } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, visit, type Document, type DocumentOptions, type Node, type ParseOptions, type SchemaOptions, type Tags, type YAMLError } from 'yaml'
import { CommanderError, type Command } from 'commander'
import type { JsonObject } from '../nimservice/types.js'

/** Where the commands write and read; the default is the process, tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  readStdin: () => Promise<Buffer>
  /** Colour is used only when stdout is a terminal. */
  stdoutIsTTY: boolean
  env: Record<string, string | undefined>
  setExitCode: (code: number) => void
}

async function readAll (stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks)
}

export const processIo: CliIo = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  readStdin: () => readAll(process.stdin),
  get stdoutIsTTY () { return process.stdout.isTTY === true },
  env: process.env,
  setExitCode: (code) => { process.exitCode = code }
}

export const STDIN = '-'
export const STDIN_NAME = '<stdin>'
const EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

export interface Position { line: number, column: number }

/** An input that could not be read or parsed: reported on one line, and exit status 2. */
export interface InputError {
  file: string
  line?: number
  column?: number
  message: string
}

export function formatInputError (e: InputError): string {
  const where = e.line !== undefined ? `${e.file}:${e.line}:${e.column ?? 1}` : e.file
  return `${where}: ${e.message}`
}

export interface Source { file: string, text: string }

const IO_MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files'
}

function ioMessage (err: unknown): string {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && IO_MESSAGES[code] !== undefined) return `cannot read: ${IO_MESSAGES[code]}`
  return `cannot read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
}

function positionOf (text: string, offset: number): Position {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: offset - start + 1 }
}

// YAML allows no C0 control character but tab, line feed and carriage return (YAML 1.2, 5.1).
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
const lenientUtf8 = new TextDecoder('utf-8')

/** Bytes to text, or the reason they are not a YAML or JSON text (binary, not UTF-8, empty). */
export function decodeText (file: string, bytes: Uint8Array): Source | InputError {
  let text: string
  let invalid = -1
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    text = lenientUtf8.decode(bytes)
    invalid = text.indexOf('\uFFFD')
  }
  const control = CONTROL.exec(text)
  if (control !== null && (invalid === -1 || control.index < invalid)) {
    const code = control[0].charCodeAt(0).toString(16).padStart(2, '0')
    return { file, ...positionOf(text, control.index), message: `not a text file: control character 0x${code} (binary content?)` }
  }
  if (invalid !== -1) return { file, ...positionOf(text, invalid), message: 'not a text file: invalid UTF-8 (binary content?)' }
  if (text.trim() === '') return { file, line: 1, column: 1, message: 'empty input: no YAML or JSON document' }
  return { file, text }
}

export function isInputError (v: Source | InputError): v is InputError {
  return (v as Source).text === undefined
}

async function walk (dir: string, seen: Set<string>, out: string[]): Promise<void> {
  const real = await realpath(dir)
  if (seen.has(real)) return
  seen.add(real)
  const entries = await readdir(dir, { withFileTypes: true })
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    // Hidden entries (.git, .github) and node_modules are not manifests; name them explicitly to check them.
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const path = join(dir, entry.name)
    let isDir = entry.isDirectory()
    let isFile = entry.isFile()
    if (entry.isSymbolicLink()) {
      const target = await stat(path).catch(() => undefined)
      isDir = target?.isDirectory() === true
      isFile = target?.isFile() === true
    }
    if (isDir) await walk(path, seen, out)
    else if (isFile && EXTENSIONS.has(extname(entry.name).toLowerCase())) out.push(path)
  }
}

/**
 * Every source named by `paths`, in order: a file as it is, a folder as its .yaml, .yml and .json files
 * (recursively, sorted), `-` as stdin. What cannot be read becomes an error; the rest is still read.
 */
export async function readSources (paths: readonly string[], io: Pick<CliIo, 'readStdin'>): Promise<Array<Source | InputError>> {
  const out: Array<Source | InputError> = []
  let stdinRead = false
  for (const path of paths) {
    if (path === STDIN) {
      if (stdinRead) continue
      stdinRead = true
      try {
        out.push(decodeText(STDIN_NAME, await io.readStdin()))
      } catch (err) {
        out.push({ file: STDIN_NAME, message: ioMessage(err) })
      }
      continue
    }
    let files: string[]
    try {
      const info = await stat(path)
      if (info.isDirectory()) {
        files = []
        await walk(path, new Set(), files)
        if (files.length === 0) {
          out.push({ file: path, message: 'no .yaml, .yml or .json file in this folder' })
          continue
        }
      } else {
        files = [path]
      }
    } catch (err) {
      out.push({ file: path, message: ioMessage(err) })
      continue
    }
    for (const file of files) {
      try {
        out.push(decodeText(file, await readFile(file)))
      } catch (err) {
        out.push({ file, message: ioMessage(err) })
      }
    }
  }
  return out
}

// kubectl reads YAML with sigs.k8s.io/yaml (go-yaml v2, YAML 1.1 scalars): `yes`, `on` and `off` are
// booleans and `010` is octal there, so they are here; timestamps, sexagesimal numbers, sets and
// binary stay out, as they do in the JSON kubectl sends.
const DROPPED_TAGS = ['timestamp', 'binary', 'omap', 'pairs', 'set'].map((t) => `tag:yaml.org,2002:${t}`)
const KEPT_TAGS = (tags: Tags): Tags => tags.filter((t) => {
  if (typeof t === 'string') return !DROPPED_TAGS.includes(`tag:yaml.org,2002:${t}`) && t !== 'intTime' && t !== 'floatTime'
  return !DROPPED_TAGS.includes(t.tag) && t.format !== 'TIME'
})

export const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  schema: 'yaml-1.1',
  customTags: KEPT_TAGS,
  uniqueKeys: true
}

/** A Kubernetes object read from a source, with the way back to its fields' positions. */
export interface Manifest {
  file: string
  /** The document's index in its source (0-based). */
  index: number
  /** The index in `items` when the object came from a `kind: List`. */
  item?: number
  object: JsonObject
  /** Where the object starts. */
  position: Position
  /** The position of a field path's deepest node present in the source (its key, for a mapping entry). */
  locate: (field: string) => Position
}

function describe (value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'string') return 'a string'
  return `a ${typeof value} (${JSON.stringify(value)})`
}

/** `spec.a[0].b[key.with.dots]` → ['spec', 'a', 0, 'b', 'key.with.dots']. */
export function parseFieldPath (field: string): Array<string | number> {
  const out: Array<string | number> = []
  let i = 0
  while (i < field.length) {
    const c = field[i]
    if (c === '.') {
      i++
    } else if (c === '[') {
      let end = field.indexOf(']', i + 1)
      // A key may hold `]`: the segment ends at a `]` followed by `.`, `[` or the end.
      while (end !== -1 && end + 1 < field.length && field[end + 1] !== '.' && field[end + 1] !== '[') end = field.indexOf(']', end + 1)
      if (end === -1) end = field.length
      const inner = field.slice(i + 1, end)
      out.push(/^\d+$/.test(inner) ? Number(inner) : inner)
      i = end + 1
    } else {
      let j = i
      while (j < field.length && field[j] !== '.' && field[j] !== '[') j++
      out.push(field.slice(i, j))
      i = j
    }
  }
  return out
}

function deref (node: unknown, doc: Document): unknown {
  let n = node
  for (let hops = 0; isAlias(n) && hops < 100; hops++) n = n.resolve(doc)
  return n
}

function keyText (key: unknown): string | undefined {
  if (!isScalar(key)) return undefined
  // A YAML 1.1 merge key resolves to Symbol('<<').
  return typeof key.value === 'symbol' ? `\u0000${key.value.description ?? ''}` : String(key.value)
}

const MERGE = '\u0000<<'

interface Found { start: number, value: unknown }

/** A mapping entry by key, looking into `<<` merges (first one wins, as YAML 1.1 merges do). */
function entry (map: unknown, key: string, doc: Document, depth = 0): Found | undefined {
  if (!isMap(map) || depth > 10) return undefined
  for (const pair of map.items) {
    if (keyText(pair.key) === key && isScalar(pair.key) && pair.key.range !== undefined && pair.key.range !== null) {
      return { start: pair.key.range[0], value: pair.value }
    }
  }
  for (const pair of map.items) {
    if (keyText(pair.key) !== MERGE) continue
    const sources = deref(pair.value, doc)
    const list = isSeq(sources) ? sources.items.map((s) => deref(s, doc)) : [sources]
    for (const source of list) {
      const found = entry(source, key, doc, depth + 1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

function rangeStart (node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range
  return range === undefined || range === null ? undefined : range[0]
}

function locator (root: Node, doc: Document, counter: LineCounter): (field: string) => Position {
  return (field) => {
    let node: unknown = root
    let best = rangeStart(root) ?? 0
    for (const segment of parseFieldPath(field)) {
      node = deref(node, doc)
      if (isMap(node)) {
        const found = entry(node, String(segment), doc)
        if (found === undefined) break
        best = found.start
        node = found.value
      } else if (isSeq(node) && typeof segment === 'number') {
        const item: unknown = node.items[segment]
        const start = rangeStart(item)
        if (start === undefined) break
        best = start
        node = item
      } else {
        break
      }
    }
    const { line, col } = counter.linePos(best)
    return { line, column: col }
  }
}

function yamlError (file: string, err: YAMLError, counter: LineCounter): InputError {
  const first = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
  const at = err.pos[0]
  if (at < 0) return { file, message: `YAML syntax error: ${first}` }
  const { line, col } = counter.linePos(at)
  return { file, line, column: col, message: `YAML syntax error: ${first}` }
}

/** Where the first alias without an anchor before it is (anchors do not cross documents). */
function unresolvedAlias (doc: Document): number | undefined {
  let at: number | undefined
  visit(doc, {
    Alias (_key, node) {
      if (node.resolve(doc) !== undefined) return undefined
      at = rangeStart(node)
      return visit.BREAK
    }
  })
  return at
}

const isListKind = (o: JsonObject): boolean => typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)

export const isManifest = (m: Manifest | InputError): m is Manifest => (m as Manifest).object !== undefined

/**
 * The objects of one source, one at a time: each YAML or JSON document, each item of a `kind: List`,
 * and an error for each document that does not parse or is not an object. Documents are composed
 * lazily, so that a consumer that is done with a manifest lets its syntax tree go: memory stays at one
 * document, whatever the size of the stream.
 */
export function * manifestsOf (source: Source): Generator<Manifest | InputError> {
  const { file, text } = source
  const counter = new LineCounter()
  const parser = new Parser(counter.addNewLine)
  const composer = new Composer(YAML_OPTIONS)
  const pos = (offset: number | undefined): Position => {
    const { line, col } = counter.linePos(offset ?? 0)
    return { line, column: col }
  }
  let index = -1
  for (const doc of composer.compose(parser.parse(text))) {
    index++
    const firstError = doc.errors[0]
    if (firstError !== undefined) {
      yield yamlError(file, firstError, counter)
      continue
    }
    const root = doc.contents
    if (root === null) continue // an empty document (`---` alone, or comments only) is no manifest
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (err) {
      yield { file, ...pos(unresolvedAlias(doc) ?? rangeStart(root)), message: `YAML error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` }
      continue
    }
    if (value === null || value === undefined) continue
    if (typeof value !== 'object' || Array.isArray(value)) {
      yield { file, ...pos(rangeStart(root)), message: `document is ${describe(value)}, not an object (a manifest is a mapping with apiVersion and kind)` }
      continue
    }
    const object = value as JsonObject
    if (!isListKind(object)) {
      yield { file, index, object, position: pos(rangeStart(root)), locate: locator(root, doc, counter) }
      continue
    }
    const itemsNode = deref(entry(deref(root, doc), 'items', doc)?.value, doc)
    const items = object.items as unknown[]
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      const itemNode = isSeq(itemsNode) ? itemsNode.items[i] : undefined
      const start = rangeStart(itemNode) ?? rangeStart(root)
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        yield { file, ...pos(start), message: `items[${i}] of this ${String(object.kind)} is ${describe(item)}, not an object` }
        continue
      }
      const node = (deref(itemNode, doc) ?? root) as Node
      yield { file, index, item: i, object: item as JsonObject, position: pos(start), locate: locator(node, doc, counter) }
    }
  }
}

/** All of manifestsOf at once, manifests and errors apart (keeps every syntax tree: for small inputs). */
export function loadManifests (source: Source): { manifests: Manifest[], errors: InputError[] } {
  const manifests: Manifest[] = []
  const errors: InputError[] = []
  for (const m of manifestsOf(source)) {
    if (isManifest(m)) manifests.push(m)
    else errors.push(m)
  }
  return { manifests, errors }
}

/** A NIMService of the NIM Operator (group apps.nvidia.com), whatever its version. */
export function isNIMService (object: JsonObject): boolean {
  return object.kind === 'NIMService' && typeof object.apiVersion === 'string' && object.apiVersion.startsWith('apps.nvidia.com/')
}

export function metadataString (object: JsonObject, key: 'name' | 'namespace'): string | undefined {
  const meta = object.metadata
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined
  const v = (meta as JsonObject)[key]
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * Usage errors (unknown option, missing argument, bad choice) exit 2, like unreadable input, so that
 * exit 1 always means "the cluster would deny this". Help and version still exit 0.
 */
export function usageErrorsExit2 (command: Command): Command {
  return command.exitOverride((err) => {
    if (err.exitCode === 0) throw err
    throw new CommanderError(2, err.code, err.message)
  })
}
