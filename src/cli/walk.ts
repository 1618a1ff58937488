// Which files the offline commands read: the paths given, folders walked recursively over .yaml, .yml
// and .json (sorted), minus --exclude globs. A folder that cannot be read is reported under its own
// path and the rest of the tree is still walked; a symbolic link to a folder outside the tree given is
// not followed (a repository must not make the gate read the runner's disk).
import { readdir as fsReaddir, realpath, stat } from 'node:fs/promises'
import { extname, join, relative, isAbsolute, resolve, sep } from 'node:path'

const EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

export interface Listed { file: string }
export interface Unlisted { file: string, message: string }

const IO_MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files'
}

export function ioMessage (err: unknown): string {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && IO_MESSAGES[code] !== undefined) return `cannot read: ${IO_MESSAGES[code]}`
  return `cannot read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`
}

/** A glob as a regular expression: `**` any path, `*` and `?` within one path segment, `[...]` a class. */
export function globRegExp (glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++
        if (glob[i + 1] === '/') {
          i++
          re += '(?:.*/)?'
        } else {
          re += '.*'
        }
      } else {
        re += '[^/]*'
      }
    } else if (c === '?') {
      re += '[^/]'
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 1)
      if (end === -1) {
        re += '\\['
      } else {
        const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\')
        re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`
        i = end
      }
    } else {
      re += c.replace(/[.+^${}()|\\]/g, '\\$&')
    }
  }
  return new RegExp(`^${re}$`)
}

/**
 * --exclude: a glob with a `/` matches the whole path as given (or as found in a folder walk, relative
 * or absolute) or any trailing part of it; one without a `/` matches any one segment's name
 * (`--exclude templates`, `--exclude '*.tpl.yaml'`), as .gitignore patterns do.
 */
export function excluder (globs: readonly string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false
  const matchers = globs.map((g) => {
    const trimmed = g.replace(/\/+$/, '').replace(/^\.\//, '')
    const re = globRegExp(trimmed)
    const bySegment = !trimmed.includes('/')
    return (path: string): boolean => {
      const segments = path.split(sep === '/' ? '/' : /[\\/]/).filter((s) => s !== '' && s !== '.')
      if (bySegment) return segments.some((s) => re.test(s))
      for (let i = 0; i < segments.length; i++) if (re.test(segments.slice(i).join('/'))) return true
      return false
    }
  })
  return (path) => matchers.some((m) => m(path))
}

/** The directory reader (a test stands in one that fails where root would read anyway). */
export type Readdir = (dir: string) => ReturnType<typeof listDir>
const listDir = (dir: string) => fsReaddir(dir, { withFileTypes: true })

const inside = (root: string, path: string): boolean => {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

async function walk (dir: string, root: string, seen: Set<string>, exclude: (p: string) => boolean, out: Array<Listed | Unlisted>, readdir: Readdir): Promise<void> {
  let entries
  try {
    const real = await realpath(dir)
    if (seen.has(real)) return
    seen.add(real)
    entries = await readdir(dir)
  } catch (err) {
    out.push({ file: dir, message: ioMessage(err) })
    return
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const entry of entries) {
    // Hidden entries (.git, .github) and node_modules are not manifests; name them explicitly to check them.
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue
    const path = join(dir, entry.name)
    if (exclude(path)) continue
    let isDir = entry.isDirectory()
    let isFile = entry.isFile()
    if (entry.isSymbolicLink()) {
      const target = await realpath(path).catch(() => undefined)
      const info = target === undefined ? undefined : await stat(target).catch(() => undefined)
      isDir = info?.isDirectory() === true && target !== undefined && inside(root, target)
      isFile = info?.isFile() === true
    }
    if (isDir) await walk(path, root, seen, exclude, out, readdir)
    else if (isFile && EXTENSIONS.has(extname(entry.name).toLowerCase())) out.push({ file: path })
  }
}

/**
 * The files named by `paths`, in order (a folder as its manifests), each at most once; what cannot be
 * listed becomes an Unlisted, and the rest is still listed. `-` (stdin) is passed through as a file.
 */
export async function listFiles (paths: readonly string[], excludeGlobs: readonly string[], notes: string[] = [], readdir: Readdir = listDir): Promise<Array<Listed | Unlisted>> {
  const exclude = excluder(excludeGlobs)
  const out: Array<Listed | Unlisted> = []
  const named = new Set<string>()
  const once = (item: Listed | Unlisted): void => {
    if ((item as Unlisted).message === undefined) {
      const key = item.file === '-' ? '-' : resolve(item.file)
      if (named.has(key)) {
        notes.push(`${item.file}: named more than once, read once`)
        return
      }
      named.add(key)
    }
    out.push(item)
  }
  for (const path of paths) {
    if (path === '-') {
      once({ file: path })
      continue
    }
    if (exclude(path)) continue
    let info
    try {
      info = await stat(path)
    } catch (err) {
      out.push({ file: path, message: ioMessage(err) })
      continue
    }
    if (!info.isDirectory()) {
      once({ file: path })
      continue
    }
    const found: Array<Listed | Unlisted> = []
    const root = await realpath(path).catch(() => path)
    await walk(path, root, new Set(), exclude, found, readdir)
    if (found.length === 0) out.push({ file: path, message: 'no .yaml, .yml or .json file in this folder' })
    for (const item of found) once(item)
  }
  return out
}

export const isUnlisted = (x: Listed | Unlisted): x is Unlisted => (x as Unlisted).message !== undefined
