// Kubernetes resource.Quantity grammar (k8s.io/apimachinery/pkg/api/resource), as the CRD's
// int-or-string pattern states it: case-sensitive decimal (k M G T P E, m u n), binary
// (Ki Mi Gi Ti Pi Ei) and exponent (e3, E-2) suffixes.

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

// --- canonical form (resource.Quantity.String()), what the apiserver stores for an HPA ----------

const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 }
const BINARY_SUFFIX: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 }
const DECIMAL_BY_EXP = new Map(Object.entries(DECIMAL_SUFFIX).map(([s, e]) => [e, s]))
const BINARY_BY_POWER = new Map(Object.entries(BINARY_SUFFIX).map(([s, p]) => [p, s]))

/** n * 10^scale, exact. */
interface Decimal { n: bigint, scale: number }

function pow10 (e: number): bigint { return 10n ** BigInt(e) }

function parseDecimal (digits: string): Decimal {
  const [whole = '', frac = ''] = digits.split('.')
  return { n: BigInt((whole + frac).replace(/^0+(?=\d)/, '') || '0'), scale: -frac.length }
}

/** Rounds away from zero to at most 9 decimal places, as ParseQuantity does. */
function roundToNano (d: Decimal): Decimal {
  if (d.scale >= -9) return d
  const div = pow10(-9 - d.scale)
  const neg = d.n < 0n
  const abs = neg ? -d.n : d.n
  let q = abs / div
  if (abs % div !== 0n) q += 1n
  return { n: neg ? -q : q, scale: -9 }
}

/** Largest exponent e (multiple of 3, >= -9) with value = m * 10^e for an integer m. */
function canonicalDecimal (d: Decimal): [bigint, number] {
  if (d.n === 0n) return [0n, 0]
  let { n, scale } = d
  // Normalise scale to a multiple of 3 (never below -9: roundToNano ran first).
  while (((scale % 3) + 3) % 3 !== 0) { n *= 10n; scale -= 1 }
  while (n % 1000n === 0n) { n /= 1000n; scale += 3 }
  return [n, scale]
}

/**
 * The string Kubernetes stores for a quantity given as a JSON integer or string; undefined when the
 * value does not parse (validation reports that).
 */
export function canonicalQuantity (value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? canonicalQuantity(String(value)) : undefined
  if (typeof value !== 'string') return undefined
  const m = QUANTITY.exec(value)
  if (m === null) return undefined
  const sign = m[1] === '-' ? -1n : 1n
  const mantissa = parseDecimal(m[2] ?? '0')
  const suffix = m[6] ?? ''
  let d: Decimal = { n: sign * mantissa.n, scale: mantissa.scale }
  let format: 'DecimalSI' | 'BinarySI' | 'DecimalExponent' = 'DecimalSI'
  if (suffix in BINARY_SUFFIX) {
    format = 'BinarySI'
    d = { n: d.n * 1024n ** BigInt(BINARY_SUFFIX[suffix] ?? 0), scale: d.scale }
  } else if (m[8] !== undefined) {
    format = 'DecimalExponent'
    const exp = parseDecimal(suffix.slice(1).replace(/^\+/, '').replace(/^-/, ''))
    if (exp.scale !== 0) return undefined // fractional exponents do not parse in Kubernetes
    d = { n: d.n, scale: d.scale + (suffix[1] === '-' ? -1 : 1) * Number(exp.n) }
  } else {
    d = { n: d.n, scale: d.scale + (DECIMAL_SUFFIX[suffix] ?? 0) }
  }
  d = roundToNano(d)

  if (format === 'BinarySI') {
    const abs = d.n < 0n ? -d.n : d.n
    const integral = d.scale >= 0 || abs % pow10(-d.scale) === 0n
    const asInt = d.scale >= 0 ? d.n * pow10(d.scale) : d.n / pow10(-d.scale)
    if (!integral || (asInt > -1024n && asInt < 1024n)) {
      format = 'DecimalSI'
    } else {
      let n = asInt
      let power = 0
      while (power < 6 && n !== 0n && n % 1024n === 0n) { n /= 1024n; power++ }
      return `${n}${BINARY_BY_POWER.get(power) ?? ''}`
    }
  }
  let [n, exp] = canonicalDecimal(d)
  if (format === 'DecimalExponent') return exp === 0 ? `${n}` : `${n}e${exp}`
  while (exp > 18) { n *= 1000n; exp -= 3 }
  return `${n}${DECIMAL_BY_EXP.get(exp) ?? ''}`
}
