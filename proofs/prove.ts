/**
 * Proving possession of a piece (docs/protocol.md "Proofs") without rehashing it.
 *
 * The provider keeps a LayerCache: the nodes of one tree layer (by default
 * level 10, one node per 32 KiB of Fr32 data, 1 MiB per GiB of piece), from
 * which the layers above are derived. A proof then reads only the challenged
 * regions of the piece (one 2^level-leaf subtree each) through `read`, hashes
 * them, and takes the upper siblings from the cache, as Curio does with its
 * cached tree layer.
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

const MAGIC = new TextEncoder().encode('cairn/layer-cache/v1\n')

/** One cached layer of a piece tree, plus the layers above it (derived on first use). */
export class LayerCache {
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
    if (!Number.isInteger(height) || height < 2 || height > MAX_PROVABLE_HEIGHT) throw new RangeError(`piece height must be 2…${MAX_PROVABLE_HEIGHT}, got ${height}`)
    if (!Number.isInteger(level) || level < 2 || level > height) throw new RangeError(`cache level must be 2…${height}, got ${level}`)
    if (nodes.length % 32 !== 0 || nodes.length / 32 > 2 ** (height - level)) throw new RangeError(`a layer at level ${level} of a height-${height} tree holds at most ${2 ** (height - level)} nodes`)
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

  #layers (): Uint8Array[] {
    if (this.#upper !== undefined) return this.#upper
    const layers = [this.nodes]
    let below = this.nodes
    const pair = new Uint8Array(64)
    const native = this.#portable ? undefined : loadNative().addon?.layerSync
    for (let l = this.level; l < this.height; l++) {
      if (native !== undefined && below.length > 0) {
        below = native(below, zeroRoot(l))
        layers.push(below)
        continue
      }
      const count = Math.ceil(below.length / 64)
      const next = new Uint8Array(Math.max(count, l + 1 === this.height ? 1 : 0) * 32)
      for (let i = 0; i < count; i++) {
        pair.set(below.subarray(64 * i, 64 * i + 32), 0)
        pair.set(64 * i + 32 < below.length ? below.subarray(64 * i + 32, 64 * i + 64) : zeroRoot(l), 32)
        hashPairInto(pair, 0, next, 32 * i)
      }
      if (count === 0 && next.length > 0) next.set(zeroRoot(l + 1))
      layers.push(next)
      below = next
    }
    this.#upper = layers
    return layers
  }

  /** Bytes to store beside the piece: magic, height, level, nodes. */
  encode (): Uint8Array {
    const out = new Uint8Array(MAGIC.length + 2 + this.nodes.length)
    out.set(MAGIC, 0)
    out[MAGIC.length] = this.height
    out[MAGIC.length + 1] = this.level
    out.set(this.nodes, MAGIC.length + 2)
    return out
  }

  /** Reads an encoded cache; checks it against the piece when given one. Throws ERR_LAYER_CACHE_INVALID. */
  static decode (bytes: Uint8Array, piece?: string | CID | PieceLink): LayerCache {
    if (bytes.length < MAGIC.length + 2 || !equals(bytes.subarray(0, MAGIC.length), MAGIC)) {
      throw proofsError('ERR_LAYER_CACHE_INVALID', 'not a cairn layer cache (bad magic)')
    }
    let cache: LayerCache
    try {
      cache = new LayerCache(bytes[MAGIC.length], bytes[MAGIC.length + 1], bytes.slice(MAGIC.length + 2))
    } catch (err) {
      throw proofsError('ERR_LAYER_CACHE_INVALID', `corrupt layer cache: ${(err as Error).message}`)
    }
    if (piece !== undefined) checkCache(cache, toPiece(piece))
    return cache
  }
}

function toPiece (piece: string | CID | PieceLink): PieceLink {
  return typeof piece === 'object' && 'root' in piece && 'height' in piece ? piece : parsePieceCid(piece)
}

function checkCache (cache: LayerCache, piece: PieceLink): void {
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
export async function provePiece (piece: string | CID | PieceLink, challenge: Challenge, read: ReadAt, cache: LayerCache): Promise<PieceProof> {
  const p = toPiece(piece)
  return { piece: p.cid, proofs: await proveLeaves(p, challengeIndices(challenge, p), read, cache) }
}

/**
 * The leaf and its `height` siblings for each of the given leaf indices of a
 * piece, whoever chose them: `provePiece` for cairn's challenges, a PDP data
 * set's challenges (pdp-challenge.ts) for the offsets they land on. Throws as
 * `provePiece` does, and ERR_PROOF_LEAF_INDEX for an index outside the tree.
 */
export async function proveLeaves (piece: string | CID | PieceLink, indices: readonly number[], read: ReadAt, cache: LayerCache): Promise<LeafProof[]> {
  const p = toPiece(piece)
  checkCache(cache, p)
  const level = cache.level
  const engine = selectEngine('portable-if-auto')
  const regions = new Map<number, Uint8Array>()
  const proofs: LeafProof[] = []
  for (const index of indices) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= 2 ** p.height) throw proofsError('ERR_PROOF_LEAF_INDEX', `leaf ${index} is outside the tree of ${p.cid.toString()} (2^${p.height} leaves)`)
    const region = Math.floor(index / 2 ** level)
    let bytes = regions.get(region)
    if (bytes === undefined) {
      bytes = await readRegion(read, p, level, region)
      if (!equals(engine.rootSync(bytes, 0, 2 ** (level - 2)), cache.node(level, region))) {
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
    for (let l = level; l < p.height; l++) path.push(cache.node(l, Math.floor(index / 2 ** l) ^ 1).slice())
    proofs.push({ index, leaf, path })
  }
  return proofs
}
