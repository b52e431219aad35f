/** Shared test helpers: temp trees, deterministic data, and ipfs-unixfs-importer as the oracle. */
import { createCipheriv, createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import type { ExecutionContext } from 'ava'
import * as fc from 'fast-check'
import { importer } from 'ipfs-unixfs-importer'
import type { ImportCandidate, ImporterOptions } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { Profile } from '../../src/unixfs/profile.js'

export async function tempDir (): Promise<{ path: string, cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'cairn-unixfs-'))
  return { path, cleanup: async () => { await rm(path, { recursive: true, force: true }) } }
}

/** A tree description: a string or bytes is a file, an object a directory, `{ symlink }` a link. */
export type Tree = string | Uint8Array | { symlink: string } | { [name: string]: Tree }

/**
 * Random trees for property tests: files of up to 200 random bytes and
 * directories of up to 5 entries, named from a few awkward names (and
 * `names`) or short random strings that a file system accepts and `keep` keeps.
 */
export function treeArbitrary (names: string[] = [], keep: (name: string) => boolean = () => true): fc.Arbitrary<Tree> {
  const nameArb = fc.oneof(fc.constantFrom('a', 'b', 'é', '日', '.h', 'z z', ...names), fc.string({ minLength: 1, maxLength: 6 })
    .filter(s => !s.includes('/') && !s.includes('\0') && s !== '.' && s !== '..' && keep(s)))
  return fc.letrec<{ tree: Tree }>(tie => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true },
      fc.uint8Array({ maxLength: 200 }),
      fc.dictionary(nameArb, tie('tree'), { maxKeys: 5 }) as fc.Arbitrary<Tree>)
  })).tree
}

export async function writeTree (path: string, tree: Tree): Promise<void> {
  if (typeof tree === 'string' || tree instanceof Uint8Array) {
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, tree)
  } else if ('symlink' in tree && typeof tree.symlink === 'string') {
    await symlink(tree.symlink, path)
  } else {
    await mkdir(path, { recursive: true })
    for (const [name, sub] of Object.entries(tree as Record<string, Tree>)) await writeTree(join(path, name), sub)
  }
}

/** Deterministic bytes as kubo's and js-ipfs-unixfs's IPIP-499 tests make them (ChaCha20 keystream). */
export function deterministicBytes (size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('chacha20', key, Buffer.alloc(16))
  const parts: Buffer[] = []
  const step = 16 * 1024 * 1024
  for (let done = 0; done < size; done += step) parts.push(cipher.update(Buffer.alloc(Math.min(step, size - done))))
  return Buffer.concat(parts)
}

export function deterministicNames (count: number, nameLength: number, lastNameLength: number, seed: string): string[] {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz01234567890-_'
  const stream = deterministicBytes(1_048_576, seed)
  const names: string[] = []
  let offset = 0
  for (let i = 0; i < count; i++) {
    const len = i === count - 1 ? lastNameLength : nameLength
    let name = ''
    for (let j = 0; j < len; j++) name += alphabet[stream[offset + j] % alphabet.length]
    names.push(name)
    offset += len
  }
  return names
}

function * candidates (abs: string, rel: string, hidden: boolean): Generator<ImportCandidate> {
  const stats = lstatSync(abs)
  if (stats.isSymbolicLink()) {
    yield { path: rel, link: readlinkSync(abs) } as unknown as ImportCandidate
    return
  }
  if (stats.isFile()) {
    yield { path: rel, content: readFileSync(abs) }
    return
  }
  const names = readdirSync(abs).filter(n => hidden || !n.startsWith('.')).sort()
  // an empty directory is a candidate of its own; others appear through their contents
  if (names.length === 0) yield { path: rel }
  for (const name of names) yield * candidates(join(abs, name), `${rel}/${name}`, hidden)
}

export interface OracleOptions { profile?: Profile, chunkSize?: number, maxLinks?: number, wrap?: boolean, hidden?: boolean }

/** The root CID ipfs-unixfs-importer 17 gives for the same paths and options. */
export async function oracleRoot (paths: string[], options: OracleOptions = {}): Promise<string> {
  const opts: ImporterOptions = { profile: options.profile ?? 'unixfs-v1-2025' }
  if (options.chunkSize !== undefined) opts.chunker = fixedSize({ chunkSize: options.chunkSize })
  if (options.maxLinks !== undefined) opts.layout = balanced({ maxChildrenPerNode: options.maxLinks })
  const wrap = paths.length > 1 || options.wrap === true
  opts.wrapWithDirectory = wrap
  const source: ImportCandidate[] = []
  for (const p of paths) source.push(...candidates(p, basename(p), options.hidden === true))
  const blockstore = { put: async (cid: unknown) => cid }
  let last: { cid: { toString: () => string } } | undefined
  for await (const entry of importer(source, blockstore as never, opts)) last = entry
  if (last === undefined) throw new Error('oracle imported nothing')
  return last.cid.toString()
}

export async function collect (source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of source) parts.push(chunk)
  return Buffer.concat(parts)
}

/**
 * Compares two trees: same names, types, file bytes and link targets.
 * With `skipHidden`, names starting with '.' in `a` (which `add` leaves out by default) are not expected in `b`.
 */
export async function sameTree (t: ExecutionContext, a: string, b: string, options: { skipHidden?: boolean } = {}): Promise<void> {
  const sa = await lstat(a)
  const sb = await lstat(b)
  if (sa.isSymbolicLink()) {
    t.true(sb.isSymbolicLink(), b)
    t.is(await readlink(b), await readlink(a))
  } else if (sa.isFile()) {
    t.true(sb.isFile(), b)
    t.true((await readFile(a)).equals(await readFile(b)), b)
  } else {
    t.true(sb.isDirectory(), b)
    const na = (await readdir(a)).filter(n => options.skipHidden !== true || !n.startsWith('.')).sort()
    t.deepEqual((await readdir(b)).sort(), na, b)
    for (const n of na) await sameTree(t, join(a, n), join(b, n), options)
  }
}
