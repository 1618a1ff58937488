// The RegExp engine ajv runs the CRD's `pattern`s with. The apiserver checks them with Go's regexp
// (RE2: linear time, no backreferences or lookaround); a JavaScript RegExp backtracks, and one CRD
// pattern (spec.expose.router.hostDomainName) takes exponential time on 40 characters. re2js is a
// pure-JavaScript port of RE2 (via RE2J): the same syntax and semantics, linear time, and nothing
// native to build or download at install time.
import { RE2JS } from 're2js'

export interface PatternTest {
  test: (s: string) => boolean
}

/**
 * ajv's `code.regExp`: `pattern` is searched for anywhere in the string (Go's MatchString, ajv's
 * RegExp.test), and its anchors mean what Go's do. Throws, naming the pattern, when RE2 rejects it.
 */
export function re2Engine (pattern: string, _flags?: string): PatternTest {
  const re = RE2JS.compile(pattern)
  // ajv keys compiled patterns by toString(): it must tell two patterns apart.
  return { test: (s: string) => re.test(s), toString: () => `re2:${pattern}` } as PatternTest
}
/** How ajv's standalone code names the engine: an identifier the generated module has in scope. */
re2Engine.code = 're2Engine'
