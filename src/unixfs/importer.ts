/**
 * The two-pass streaming importer: files and directories → a UnixFS DAG
 * (IPIP-499 profiles) → its CARv1 in depth-first, first-seen order.
 *
 * Pass 1 (`planImport`) reads every file once, chunks and hashes it and builds
 * every node above the leaves, keeping only metadata: CIDs, sizes and the
 * bytes of the (small) internal nodes. Pass 2 (`carStream`) writes the CAR,
 * re-reading file data for the leaves and checking each leaf against the CID
 * pass 1 gave it. Neither pass holds a whole file, CAR or piece in memory.
 * `planShape` lays the same DAG out without reading any file, for the
 * one-pass import (one-pass.ts) that `add` and `pack` use where they can.
 *
 * ipfs-unixfs-importer is the reference (its root CIDs must match), but it
 * writes blocks in bottom-up order into a blockstore; a piece must start with
 * its root, so the DAG is built here first and streamed afterwards.
 *
 * Choices where implementations differ:
 * - Symbolic links are stored as UnixFS symlink nodes (type Symlink, data =
 *   the target), never followed, as kubo `ipfs add -r` does and as
 *   ipfs-unixfs-importer 17 builds them for `{ path, link }` candidates.
 *   (ipfs-car 3 skips symlinks inside directories.) A symlink given as an
 *   argument is stored as a symlink too.
 * - One path: its own node (a file, a directory with its contents, or a
 *   symlink); `wrap` puts it in a directory under its base name.
 *   Several paths: one directory holding each under its base name (kubo
 *   `ipfs add -r -w a b`; ipfs-car's `pack a b` for siblings).
 * - Hidden names (starting with `.`) inside directories are skipped unless
 *   `hidden`; paths given explicitly are always included.
 * - No mtime or mode is recorded (neither profile records them).
 *
 * With `encryption` (docs/encryption.md), each file is stored as an age file:
 * its header is the file's first leaf, then the payload (nonce and sealed
 * chunks) in leaves of the chunk size, so a new recipient set changes the
 * first leaf and the nodes above it and never a payload leaf. Directories name
 * their entries by ordinal and keep the names, and symbolic links, in an
 * encrypted manifest. Pass 1 draws each file's key and nonce; pass 2 re-seals
 * the leaves it re-reads with them (ContentEncryption says how).
 */
import { createHash } from 'node:crypto'
import { lstat, open, readdir, readlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import type { Stats } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { CairnError, fromSystemError } from '../errors.js'
import { SHA2_256 } from '../codecs.js'
import { Batcher, cidKey, encodeFramePrefix, encodeHeader, frameLength } from '../car/index.js'
import { bitfield, buildHamt, HAMT_HASH_CODE, slotLabel } from './hamt.js'
import type { HamtNode } from './hamt.js'
import { resolveProfile } from './profile.js'
import { buffers } from '../fs/pool.js'
import { readFully } from '../fs/read.js'
import type { Profile, ProfileParams } from './profile.js'

export type { Profile } from './profile.js'

export interface ImportOptions {
  profile?: Profile
  chunkSize?: number
  maxLinks?: number
  wrap?: boolean
  hidden?: boolean
  /** encrypt every file and name (src/crypto/encrypt.ts makes one) */
  encryption?: ContentEncryption
  /** progress of pass 1: called with the number of file bytes just read */
  onBytes?: (n: number) => void
}

export interface CarStreamOptions {
  /** progress of pass 2: called with the number of CAR bytes just produced */
  onBytes?: (n: number) => void
}

/**
 * How an import is encrypted: the importer lays the DAG out, the
 * implementation (src/crypto/encrypt.ts) supplies the bytes.
 */
export interface ContentEncryption {
  /** a fresh encryption (its own key and nonce) of one file of `size` plaintext bytes */
  file: (size: number) => Promise<FileEncryption>
  /** the entry under which an encrypted directory keeps its names */
  readonly manifestName: string
  /** the entry name of the `index`-th stored entry */
  ordinalName: (index: number) => string
  /** the plaintext of a directory's manifest: `entries[i]` is stored as ordinalName(i) */
  manifest: (entries: string[], symlinks: Array<{ name: string, target: Uint8Array }>) => Uint8Array
}

export interface FileEncryption {
  /** the header: the file's first leaf */
  readonly header: Uint8Array
  /** bytes of the payload (the leaves after the header), known from the plaintext's size */
  readonly payloadSize: number
  /**
   * pass 1: a writer taking the plaintext in order (`update` resolves once
   * its buffer may be reused); `sink` gets the payload bytes in order, as
   * views to copy before it returns, until `final` resolves
   */
  seal: (sink: (bytes: Uint8Array) => void) => { update: (plaintext: Uint8Array) => Promise<void>, final: () => Promise<void>, abort: () => void }
  /**
   * pass 2: payload bytes [offset, offset + length) into `into`, reading
   * plaintext through `read`; ERR_FILE_CHANGED unless they are the bytes
   * pass 1 made (checked by the cipher's own tags, so they are not hashed again)
   */
  range: (offset: number, length: number, into: Uint8Array, read: (buffer: Uint8Array, length: number, position: number) => Promise<number>) => Promise<void>
  /** the one pass (src/unixfs/one-pass.ts): as `range`, sealing the plaintext as it is read, with nothing to check it against */
  sealRange: FileEncryption['range']
}

/**
 * A file as pass 1 saw it; pass 2 refuses to read it if it changed.
 * @internal exported for DAG rewrites (src/crypto/share.ts)
 */
export interface FileRef {
  path: string
  size: number
  mtimeMs: number
  ino: number
  /** leaves are payload ranges of this encryption of the file */
  cipher?: FileEncryption
  /** the file holds whole blocks (a CAR): a leaf is read as the block itself */
  blocks?: boolean
}

/**
 * A link in the DAG: either a block pass 1 kept, or a leaf to re-read from a file.
 * @internal
 */
export interface Child {
  cid: CID
  leaf?: { file: FileRef, offset: number, length: number }
}

/** @internal */
export interface StoredNode {
  bytes: Uint8Array
  children: Child[]
}

/** What a parent needs of a built entry. */
interface Built {
  cid: CID
  /** Tsize: the bytes of the whole sub-DAG */
  size: number
  /** file content bytes (files only) */
  fileSize: number
  /**
   * Whether the entry counts toward its directory's shard estimate.
   * ipfs-unixfs-importer estimates a directory while it is being filled, when
   * its non-empty sub-directories have no CID yet and so add nothing; only
   * files, symlinks and empty directories count. Mirrored for parity.
   */
  counted: boolean
  child: Child
}

export interface ImportPlan {
  readonly root: CID
  readonly profile: Readonly<ProfileParams>
  /** bytes of file content (each file counted once per path) */
  readonly bytes: number
  readonly files: number
  readonly directories: number
  /** distinct blocks in the DAG */
  readonly blocks: number
  /** exact size of the CAR `carStream` will produce */
  readonly carSize: number
  /** @internal the DAG, for carStream */
  readonly dag: { readonly nodes: ReadonlyMap<string, StoredNode>, readonly root: Child }
}

/** Bytes read ahead by each pass: large reads, few syscalls, and the disk works while the CPU hashes. */
const READ_SPAN = 4 * 1024 * 1024

/**
 * The blocks of a DAG being planned: each counted once toward the CAR's
 * size, nodes kept for pass 2.
 * @internal exported for DAG rewrites (src/crypto/share.ts)
 */
export class PlannedBlocks {
  readonly nodes = new Map<string, StoredNode>()
  readonly seen = new Set<string>()
  carSize = 0

  /** Records a block the DAG holds; `node` is kept for pass 2 unless it is a leaf re-read from disk. */
  add (cid: CID, length: number, node?: StoredNode): void {
    const key = cidKey(cid)
    if (this.seen.has(key)) {
      // the same bytes met first as a leaf to re-read: keep them anyway, pass 2 may meet this copy first
      if (node !== undefined && !this.nodes.has(key)) this.nodes.set(key, node)
      return
    }
    this.seen.add(key)
    this.carSize += frameLength(cid, length)
    if (node !== undefined) this.nodes.set(key, node)
  }
}

class Context extends PlannedBlocks {
  bytes = 0
  files = 0
  directories = 0
  /** pass 1 reads a span of whole chunks into one buffer while the other is hashed */
  readonly span: number
  #spans: [Buffer, Buffer] | undefined
  /**
   * Lay the DAG out from file sizes alone (`planShape`): no file is read, each
   * leaf gets a placeholder CID of its real length.
   */
  shape = false
  /** placeholder leaves made so far, each numbered so that none equals another */
  placeholders = 0
  constructor (readonly params: ProfileParams, readonly hidden: boolean, readonly onBytes?: (n: number) => void, readonly encryption?: ContentEncryption) {
    super()
    this.span = params.chunkSize * Math.max(1, Math.floor(READ_SPAN / params.chunkSize))
  }

  /** the two read buffers of pass 1, allocated when a file is first read */
  get spans (): [Buffer, Buffer] {
    this.#spans ??= [Buffer.allocUnsafe(this.span), Buffer.allocUnsafe(this.span)]
    return this.#spans
  }

  /** A dag-pb node in this profile's CID version. */
  pbNode (node: dagPb.PBNode, children: Child[]): { cid: CID, bytes: Uint8Array } {
    const bytes = dagPb.encode(dagPb.prepare(node))
    const cid = cidOf(this.params.cidVersion, dagPb.code, bytes)
    this.add(cid, bytes.byteLength, { bytes, children })
    return { cid, bytes }
  }
}

/** @internal the CID of a block this importer makes: sha2-256, in the given version and codec */
export function cidOf (version: 0 | 1, code: number, bytes: Uint8Array): CID {
  return cidFromDigest(version, code, Digest.create(SHA2_256, createHash('sha256').update(bytes).digest()))
}

function cidFromDigest (version: 0 | 1, code: number, digest: Digest.Digest<typeof SHA2_256, number>): CID {
  return version === 0 ? CID.createV0(digest) : CID.createV1(code, digest)
}

/** @internal A leaf block from a chunk of file data, per profile: the raw bytes, or a dag-pb UnixFS file node. */
export function leafBlock (params: ProfileParams, data: Uint8Array): { code: number, version: 0 | 1, bytes: Uint8Array } {
  if (params.rawLeaves) return { code: raw.code, version: 1, bytes: data }
  const unixfs = new UnixFS({ type: 'file', data })
  return { code: dagPb.code, version: params.cidVersion, bytes: dagPb.encode({ Data: unixfs.marshal(), Links: [] }) }
}

/**
 * Plans an import: walks `paths`, computes every CID and the CAR's size.
 * Reads each file once; keeps no file data.
 */
export async function planImport (paths: string[], options: ImportOptions = {}): Promise<ImportPlan> {
  return await plan(paths, options, false)
}

/**
 * @internal The layout of an import from the sizes of its files alone: no file
 * is read. Every leaf of file data is a placeholder, its CID unique and of the
 * real one's length, so every node above it has the size it will have, and
 * the CAR's size and every block's place in it are those of the real import
 * — unless some blocks of the real data turn out to be the same, which the
 * CAR holds once (src/unixfs/one-pass.ts sees to it). An empty file's leaf,
 * an encrypted file's header and an encrypted directory's manifest are real
 * (they need no reading).
 */
export async function planShape (paths: string[], options: Omit<ImportOptions, 'onBytes'> = {}): Promise<ImportPlan> {
  return await plan(paths, options, true)
}

async function plan (paths: string[], options: ImportOptions, shape: boolean): Promise<ImportPlan> {
  const params = resolveProfile(options)
  if (!Array.isArray(paths) || paths.length === 0) {
    throw new CairnError('ERR_INVALID_ARGUMENT', 'nothing to import: expected at least one path')
  }
  const ctx = new Context(params, options.hidden === true, options.onBytes, options.encryption)
  ctx.shape = shape
  let root: Built
  if (paths.length === 1 && options.wrap !== true) {
    const stats = await lstatOf(paths[0])
    if (ctx.encryption !== undefined && stats.isSymbolicLink()) {
      throw new CairnError('ERR_INVALID_ARGUMENT', `${paths[0]} is a symbolic link: encrypted, its target is kept in its directory's names, so it needs one (use --wrap)`)
    }
    root = await buildPath(ctx, paths[0], stats)
  } else {
    const inputs: Array<{ name: string, path: string }> = []
    const names = new Set<string>()
    for (const path of paths) {
      const name = basename(resolve(path))
      if (name === '') throw new CairnError('ERR_INVALID_ARGUMENT', `cannot wrap ${path}: it has no name`)
      if (names.has(name)) throw new CairnError('ERR_INVALID_ARGUMENT', `two inputs share the name ${JSON.stringify(name)}; a directory cannot hold both`)
      names.add(name)
      inputs.push({ name, path })
    }
    if (ctx.encryption !== undefined) {
      root = await buildEncryptedDirectory(ctx, ctx.encryption, inputs.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    } else {
      const entries: Array<{ name: string, built: Built }> = []
      for (const { name, path } of inputs) entries.push({ name, built: await buildPath(ctx, path) })
      root = buildDirectory(ctx, entries)
    }
  }
  const header = encodeHeader([root.cid])
  return {
    root: root.cid,
    profile: params,
    bytes: ctx.bytes,
    files: ctx.files,
    directories: ctx.directories,
    blocks: ctx.seen.size,
    carSize: header.byteLength + ctx.carSize,
    dag: { nodes: ctx.nodes, root: root.child }
  }
}

async function lstatOf (path: string): Promise<Stats> {
  try {
    return await lstat(path)
  } catch (err) {
    throw fromSystemError(err, path)
  }
}

async function buildPath (ctx: Context, path: string, known?: Stats): Promise<Built> {
  const stats = known ?? await lstatOf(path)
  if (stats.isFile()) return ctx.shape ? await buildFileShape(ctx, path, stats) : await buildFile(ctx, path)
  if (stats.isDirectory()) return await buildTree(ctx, path)
  if (stats.isSymbolicLink()) return await buildSymlink(ctx, path)
  throw new CairnError('ERR_UNSUPPORTED_FILE_TYPE', `${path} is a ${kindOf(stats)}; only files, directories and symbolic links can be imported`)
}

function kindOf (stats: Stats): string {
  if (stats.isFIFO()) return 'named pipe (FIFO)'
  if (stats.isSocket()) return 'socket'
  if (stats.isBlockDevice()) return 'block device'
  if (stats.isCharacterDevice()) return 'character device'
  return 'special file'
}

async function buildTree (ctx: Context, path: string): Promise<Built> {
  let names: string[]
  try {
    names = await readdir(path)
  } catch (err) {
    throw fromSystemError(err, path)
  }
  names.sort()
  const shown = names.filter(name => ctx.hidden || !name.startsWith('.'))
  if (ctx.encryption !== undefined) return await buildEncryptedDirectory(ctx, ctx.encryption, shown.map(name => ({ name, path: join(path, name) })))
  const entries: Array<{ name: string, built: Built }> = []
  for (const name of shown) entries.push({ name, built: await buildPath(ctx, join(path, name)) })
  return buildDirectory(ctx, entries)
}

/**
 * An encrypted directory: its entries under ordinal names, and its manifest,
 * an encrypted file of the real names and the symbolic links (whose targets
 * a UnixFS symlink node would show).
 */
async function buildEncryptedDirectory (ctx: Context, encryption: ContentEncryption, inputs: Array<{ name: string, path: string }>): Promise<Built> {
  const entries: Array<{ name: string, built: Built }> = []
  const names: string[] = []
  const symlinks: Array<{ name: string, target: Uint8Array }> = []
  for (const { name, path } of inputs) {
    const stats = await lstatOf(path)
    if (stats.isSymbolicLink()) {
      symlinks.push({ name, target: await readlinkOf(path) })
      continue
    }
    entries.push({ name: encryption.ordinalName(names.length), built: await buildPath(ctx, path, stats) })
    names.push(name)
  }
  entries.push({ name: encryption.manifestName, built: await buildBytes(ctx, encryption, encryption.manifest(names, symlinks)) })
  return buildDirectory(ctx, entries)
}

async function readlinkOf (path: string): Promise<Buffer> {
  try {
    return await readlink(path, { encoding: 'buffer' })
  } catch (err) {
    throw fromSystemError(err, path)
  }
}

async function buildSymlink (ctx: Context, path: string): Promise<Built> {
  const target = await readlinkOf(path)
  const unixfs = new UnixFS({ type: 'symlink', data: new Uint8Array(target) })
  const { cid, bytes } = ctx.pbNode({ Data: unixfs.marshal(), Links: [] }, [])
  return { cid, size: bytes.byteLength, fileSize: 0, counted: true, child: { cid } }
}

// ---------------------------------------------------------------------------
// Files: fixed-size chunks, balanced layout (ipfs-unixfs-importer `balanced`):
// leaves are grouped maxLinks at a time into parents, level by level, until
// one node is left; a file of one chunk is that chunk's leaf itself.

interface Item {
  cid: CID
  size: number
  fileSize: number
  child: Child
}

function fileNode (ctx: Context, items: Item[]): Item {
  const unixfs = new UnixFS({ type: 'file' })
  let size = 0
  let fileSize = 0
  for (const item of items) {
    unixfs.addBlockSize(BigInt(item.fileSize))
    size += item.size
    fileSize += item.fileSize
  }
  const links = items.map(item => ({ Name: '', Tsize: item.size, Hash: item.cid }))
  const { cid, bytes } = ctx.pbNode({ Data: unixfs.marshal(), Links: links }, items.map(i => i.child))
  return { cid, size: size + bytes.byteLength, fileSize, child: { cid } }
}

/** Leaves of one file, in order, grouped into the balanced layout as they come. */
class FileLayout {
  private readonly parents: Item[] = []
  private batch: Item[] = []
  private first: Item | undefined
  leaves = 0

  constructor (private readonly ctx: Context) {}

  push (item: Item): void {
    if (++this.leaves === 1) this.first = item
    this.batch.push(item)
    if (this.batch.length === this.ctx.params.maxLinks) {
      this.parents.push(fileNode(this.ctx, this.batch))
      this.batch = []
    }
  }

  /** The file's top node; a file of one leaf is that leaf itself. */
  finish (): Item {
    if (this.leaves === 1 && this.first !== undefined) return this.first
    if (this.batch.length > 0) this.parents.push(fileNode(this.ctx, this.batch))
    let level = this.parents
    while (level.length > 1) {
      const next: Item[] = []
      for (let i = 0; i < level.length; i += this.ctx.params.maxLinks) next.push(fileNode(this.ctx, level.slice(i, i + this.ctx.params.maxLinks)))
      level = next
    }
    return level[0]
  }
}

/** A leaf of file data: kept in memory for pass 2 (`data` must not be reused), or re-read through `leaf`. */
function leafItem (ctx: Context, data: Uint8Array, leaf?: Child['leaf']): Item {
  const block = leafBlock(ctx.params, data)
  const cid = cidOf(block.version, block.code, block.bytes)
  ctx.add(cid, block.bytes.byteLength, leaf === undefined ? { bytes: block.bytes, children: [] } : undefined)
  return { cid, size: block.bytes.byteLength, fileSize: data.byteLength, child: leaf === undefined ? { cid } : { cid, leaf } }
}

/** Cuts bytes arriving in parts of any size into leaves of `size` bytes (the last may be short). */
class Cutter {
  private readonly buffer: Buffer
  private used = 0
  /** whether any leaf was cut: an empty input is still one (empty) leaf */
  private cut = false

  constructor (size: number, private readonly onLeaf: (data: Uint8Array) => void) {
    this.buffer = Buffer.allocUnsafe(size)
  }

  push (parts: Uint8Array[]): void {
    for (let part of parts) {
      while (part.byteLength > 0) {
        const n = Math.min(this.buffer.byteLength - this.used, part.byteLength)
        this.buffer.set(part.subarray(0, n), this.used)
        this.used += n
        part = part.subarray(n)
        if (this.used === this.buffer.byteLength) this.emit()
      }
    }
  }

  finish (): void {
    if (this.used > 0 || !this.cut) this.emit()
  }

  private emit (): void {
    this.onLeaf(this.buffer.subarray(0, this.used))
    this.used = 0
    this.cut = true
  }
}

async function buildFile (ctx: Context, path: string): Promise<Built> {
  const { params } = ctx
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw fromSystemError(err, path)
  }
  let sealer: ReturnType<FileEncryption['seal']> | undefined
  try {
    const before = await handle.stat()
    const cipher = await ctx.encryption?.file(before.size)
    const file: FileRef = { path, size: before.size, mtimeMs: before.mtimeMs, ino: before.ino, cipher }
    const layout = new FileLayout(ctx)
    let offset = 0
    // encrypted: the header is the first leaf, then the payload is cut into leaves as it is sealed
    let payload: Cutter | undefined
    if (cipher !== undefined) {
      layout.push(leafItem(ctx, cipher.header))
      let at = 0
      const cutter = new Cutter(params.chunkSize, data => {
        layout.push(leafItem(ctx, data, { file, offset: at, length: data.byteLength }))
        at += data.byteLength
      })
      payload = cutter
      sealer = cipher.seal(bytes => cutter.push([bytes]))
    }
    // Spans of whole chunks, double-buffered: the next span is read while this one is hashed.
    // Only a short read ends the file, as with one read per chunk.
    const read = (which: number, position: number): Promise<number> => {
      const pending = readFully(handle, ctx.spans[which], ctx.span, position)
      pending.catch(() => {})
      return pending
    }
    let which = 0
    let pending = read(which, 0)
    for (;;) {
      let got: number
      try {
        got = await pending
      } catch (err) {
        throw fromSystemError(err, path)
      }
      const span = ctx.spans[which]
      const more = got === ctx.span
      if (more) {
        which ^= 1
        pending = read(which, offset + got)
      }
      if (sealer !== undefined) {
        await sealer.update(span.subarray(0, got))
        offset += got
        ctx.onBytes?.(got)
      } else {
        // an empty file is one empty chunk, as the importer's fixed-size chunker yields
        for (let at = 0; at < got || (got === 0 && layout.leaves === 0); at += params.chunkSize) {
          const n = Math.min(params.chunkSize, got - at)
          layout.push(leafItem(ctx, span.subarray(at, at + n), { file, offset, length: n }))
          offset += n
          ctx.onBytes?.(n)
        }
      }
      if (!more) break
    }
    if (sealer !== undefined && payload !== undefined) {
      await sealer.final()
      payload.finish()
    }
    const after = await handle.stat()
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || offset !== before.size) {
      throw new CairnError('ERR_FILE_CHANGED', `${path} changed while it was being read (${before.size} bytes before, ${offset} read, ${after.size} after)`)
    }
    ctx.files++
    ctx.bytes += offset
    const top = layout.finish()
    return { cid: top.cid, size: top.size, fileSize: top.fileSize, counted: true, child: top.child }
  } finally {
    // a failed file gives back what its sealer holds (after `final` this does nothing)
    sealer?.abort()
    await handle.close()
  }
}

/**
 * A file's layout from its size alone (`planShape`): each leaf a unique
 * placeholder of its real length. Encrypted, the header is the first leaf as
 * it is (drawn now, as pass 1 draws it) and the placeholders cut the payload,
 * whose leaves the one pass seals as it reads them (`sealRange`).
 */
async function buildFileShape (ctx: Context, path: string, stats: Stats): Promise<Built> {
  const { chunkSize } = ctx.params
  const encrypted = await ctx.encryption?.file(stats.size)
  const cipher = encrypted === undefined ? undefined : { ...encrypted, range: encrypted.sealRange }
  const file: FileRef = { path, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, cipher }
  const layout = new FileLayout(ctx)
  const size = cipher === undefined ? stats.size : cipher.payloadSize
  if (cipher !== undefined) layout.push(leafItem(ctx, cipher.header))
  // an empty file is one empty chunk, as the importer's fixed-size chunker yields; its leaf is known without reading
  if (size === 0) layout.push(leafItem(ctx, new Uint8Array(0)))
  const lengths = new Map<number, number>()
  const { version, code } = leafBlock(ctx.params, new Uint8Array(0))
  for (let offset = 0; offset < size; offset += chunkSize) {
    const n = Math.min(chunkSize, size - offset)
    let length = lengths.get(n)
    if (length === undefined) lengths.set(n, length = leafBlock(ctx.params, new Uint8Array(n)).bytes.byteLength)
    const placeholder = new Uint8Array(32)
    new DataView(placeholder.buffer).setFloat64(0, ctx.placeholders++)
    const cid = cidFromDigest(version, code, Digest.create(SHA2_256, placeholder))
    ctx.add(cid, length)
    layout.push({ cid, size: length, fileSize: n, child: { cid, leaf: { file, offset, length: n } } })
  }
  ctx.files++
  ctx.bytes += stats.size
  const top = layout.finish()
  return { cid: top.cid, size: top.size, fileSize: top.fileSize, counted: true, child: top.child }
}

/** An encrypted file made from bytes in memory (a directory's manifest): every leaf is kept for pass 2. */
async function buildBytes (ctx: Context, encryption: ContentEncryption, plaintext: Uint8Array): Promise<Built> {
  const cipher = await encryption.file(plaintext.byteLength)
  const layout = new FileLayout(ctx)
  layout.push(leafItem(ctx, cipher.header))
  const payload = new Cutter(ctx.params.chunkSize, data => layout.push(leafItem(ctx, Uint8Array.from(data))))
  const sealer = cipher.seal(bytes => payload.push([bytes]))
  await sealer.update(plaintext)
  await sealer.final()
  payload.finish()
  const top = layout.finish()
  return { cid: top.cid, size: top.size, fileSize: top.fileSize, counted: true, child: top.child }
}

// ---------------------------------------------------------------------------
// Directories: a flat dag-pb directory, or a HAMT past the profile's threshold.

const encoder = new TextEncoder()

/** Bytes a protobuf varint takes. */
function varintSize (n: number): number {
  let size = 1
  while (n >= 128) { n = Math.floor(n / 128); size++ }
  return size
}

/** Exact bytes one PBLink adds to a dag-pb node (the dag-pb encoding of Hash, Name, Tsize). */
function linkBytes (nameLength: number, cidLength: number, tsize: number): number {
  const inner = 1 + varintSize(cidLength) + cidLength + 1 + varintSize(nameLength) + nameLength + 1 + varintSize(tsize)
  return 1 + varintSize(inner) + inner
}

/** The profile's estimate of a flat directory's size, compared with the shard threshold. */
function estimate (params: ProfileParams, entries: Array<{ name: string, built: Built }>): number {
  // the Data field of an empty UnixFS directory: 0x0a 0x02 0x08 0x01
  let total = params.shardSplitStrategy === 'block-bytes' ? 4 : 0
  for (const { name, built } of entries) {
    if (!built.counted) continue
    const nameLength = encoder.encode(name).byteLength
    const cidLength = built.cid.bytes.byteLength
    total += params.shardSplitStrategy === 'block-bytes' ? linkBytes(nameLength, cidLength, built.size) : nameLength + cidLength
  }
  return total
}

function buildDirectory (ctx: Context, entries: Array<{ name: string, built: Built }>): Built {
  ctx.directories++
  const counted = entries.length === 0
  if (estimate(ctx.params, entries) > ctx.params.shardThreshold) {
    const shard = buildShard(ctx, buildHamt(entries.map(e => ({ name: e.name, value: e.built })), ctx.params.fanoutBits))
    return { ...shard, counted }
  }
  const unixfs = new UnixFS({ type: 'directory' })
  const links = entries.map(({ name, built }) => ({ Name: name, Tsize: built.size, Hash: built.cid }))
  const sorted = [...entries].sort((a, b) => Buffer.compare(encoder.encode(a.name), encoder.encode(b.name)))
  const { cid, bytes } = ctx.pbNode({ Data: unixfs.marshal(), Links: links }, sorted.map(e => e.built.child))
  const size = bytes.byteLength + entries.reduce((sum, e) => sum + e.built.size, 0)
  return { cid, size, fileSize: 0, counted, child: { cid } }
}

function buildShard (ctx: Context, node: HamtNode<Built>): Omit<Built, 'counted'> {
  const links: dagPb.PBLink[] = []
  const children: Child[] = []
  let size = 0
  for (const { index, slot } of node.slots) {
    if ('shard' in slot) {
      const sub = buildShard(ctx, slot.shard)
      links.push({ Name: slotLabel(index), Tsize: sub.size, Hash: sub.cid })
      children.push(sub.child)
      size += sub.size
    } else {
      const built = slot.entry.value
      links.push({ Name: slotLabel(index) + slot.entry.name, Tsize: built.size, Hash: built.cid })
      children.push(built.child)
      size += built.size
    }
  }
  const unixfs = new UnixFS({
    type: 'hamt-sharded-directory',
    data: bitfield(node.slots.map(s => s.index)),
    fanout: BigInt(1 << ctx.params.fanoutBits),
    hashType: HAMT_HASH_CODE
  })
  const { cid, bytes } = ctx.pbNode({ Data: unixfs.marshal(), Links: links }, children)
  return { cid, size: size + bytes.byteLength, fileSize: 0, child: { cid } }
}

// ---------------------------------------------------------------------------
// Pass 2: the CAR.

/**
 * Reads leaf data back, one open file at a time, refusing files that changed since pass 1.
 * @internal
 */
export class LeafReader {
  private file: FileRef | undefined
  private handle: FileHandle | undefined

  /** The file being read; a read of another file must wait until this one's reads are done. */
  get current (): FileRef | undefined { return this.file }

  async open (file: FileRef): Promise<void> {
    if (this.file === file) return
    await this.close()
    try {
      this.handle = await open(file.path, 'r')
    } catch (err) {
      const coded = fromSystemError(err, file.path)
      if (coded.code === 'ERR_PATH_NOT_FOUND') throw new CairnError('ERR_FILE_CHANGED', `${file.path} was removed after it was read`, { cause: err })
      throw coded
    }
    this.file = file
    const stats = await this.handle.stat()
    if (stats.size !== file.size || stats.mtimeMs !== file.mtimeMs || stats.ino !== file.ino) {
      throw new CairnError('ERR_FILE_CHANGED', `${file.path} changed after it was read (size ${file.size} → ${stats.size} bytes)`)
    }
  }

  /** The leaf's bytes at `head` in a fresh buffer of `head + length` bytes (the frame prefix goes in front, without a copy). */
  async read (leaf: NonNullable<Child['leaf']>, head: number): Promise<Buffer> {
    if (this.file !== leaf.file) throw new Error('internal: leaf read from a file that is not open')
    const buffer = buffers.alloc(head + leaf.length)
    const handle = this.handle as FileHandle
    if (leaf.file.cipher !== undefined) {
      // an encrypted leaf: its payload range, re-sealed from the plaintext with pass 1's key and nonce
      await leaf.file.cipher.range(leaf.offset, leaf.length, buffer.subarray(head), async (into, length, position) => await readFully(handle, into, length, position))
      return buffer
    }
    const n = await readFully(handle, buffer.subarray(head), leaf.length, leaf.offset)
    if (n !== leaf.length) {
      throw new CairnError('ERR_FILE_CHANGED', `${leaf.file.path} is shorter than when it was read`)
    }
    return buffer
  }

  /** Refuses the open file if its size or modification time changed since it was opened (it was read meanwhile). */
  async unchanged (): Promise<void> {
    const file = this.file
    if (file === undefined || this.handle === undefined) return
    const stats = await this.handle.stat()
    if (stats.size !== file.size || stats.mtimeMs !== file.mtimeMs) {
      throw new CairnError('ERR_FILE_CHANGED', `${file.path} changed while it was being read (${file.size} bytes before, ${stats.size} after)`)
    }
  }

  async close (): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    this.file = undefined
    await handle?.close()
  }
}

/** @internal The blocks of the DAG in depth-first pre-order, first seen: a kept node, or a leaf to read back. */
export function * dfsOrder (plan: ImportPlan): Generator<{ child: Child, node?: StoredNode }> {
  const { nodes, root } = plan.dag
  const seen = new Set<string>()
  const stack: Child[] = [root]
  while (stack.length > 0) {
    const child = stack.pop() as Child
    const key = cidKey(child.cid)
    if (seen.has(key)) continue
    seen.add(key)
    if (child.leaf !== undefined) {
      yield { child }
      continue
    }
    const node = nodes.get(key)
    if (node === undefined) throw new Error(`internal: no node kept for ${child.cid.toString()}`)
    yield { child, node }
    for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i])
  }
}

function changed (leaf: NonNullable<Child['leaf']>): CairnError {
  return new CairnError('ERR_FILE_CHANGED', `${leaf.file.path} changed after it was read: bytes ${leaf.offset}–${leaf.offset + leaf.length} differ`)
}

/** A block of the DAG in CAR order: a kept node, or a leaf to read back. */
type Step = { child: Child, node?: StoredNode }

/**
 * @internal The blocks of `steps` in order, each leaf read into a fresh
 * buffer behind `head(child)` bytes of room (for its frame prefix, so it is
 * never copied). Leaves are read ahead, up to READ_SPAN bytes in flight
 * within one file, so the disk works while the consumer hashes the last one.
 * With `unchanged`, a file whose size or modification time changed while its
 * leaves were read is ERR_FILE_CHANGED.
 */
export async function * readAhead (steps: Iterator<Step>, options: { head: (child: Child) => number, unchanged?: boolean }): AsyncGenerator<Step & { buffer?: Buffer }, void, undefined> {
  const reader = new LeafReader()
  /** blocks in CAR order, leaves still being read or ready */
  const window: Array<Step & { read?: Promise<Buffer> }> = []
  let ahead = 0
  let exhausted = false
  let parked: Step | undefined
  const fill = async (): Promise<void> => {
    while (!exhausted && (ahead < READ_SPAN || window.length === 0)) {
      let step = parked
      parked = undefined
      if (step === undefined) {
        const next = steps.next()
        if (next.done === true) { exhausted = true; return }
        step = next.value
      }
      const leaf = step.child.leaf
      if (step.node !== undefined || leaf === undefined) {
        window.push(step)
        continue
      }
      if (reader.current !== leaf.file) {
        // a new file: the reads of the open one finish first
        if (window.some(w => w.read !== undefined)) { parked = step; return }
        if (options.unchanged === true) await reader.unchanged()
        await reader.open(leaf.file)
      }
      const read = reader.read(leaf, options.head(step.child))
      read.catch(() => {})
      window.push({ ...step, read })
      ahead += leaf.length
    }
  }
  try {
    for (;;) {
      await fill()
      const entry = window.shift()
      if (entry === undefined) break
      if (entry.read === undefined) {
        yield entry
        continue
      }
      const buffer = await entry.read
      ahead -= (entry.child.leaf as NonNullable<Child['leaf']>).length
      yield { child: entry.child, buffer }
    }
    if (options.unchanged === true) await reader.unchanged()
  } finally {
    // reads still in flight finish before their file is closed
    await Promise.allSettled(window.map(w => w.read))
    await reader.close()
  }
}

/**
 * The CAR of a planned import: the header with the single root, then every
 * block once, in depth-first pre-order, first seen (as `ipfs dag export`).
 * Yields chunks of at least 64 KiB where possible; each chunk is a fresh
 * buffer the consumer may keep (a raw leaf's frame is read from disk straight
 * behind its prefix, so it is never copied).
 */
export async function * carStream (plan: ImportPlan, options: CarStreamOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const params = plan.profile
  const batcher = new Batcher()
  let produced = 0
  const out = (chunk: Uint8Array | undefined): Uint8Array | undefined => {
    if (chunk !== undefined) {
      produced += chunk.byteLength
      options.onBytes?.(chunk.byteLength)
    }
    return chunk
  }
  const head = (child: Child): number => {
    const leaf = child.leaf as NonNullable<Child['leaf']>
    return params.rawLeaves || leaf.file.blocks === true ? encodeFramePrefix(child.cid, leaf.length).byteLength : 0
  }
  let chunk = out(batcher.push(encodeHeader([plan.root])))
  if (chunk !== undefined) yield chunk
  for await (const { child, node, buffer } of readAhead(dfsOrder(plan), { head })) {
    let parts: Uint8Array[]
    if (node !== undefined) {
      parts = [encodeFramePrefix(child.cid, node.bytes.byteLength), node.bytes]
    } else {
      const leaf = child.leaf as NonNullable<Child['leaf']>
      const data = buffer as Buffer
      const whole = leaf.file.blocks === true
      // a sealed leaf was checked by its cipher's tags as it was made
      const sealed = leaf.file.cipher !== undefined
      if (params.rawLeaves || whole) {
        // raw leaf (or a whole block read back from a CAR): the block is the data; check it against pass 1's CID, then put the prefix in front
        const prefix = encodeFramePrefix(child.cid, leaf.length)
        if (!sealed) {
          const digest = createHash('sha256').update(data.subarray(prefix.byteLength)).digest()
          if ((child.cid.code !== raw.code && !whole) || child.cid.multihash.code !== SHA2_256 || !digest.equals(child.cid.multihash.digest)) throw changed(leaf)
        }
        data.set(prefix, 0)
        // a pooled frame goes out on its own, for the consumer to give back (see PieceStore.stage)
        chunk = out(batcher.flush())
        if (chunk !== undefined) yield chunk
        chunk = out(data)
        if (chunk !== undefined) yield chunk
        continue
      }
      const block = leafBlock(params, data)
      if (!sealed && !cidOf(block.version, block.code, block.bytes).equals(child.cid)) throw changed(leaf)
      parts = [encodeFramePrefix(child.cid, block.bytes.byteLength), block.bytes]
      // leafBlock copied the data into the dag-pb node
      buffers.release(data)
    }
    for (const part of parts) {
      chunk = out(batcher.push(part))
      if (chunk !== undefined) yield chunk
    }
  }
  chunk = out(batcher.flush())
  if (chunk !== undefined) yield chunk
  if (produced !== plan.carSize) throw new Error(`internal: CAR is ${produced} bytes, planned ${plan.carSize}`)
}
