// canonicalQuantity against Kubernetes' resource.Quantity (ParseQuantity, then String()). The table's
// right-hand sides were printed by k8s.io/apimachinery v0.34.0 itself (a Go program calling
// resource.ParseQuantity(s).String() on each left-hand side); the extreme exponents beyond it are
// derived from the same code, function by function (see the comments in quantity.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { canonicalQuantity, parseQuantity } from '../../src/nimservice/quantity.js'

// Printed by Go. Rows cover: the int64 fast path (ParseQuantity's `precision >= 0` branch), its kept
// input (Quantity.s: "+1", "1E3", "1e-4294967290"), the inf.Dec path (more than 18 digits, fractional
// binary suffixes), rounding up to 1n (inf.RoundUp at Nano), the BinarySI cap at 2^63 - 1, int32
// wrap-around of the exponent (suffixHandler.interpret's int32(parsed)), DecimalSI above E (no suffix:
// CanonicalizeBytes ignores constructBytes' ok) and ParseInt overflow (an error).
const FROM_GO: Array<[string, string | undefined]> = [
  ['1e2147483647', '10e2147483646'],
  ['1e4294967297', '10'],
  ['1e9223372036854775807', '100e-3'],
  ['1e-4294967290', '1e-4294967290'],
  ['15e4294967295', '1500e-3'],
  ['15e4294967305', '15e4294967305'],
  ['15e-9223372036854775808', '15e-9223372036854775808'],
  ['15e-4294967295', '150'],
  ['1.5e4294967295', '150e-3'],
  ['1.5e4294967305', '1500e6'],
  ['1.5e-9223372036854775808', '1500e-3'],
  ['1.5e-4294967290', '1500e3'],
  ['0.5e2147483648', '50e2147483646'],
  ['0.5e4294967297', '5'],
  ['0.5e9223372036854775807', '50e-3'],
  ['0.5e-2147483648', '50e2147483646'],
  ['123456789012345678e2147483647', '1234567890123456780e2147483646'],
  ['123456789012345678e4294967297', '1234567890123456780'],
  ['123456789012345678e9223372036854775807', '12345678901234567800e-3'],
  ['123456789012345678e-4294967290', '123456789012345678e-4294967290'],
  ['12345.678e2147483648', '1234567800e2147483643'],
  ['12345.678e4294967295', '1234567800e-6'],
  ['12345.678e4294967305', '12345.678e4294967305'],
  ['12345.678e-9223372036854775808', '12345.678e-9223372036854775808'],
  ['12345.678e-2147483647', '12345.678e-2147483647'],
  ['-7e2147483647', '-70e2147483646'],
  ['-7e4294967297', '-70'],
  ['-7e9223372036854775807', '-700e-3'],
  ['-7e-4294967290', '-7e-4294967290'],
  ['1000e4294967295', '100'],
  ['1000e4294967305', '1e12'],
  ['1000e-9223372036854775808', '1e3'],
  ['1000e-4294967295', '10e3'],
  ['999999999999999999e4294967296', '999999999999999999e4294967296'],
  ['999999999999999999e6442450943', '9999999999999999990e2147483646'],
  ['999999999999999999e9223372036854775808', undefined],
  ['8Ei', '9223372036854775807'],
  ['1.Ki', '1.Ki'],
  ['0.0009765625Ki', '1'],
  ['9223372036854775808', '9223372036854775808'],
  ['12345678901234567890Ki', '9223372036854775807'],
  ['1000E', '1'],
  ['100000000000000000000E', '100'],
  ['0.5n', '1n'],
  ['-1.0000000001', '-1000000001n'],
  ['+1.e-25', '1e-9'],
  ['+.5k', '500'],
  ['-04.T', '-04.T'],
  ['+8.50920200601e+1', '85092020061e-9'],
  ['.0Pi', '0'],
  ['+200514002100280.e-30', '1e-9'],
  ['+.5E+304', '5e303'],
  ['8605e38', '860500e36'],
  ['2508000105609710090994035E-39', '1e-9'],
  ['+200010.E-249', '1e-9'],
  ['-8604Mi', '-8604Mi'],
  ['-.2662Ti', '-292689995313971200u'],
  ['+3.481260E00-21', undefined],
  ['01019.e-3', '01019.e-3'],
  ['82.e-11', '1e-9'],
  ['077Ei', '9223372036854775807'],
  ['21005.e-385', '1e-9'],
  ['-751.m', '-751.m'],
  ['+83490.M', '+83490.M'],
  ['-2901875270060.6n', '-2901875270061n'],
  ['-5002000.00139672081798903', '-5002000001396721n'],
  ['+460675.k', '+460675.k'],
  ['00.59G', '590M'],
  ['.1699Gi', '182428735897600u'],
  ['-.0988', '-98800u'],
  ['00.e00-14', undefined],
  ['73460Mi', '73460Mi'],
  ['-90530260.M', '-90530260.M'],
  ['+001930k', '+001930k'],
  ['9.T', '9.T'],
  ['1092Ti', '1092Ti'],
  ['5k', '5k'],
  ['0460e28', '4600e27'],
  ['+06081E-40', '1e-9'],
  ['-1T', '-1T'],
  ['.73Ki', '747520m'],
  ['95.008800544Pi', '106970399681719044413587456n'],
  ['033054Ki', '033054Ki'],
  ['-703886.000102000501605750250978Ti', '-773930841740888273554506961n'],
  ['403578.E+13', '4035780e12'],
  ['.72E+39', '720e36'],
  ['-0E0029', '0'],
  ['.0480G', '48M'],
  ['+0010408027770096580.408M', '10408027770096580408k'],
  ['+.175u', '175n'],
  ['-493200.38E', '-493200380P'],
  ['+.5e-36', '1e-9'],
  ['.2541887899433Ti', '279483530192969521746n'],
  ['83702.52e00-21', undefined],
  ['-101.E00-30', undefined],
  ['+71n', '+71n'],
  ['3.e-22', '1e-9'],
  ['938440M', '938440M'],
  ['-040635252600384729001466007710.66P', '-40635252600384729001466007710660T'],
  ['-605400095280006068330880.M', '-605400095280006068330880M'],
  ['-.759E-3', '-759e-6'],
  ['-82.4607n', '-83n'],
  ['00.4022e+8', '40220e3'],
  ['+1e13', '10e12'],
  ['+100455P', '+100455P'],
  ['-700Ki', '-700Ki'],
  ['+1e16', '10e15'],
  ['-.8100805E+38', '-81008050e30'],
  ['283E+0', '283E+0'],
  ['+020009408007920067026408.e-28', '2001e-9'],
  ['938.e-385', '1e-9'],
  ['-090426.n', '-090426.n'],
  ['040.7002Ki', '41677004800u'],
  ['85981850000889020.E32', '8598185000088902e33'],
  ['+621.2076516948050056218', '621207651695n'],
  ['6e-3', '6e-3'],
  ['+010298P', '+010298P'],
  ['.04E33', '40e30'],
  ['807.00M', '807M'],
  ['-.388e-17', '-1e-9'],
  ['973500G', '973500G'],
  ['981780197560.47k', '981780197560470'],
  ['+6007500087026408084.m', '6007500087026408084m'],
  ['+23600.E+29', '2360e30'],
  ['90.700E', '90.700E'],
  ['+1', '+1'],
  ['1E3', '1E3'],
  ['1.Ki', '1.Ki'],
  ['1024Ki', '1Mi'],
  ['1.5Ki', '1536'],
  ['0.5Ki', '512'],
  ['8Ei', '9223372036854775807'],
  ['1.5E', '1500P'],
  ['2.5Pi', '2560Ti'],
  ['0.0000000011', '2n'],
  ['1e-49', '1e-9'],
  ['1e-99999', '1e-9'],
  ['1e1.5', undefined]
]

test('canonicalQuantity prints what Kubernetes prints (the Go results)', () => {
  const wrong = FROM_GO.filter(([input, want]) => canonicalQuantity(input) !== want)
    .map(([input, want]) => `${input}: want ${String(want)}, got ${String(canonicalQuantity(input))}`)
  assert.deepEqual(wrong, [])
})

// Go itself takes 8.9 s on 1e-9999999 (inf.Dec.Round computes 10^9999990) and does not finish on the
// rest; by its code each is rounded up to one nano unit (ParseQuantity: "rounds non-zero values up to
// the minimum representable value"), or keeps its digits with the int32-wrapped exponent.
const DERIVED: Array<[string, string | undefined]> = [
  ['1e-9999999', '1e-9'], // Go printed this one, after 8.9 s
  ['1e-49999999', '1e-9'],
  ['1e-999999999', '1e-9'],
  ['-1e-999999999', '-1e-9'],
  ['0.000001e-999999999', '1e-9'],
  ['5e-999999999', '1e-9'],
  ['1234567890123456789e999999999', '1234567890123456789e999999999'],
  ['1234567890123456789.5e999999999', '1234567890123456789500e999999996'],
  // The exponent -2^31 negates to itself in int32 (SetScale(Scale() + -exponent)): a huge value.
  ['1e-2147483648', '100e2147483646'],
  ['1e2147483648', '100e2147483646'],
  ['1e99999999999999999999', undefined]
]

test('extreme exponents get the answer of Kubernetes\' code', () => {
  for (const [input, want] of DERIVED) assert.equal(canonicalQuantity(input), want, input)
})

test('long quantities are canonicalised exactly: rounding up at the ninth decimal carries through', () => {
  const nines = '9'.repeat(200_000)
  assert.equal(canonicalQuantity(`0.${nines}`), '1')
  assert.equal(canonicalQuantity(`-0.${nines}`), '-1')
  assert.equal(canonicalQuantity(`1.${'0'.repeat(200_000)}1`), '1000000001n')
  assert.equal(canonicalQuantity(`${'1'.repeat(300_000)}`), '1'.repeat(300_000))
  assert.equal(canonicalQuantity(`${'1'.repeat(300_000)}Ki`), '9223372036854775807')
  // 2^-10 Ki is exactly 1; 0.00097656 Ki is 0.99999744, and the 1 far behind it rounds that up to 999997441n.
  assert.equal(canonicalQuantity(`0.0009765625${'0'.repeat(200_000)}Ki`), '1')
  assert.equal(canonicalQuantity(`0.00097656${'0'.repeat(200_000)}1Ki`), '999997441n')
})

test('parseQuantity gives the sign and rejects what the CRD pattern rejects', () => {
  assert.deepEqual(parseQuantity('-1e-999999999'), { sign: -1 })
  assert.deepEqual(parseQuantity('0.000e5'), { sign: 0 })
  assert.deepEqual(parseQuantity(3), { sign: 1 })
  assert.equal(parseQuantity('1kb'), undefined)
  assert.equal(canonicalQuantity('1kb'), undefined)
  assert.equal(canonicalQuantity(1.5), undefined)
  assert.equal(canonicalQuantity(100), '100')
})
