// Kubernetes resource.Quantity (k8s.io/apimachinery/pkg/api/resource): the CRD's int-or-string
// pattern, and a port of ParseQuantity and String() so that a rendered HPA carries the string the
// apiserver stores. Go's code is followed function by function (quantity.go, amount.go, math.go,
// suffix.go), int32 wrap-around included, with one change: it never materialises 10^n. Go's inf.Dec
// rounding computes 10^(exponent) as a big integer (`1e-9999999` takes 9 s there, `1e-999999999`
// does not finish); here every step is string work linear in the input, with the same result.

const QUANTITY = /^([+-]?)(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/

export interface ParsedQuantity {
  /** -1, 0 or 1, as resource.Quantity.Sign() returns. */
  sign: -1 | 0 | 1
}

/** Parses a quantity given as a JSON integer or string; undefined when it does not parse. */
export function parseQuantity (value: unknown): ParsedQuantity | undefined {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return undefined
    return { sign: value > 0 ? 1 : value < 0 ? -1 : 0 }
  }
  if (typeof value !== 'string') return undefined
  const m = QUANTITY.exec(value)
  if (m === null) return undefined
  const mantissa = m[2] ?? ''
  if (!/[1-9]/.test(mantissa)) return { sign: 0 }
  return { sign: m[1] === '-' ? -1 : 1 }
}

/**
 * The string Kubernetes stores for a quantity given as a JSON integer or string (Quantity.String()
 * after ParseQuantity); undefined when the value does not match the CRD's pattern or Go does not
 * parse it (validation reports that).
 */
export function canonicalQuantity (value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? canonicalQuantity(String(value)) : undefined
  if (typeof value !== 'string' || !QUANTITY.test(value)) return undefined
  const q = parseGoQuantity(value)
  return q === undefined ? undefined : quantityString(q)
}

// ---- the port -----------------------------------------------------------------------------------

type Format = 'DecimalExponent' | 'BinarySI' | 'DecimalSI'

/** int64Amount: value * 10^scale, value an int64. */
interface Int64Amount { kind: 'int64', value: bigint, scale: number }
/**
 * infDecAmount (an inf.Dec): sign * digits * 10^zeros * 10^-scale. `digits` has no leading zeros ('' is
 * zero); `zeros` are trailing zeros that Go writes out and this port only counts.
 */
interface DecAmount { kind: 'dec', negative: boolean, digits: string, zeros: number, scale: number }

interface Quantity {
  amount: Int64Amount | DecAmount
  format: Format
  /** The input, when Go keeps it as the canonical string (Quantity.s). */
  s?: string
}

/** Go's int32 arithmetic wraps around. */
const i32 = (n: number): number => n | 0
const MAX_INT64 = (1n << 63n) - 1n
const MAX_INT64_FACTORS = 18 // maxInt64Factors
const NANO = -9

/** parseQuantityString. */
function parseQuantityString (str: string): { positive: boolean, value: string, num: string, denom: string, suffix: string } | undefined {
  let positive = true
  let pos = 0
  const end = str.length
  if (str[0] === '-') { positive = false; pos++ } else if (str[0] === '+') pos++
  while (pos < end && str[pos] === '0') pos++
  if (pos >= end) return { positive, value: '0', num: '0', denom: '', suffix: '' }
  let i = pos
  while (i < end && isDigit(str, i)) i++
  if (i >= end) return { positive, value: str, num: str.slice(pos), denom: '', suffix: '' }
  const num = str.slice(pos, i) === '' ? '0' : str.slice(pos, i)
  pos = i
  let denom = ''
  if (str[pos] === '.') {
    pos++
    i = pos
    while (i < end && isDigit(str, i)) i++
    denom = str.slice(pos, i)
    if (i >= end) return { positive, value: str, num, denom, suffix: '' }
    pos = i
  }
  const value = str.slice(0, pos)
  const suffixStart = pos
  while (pos < end && 'eEinumkKMGTP'.includes(str[pos] as string)) pos++
  if (pos >= end) return { positive, value, num, denom, suffix: str.slice(suffixStart) }
  if (str[pos] === '-' || str[pos] === '+') pos++
  while (pos < end && isDigit(str, pos)) pos++
  if (pos < end) return undefined // ErrFormatWrong
  return { positive, value, num, denom, suffix: str.slice(suffixStart) }
}

function isDigit (s: string, i: number): boolean {
  const c = s.charCodeAt(i)
  return c >= 48 && c <= 57
}

const DECIMAL_SUFFIXES: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 }
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 }
const DECIMAL_BY_EXPONENT = new Map(Object.entries(DECIMAL_SUFFIXES).map(([s, e]) => [e, s]))
const BINARY_BY_EXPONENT = new Map(Object.entries(BINARY_SUFFIXES).map(([s, e]) => [e, s]))

/** suffixHandler.interpret: base, exponent (int32) and format of a suffix. */
function interpret (suffix: string): { base: 2 | 10, exponent: number, format: Format } | undefined {
  if (Object.hasOwn(DECIMAL_SUFFIXES, suffix)) return { base: 10, exponent: DECIMAL_SUFFIXES[suffix] as number, format: 'DecimalSI' }
  if (Object.hasOwn(BINARY_SUFFIXES, suffix)) return { base: 2, exponent: BINARY_SUFFIXES[suffix] as number, format: 'BinarySI' }
  if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    // strconv.ParseInt(suffix[1:], 10, 64), then int32(parsed).
    const text = suffix.slice(1)
    const signed = text[0] === '-' || text[0] === '+' ? 1 : 0
    let start = signed
    while (start < text.length - 1 && text[start] === '0') start++
    const digits = text.slice(start)
    if (digits.length === 0 || digits.length > 19 || !/^[0-9]+$/.test(digits)) return undefined
    const parsed = BigInt(text[0] === '-' ? `-${digits}` : digits)
    if (parsed > MAX_INT64 || parsed < -MAX_INT64 - 1n) return undefined
    return { base: 10, exponent: Number(BigInt.asIntN(32, parsed)), format: 'DecimalExponent' }
  }
  return undefined
}

/** ParseQuantity. */
function parseGoQuantity (str: string): Quantity | undefined {
  if (str.length === 0) return undefined
  if (str === '0') return { amount: { kind: 'int64', value: 0n, scale: 0 }, format: 'DecimalSI', s: str }
  const parsed = parseQuantityString(str)
  if (parsed === undefined) return undefined
  const { positive, value, num, denom } = parsed
  const suffix = interpret(parsed.suffix)
  if (suffix === undefined) return undefined
  const { base, exponent } = suffix
  let format = suffix.format

  let precision: number
  let scale = 0
  let mantissa = 1n
  if (format === 'BinarySI') {
    if (exponent >= 0 && denom.length === 0) {
      mantissa = 1n << BigInt(exponent)
      precision = 15 - num.length - Math.trunc(exponent * 3 / 10) - 1
    } else {
      precision = -1
    }
  } else {
    scale = exponent
    precision = MAX_INT64_FACTORS - (num.length + denom.length)
  }

  if (precision >= 0) {
    scale = i32(scale - denom.length)
    if (scale >= NANO) {
      const shifted = num + denom
      const v = BigInt(shifted) // at most 18 digits
      const result = v * mantissa
      if (result <= MAX_INT64) { // int64Multiply
        const amount: Int64Amount = { kind: 'int64', value: positive ? result : -result, scale }
        // "if the number is in canonical form, reuse the string"
        const canonical = format === 'BinarySI'
          ? exponent % 10 === 0 && (v & 7n) !== 0n
          : scale % 3 === 0 && !shifted.endsWith('000') && shifted[0] !== '0'
        return canonical ? { amount, format, s: str } : { amount, format }
      }
    }
  }

  // inf.Dec.SetString(value): the digits, scale = digits after the point.
  const dot = value.indexOf('.')
  const fraction = dot < 0 ? '' : value.slice(dot + 1)
  let digits = stripLeadingZeros((dot < 0 ? value : value.slice(0, dot) + fraction).replace(/^[+-]/, ''))
  let decScale = fraction.length
  if (base === 10) {
    decScale = i32(decScale + i32(-exponent))
  } else {
    digits = timesPow2(digits, exponent)
  }
  const dec: DecAmount = { kind: 'dec', negative: !positive, digits, zeros: 0, scale: decScale }
  // "rounds non-zero values up to the minimum representable value": Round(amount, Nano, RoundUp).
  if (dec.digits !== '') roundUp(dec, -NANO)
  if (format === 'BinarySI' && compareAbs(dec, MAX_INT64) > 0) {
    Object.assign(dec, { digits: MAX_INT64.toString(), zeros: 0, scale: 0 })
  }
  if (format === 'BinarySI' && dec.digits !== '' && compareAbs(dec, 1n) < 0) format = 'DecimalSI'
  return { amount: dec, format }
}

function stripLeadingZeros (s: string): string {
  let i = 0
  while (i < s.length && s[i] === '0') i++
  return s.slice(i)
}

/** inf.Dec.Round(x, scale, inf.RoundUp) on the absolute value (the sign is kept apart, as ParseQuantity does). */
function roundUp (d: DecAmount, scale: number): void {
  if (d.scale <= scale) {
    // Exact: the unscaled value gains trailing zeros (counted, not written).
    d.zeros += scale - d.scale
    d.scale = scale
    return
  }
  const drop = d.scale - scale // digits to drop, counting the virtual trailing zeros first
  if (drop <= d.zeros) {
    d.zeros -= drop
  } else {
    const fromDigits = drop - d.zeros
    d.zeros = 0
    if (fromDigits >= d.digits.length) {
      d.digits = '1' // 0 < value < one unit of the new scale: up to one unit
    } else {
      const kept = d.digits.slice(0, d.digits.length - fromDigits)
      const rest = d.digits.slice(d.digits.length - fromDigits)
      d.digits = /[1-9]/.test(rest) ? increment(kept) : stripLeadingZeros(kept)
    }
  }
  d.scale = scale
}

/** A decimal digit string plus one. */
function increment (s: string): string {
  let i = s.length - 1
  while (i >= 0 && s[i] === '9') i--
  if (i < 0) return '1' + '0'.repeat(s.length)
  return s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) + 1) + '0'.repeat(s.length - i - 1)
}

/** digits * 2^k (k <= 60), in base-10^9 limbs: linear in the length. */
function timesPow2 (digits: string, k: number): string {
  if (digits === '') return ''
  const limbs: number[] = []
  for (let end = digits.length; end > 0; end -= 9) limbs.push(Number(digits.slice(Math.max(0, end - 9), end)))
  for (let left = k; left > 0; left -= 20) {
    const m = 2 ** Math.min(20, left)
    let carry = 0
    for (let i = 0; i < limbs.length; i++) {
      const v = (limbs[i] as number) * m + carry // < 2^50: exact
      carry = Math.floor(v / 1e9)
      limbs[i] = v - carry * 1e9
    }
    while (carry > 0) { limbs.push(carry % 1e9); carry = Math.floor(carry / 1e9) }
  }
  let out = String(limbs[limbs.length - 1])
  for (let i = limbs.length - 2; i >= 0; i--) out += String(limbs[i]).padStart(9, '0')
  return out
}

/** |d| compared with a non-negative integer n (small: n has at most 19 digits). */
function compareAbs (d: DecAmount, n: bigint): number {
  if (d.digits === '') return n === 0n ? 0 : -1
  // Integer digits of |d|: digits + zeros - scale. Far more than n has: greater; far fewer: smaller.
  const intDigits = d.digits.length + d.zeros - d.scale
  const nDigits = n.toString().length
  if (intDigits > nDigits + 1) return 1
  if (intDigits < 0) return n === 0n ? 1 : -1
  // Small enough to be exact in BigInt: compare d * 10^scale with n * 10^scale.
  const scaled = BigInt(d.digits) * 10n ** BigInt(d.zeros)
  const s = d.scale >= 0 ? n * 10n ** BigInt(d.scale) : n
  const left = d.scale >= 0 ? scaled : scaled * 10n ** BigInt(-d.scale)
  return left > s ? 1 : left < s ? -1 : 0
}

// ---- String() -----------------------------------------------------------------------------------

/** Quantity.String(): the kept input, or CanonicalizeBytes. */
function quantityString (q: Quantity): string {
  if (q.s !== undefined) return q.s
  const a = q.amount
  if (a.kind === 'int64' ? a.value === 0n : a.digits === '') return '0'
  let format = q.format
  let base1024: [string, number] | undefined
  if (format === 'BinarySI') {
    const int = asScale0(a)
    if (int !== undefined && (int <= -1024n || int >= 1024n)) base1024 = removeFactors1024(int)
    else format = 'DecimalSI' // within ±1024, or not an integer: "Don't lose precision"
  }
  if (base1024 !== undefined) {
    const [number, exponent] = base1024
    return number + (BINARY_BY_EXPONENT.get(i32(exponent * 10)) ?? '')
  }
  const [number, exponent] = a.kind === 'int64' ? int64CanonicalBytes(a) : decCanonicalBytes(a)
  if (format === 'DecimalExponent') return exponent === 0 ? number : `${number}e${exponent}`
  // DecimalSI: Go ignores a missing suffix (exponents above 18), printing the number alone.
  return number + (DECIMAL_BY_EXPONENT.get(exponent) ?? '')
}

/** The value as an integer when AsScale(0) is exact; BinarySI values are at most 2^63 - 1 here. */
function asScale0 (a: Int64Amount | DecAmount): bigint | undefined {
  if (a.kind === 'int64') return a.scale >= 0 ? a.value * 10n ** BigInt(a.scale) : undefined
  const unscaled = BigInt(a.digits) * 10n ** BigInt(a.zeros)
  const sign = a.negative ? -1n : 1n
  if (a.scale <= 0) return sign * unscaled * 10n ** BigInt(-a.scale)
  const div = 10n ** BigInt(a.scale)
  return unscaled % div === 0n ? sign * unscaled / div : undefined
}

/** removeInt64Factors(value, 1024) as AsCanonicalBase1024Bytes uses it. */
function removeFactors1024 (value: bigint): [string, number] {
  let n = value
  let times = 0
  const neg = n < 0n
  if (neg) n = -n
  while (n >= 1024n && n % 1024n === 0n) { n /= 1024n; times++ }
  return [(neg ? -n : n).toString(), times]
}

/** int64Amount.AsCanonicalBytes. */
function int64CanonicalBytes (a: Int64Amount): [string, number] {
  let amount = a.value < 0n ? -a.value : a.value
  let times = 0
  while (amount >= 10n && amount % 10n === 0n) { amount /= 10n; times++ }
  let exponent = i32(a.scale + times)
  const sign = a.value < 0n ? '-' : ''
  const rem = exponent % 3
  if (rem === 1 || rem === -2) {
    if (amount * 10n > MAX_INT64) return decCanonicalBytes(asDec(a))
    amount *= 10n
    exponent = i32(exponent - 1)
  } else if (rem === 2 || rem === -1) {
    if (amount * 100n > MAX_INT64) return decCanonicalBytes(asDec(a))
    amount *= 100n
    exponent = i32(exponent - 2)
  }
  return [sign + amount.toString(), exponent]
}

/** int64Amount.AsDec: inf.NewDec(value, -scale). */
function asDec (a: Int64Amount): DecAmount {
  const abs = a.value < 0n ? -a.value : a.value
  return { kind: 'dec', negative: a.value < 0n, digits: abs.toString(), zeros: 0, scale: i32(-a.scale) }
}

/** infDecAmount.AsCanonicalBytes: factors of ten into the exponent, then down to a multiple of 3. */
function decCanonicalBytes (d: DecAmount): [string, number] {
  let exponent = i32(-d.scale)
  let end = d.digits.length
  while (end > 1 && d.digits[end - 1] === '0') end--
  // removeBigIntFactors counts in an int32.
  const times = i32(d.zeros + (d.digits.length - end))
  let amount = d.digits.slice(0, end)
  exponent = i32(exponent + times)
  while (exponent % 3 !== 0) {
    amount += '0'
    exponent = i32(exponent - 1)
  }
  return [(d.negative ? '-' : '') + amount, exponent]
}
