// Benchmark: the CPU one review costs in the domain (validateNIMService for /validate, mutateNIMService
// for /mutate, CREATE and UPDATE), for each reproduction of issue 21 and for the largest bodies an
// apiserver sends (up to ~6 MiB), so that the README can state the bound per review. Prints, per case,
// the body size, JSON.parse's CPU and the worst CPU of each domain call over the rounds.
// Run: npm run bench:worst [rounds]   (or node --import tsx bench/worst-case.ts [rounds])
import { cpuUsage } from 'node:process'
import { mutateNIMService, validateNIMService } from '../src/nimservice/index.js'
import { COST_CASES } from '../test/helpers/fuzz-arbitraries.js'

const ROUNDS = Number(process.argv[2] ?? 5)

/** CPU milliseconds (user + system) that `f` takes. */
function cpuMs (f: () => unknown): number {
  const start = cpuUsage()
  f()
  const used = cpuUsage(start)
  return (used.user + used.system) / 1000
}

type Json = Record<string, unknown>
const rows: string[][] = [['case', 'object KiB', 'parse ms', 'validate ms', 'mutate ms', 'validate UPDATE ms', 'mutate UPDATE ms']]
const WIDTHS = [52, 10, 8, 11, 9, 18, 16]
const print = (row: string[]): void => console.log(row.map((c, i) => (i === 0 ? c.padEnd(WIDTHS[i] ?? 0) : c.padStart(WIDTHS[i] ?? 0))).join('  '))
print(rows[0] as string[])
let worst = 0
for (const [name, make] of Object.entries(COST_CASES)) {
  const object = make()
  const text = JSON.stringify({ request: { object, oldObject: object } })
  const max = { parse: 0, v: 0, m: 0, vu: 0, mu: 0 }
  for (let round = 0; round < ROUNDS; round++) {
    let parsed: { request: { object: Json, oldObject: Json } } | undefined
    max.parse = Math.max(max.parse, cpuMs(() => { parsed = JSON.parse(text) }) / 2) // object and oldObject
    const { object: o, oldObject: old } = (parsed as { request: { object: Json, oldObject: Json } }).request
    max.v = Math.max(max.v, cpuMs(() => validateNIMService({ operation: 'CREATE', object: o })))
    max.m = Math.max(max.m, cpuMs(() => mutateNIMService({ operation: 'CREATE', object: o, namespace: 'nim' })))
    max.vu = Math.max(max.vu, cpuMs(() => validateNIMService({ operation: 'UPDATE', object: o, oldObject: old })))
    max.mu = Math.max(max.mu, cpuMs(() => mutateNIMService({ operation: 'UPDATE', object: o, oldObject: old, namespace: 'nim' })))
  }
  worst = Math.max(worst, max.v, max.m, max.vu, max.mu)
  rows.push([name, (text.length / 2 / 1024).toFixed(0), max.parse.toFixed(1), max.v.toFixed(1), max.m.toFixed(1), max.vu.toFixed(1), max.mu.toFixed(1)])
  print(rows[rows.length - 1] as string[])
}
console.log(`\nworst domain call: ${worst.toFixed(1)} ms CPU (${ROUNDS} rounds, node ${process.version})`)
