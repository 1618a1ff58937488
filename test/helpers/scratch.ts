// A temporary folder for one test file: made before its tests, removed after them.
import { after, before } from 'node:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Scratch {
  /** A path inside the folder (the folder itself without arguments). */
  path (...parts: string[]): string
  /** Writes a file (making its folders) and returns its path. */
  write (name: string, content: string | Buffer): string
}

export function scratchDir (prefix: string): Scratch {
  let dir: string | undefined
  before(() => { dir = mkdtempSync(join(tmpdir(), prefix)) })
  after(() => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }) })
  const path = (...parts: string[]): string => {
    if (dir === undefined) throw new Error('scratchDir: used outside a test')
    return join(dir, ...parts)
  }
  return {
    path,
    write (name, content) {
      const file = path(name)
      mkdirSync(join(file, '..'), { recursive: true })
      writeFileSync(file, content)
      return file
    }
  }
}
