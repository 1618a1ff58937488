// Where the package's own files live, whether running from src/ (tsx) or dist/src/ (built).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('nim-admission: cannot find the package root (package.json)')
    dir = parent
  }
  return dir
}

export const PACKAGE_ROOT = findRoot()
export const SCHEMA_DIR = join(PACKAGE_ROOT, 'schemas')
