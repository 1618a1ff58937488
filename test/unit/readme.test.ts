import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { RULES } from '../../src/nimservice/index.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

test('the README rule table lists every published code with its title', () => {
  for (const [code, info] of RULES) {
    assert.ok(readme.includes(`| \`${code}\` | ${info.kind === 'deny' ? 'denied' : 'warning'} | ${info.title} |`), `README lacks ${code}`)
  }
})

test('the README opens with the two commands that set everything up', () => {
  assert.match(readme, /npm start\s+#/)
  assert.match(readme, /npm test\s+#/)
})
