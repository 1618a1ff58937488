// Reading manifests for the offline commands: files, folders and stdin, streamed a document at a time
// (documents.ts cuts them as kubectl does); multi-document YAML, JSON streams and `kind: List`; and, for
// every document, a way back from a field path (`spec.scale.hpa.metrics[0]...`) to the line and column
// in the source, using the yaml library's own node ranges.
import { createReadStream } from 'node:fs'
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, visit, type Document, type DocumentOptions, type Node, type ParseOptions, type SchemaOptions, type Tags, type YAMLError } from 'yaml'
import { CommanderError, type Command } from 'commander'
import type { JsonObject } from '../nimservice/types.js'
import { documentsOf, isNotText, splitText, type Piece } from './documents.js'
import { ioMessage, isUnlisted, listFiles } from './walk.js'

export { ioMessage }

/** Where the commands write and read; the default is the process, tests pass their own. */
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  readStdin: () => Promise<Buffer>
  /** stdin as it arrives (validate and render stream it). */
  stdinChunks?: () => AsyncIterable<Buffer | string>
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

// A reader that went away (`validate ... | head -1`) is no error of ours: the rest of the output is
// dropped, the checks go on, and the exit status is still the verdict (what `pipefail` should see).
let stdoutGone = false
let stdoutWatched = false
function watchStdout (): void {
  if (stdoutWatched) return
  stdoutWatched = true
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      stdoutGone = true
      return
    }
    throw err
  })
}

export const processIo: CliIo = {
  stdout: (text) => {
    watchStdout()
    if (!stdoutGone) process.stdout.write(text)
  },
  stderr: (text) => { process.stderr.write(text) },
  readStdin: () => readAll(process.stdin),
  stdinChunks: () => process.stdin,
  get stdoutIsTTY () { return process.stdout.isTTY === true },
  env: process.env,
  setExitCode: (code) => { process.exitCode = code }
}

export const STDIN = '-'
export const STDIN_NAME = '<stdin>'

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

/** A whole text (tests and benchmarks); the commands read files and stdin as streams instead. */
export interface Source { file: string, text: string }

/** A document that is no Kubernetes object (no apiVersion and no kind, a list, a scalar): not checked. */
export interface Skipped {
  file: string
  line: number
  column: number
  skipped: string
  /** A Kubernetes object of another kind, read only as far as its apiVersion and kind: a document. */
  other?: { apiVersion: string, kind: string }
}

// kubectl reads YAML with sigs.k8s.io/yaml (go-yaml v2, YAML 1.1 scalars): `yes`, `on` and `off` are
// booleans and `010` is octal there, so they are here; timestamps, sexagesimal numbers, sets and
// binary stay out, as they do in the JSON kubectl sends.
const DROPPED_TAGS = ['timestamp', 'binary', 'omap', 'pairs', 'set'].map((t) => `tag:yaml.org,2002:${t}`)

// go-yaml v2 resolves a plain scalar with Go's strconv.ParseInt(s, 0, 64), which also reads `0o17`
// (Go 1.13 octal): an integer to kubectl, so an integer here (`tag: 0o17` is 15, not a string).
const GO_OCTAL = {
  identify: () => false,
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^[-+]?0[oO][0-7_]+$/,
  resolve: (str: string) => {
    const sign = str.startsWith('-') ? -1 : 1
    const digits = str.replace(/^[-+]?0[oO]/, '').replace(/_/g, '')
    return sign * parseInt(digits, 8)
  }
}

const KEPT_TAGS = (tags: Tags): Tags => [GO_OCTAL, ...tags.filter((t) => {
  if (typeof t === 'string') return !DROPPED_TAGS.includes(`tag:yaml.org,2002:${t}`) && t !== 'intTime' && t !== 'floatTime'
  return !DROPPED_TAGS.includes(t.tag) && t.format !== 'TIME'
})]

export const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  schema: 'yaml-1.1',
  customTags: KEPT_TAGS,
  // The library's own check compares each key with every other (quadratic: minutes for a 400,000-key
  // ConfigMap); duplicateKey below does the same job in one pass.
  uniqueKeys: false
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

/** Offsets in a piece's text to positions in its source. */
type Place = (offset: number | undefined) => Position

function placer (counter: LineCounter, piece: Piece): Place {
  return (offset) => {
    const { line, col } = counter.linePos(offset ?? 0)
    return { line: line + piece.line - 1, column: line === 1 ? col + piece.column - 1 : col }
  }
}

function locator (root: Node, doc: Document, place: Place): (field: string) => Position {
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
    return place(best)
  }
}

function yamlError (file: string, err: YAMLError, place: Place): InputError {
  const first = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
  const at = err.pos[0]
  if (at < 0) return { file, message: `YAML syntax error: ${first}` }
  return { file, ...place(at), message: `YAML syntax error: ${first}` }
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

/** Where the first key repeated in its mapping is (kubectl refuses those); one pass over the tree. */
function duplicateKey (doc: Document): number | undefined {
  let at: number | undefined
  visit(doc, {
    Map (_key, map) {
      const seen = new Set<string>()
      for (const pair of map.items) {
        const key = pair.key
        if (!isScalar(key) || typeof key.value === 'symbol') continue
        if (key.value === '<<' && key.type === 'PLAIN') continue // merge keys may repeat
        const id = `${typeof key.value}:${String(key.value)}`
        if (seen.has(id)) {
          at = rangeStart(key)
          return visit.BREAK
        }
        seen.add(id)
      }
      return undefined
    }
  })
  return at
}

const isListKind = (o: JsonObject): boolean => typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)

export const isManifest = (m: Manifest | InputError | Skipped): m is Manifest => (m as Manifest).object !== undefined
export const isSkipped = (m: Manifest | InputError | Skipped): m is Skipped => (m as Skipped).skipped !== undefined

/** Not a Kubernetes object: skipped, as a repository's other YAML (CI files, Ansible, values) is. */
function notKubernetes (value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return `a ${value === null ? 'null' : typeof value}`
  if (Array.isArray(value)) return 'a list'
  const o = value as JsonObject
  if (o.apiVersion === undefined && o.kind === undefined) return 'a mapping without apiVersion and kind'
  return undefined
}

// Top-level keys of a block mapping at column 0, and a kind or apiVersion as a plain or simply quoted word.
const TOP_KEY = /^([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+(.*))?$/
const WORD = /^(?:"([\w./-]+)"|'([\w./-]+)'|([\w./-]+))(?:[ \t]+#.*)?$/

/** Whether a value that starts on a top-level line also ends there (a quoted or flow value may not). */
function endsOnLine (value: string): boolean {
  const c = value[0]
  if (c === '"') return /^"(?:[^"\\]|\\.)*"(?:[ \t]+#.*)?[ \t]*$/.test(value)
  if (c === "'") return /^'(?:[^']|'')*'(?:[ \t]+#.*)?[ \t]*$/.test(value)
  if (c === '[' || c === '{') {
    let depth = 0
    for (const ch of value) {
      if (ch === '[' || ch === '{') depth++
      else if (ch === ']' || ch === '}') depth--
    }
    return depth === 0 && !value.includes('"') && !value.includes("'")
  }
  return true
}

/**
 * apiVersion and kind of a document read without parsing it, when the document is a plain block
 * mapping whose every top-level line is a simple `key: value` (each key once); undefined whenever
 * anything is less simple (flow, anchors, merge keys, multi-line quoted values at the top level), and
 * the document is then parsed. Costs one pass over the line starts.
 */
export function quickKinds (text: string): { apiVersion: string, kind: string } | undefined {
  let apiVersion: string | undefined
  let kind: string | undefined
  const keys = new Set<string>()
  let start = 0
  let first = true
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const c = text.charCodeAt(start)
    if (c === 32 || c === 35 || c === 10 || c === 13) { // indented (part of a value), a comment, blank
      start = end + 1
      continue
    }
    let line = text.slice(start, end)
    start = end + 1
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (first && line.startsWith('---')) {
      first = false
      if (line.slice(3).trim() === '' || line.slice(3).trim().startsWith('#')) continue
      return undefined
    }
    first = false
    const m = TOP_KEY.exec(line)
    if (m === null) return undefined
    const key = m[1] as string
    if (keys.has(key)) return undefined
    keys.add(key)
    const value = (m[2] ?? '').trim()
    if (key === 'kind' || key === 'apiVersion') {
      const w = WORD.exec(value)
      if (w === null) return undefined
      const word = (w[1] ?? w[2] ?? w[3]) as string
      if (key === 'kind') kind = word
      else apiVersion = word
    } else if (value !== '' && !endsOnLine(value)) {
      return undefined
    }
  }
  return apiVersion !== undefined && kind !== undefined ? { apiVersion, kind } : undefined
}

/** Whether a document of this apiVersion and kind must be read in full: a NIMService or one like it, a List. */
function mustRead (k: { apiVersion: string, kind: string }): boolean {
  return k.kind.endsWith('List') || /nimservice/i.test(k.kind) || k.apiVersion.startsWith('apps.nvidia.com/')
}

/**
 * The objects of one document (a piece of a stream), one at a time: each YAML or JSON document, each
 * item of a `kind: List`, an error for each that does not parse, a Skipped for what is no Kubernetes
 * object. `next` numbers the documents of the source.
 */
export function * manifestsOfPiece (file: string, piece: Piece, next: { index: number }, full = false): Generator<Manifest | InputError | Skipped> {
  // Most documents of a release are other kinds: for them, finding the kind is all the work there is.
  const quick = full ? undefined : quickKinds(piece.text)
  if (!full && quick !== undefined && !mustRead(quick)) {
    next.index++
    yield { file, line: piece.line, column: piece.column, skipped: `${quick.kind}: not a NIMService`, other: quick }
    return
  }
  const counter = new LineCounter()
  const parser = new Parser(counter.addNewLine)
  const composer = new Composer(YAML_OPTIONS)
  const place = placer(counter, piece)
  for (const doc of composer.compose(parser.parse(piece.text))) {
    const index = next.index++
    const firstError = doc.errors[0]
    if (firstError !== undefined) {
      yield yamlError(file, firstError, place)
      continue
    }
    const root = doc.contents
    if (root === null) continue // an empty document (`---` alone, or comments only) is no manifest
    const dup = duplicateKey(doc)
    if (dup !== undefined) {
      yield { file, ...place(dup), message: 'YAML syntax error: Map keys must be unique' }
      continue
    }
    let value: unknown
    try {
      value = doc.toJS({ maxAliasCount: 100 })
    } catch (err) {
      yield { file, ...place(unresolvedAlias(doc) ?? rangeStart(root)), message: `YAML error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` }
      continue
    }
    if (value === undefined || value === null) continue // `---` then only comments, or `~`
    const not = notKubernetes(value)
    if (not !== undefined) {
      yield { file, ...place(rangeStart(root)), skipped: `${not}, not a Kubernetes object` }
      continue
    }
    const object = value as JsonObject
    if (!isListKind(object)) {
      yield { file, index, object, position: place(rangeStart(root)), locate: locator(root, doc, place) }
      continue
    }
    const itemsNode = deref(entry(deref(root, doc), 'items', doc)?.value, doc)
    const items = object.items as unknown[]
    for (let i = 0; i < items.length; i++) {
      const item = items[i]
      const itemNode = isSeq(itemsNode) ? itemsNode.items[i] : undefined
      const start = rangeStart(itemNode) ?? rangeStart(root)
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        yield { file, ...place(start), message: `items[${i}] of this ${String(object.kind)} is ${describe(item)}, not an object` }
        continue
      }
      const node = (deref(itemNode, doc) ?? root) as Node
      yield { file, index, item: i, object: item as JsonObject, position: place(start), locate: locator(node, doc, place) }
    }
  }
}

/** The objects of a whole text (see manifestsOfPiece). */
export function * manifestsOf (source: Source): Generator<Manifest | InputError | Skipped> {
  const next = { index: 0 }
  for (const piece of splitText(source.text)) {
    if (isNotText(piece)) {
      yield { file: source.file, ...piece }
      return
    }
    yield * manifestsOfPiece(source.file, piece, next)
  }
}

/** All of manifestsOf at once, manifests and errors apart (keeps every syntax tree: for small inputs). */
export function loadManifests (source: Source): { manifests: Manifest[], errors: InputError[] } {
  const manifests: Manifest[] = []
  const errors: InputError[] = []
  for (const m of manifestsOf(source)) {
    if (isManifest(m)) manifests.push(m)
    else if (!isSkipped(m)) errors.push(m)
  }
  return { manifests, errors }
}

export interface ReadOptions {
  /** --exclude globs. */
  exclude?: readonly string[]
  /** Said on stderr: a file named twice. */
  onNote?: (note: string) => void
}

async function * fileChunks (file: string): AsyncGenerator<Buffer> {
  yield * createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>
}

/**
 * Every object named by `paths`, in order, streamed: a file as it is, a folder as its .yaml, .yml and
 * .json files (recursively, sorted), `-` as stdin. What cannot be read becomes an error; the rest is
 * still read.
 */
export async function * readManifests (paths: readonly string[], io: Pick<CliIo, 'readStdin' | 'stdinChunks'>, opts: ReadOptions = {}): AsyncGenerator<Manifest | InputError | Skipped> {
  const notes: string[] = []
  const listed = await listFiles(paths, opts.exclude ?? [], notes)
  for (const note of notes) opts.onNote?.(note)
  for (const item of listed) {
    if (isUnlisted(item)) {
      yield item
      continue
    }
    const stdin = item.file === STDIN
    const file = stdin ? STDIN_NAME : item.file
    const chunks = stdin
      ? (io.stdinChunks?.() ?? (async function * () { yield await io.readStdin() })())
      : fileChunks(item.file)
    const next = { index: 0 }
    try {
      for await (const piece of documentsOf(chunks)) {
        if (isNotText(piece)) {
          yield { file, ...piece }
          break
        }
        yield * manifestsOfPiece(file, piece, next)
      }
    } catch (err) {
      yield { file, message: ioMessage(err) }
    }
  }
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
