// The ajv instance that compiles the spec schema, and the validator's code: written at `npm run build`
// (build-validator.ts), or made and evaluated at start-up when that file is missing (spec-validator.ts).
import { Ajv } from 'ajv'
import standaloneCode from 'ajv/dist/standalone/index.js'
import { compiledSchema } from './schema-split.js'
import { re2Engine } from './re2-engine.js'

const K8S_KEYWORDS = [
  'x-kubernetes-int-or-string', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource'
]

export function createAjv (): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictRequired: false,
    useDefaults: false,
    // Each $ref of the split schema (schema-split.ts) becomes a function of its own.
    inlineRefs: false,
    // The CRD's patterns are Go RE2 expressions: run them as the apiserver does, in linear time.
    unicodeRegExp: false,
    code: { source: true, regExp: re2Engine }
  })
  ajv.addVocabulary(K8S_KEYWORDS)
  return ajv
}

/**
 * Two edits to ajv's code, each at every place ajv emits it (the build fails if one is missed):
 * - a $ref'd function's errors are appended with `concat`, a copy of all errors so far per failing call:
 *   quadratic in the errors (50,000 empty metrics took 11 s). They are pushed instead.
 * - under `check`, every error outside anyOf branches is also appended, in the order made, to `log`,
 *   and validation stops (throws STOP) once `log` holds `maxErrors`: by then it names more fields than
 *   a response keeps. `log` is ajv's error list less anyOf branch errors: in this schema (no oneOf,
 *   not, if) ajv takes back no error but those of an anyOf branch that loses to a passing one, and the
 *   anyOf reports the failure of all branches itself.
 */
const PUSH = /const (err\d+) = (\{instancePath.*?schemaPath:"([^"]*)".*?\});if\(vErrors === null\)\{vErrors = \[\1\];\}else \{vErrors\.push\(\1\);\}errors\+\+;/g
const CONCAT = /vErrors = vErrors === null \? (validate\d+)\.errors : vErrors\.concat\(\1\.errors\);errors = vErrors\.length;/g
const IN_ANYOF_BRANCH = /\/anyOf\/\d+\//

/** `code` with every match of `re` replaced; throws unless there are exactly `expected` matches. */
function edit (code: string, re: RegExp, expected: number, replace: (...groups: string[]) => string): string {
  let n = 0
  const out = code.replace(re, (_m, ...groups: string[]) => { n++; return replace(...groups) })
  if (n !== expected) throw new Error(`ajv's generated code has ${n} matches of ${re.source}, not ${expected}: the ajv version changed how it writes errors`)
  return out
}

const count = (code: string, s: string): number => code.split(s).length - 1

/**
 * The validator as the body of a CommonJS module that also has `re2Engine` in scope. It exports the
 * ajv function as `default` and `check(data, maxErrors)`: null when `data` is valid, else ajv's errors
 * in its order less those of anyOf branches, at most `maxErrors` of them.
 */
export function validatorSource (): string {
  const ajv = createAjv()
  let code = standaloneCode.default(ajv, ajv.compile(compiledSchema()))
  code = edit(code, PUSH, count(code, 'vErrors.push('), (err, literal, schemaPath) => {
    const logged = IN_ANYOF_BRANCH.test(schemaPath as string) ? '' : `if(logging){log.push(${err});if(log.length >= maxErrors){throw STOP;}}`
    return `const ${err} = ${literal};if(vErrors === null){vErrors = [${err}];}else {vErrors.push(${err});}errors++;${logged}`
  })
  code = edit(code, CONCAT, count(code, '.concat('), (fn) => `if(vErrors === null){vErrors = ${fn}.errors;}else {for(const e of ${fn}.errors){vErrors.push(e);}}errors = vErrors.length;`)
  const root = /^"use strict";module\.exports = (validate\d+);/.exec(code)?.[1]
  if (root === undefined) throw new Error('ajv\'s generated code does not start by exporting its validator')
  return `${code}
const log = [];
const STOP = new Error('too many errors');
let logging = false;
let maxErrors = 0;
function checkErrors (data, max) {
  maxErrors = max;
  log.length = 0;
  logging = true;
  let valid;
  try {
    valid = ${root}(data);
  } catch (err) {
    if (err !== STOP) throw err;
    valid = false;
  } finally {
    logging = false;
  }
  return valid ? null : log.splice(0);
}
module.exports.check = checkErrors;
`
}
