// A byte stream cut into documents as kubectl cuts it (apimachinery util/yaml): a YAML stream at each
// line that starts with `---` followed by nothing but blanks or a comment, or, when the stream starts
// with `{`, a stream of concatenated JSON values. Each document is handed on as soon as it is complete,
// so memory holds one document, not the stream, and findings come out while the rest is still read.

/** One document's text and where it starts in its source (1-based). */
export interface Piece {
  text: string
  line: number
  column: number
}

/** Why the bytes are not text, at a place in the source. */
export interface NotText { line: number, column: number, message: string }

// YAML allows no C0 control character but tab, line feed and carriage return (YAML 1.2, 5.1).
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/
const BOM = '\uFEFF'

function position (startLine: number, startColumn: number, text: string, offset: number): { line: number, column: number } {
  let line = startLine
  let lineStart = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    lineStart = i + 1
  }
  return { line, column: line === startLine ? startColumn + offset : offset - lineStart + 1 }
}

/** The first control character of a piece, as an error placed in the source. */
export function controlCharacter (piece: Piece): NotText | undefined {
  const m = CONTROL.exec(piece.text)
  if (m === null) return undefined
  const code = m[0].charCodeAt(0).toString(16).padStart(2, '0')
  return { ...position(piece.line, piece.column, piece.text, m.index), message: `not a text file: control character 0x${code} (binary content?)` }
}

/** Invalid UTF-8 in a chunk decoded leniently: placed at its U+FFFD, unless a control character comes first. */
function notUtf8 (lenient: string, line: number, column: number): NotText {
  const at = Math.max(0, lenient.indexOf('\uFFFD'))
  const control = controlCharacter({ text: lenient.slice(0, at), line, column })
  return control ?? { ...position(line, column, lenient, at), message: 'not a text file: invalid UTF-8 (binary content?)' }
}

/** kubectl's document separator: `---` at the start of a line, then only blanks or a comment. */
function isSeparator (line: string): boolean {
  if (!line.startsWith('---')) return false
  const rest = line.slice(3).trim()
  return rest === '' || rest.startsWith('#')
}

const blankOrComment = (line: string): boolean => {
  const t = line.trim()
  return t === '' || t.startsWith('#')
}

/** Cuts a YAML stream at kubectl's separators, line by line, whatever the chunk boundaries. */
class YamlSplitter {
  private lines: string[] = []
  private partial = ''
  private content = false
  private line: number
  private startLine: number

  constructor (line = 1) {
    this.line = line
    this.startLine = line
  }

  push (text: string, out: Piece[]): void {
    let from = 0
    for (let nl = text.indexOf('\n', from); nl !== -1; nl = text.indexOf('\n', from)) {
      this.addLine(this.partial + text.slice(from, nl + 1), out)
      this.partial = ''
      from = nl + 1
    }
    this.partial += text.slice(from)
  }

  end (out: Piece[]): void {
    if (this.partial !== '') this.addLine(this.partial, out)
    this.partial = ''
    this.flush(out)
  }

  private addLine (raw: string, out: Piece[]): void {
    // A byte-order mark is no content: `cat a.yaml b.yaml` puts b's at the start of a line, before its
    // first document (or its `---`), where it must not hide the key it is glued to.
    let line = raw
    if (line.startsWith(BOM) && (!this.content || isSeparator(line.slice(1)))) line = line.slice(1)
    if (isSeparator(line)) {
      this.flush(out)
      this.startLine = this.line
      this.lines.push(line)
    } else {
      if (!this.content && !blankOrComment(line)) this.content = true
      this.lines.push(line)
    }
    this.line++
  }

  private flush (out: Piece[]): void {
    // A `---` always opens a document, if only an empty one (it still counts in the numbering).
    if (this.content || (this.lines.length > 0 && isSeparator(this.lines[0] as string))) out.push({ text: this.lines.join(''), line: this.startLine, column: 1 })
    this.lines = []
    this.content = false
    this.startLine = this.line
  }
}

/** Cuts concatenated JSON values (`jq -c '.items[]'`, `{...}{...}`) apart, by brackets and strings. */
class JsonSplitter {
  private depth = 0
  private inString = false
  private escaped = false
  private buf: string[] = []
  private line = 1
  private column = 1
  private start: { line: number, column: number } | undefined
  /** Not JSON after all (text outside a value): everything from there goes on as one YAML piece. */
  private rest: YamlSplitter | undefined

  push (text: string, out: Piece[]): void {
    if (this.rest !== undefined) {
      this.rest.push(text, out)
      return
    }
    let from = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string
      if (this.start === undefined) {
        if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === BOM) {
          this.advance(c)
          from = i + 1
          continue
        }
        if (c !== '{' && c !== '[') {
          this.toYaml(text.slice(i), out)
          return
        }
        this.start = { line: this.line, column: this.column }
        from = i
      }
      this.advance(c)
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === '\\') this.escaped = true
        else if (c === '"') this.inString = false
      } else if (c === '"') {
        this.inString = true
      } else if (c === '{' || c === '[') {
        this.depth++
      } else if (c === '}' || c === ']') {
        this.depth--
        if (this.depth === 0) {
          this.buf.push(text.slice(from, i + 1))
          this.emit(out)
          from = i + 1
        }
      }
    }
    if (this.start !== undefined) this.buf.push(text.slice(from))
  }

  end (out: Piece[]): void {
    if (this.rest !== undefined) {
      this.rest.end(out)
    } else if (this.start !== undefined) {
      this.emit(out) // an unterminated value: the parser says where
    }
  }

  private advance (c: string): void {
    if (c === '\n') {
      this.line++
      this.column = 1
    } else {
      this.column++
    }
  }

  private emit (out: Piece[]): void {
    const start = this.start as { line: number, column: number }
    out.push({ text: this.buf.join(''), line: start.line, column: start.column })
    this.buf = []
    this.start = undefined
  }

  private toYaml (text: string, out: Piece[]): void {
    // Whatever follows is handed to the YAML reader from this line on (it reports the error in place).
    this.rest = new YamlSplitter(this.line)
    this.rest.push(' '.repeat(this.column - 1) + text, out)
  }
}

/** The documents of a whole text at once (tests and benchmarks; the commands stream with documentsOf). */
export function splitText (text: string): Array<Piece | NotText> {
  const splitter = /^[\s\uFEFF]*\{/.test(text) ? new JsonSplitter() : new YamlSplitter()
  const out: Piece[] = []
  splitter.push(text, out)
  splitter.end(out)
  const result: Array<Piece | NotText> = []
  for (const piece of out) {
    const bad = controlCharacter(piece)
    if (bad !== undefined) return [...result, bad]
    result.push(piece)
  }
  return result
}

/** The documents of a byte stream, as they complete; a NotText ends the stream (binary or not UTF-8). */
export async function * documentsOf (chunks: AsyncIterable<Buffer | string>): AsyncGenerator<Piece | NotText> {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let splitter: YamlSplitter | JsonSplitter | undefined
  let head = ''
  let line = 1
  let lineStart = 0
  let seen = 0
  const out: Piece[] = []
  const track = (text: string): void => {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) {
      line++
      lineStart = seen + i + 1
    }
    seen += text.length
  }
  for await (const chunk of chunks) {
    let text: string
    try {
      text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })
    } catch {
      yield notUtf8(new TextDecoder('utf-8').decode(chunk as Buffer), line, seen - lineStart + 1)
      return
    }
    if (splitter === undefined) {
      // kubectl's GuessJSONStream: a stream whose first non-blank character is `{` is JSON.
      head += text
      const first = /[^\s\uFEFF]/.exec(head)
      if (first === null) continue
      splitter = first[0] === '{' ? new JsonSplitter() : new YamlSplitter()
      text = head
      head = ''
    }
    splitter.push(text, out)
    track(text)
    if (!(yield * checked(out))) return
    out.length = 0
  }
  try {
    const tail = decoder.decode()
    if (tail !== '') head += tail
  } catch {
    yield { line, column: seen - lineStart + 1, message: 'not a text file: invalid UTF-8 (binary content?)' }
    return
  }
  splitter ??= new YamlSplitter()
  if (head !== '') splitter.push(head, out)
  splitter.end(out)
  yield * checked(out)
}

/** Yields the pieces up to the first one with a control character, which is yielded as NotText; false then. */
function * checked (pieces: Piece[]): Generator<Piece | NotText, boolean> {
  for (const piece of pieces) {
    const bad = controlCharacter(piece)
    if (bad !== undefined) {
      yield bad
      return false
    }
    yield piece
  }
  return true
}

export const isNotText = (p: Piece | NotText): p is NotText => (p as NotText).message !== undefined
