// Who a large review is for, read from its bytes without parsing them: the event loop needs the uid
// (and what the log line shows) to answer a review its worker never got to decode, and JSON.parse of a
// 7 MiB body of `{}`s would build millions of objects in the very thread the pool keeps free. This
// scanner walks the bytes once, skips every value it does not need, and allocates only the few short
// strings it keeps. Like JSON.parse, the last of duplicate keys wins.
import { API_VERSIONS, MAX_UID_CHARS, type ApiVersion } from '../admission/review.js'
import type { Operation } from '../nimservice/types.js'
import { clip, MAX_LOGGED_CHARS, type ReviewHeader } from './review-line.js'

const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']
/** Longer strings are skipped, never decoded: nothing we keep is longer (a uid is at most 256). */
const MAX_KEPT_BYTES = 4 * MAX_UID_CHARS

class Malformed extends Error {}

class Scanner {
  i = 0
  constructor (private readonly b: Uint8Array) {}

  ws (): void {
    const b = this.b
    while (this.i < b.length) {
      const c = b[this.i]
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return
      this.i++
    }
  }

  peek (): number {
    this.ws()
    if (this.i >= this.b.length) throw new Malformed()
    return this.b[this.i] as number
  }

  expect (c: number): void {
    if (this.peek() !== c) throw new Malformed()
    this.i++
  }

  /** A string's extent, quotes included. */
  stringSpan (): [number, number] {
    const b = this.b
    const start = this.i
    if (b[this.i] !== 0x22) throw new Malformed()
    this.i++
    while (this.i < b.length) {
      const c = b[this.i]
      if (c === 0x5c) this.i += 2
      else if (c === 0x22) return [start, ++this.i]
      else this.i++
    }
    throw new Malformed()
  }

  /** A short string's value; undefined for a long one (skipped) or for a value that is not a string. */
  shortString (): string | undefined {
    if (this.peek() !== 0x22) {
      this.skipValue()
      return undefined
    }
    const [s, e] = this.stringSpan()
    if (e - s > MAX_KEPT_BYTES) return undefined
    return JSON.parse(Buffer.from(this.b.buffer, this.b.byteOffset + s, e - s).toString('utf8')) as string
  }

  skipValue (): void {
    const b = this.b
    const first = this.peek()
    if (first === 0x22) {
      this.stringSpan()
      return
    }
    if (first !== 0x7b && first !== 0x5b) {
      // A number or a literal: up to the next delimiter.
      while (this.i < b.length) {
        const c = b[this.i]
        if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return
        this.i++
      }
      return
    }
    let depth = 0
    while (this.i < b.length) {
      const c = b[this.i]
      if (c === 0x22) {
        this.stringSpan()
        continue
      }
      if (c === 0x7b || c === 0x5b) depth++
      else if (c === 0x7d || c === 0x5d) {
        depth--
        if (depth === 0) {
          this.i++
          return
        }
      }
      this.i++
    }
    throw new Malformed()
  }

  /** Walks an object, handing each key to `onKey`, which consumes the value (or returns false to skip it). */
  object (onKey: (key: string | undefined) => boolean): void {
    this.expect(0x7b)
    if (this.peek() === 0x7d) {
      this.i++
      return
    }
    for (;;) {
      const key = this.shortString()
      this.expect(0x3a)
      if (!onKey(key)) this.skipValue()
      const c = this.peek()
      this.i++
      if (c === 0x7d) return
      if (c !== 0x2c) throw new Malformed()
    }
  }

  literal (): boolean | undefined {
    const c = this.peek()
    this.skipValue()
    return c === 0x74 ? true : c === 0x66 ? false : undefined
  }
}

/** The review's identity, or undefined when the bytes do not hold a decodable AdmissionReview header. */
export function scanReviewHeader (bytes: Uint8Array): ReviewHeader | undefined {
  const s = new Scanner(bytes)
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) s.i = 3 // a byte-order mark
  let apiVersion: string | undefined
  const req: { uid?: string, operation?: string, kind?: string, namespace?: string, name?: string, subResource?: string, dryRun?: boolean } = {}
  try {
    s.object((key) => {
      if (key === 'apiVersion') { apiVersion = s.shortString(); return true }
      if (key !== 'request' || s.peek() !== 0x7b) return false
      s.object((k) => {
        switch (k) {
          case 'uid': case 'operation': case 'namespace': case 'name': case 'subResource':
            req[k] = s.shortString()
            return true
          case 'dryRun':
            req.dryRun = s.literal()
            return true
          case 'kind':
            if (s.peek() !== 0x7b) return false
            s.object((kk) => { if (kk !== 'kind') return false; req.kind = s.shortString(); return true })
            return true
          default:
            return false
        }
      })
      return true
    })
  } catch (err) {
    if (err instanceof Malformed || err instanceof SyntaxError) return undefined
    throw err
  }
  if (!(API_VERSIONS as readonly unknown[]).includes(apiVersion)) return undefined
  if (req.uid === undefined || req.uid === '' || req.uid.length > MAX_UID_CHARS) return undefined
  if (req.operation === undefined || !OPERATIONS.includes(req.operation) || req.kind === undefined) return undefined
  const header: ReviewHeader = { apiVersion: apiVersion as ApiVersion, uid: req.uid, kind: clip(req.kind, MAX_LOGGED_CHARS), operation: req.operation as Operation, dryRun: req.dryRun === true }
  if (req.namespace !== undefined && req.namespace !== '') header.namespace = clip(req.namespace, MAX_LOGGED_CHARS)
  if (req.name !== undefined && req.name !== '') header.name = clip(req.name, MAX_LOGGED_CHARS)
  if (req.subResource !== undefined && req.subResource !== '') header.subResource = clip(req.subResource, MAX_LOGGED_CHARS)
  return header
}
