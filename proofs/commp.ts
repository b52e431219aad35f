/**
 * Streaming piece commitment (CommP) with constant memory.
 *
 * Input is cut into chunks of CHUNK_QUADS quads; each chunk is an aligned
 * perfect subtree whose root an engine computes, and a TreeStack combines the
 * roots. The tail (less than a chunk) is split into power-of-two runs of
 * quads, largest first, so each run stays aligned; a last partial quad is
 * zero-filled, as data-segment and FRC-0069 do (the zero bytes are the
 * "padding" of the piece CID v2).
 */
import type { CID } from 'multiformats/cid'
import { proofsError } from './errors.js'
import { heightFor, paddedSizeFromHeight, paddingFor, MAX_PAYLOAD_SIZE } from './fr32.js'
import { pieceCidV1, pieceCidV2 } from './piece-cid.js'
import { TreeStack } from './tree.js'
import { CHUNK_BYTES, CHUNK_LEVEL, CHUNK_QUADS, portableEngine, type SubtreeEngine } from './engine.js'
import { selectEngine, type EngineChoice } from './engines.js'
import { hashNode } from './node-hash.js'
import { LayerCache, type ReadAt } from './prove.js'

export interface PieceInfo {
  /** v2 piece CID (FRC-0069), the primary form */
  cid: CID
  /** legacy v1 piece CID (fil-commitment-unsealed) */
  cidV1: CID
  /** the 32-byte CommP root */
  root: Uint8Array
  height: number
  /** FRC-0069 padding in bytes */
  padding: bigint
  /** 32 · 2^height */
  paddedSize: bigint
  payloadSize: bigint
  /** the layer cache, when the hasher was created with `layerLevel` */
  layers?: LayerCache
}

export interface PieceHasher {
  /** Adds bytes. The hasher copies what it keeps: `bytes` may be reused once this returns (or its promise resolves). */
  update: (bytes: Uint8Array) => void | Promise<void>
  /**
   * Moves past `length` bytes of the payload that are not known yet (a writer
   * that leaves room for them and fills it later). Every 1 MiB region of the
   * tree that holds some of them is hashed at `digest`, from the payload as
   * `read` gives it back then; the rest is hashed as it comes.
   */
  skip: (length: number) => void | Promise<void>
  /**
   * Finishes and returns the piece; the hasher cannot be updated afterwards.
   * After a `skip`, `read(offset, length)` must give the final payload bytes
   * of [offset, offset + length).
   */
  digest: (options?: { read?: ReadAt }) => Promise<PieceInfo>
  /** bytes consumed so far, skipped ones included */
  readonly bytesWritten: bigint
  /** the engine in use ('portable', 'workers' or 'native') */
  readonly engine: string
}

export interface PieceHasherOptions {
  /**
   * 'auto' (default: native if it loaded, else worker threads for large
   * inputs), 'native', 'workers' or 'portable'. The environment variable
   * CAIRN_COMMP_ENGINE overrides 'auto'.
   */
  engine?: EngineChoice
  /**
   * Also collect the tree layer at this level (2…15) for proofs, so a
   * provider need not read the piece again to build its LayerCache
   * (proofs/prove.ts). Adds 32 bytes per 2^level leaves (1 MiB per GiB at 10).
   */
  layerLevel?: number
}

class Hasher implements PieceHasher {
  readonly #engine: SubtreeEngine
  readonly #tree = new TreeStack()
  #chunk: Uint8Array
  #fill = 0
  #total = 0n
  #done = false
  /** roots of dispatched chunks, in piece order (a number: a chunk to read back at digest); each chunk returns to #free when done */
  readonly #inflight: Array<Promise<Uint8Array[]> | number> = []
  /** level of the collected layer, or undefined */
  readonly #layerLevel: number | undefined
  /** collected layer nodes, in piece order */
  readonly #layer: Uint8Array[] = []
  readonly #free: Uint8Array[] = []
  #tail: Promise<void> = Promise.resolve()
  /** whole chunks passed on so far */
  #chunks = 0
  /** whether the chunk being filled holds skipped bytes */
  #gap = false
  /**
   * From the first chunk that holds skipped bytes on, roots wait here in
   * piece order (a number: that chunk, to be read back at digest) instead of
   * going into the tree, which takes them only left to right.
   */
  #held: Array<Uint8Array | number> | undefined

  constructor (engine: SubtreeEngine, layerLevel?: number) {
    if (layerLevel !== undefined && (!Number.isInteger(layerLevel) || layerLevel < 2 || layerLevel > CHUNK_LEVEL)) {
      throw new RangeError(`layerLevel must be an integer 2…${CHUNK_LEVEL}, got ${layerLevel}`)
    }
    this.#engine = engine
    this.#layerLevel = layerLevel
    this.#chunk = this.#alloc()
  }

  #alloc (): Uint8Array {
    return this.#free.pop() ?? this.#engine.allocChunk?.(CHUNK_BYTES) ?? new Uint8Array(CHUNK_BYTES)
  }

  get bytesWritten (): bigint { return this.#total }
  get engine (): string { return this.#engine.name }

  update (bytes: Uint8Array): void | Promise<void> {
    if (this.#done) throw proofsError('ERR_HASHER_FINISHED', 'piece hasher already digested; create a new one')
    if (!(bytes instanceof Uint8Array)) throw new TypeError('update() expects a Uint8Array')
    if (this.#total + BigInt(bytes.length) > MAX_PAYLOAD_SIZE) {
      throw proofsError('ERR_PIECE_TOO_LARGE', `payload exceeds ${MAX_PAYLOAD_SIZE} bytes, the most a v2 piece CID can describe`)
    }
    this.#total += BigInt(bytes.length)
    if (this.#engine.root === undefined) {
      this.#updateSync(bytes)
      return
    }
    // updates run one after the other even if the caller does not await each one
    const done = this.#tail.then(async () => await this.#updateAsync(bytes))
    this.#tail = done.catch(() => {})
    return done
  }

  skip (length: number): void | Promise<void> {
    if (this.#done) throw proofsError('ERR_HASHER_FINISHED', 'piece hasher already digested; create a new one')
    if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`skip() expects a byte count, got ${length}`)
    if (this.#layerLevel !== undefined) throw new RangeError('skip() cannot be combined with layerLevel: the layer is collected in piece order')
    if (this.#total + BigInt(length) > MAX_PAYLOAD_SIZE) {
      throw proofsError('ERR_PIECE_TOO_LARGE', `payload exceeds ${MAX_PAYLOAD_SIZE} bytes, the most a v2 piece CID can describe`)
    }
    this.#total += BigInt(length)
    if (this.#engine.root === undefined) {
      this.#skipNow(length)
      return
    }
    const done = this.#tail.then(async () => {
      this.#skipNow(length)
      while (this.#inflight.length > this.#engine.parallelism) await this.#settleOne()
    })
    this.#tail = done.catch(() => {})
    return done
  }

  #skipNow (length: number): void {
    while (length > 0) {
      const n = Math.min(CHUNK_BYTES - this.#fill, length)
      this.#fill += n
      length -= n
      this.#gap = true
      if (this.#fill === CHUNK_BYTES) this.#deferChunk()
    }
  }

  /** The chunk just filled holds skipped bytes: its root comes at digest, from the bytes read back. */
  #deferChunk (): void {
    const index = this.#chunks++
    if (this.#engine.root === undefined) {
      this.#held ??= []
      this.#held.push(index)
    } else {
      this.#inflight.push(index)
    }
    this.#fill = 0
    this.#gap = false
  }

  #updateSync (bytes: Uint8Array): void {
    let off = 0
    while (off < bytes.length) {
      if (this.#fill === 0 && bytes.length - off >= CHUNK_BYTES) {
        this.#chunks++
        this.#pushChunk(this.#chunkNodesSync(bytes, off))
        off += CHUNK_BYTES
        continue
      }
      const n = Math.min(CHUNK_BYTES - this.#fill, bytes.length - off)
      this.#chunk.set(bytes.subarray(off, off + n), this.#fill)
      this.#fill += n
      off += n
      if (this.#fill === CHUNK_BYTES) {
        if (this.#gap) {
          this.#deferChunk()
          continue
        }
        this.#chunks++
        this.#pushChunk(this.#chunkNodesSync(this.#chunk, 0))
        this.#fill = 0
      }
    }
  }

  /** Nodes of a whole chunk at the collected level (or just its root). */
  #chunkNodesSync (src: Uint8Array, offset: number): Uint8Array[] {
    const level = this.#layerLevel ?? CHUNK_LEVEL
    const quads = 2 ** (level - 2)
    const nodes: Uint8Array[] = []
    for (let q = 0; q < CHUNK_QUADS; q += quads) nodes.push(this.#engine.rootSync(src, offset + q * 127, quads))
    return nodes
  }

  async #chunkNodes (chunk: Uint8Array): Promise<Uint8Array[]> {
    const root = this.#engine.root as (chunk: Uint8Array, quads: number) => Promise<Uint8Array>
    const level = this.#layerLevel ?? CHUNK_LEVEL
    if (level === CHUNK_LEVEL) return [await root(chunk, CHUNK_QUADS)]
    const quads = 2 ** (level - 2)
    if (this.#engine.layer !== undefined) {
      const layer = await this.#engine.layer(chunk, CHUNK_QUADS, quads)
      return Array.from({ length: layer.length / 32 }, (_, i) => layer.subarray(32 * i, 32 * i + 32))
    }
    const runs: Array<Promise<Uint8Array>> = []
    for (let q = 0; q < CHUNK_QUADS; q += quads) runs.push(root(chunk.subarray(q * 127, (q + quads) * 127), quads))
    return await Promise.all(runs)
  }

  /** Records a chunk's layer nodes and pushes the chunk's root into the tree (or holds it behind a chunk still to be read back). */
  #pushChunk (nodes: Uint8Array[]): void {
    if (this.#layerLevel !== undefined) this.#layer.push(...nodes)
    let level = nodes
    while (level.length > 1) {
      const up: Uint8Array[] = []
      for (let i = 0; i < level.length; i += 2) up.push(hashNode(level[i], level[i + 1]))
      level = up
    }
    if (this.#held !== undefined) this.#held.push(level[0])
    else this.#tree.push(CHUNK_LEVEL, level[0])
  }

  async #updateAsync (bytes: Uint8Array): Promise<void> {
    let off = 0
    while (off < bytes.length) {
      const n = Math.min(CHUNK_BYTES - this.#fill, bytes.length - off)
      this.#chunk.set(bytes.subarray(off, off + n), this.#fill)
      this.#fill += n
      off += n
      if (this.#fill === CHUNK_BYTES && this.#gap) {
        this.#deferChunk()
      } else if (this.#fill === CHUNK_BYTES) {
        this.#chunks++
        const chunk = this.#chunk
        const node = this.#chunkNodes(chunk).then(nodes => { this.#free.push(chunk); return nodes })
        // a failure surfaces when this root is awaited in order; don't report it as unhandled before then
        node.catch(() => {})
        this.#inflight.push(node)
        this.#chunk = this.#alloc()
        this.#fill = 0
        // keep the engine busy but bound memory: parallelism + 1 chunks in flight at most
        while (this.#inflight.length > this.#engine.parallelism) await this.#settleOne()
      }
    }
  }

  async #settleOne (): Promise<void> {
    const pending = this.#inflight.shift() as Promise<Uint8Array[]> | number
    if (typeof pending === 'number') {
      this.#held ??= []
      this.#held.push(pending)
    } else {
      this.#pushChunk(await pending)
    }
  }

  /** Roots of the chunks that held skipped bytes, from the payload read back, and every held root into the tree in order. */
  async #readBack (read: ReadAt | undefined): Promise<void> {
    const held = this.#held
    if (held === undefined && !this.#gap) return
    if (read === undefined) throw new TypeError('digest() needs options.read after skip(): the skipped bytes are read back from the payload')
    const readExactly = async (offset: number, length: number): Promise<Uint8Array> => {
      const bytes = await read(offset, length)
      if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
        throw proofsError('ERR_PIECE_READ', `read(${offset}, ${length}) gave ${bytes instanceof Uint8Array ? bytes.length : typeof bytes} bytes`)
      }
      return bytes
    }
    if (held !== undefined) {
      this.#held = undefined
      // chunks read back a few at a time, as many as the engine hashes at once, so memory stays flat
      const window: Array<Uint8Array | Promise<Uint8Array>> = []
      for (let i = 0; i < held.length || window.length > 0;) {
        while (i < held.length && window.length <= this.#engine.parallelism) {
          const entry = held[i++] as Uint8Array | number
          if (entry instanceof Uint8Array) {
            window.push(entry)
          } else {
            const root = readExactly(entry * CHUNK_BYTES, CHUNK_BYTES).then(async chunk => await this.#rootOf(chunk, 0, CHUNK_QUADS))
            root.catch(() => {})
            window.push(root)
          }
        }
        this.#tree.push(CHUNK_LEVEL, await (window.shift() as Uint8Array | Promise<Uint8Array>))
      }
    }
    if (this.#gap) {
      // the partial chunk at the end holds skipped bytes too: take all of it as it is now
      this.#chunk.set(await readExactly(this.#chunks * CHUNK_BYTES, this.#fill), 0)
      this.#gap = false
    }
  }

  async digest (options: { read?: ReadAt } = {}): Promise<PieceInfo> {
    if (this.#done) throw proofsError('ERR_HASHER_FINISHED', 'piece hasher already digested; create a new one')
    this.#done = true
    await this.#tail
    while (this.#inflight.length > 0) await this.#settleOne()
    await this.#readBack(options.read)
    // the tail: power-of-two runs of whole quads, largest first, then one zero-filled partial quad
    const quads = Math.floor(this.#fill / 127)
    let offset = 0
    for (let bit = CHUNK_LEVEL - 2; bit >= 0; bit--) {
      const run = 1 << bit
      if ((quads & run) === 0) continue
      this.#tree.push(bit + 2, await this.#rootOf(this.#chunk, offset, run))
      offset += run * 127
    }
    const rest = this.#fill - offset
    if (rest > 0 || this.#total === 0n) {
      const quad = new Uint8Array(127)
      quad.set(this.#chunk.subarray(offset, this.#fill))
      this.#tree.push(2, portableEngine.rootSync(quad, 0, 1))
    }
    if (this.#layerLevel !== undefined) await this.#tailLayer(this.#layerLevel)
    this.#chunk = new Uint8Array(0)
    this.#free.length = 0
    const height = heightFor(this.#total)
    const root = this.#tree.root(height)
    const padding = paddingFor(this.#total)
    const info: PieceInfo = {
      cid: pieceCidV2(root, height, padding),
      cidV1: pieceCidV1(root),
      root,
      height,
      padding,
      paddedSize: paddedSizeFromHeight(height),
      payloadSize: this.#total
    }
    if (this.#layerLevel !== undefined) {
      info.layers = height < this.#layerLevel
        // the whole piece lies inside one region: the layer at its own height is its root
        ? new LayerCache(height, height, this.#total > 0n ? root.slice() : new Uint8Array(0))
        : new LayerCache(height, this.#layerLevel, concat(this.#layer))
      this.#layer.length = 0
    }
    return info
  }

  /** Layer nodes of the tail: whole regions, then a zero-filled partial one. */
  async #tailLayer (level: number): Promise<void> {
    const quads = 2 ** (level - 2)
    const size = quads * 127
    for (let offset = 0; offset < this.#fill; offset += size) {
      if (offset + size <= this.#fill) {
        this.#layer.push(await this.#rootOf(this.#chunk, offset, quads))
      } else {
        const region = new Uint8Array(size)
        region.set(this.#chunk.subarray(offset, this.#fill))
        this.#layer.push(await this.#rootOf(region, 0, quads))
      }
    }
  }

  async #rootOf (src: Uint8Array, offset: number, quads: number): Promise<Uint8Array> {
    // runs of 64 KiB and up go to the engine's own thread too, keeping the event loop free
    if (this.#engine.root !== undefined && quads >= 512) {
      return await this.#engine.root(src.slice(offset, offset + quads * 127), quads)
    }
    return this.#engine.rootSync(src, offset, quads)
  }
}

function concat (nodes: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(nodes.length * 32)
  nodes.forEach((node, i) => out.set(node, i * 32))
  return out
}

/**
 * A streaming CommP hasher; memory stays flat whatever the payload size
 * (plus the collected layer when `layerLevel` is given).
 */
export function createPieceHasher (options: PieceHasherOptions = {}): PieceHasher {
  return new Hasher(selectEngine(options.engine ?? 'auto'), options.layerLevel)
}

function isAsyncIterable (value: unknown): value is AsyncIterable<Uint8Array> {
  return value != null && typeof (value as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function'
}

/** CommP and piece CIDs of a payload given whole or as a stream of chunks. */
export async function pieceOf (source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PieceHasherOptions = {}): Promise<PieceInfo> {
  const choice = options.engine ?? (source instanceof Uint8Array && source.length < CHUNK_BYTES * 2 ? 'portable-if-auto' : 'auto')
  const hasher = new Hasher(selectEngine(choice), options.layerLevel)
  if (source instanceof Uint8Array) {
    await hasher.update(source)
  } else if (isAsyncIterable(source)) {
    for await (const chunk of source) await hasher.update(chunk)
  } else {
    for (const chunk of source) await hasher.update(chunk)
  }
  return await hasher.digest()
}
