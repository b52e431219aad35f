/**
 * Proving possession of a piece (docs/protocol.md "Proofs") without rehashing it.
 *
 * The provider keeps a LayerCache: the nodes of one tree layer (by default
 * level 10, one node per 32 KiB of Fr32 data, 1 MiB per GiB of piece), from
 * which the layers above are derived. A proof then reads only the challenged
 * regions of the piece (one 2^level-leaf subtree each) through `read`, hashes
 * them, and takes the upper siblings from the cache, as Curio does with its
 * cached tree layer.
 *
 * A provider holds many pieces, and a layer grows with its piece (33 MiB at
 * level 10 for a 32 GiB piece, as much again for the layers above). So a
 * cache loaded from disk (`LayerFile`) keeps only the layers from the first
 * one of at most RESIDENT_NODES nodes up in memory (≤ 256 KiB, ≤ 512 KiB with
 * those above it), and a proof reads from the file the run of cached-level
 * nodes under the resident node above each challenge (a few KiB), hashing it
 * up again: memory per piece is bounded whatever the piece size
 * (docs/performance.md "Proofs").
 */
import { equals } from 'multiformats/bytes'
import type { CID } from 'multiformats/cid'
import { challengeIndices, MAX_PROVABLE_HEIGHT, type Challenge } from './challenge.js'
import { proofsError } from './errors.js'
import { padQuads } from './fr32.js'
import { hashPairInto, zeroRoot } from './node-hash.js'
import { parsePieceCid, type PieceLink } from './piece-cid.js'
import { nativeAllowed, selectEngine } from './engines.js'
import { loadNative } from './native.js'
import type { LeafProof, PieceProof } from './verify.js'

/**
 * Random access to the piece's payload bytes (the unpadded file, e.g. the
 * CAR). May return fewer bytes than asked only at the end of the payload.
 */
export type ReadAt = (offset: number, length: number) => Uint8Array | Promise<Uint8Array>

/** Default cached level: nodes covering 2^10 leaves = 32 KiB of Fr32 data. */
export const DEFAULT_CACHE_LEVEL = 10

/*
 * The cache file. v1: magic, height, level (one byte each), the cached
 * layer's nodes. v2, written when that layer has more than RESIDENT_NODES
 * nodes: magic, height, level, resident level (one byte each), the resident
 * layer's node count (u32, big-endian), the resident layer, the cached layer.
 * The resident layer comes first so that loading a v2 file reads only its
 * first few hundred KiB; a v1 file of a large piece (written before v2) is
 * reduced to its resident layer as it is read.
 */
const MAGIC = new TextEncoder().encode('cairn/layer-cache/v1\n')
const MAGIC_V2 = new TextEncoder().encode('cairn/layer-cache/v2\n')
const HEADER = MAGIC.length + 2
const HEADER_V2 = MAGIC_V2.length + 3 + 4

interface FileHeader {
  height: number
  level: number
  /** the resident layer's level: v2's own, else `level` */
  top: number
  /** nodes of the resident layer stored in the file (v2), else 0 */
  resident: number
  /** where the cached layer's nodes start */
  offset: number
}

/** Parses the start of a cache file (at least HEADER_V2 bytes of it, or all of a shorter one). */
function parseHeader (bytes: Uint8Array): FileHeader {
  const v2 = bytes.length >= HEADER_V2 && equals(bytes.subarray(0, MAGIC_V2.length), MAGIC_V2)
  if (!v2 && (bytes.length < HEADER || !equals(bytes.subarray(0, MAGIC.length), MAGIC))) {
    throw proofsError('ERR_LAYER_CACHE_INVALID', 'not a cairn layer cache (bad magic)')
  }
  const height = bytes[MAGIC.length] as number
  const level = bytes[MAGIC.length + 1] as number
  if (!v2) return { height, level, top: level, resident: 0, offset: HEADER }
  const resident = new DataView(bytes.buffer, bytes.byteOffset + MAGIC_V2.length + 3, 4).getUint32(0)
  return { height, level, top: bytes[MAGIC_V2.length + 2] as number, resident, offset: HEADER_V2 + resident * 32 }
}

/** Throws ERR_LAYER_CACHE_INVALID unless a file of `size` bytes with this header is well formed; returns its cached layer's node count. */
function checkFile (header: FileHeader, size: number): number {
  const { height, level, top, resident, offset } = header
  try {
    checkShape(height, level, size - offset)
    const count = (size - offset) / 32
    if (top !== level) {
      if (!Number.isInteger(top) || top <= level || top > height) throw new RangeError(`resident level must be ${level + 1}…${height}, got ${top}`)
      if (resident !== Math.ceil(count / 2 ** (top - level))) throw new RangeError(`${count} nodes at level ${level} have ${Math.ceil(count / 2 ** (top - level))} above them at level ${top}, not ${resident}`)
    }
    return count
  } catch (err) {
    throw proofsError('ERR_LAYER_CACHE_INVALID', `corrupt layer cache: ${(err as Error).message}`)
  }
}

/**
 * Most nodes of the lowest layer a LayerFile keeps in memory. 8192 nodes are
 * 256 KiB, so a resident cache stays under 512 KiB with the layers above; a
 * proof then reads 2^(resident level − cached level) cached nodes per
 * challenge from the file (128 nodes, 4 KiB, for a 32 GiB piece).
 */
export const RESIDENT_NODES = 8192

type LayerSync = (nodes: Uint8Array, zeroRight: Uint8Array) => Uint8Array

/**
 * The layer above `below` (nodes at `level`), a missing right sibling being
 * the zero subtree; `top` makes an empty layer's parent the zero root (the
 * root always exists).
 */
function parentLayer (below: Uint8Array, level: number, native: LayerSync | undefined, top: boolean): Uint8Array {
  if (native !== undefined && below.length > 0) return native(below, zeroRoot(level))
  const count = Math.ceil(below.length / 64)
  const next = new Uint8Array(Math.max(count, top ? 1 : 0) * 32)
  const pair = new Uint8Array(64)
  for (let i = 0; i < count; i++) {
    pair.set(below.subarray(64 * i, 64 * i + 32), 0)
    pair.set(64 * i + 32 < below.length ? below.subarray(64 * i + 32, 64 * i + 64) : zeroRoot(level), 32)
    hashPairInto(pair, 0, next, 32 * i)
  }
  if (count === 0 && next.length > 0) next.set(zeroRoot(level + 1))
  return next
}

function layerSyncFor (portable: boolean): LayerSync | undefined {
  return portable ? undefined : loadNative().addon?.layerSync
}

/** What a proof needs of a piece's upper tree, however it is kept. */
export interface CachedLayers {
  /** tree level of the cached nodes (0 = leaves) */
  readonly level: number
  readonly height: number
  root: () => Uint8Array
  /**
   * For leaf `index`: the cached-level node over its region (what the region's
   * bytes must hash to) and its siblings at levels `level` … `height − 1`.
   */
  upper: (index: number) => UpperPath | Promise<UpperPath>
}

export interface UpperPath { region: Uint8Array, siblings: Uint8Array[] }

/** One cached layer of a piece tree, plus the layers above it (derived on first use). */
export class LayerCache implements CachedLayers {
  /** tree level of the cached nodes (0 = leaves) */
  readonly level: number
  readonly height: number
  /** the cached nodes covering payload, 32 bytes each; nodes past them are zero subtrees */
  readonly nodes: Uint8Array
  #upper: Uint8Array[] | undefined
  readonly #portable: boolean

  /** `options.portable` derives the upper layers in JS even when the native addon is loaded. */
  constructor (height: number, level: number, nodes: Uint8Array, options: { portable?: boolean } = {}) {
    this.#portable = options.portable === true || !nativeAllowed()
    checkShape(height, level, nodes.length)
    this.height = height
    this.level = level
    this.nodes = nodes
  }

  /** Node `index` at tree level `level` (≥ the cached level). */
  node (level: number, index: number): Uint8Array {
    const layers = this.#layers()
    const layer = layers[level - this.level]
    if (layer === undefined) throw new RangeError(`level ${level} is outside ${this.level}…${this.height}`)
    if (index * 32 >= layer.length) return zeroRoot(level)
    return layer.subarray(index * 32, index * 32 + 32)
  }

  root (): Uint8Array { return this.node(this.height, 0) }

  /** The whole layer at tree level `level` (≥ the cached level); nodes past it are zero subtrees. */
  layer (level: number): Uint8Array {
    const layer = this.#layers()[level - this.level]
    if (layer === undefined) throw new RangeError(`level ${level} is outside ${this.level}…${this.height}`)
    return layer
  }

  upper (index: number): UpperPath {
    const siblings: Uint8Array[] = []
    for (let l = this.level; l < this.height; l++) siblings.push(this.node(l, Math.floor(index / 2 ** l) ^ 1).slice())
    return { region: this.node(this.level, Math.floor(index / 2 ** this.level)), siblings }
  }

  #layers (): Uint8Array[] {
    if (this.#upper !== undefined) return this.#upper
    const layers = [this.nodes]
    const native = layerSyncFor(this.#portable)
    for (let l = this.level; l < this.height; l++) layers.push(parentLayer(layers[layers.length - 1] as Uint8Array, l, native, l + 1 === this.height))
    this.#upper = layers
    return layers
  }

  /**
   * Bytes to store beside the piece (the format above): v1 when the cached
   * layer has at most `resident` nodes (RESIDENT_NODES by default), else v2
   * with the resident layer before it.
   */
  encode (options: { resident?: number } = {}): Uint8Array {
    const count = this.nodes.length / 32
    const top = LayerFile.residentLevel(this.height, this.level, count, options.resident)
    if (top === this.level) {
      const out = new Uint8Array(HEADER + this.nodes.length)
      out.set(MAGIC, 0)
      out[MAGIC.length] = this.height
      out[MAGIC.length + 1] = this.level
      out.set(this.nodes, HEADER)
      return out
    }
    const resident = this.layer(top)
    const out = new Uint8Array(HEADER_V2 + resident.length + this.nodes.length)
    out.set(MAGIC_V2, 0)
    out[MAGIC_V2.length] = this.height
    out[MAGIC_V2.length + 1] = this.level
    out[MAGIC_V2.length + 2] = top
    new DataView(out.buffer).setUint32(MAGIC_V2.length + 3, resident.length / 32)
    out.set(resident, HEADER_V2)
    out.set(this.nodes, HEADER_V2 + resident.length)
    return out
  }

  /** Reads an encoded cache (either version); checks it against the piece when given one. Throws ERR_LAYER_CACHE_INVALID. */
  static decode (bytes: Uint8Array, piece?: string | CID | PieceLink): LayerCache {
    const header = parseHeader(bytes)
    checkFile(header, bytes.length)
    const cache = new LayerCache(header.height, header.level, bytes.slice(header.offset))
    if (header.top !== header.level && !equals(cache.layer(header.top), bytes.subarray(HEADER_V2, header.offset))) {
      throw proofsError('ERR_LAYER_CACHE_INVALID', 'corrupt layer cache: its resident layer does not match its nodes')
    }
    if (piece !== undefined) checkCache(cache, toPiece(piece))
    return cache
  }
}

/** Throws a RangeError unless `bytes` of nodes can be the layer at `level` of a height-`height` tree. */
function checkShape (height: number, level: number, bytes: number): void {
  if (!Number.isInteger(height) || height < 2 || height > MAX_PROVABLE_HEIGHT) throw new RangeError(`piece height must be 2…${MAX_PROVABLE_HEIGHT}, got ${height}`)
  if (!Number.isInteger(level) || level < 2 || level > height) throw new RangeError(`cache level must be 2…${height}, got ${level}`)
  if (bytes % 32 !== 0 || bytes / 32 > 2 ** (height - level)) throw new RangeError(`a layer at level ${level} of a height-${height} tree holds at most ${2 ** (height - level)} nodes`)
}

/**
 * Up to `length` bytes at `offset` through `read`, fewer only where the source
 * ends (a read that returns nothing).
 */
async function readAll (read: ReadAt, offset: number, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length)
  const got = await readInto(read, offset, buffer)
  return got === length ? buffer : buffer.subarray(0, got)
}

/** Fills `buffer` from `offset` through `read`; the bytes it got, fewer only where the source ends. */
async function readInto (read: ReadAt, offset: number, buffer: Uint8Array): Promise<number> {
  let got = 0
  while (got < buffer.length) {
    const bytes = await read(offset + got, buffer.length - got)
    if (bytes.length === 0) break
    buffer.set(bytes.subarray(0, buffer.length - got), got)
    got += bytes.length
  }
  return got
}

/**
 * The layer at `top` above the `count` nodes at `level` that start at
 * `offset` of a v1 cache file, read about a MiB (whole runs under one
 * resident node) at a time into one buffer.
 */
async function reduceLayer (read: ReadAt, offset: number, count: number, level: number, top: number, native: LayerSync | undefined): Promise<Uint8Array> {
  const span = 2 ** (top - level)
  const perRead = Math.max(span, Math.floor(32768 / span) * span)
  const buffer = new Uint8Array(Math.min(perRead, count) * 32)
  const out = new Uint8Array(Math.ceil(count / span) * 32)
  for (let first = 0; first < count; first += perRead) {
    const want = Math.min(perRead, count - first) * 32
    const got = await readInto(read, offset + first * 32, buffer.subarray(0, want))
    if (got !== want) throw invalidCache(`layer cache ended at byte ${offset + first * 32 + got}, expected ${offset + count * 32}`)
    let nodes: Uint8Array = buffer.subarray(0, want)
    for (let l = level; l < top; l++) nodes = parentLayer(nodes, l, native, false)
    out.set(nodes, (first / span) * 32)
  }
  return out
}

function invalidCache (message: string, cause?: unknown): Error {
  return proofsError('ERR_LAYER_CACHE_INVALID', message, cause === undefined ? undefined : { cause })
}

/**
 * An encoded layer cache (`LayerCache.encode`) left on disk: only its layers
 * from `resident.level` up are held in memory, and a proof reads the cached
 * nodes under each challenged resident node from the file (`reading`).
 */
export class LayerFile {
  readonly level: number
  readonly height: number
  /** cached-level nodes in the file */
  readonly count: number
  /** the layers kept in memory: level `resident.level` and above */
  readonly resident: LayerCache
  /** where the cached nodes start in the file */
  readonly offset: number
  readonly #portable: boolean

  private constructor (level: number, count: number, offset: number, resident: LayerCache, portable: boolean) {
    this.level = level
    this.height = resident.height
    this.count = count
    this.offset = offset
    this.resident = resident
    this.#portable = portable
  }

  /** Cached-level nodes under one resident node. */
  get span (): number { return 2 ** (this.resident.level - this.level) }

  root (): Uint8Array { return this.resident.root() }

  /**
   * The lowest level, from `level` up, whose layer has at most `limit` of the
   * `count` nodes at `level` (or the root's level).
   */
  static residentLevel (height: number, level: number, count: number, limit = RESIDENT_NODES): number {
    let top = level
    while (top < height && Math.ceil(count / 2 ** (top - level)) > limit) top++
    return top
  }

  /**
   * The cache as a piece store keeps it: a LayerCache when its cached layer is
   * small enough to hold whole, else a LayerFile over what
   * `cache.encode(options)` wrote.
   */
  static from (cache: LayerCache, options: { resident?: number, portable?: boolean } = {}): LayerCache | LayerFile {
    const count = cache.nodes.length / 32
    const top = LayerFile.residentLevel(cache.height, cache.level, count, options.resident)
    if (top === cache.level) return cache
    const portable = options.portable === true || !nativeAllowed()
    const resident = cache.layer(top).slice()
    return new LayerFile(cache.level, count, HEADER_V2 + resident.length, new LayerCache(cache.height, top, resident, { portable }), portable)
  }

  /**
   * Loads an encoded cache of `size` bytes through `read` and checks it
   * against the piece: of a v2 file only its header and resident layer; a v1
   * file a MiB at a time into one buffer, reducing its nodes to the resident
   * layer as they come. Throws ERR_LAYER_CACHE_INVALID.
   */
  static async load (read: ReadAt, size: number, piece: string | CID | PieceLink, options: { resident?: number, portable?: boolean } = {}): Promise<LayerCache | LayerFile> {
    const p = toPiece(piece)
    const header = parseHeader(await readAll(read, 0, Math.min(size, HEADER_V2)))
    if (header.height !== p.height) throw invalidCache(`layer cache does not belong to ${p.cid.toString()}`)
    const count = checkFile(header, size)
    const { height, level } = header
    const portable = options.portable === true || !nativeAllowed()
    let top = header.top
    let nodes: Uint8Array
    if (top !== level) {
      nodes = await readAll(read, HEADER_V2, header.resident * 32)
      if (nodes.length !== header.resident * 32) throw invalidCache(`layer cache ended at byte ${HEADER_V2 + nodes.length}, expected ${size}`)
    } else {
      top = LayerFile.residentLevel(height, level, count, options.resident)
      nodes = await reduceLayer(read, header.offset, count, level, top, layerSyncFor(portable))
    }
    const resident = new LayerCache(height, top, nodes, { portable })
    checkCache(resident, p)
    return top === level ? resident : new LayerFile(level, count, header.offset, resident, portable)
  }

  /**
   * The layers of one proof, with the file's cached nodes read through `read`
   * (one run of `span` nodes per challenged resident node). A run that no
   * longer hashes to its resident node, or is cut short, fails with
   * ERR_LAYER_CACHE_INVALID: the file changed since it was loaded.
   */
  reading (read: ReadAt): CachedLayers {
    const runs = new Map<number, LayerCache>()
    const top = this.resident.level
    const run = async (block: number): Promise<LayerCache> => {
      const known = runs.get(block)
      if (known !== undefined) return known
      const first = block * this.span
      const want = Math.max(0, Math.min(this.span, this.count - first)) * 32
      let nodes: Uint8Array
      try {
        nodes = await readAll(read, this.offset + first * 32, want)
      } catch (err) {
        throw proofsError('ERR_PIECE_READ', `reading the layer cache failed: ${(err as Error).message}`, { cause: err })
      }
      const changed = (): Error => invalidCache(`the layer cache changed since it was loaded (nodes ${first}…)`)
      if (nodes.length !== want) throw changed()
      // a subtree of height `top` whose leaves are the cached-level nodes of the run
      const sub = new LayerCache(top, this.level, nodes, { portable: this.#portable })
      if (!equals(sub.root(), this.resident.node(top, block))) throw changed()
      runs.set(block, sub)
      return sub
    }
    return {
      level: this.level,
      height: this.height,
      root: () => this.root(),
      upper: async (index) => {
        const block = Math.floor(index / 2 ** top)
        const below = (await run(block)).upper(index - block * 2 ** top)
        return { region: below.region, siblings: [...below.siblings, ...this.resident.upper(index).siblings] }
      }
    }
  }
}

function toPiece (piece: string | CID | PieceLink): PieceLink {
  return typeof piece === 'object' && 'root' in piece && 'height' in piece ? piece : parsePieceCid(piece)
}

function checkCache (cache: CachedLayers, piece: PieceLink): void {
  if (cache.height !== piece.height || !equals(cache.root(), piece.root)) {
    throw proofsError('ERR_LAYER_CACHE_INVALID', `layer cache does not belong to ${piece.cid.toString()}`)
  }
}

/** Payload bytes under one node of the cached level. */
function regionBytes (level: number): number { return 2 ** (level - 2) * 127 }

async function readRegion (read: ReadAt, piece: PieceLink, level: number, region: number): Promise<Uint8Array> {
  const size = regionBytes(level)
  const offset = region * size
  const buffer = new Uint8Array(size)
  const payload = Number(piece.payloadSize)
  const want = Math.max(0, Math.min(size, payload - offset))
  if (want > 0) {
    let got = 0
    while (got < want) {
      let bytes: Uint8Array
      try {
        bytes = await read(offset + got, want - got)
      } catch (err) {
        throw proofsError('ERR_PIECE_READ', `reading ${want - got} bytes at ${offset + got} of ${piece.cid.toString()} failed: ${(err as Error).message}`, { cause: err })
      }
      if (bytes.length === 0) throw proofsError('ERR_PIECE_READ', `piece ${piece.cid.toString()} ended at byte ${offset + got}, its payload is ${payload} bytes`)
      buffer.set(bytes.subarray(0, want - got), got)
      got += bytes.length
    }
  }
  return buffer
}

/**
 * Builds the layer cache of a piece by reading its payload once. Throws
 * ERR_PIECE_CORRUPT when the bytes do not hash to the piece CID's root.
 */
export async function buildLayerCache (piece: string | CID | PieceLink, read: ReadAt, options: { level?: number } = {}): Promise<LayerCache> {
  const p = toPiece(piece)
  if (p.height > MAX_PROVABLE_HEIGHT) throw new RangeError(`piece height ${p.height} is above ${MAX_PROVABLE_HEIGHT}`)
  const level = Math.max(2, Math.min(options.level ?? DEFAULT_CACHE_LEVEL, p.height))
  const engine = selectEngine('portable-if-auto')
  const size = regionBytes(level)
  const regions = Math.ceil(Number(p.payloadSize) / size)
  const nodes = new Uint8Array(regions * 32)
  // read about 1 MiB at a time, whole regions
  const perRead = Math.max(1, Math.floor((1 << 20) / size))
  for (let r = 0; r < regions; r += perRead) {
    const n = Math.min(perRead, regions - r)
    const chunk = new Uint8Array(n * size)
    for (let i = 0; i < n; i++) chunk.set(await readRegion(read, p, level, r + i), i * size)
    if (engine.root !== undefined) {
      // off the event loop and on every core the engine has
      const roots = await Promise.all(Array.from({ length: n }, async (_, i) => await (engine.root as NonNullable<typeof engine.root>)(chunk.subarray(i * size, (i + 1) * size), 2 ** (level - 2))))
      roots.forEach((root, i) => nodes.set(root, (r + i) * 32))
    } else {
      for (let i = 0; i < n; i++) nodes.set(engine.rootSync(chunk, i * size, 2 ** (level - 2)), (r + i) * 32)
    }
  }
  const cache = new LayerCache(p.height, level, nodes)
  if (!equals(cache.root(), p.root)) throw proofsError('ERR_PIECE_CORRUPT', `the piece's bytes do not hash to ${p.cid.toString()}`)
  return cache
}

/**
 * Answers a challenge: for each selected leaf, the leaf and its `height`
 * siblings. Reads one cached-level region per distinct challenged region.
 * Throws ERR_LAYER_CACHE_INVALID (cache of another piece), ERR_PIECE_READ,
 * or ERR_PIECE_CORRUPT (a region no longer matches the cache: data loss).
 */
export async function provePiece (piece: string | CID | PieceLink, challenge: Challenge, read: ReadAt, cache: CachedLayers): Promise<PieceProof> {
  const p = toPiece(piece)
  return { piece: p.cid, proofs: await proveLeaves(p, challengeIndices(challenge, p), read, cache) }
}

/**
 * The leaf and its `height` siblings for each of the given leaf indices of a
 * piece, whoever chose them: `provePiece` for cairn's challenges, a PDP data
 * set's challenges (pdp-challenge.ts) for the offsets they land on. Throws as
 * `provePiece` does, and ERR_PROOF_LEAF_INDEX for an index outside the tree.
 */
export async function proveLeaves (piece: string | CID | PieceLink, indices: readonly number[], read: ReadAt, cache: CachedLayers): Promise<LeafProof[]> {
  const p = toPiece(piece)
  checkCache(cache, p)
  const level = cache.level
  const engine = selectEngine('portable-if-auto')
  const regions = new Map<number, Uint8Array>()
  const proofs: LeafProof[] = []
  for (const index of indices) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= 2 ** p.height) throw proofsError('ERR_PROOF_LEAF_INDEX', `leaf ${index} is outside the tree of ${p.cid.toString()} (2^${p.height} leaves)`)
    const region = Math.floor(index / 2 ** level)
    const upper = await cache.upper(index)
    let bytes = regions.get(region)
    if (bytes === undefined) {
      bytes = await readRegion(read, p, level, region)
      if (!equals(engine.rootSync(bytes, 0, 2 ** (level - 2)), upper.region)) {
        throw proofsError('ERR_PIECE_CORRUPT', `region ${region} of ${p.cid.toString()} no longer matches its commitment`)
      }
      regions.set(region, bytes)
    }
    const local = index - region * 2 ** level
    // the leaf's quad: 4 leaves, 3 hashes give the level-0 and level-1 siblings
    const quad = new Uint8Array(128)
    padQuads(bytes, Math.floor(local / 4) * 127, 1, quad, 0)
    const within = local % 4
    const leaf = quad.slice(within * 32, within * 32 + 32)
    const path: Uint8Array[] = [quad.slice((within ^ 1) * 32, (within ^ 1) * 32 + 32)]
    const pairs = new Uint8Array(64)
    const other = within < 2 ? 64 : 0
    hashPairInto(quad, other, pairs, 0)
    path.push(pairs.slice(0, 32))
    // siblings at levels 2 … level−1: roots of sibling runs of quads inside the region
    for (let l = 2; l < level; l++) {
      const sibling = Math.floor(local / 2 ** l) ^ 1
      const quads = 2 ** (l - 2)
      path.push(engine.rootSync(bytes, sibling * quads * 127, quads))
    }
    // siblings at the cached level and above
    path.push(...upper.siblings)
    proofs.push({ index, leaf, path })
  }
  return proofs
}
