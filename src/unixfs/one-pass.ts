/**
 * The one-pass import: files → the depth-first CAR of their UnixFS DAG, each
 * file read once.
 *
 * The two-pass importer (importer.ts) reads every file twice, once to hash it
 * and build the DAG and once to write the CAR, because depth-first order puts
 * every node before the leaves under it, and a node holds its leaves' CIDs.
 * Here the DAG is laid out first from the sizes of the files alone
 * (`planShape`): a node's size does not depend on the CIDs it holds, only on
 * their length, so every block's place in the CAR is known before a byte is
 * read. Then each file is read once, in CAR order, and every leaf is hashed
 * and placed as it is read, while the room for the header and the nodes is
 * left; the piece writer hashes the leaves for CommP as they come
 * (src/store/pieces.ts `writePiece`). Last, the nodes are made from the
 * leaves' CIDs and placed in their room. The bytes are those `carStream`
 * writes for `planImport`'s plan of the same files (test/unixfs/one-pass.test.ts).
 *
 * The layout assumes that every block is met once. A leaf met again (a run of
 * zeros, a file that is a copy of one read before) is left out, as the CAR
 * holds each block once, and every place after it moves back by its frame;
 * a node met again (two copies of a file of several leaves) would take out
 * the room left for it, so the pass stops with `RepeatedNode` at its end and
 * `importCar` writes the CAR in two passes instead. An encrypted file's
 * header is drawn as it is laid out, and its payload leaves are sealed as
 * the plaintext is read, once (FileEncryption `sealRange`).
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { loadNative } from '../../proofs/native.js'
import { SHA2_256 } from '../codecs.js'
import { cidKey, encodeFramePrefix, encodeHeader, frameLength } from '../car/index.js'
import { buffers } from '../fs/pool.js'
import type { PlacedBytes } from '../store/pieces.js'
import { carStream, cidOf, dfsOrder, leafBlock, planImport, planShape, readAhead, type Child, type ImportOptions, type ImportPlan } from './importer.js'

/** What an import made, the DAG itself left out. */
export type ImportSummary = Omit<ImportPlan, 'dag'>

/** A node of the DAG is met twice in it: the layout from sizes does not hold (see above). */
export class RepeatedNode extends Error {
  constructor (cid: CID) {
    super(`internal: the block ${cid.toString()} is met twice in the import's DAG; its CAR is written in two passes`)
  }
}

/** A one-pass import of laid-out files: `placed()` reads them and gives the CAR's bytes with their places. */
export class OnePassImport {
  readonly #shape: ImportPlan
  #summary: ImportSummary | undefined
  #repeated = false

  private constructor (shape: ImportPlan) {
    this.#shape = shape
  }

  /** Lays out the import of `paths` (stat and readdir only; no file is read). */
  static async plan (paths: string[], options: Omit<ImportOptions, 'onBytes'> = {}): Promise<OnePassImport> {
    return new OnePassImport(await planShape(paths, options))
  }

  /** the size of the CAR, less the frames of leaves met again */
  get carSize (): number { return this.#shape.carSize }

  /** Whether `placed()` stopped because a node is met twice (however a writer passed the RepeatedNode on). */
  get repeated (): boolean { return this.#repeated }

  /** What was imported, once `placed()` has given every byte. */
  get summary (): ImportSummary {
    if (this.#summary === undefined) throw new Error('internal: the one-pass import has not finished')
    return this.#summary
  }

  /**
   * The CAR's bytes with their places: each leaf's frame as its file is read
   * (in CAR order, so each past the last, leaving room for the nodes between),
   * then the header and every node into the room left for them. A leaf's
   * frame is a pooled buffer (src/fs/pool.ts) for the consumer to give back.
   * Throws RepeatedNode when a node is met twice.
   */
  async * placed (): AsyncGenerator<PlacedBytes, void, undefined> {
    const shape = this.#shape
    const params = shape.profile
    const header = encodeHeader([shape.root])
    /** real CIDs of the layout's placeholders, then of its nodes, by the layout's CID */
    const real = new Map<string, CID>()
    /** the real blocks placed so far */
    const met = new Set<string>()
    /** where each node goes, in CAR order */
    const places: Array<{ cid: CID, position: number }> = []
    let position = header.byteLength
    /** leaves left out, and their frames' bytes: each repeats a leaf placed before */
    let repeats = 0
    let repeated = 0
    const broken = (cid: CID): RepeatedNode => {
      this.#repeated = true
      return new RepeatedNode(cid)
    }
    // a raw leaf is read behind room for its frame prefix, whose length the placeholder's CID shares
    const head = (child: Child): number => params.rawLeaves ? encodeFramePrefix(child.cid, (child.leaf as NonNullable<Child['leaf']>).length).byteLength : 0
    /** A leaf read, with its SHA-256 when it was hashed in a batch: its frame and place, or nothing when it was met before. */
    const place = (child: Child, data: Buffer, digest?: Uint8Array): PlacedBytes | undefined => {
      let frame: Uint8Array
      let cid: CID
      if (params.rawLeaves) {
        const at = head(child)
        cid = digest === undefined ? cidOf(1, raw.code, data.subarray(at)) : CID.createV1(raw.code, Digest.create(SHA2_256, digest))
        data.set(encodeFramePrefix(cid, data.byteLength - at), 0)
        frame = data
      } else {
        const block = leafBlock(params, data)
        cid = cidOf(block.version, block.code, block.bytes)
        // leafBlock copied the data into the dag-pb node
        buffers.release(data)
        frame = Buffer.concat([encodeFramePrefix(cid, block.bytes.byteLength), block.bytes])
      }
      real.set(cidKey(child.cid), cid)
      const key = cidKey(cid)
      if (met.has(key)) {
        // the CAR holds a block once, where it was first met: every place after this one moves back
        repeats++
        repeated += frame.byteLength
        buffers.release(frame)
        return undefined
      }
      // a leaf that is also a node of the layout (never in practice) takes the node's place
      if (shape.dag.nodes.has(key)) throw broken(cid)
      met.add(key)
      const placed = { bytes: frame, position }
      position += frame.byteLength
      return placed
    }
    // Whole raw leaves are hashed sixteen at a time on the libuv pool where the native addon
    // can (proofs/native/commp.c: with AVX-512 2.3 times OpenSSL's one-at-a-time SHA-256 per
    // core; with SHA-NI alone as fast as OpenSSL, but off the event loop), a batch while the
    // next is read; the event loop only places them.
    const hashMany = params.rawLeaves ? loadNative().addon?.sha256x16 : undefined
    const batched = (child: Child): boolean => hashMany !== undefined && (child.leaf as NonNullable<Child['leaf']>).length === params.chunkSize
    type Batch = Array<{ child: Child, data: Buffer }>
    const launch = (leaves: Batch): { leaves: Batch, digests: Promise<Uint8Array> } => {
      const digests = (hashMany as NonNullable<typeof hashMany>)(leaves.map(({ child, data }) => data.subarray(head(child))))
      digests.catch(() => {})
      return { leaves, digests }
    }
    async function * emit (batch: ReturnType<typeof launch>): AsyncGenerator<PlacedBytes, void, undefined> {
      const digests = await batch.digests
      for (const [i, { child, data }] of batch.leaves.entries()) {
        const placed = place(child, data, digests.subarray(32 * i, 32 * i + 32))
        if (placed !== undefined) yield placed
      }
    }
    /** a batch being hashed, and the one being filled */
    let hashing: ReturnType<typeof launch> | undefined
    let filling: Batch = []
    for await (const { child, node, buffer } of readAhead(dfsOrder(shape), { head, unchanged: true })) {
      if (node === undefined && batched(child)) {
        filling.push({ child, data: buffer as Buffer })
        if (filling.length < 16) continue
        const done = hashing
        hashing = launch(filling)
        filling = []
        if (done !== undefined) yield * emit(done)
        continue
      }
      // a node or a short leaf: the leaves before it first, in order
      if (hashing !== undefined) yield * emit(hashing)
      if (filling.length > 0) yield * emit(launch(filling))
      hashing = undefined
      filling = []
      if (node !== undefined) {
        places.push({ cid: child.cid, position })
        position += frameLength(child.cid, node.bytes.byteLength)
        continue
      }
      const placed = place(child, buffer as Buffer)
      if (placed !== undefined) yield placed
    }
    if (hashing !== undefined) yield * emit(hashing)
    if (filling.length > 0) yield * emit(launch(filling))
    if (position !== shape.carSize - repeated) throw new Error(`internal: CAR is ${position} bytes, laid out as ${shape.carSize - repeated}`)
    // the nodes, children first (the plan holds them in the order they were made), with the leaves' real CIDs
    const nodes = new Map<string, Uint8Array>()
    for (const [key, node] of shape.dag.nodes) {
      if (node.children.length === 0) {
        nodes.set(key, node.bytes)
        continue
      }
      const decoded = dagPb.decode(node.bytes)
      const bytes = dagPb.encode({ ...decoded, Links: decoded.Links.map(link => ({ ...link, Hash: real.get(cidKey(link.Hash)) ?? link.Hash })) })
      if (bytes.byteLength !== node.bytes.byteLength) throw new Error('internal: a node changed size when its links were filled in')
      const cid = cidOf(params.cidVersion, dagPb.code, bytes)
      real.set(key, cid)
      nodes.set(key, bytes)
    }
    const frames: PlacedBytes[] = []
    for (const place of places) {
      const key = cidKey(place.cid)
      const bytes = nodes.get(key) as Uint8Array
      const cid = real.get(key) ?? place.cid
      // a node met twice (two copies of a file of several leaves): the CAR would hold it, and what is under it, once
      if (met.has(cidKey(cid))) throw broken(cid)
      met.add(cidKey(cid))
      frames.push({ bytes: Buffer.concat([encodeFramePrefix(cid, bytes.byteLength), bytes]), position: place.position })
    }
    const root = real.get(cidKey(shape.root)) ?? shape.root
    const realHeader = encodeHeader([root])
    if (realHeader.byteLength !== header.byteLength) throw new Error('internal: the CAR header changed size')
    yield { bytes: realHeader, position: 0 }
    yield * frames
    const { dag: _, ...summary } = shape
    this.#summary = { ...summary, root, blocks: shape.blocks - repeats, carSize: shape.carSize - repeated }
  }
}

/**
 * The CAR of `paths`, written by `write` (a piece writer: `writePiece`,
 * `PieceStore.stage`), with what was imported: in one pass, unless a node is
 * met twice; then planned and streamed in two.
 * `write` must clean up after itself when it rejects: after a RepeatedNode it
 * is called again with the two-pass CAR.
 */
export async function importCar<T> (paths: string[], options: ImportOptions, write: (car: AsyncIterable<Uint8Array | PlacedBytes>, carSize: number) => Promise<T>): Promise<{ plan: ImportSummary, written: T }> {
  const pass = await OnePassImport.plan(paths, options)
  try {
    const written = await write(pass.placed(), pass.carSize)
    return { plan: pass.summary, written }
  } catch (err) {
    // the writer may have wrapped the RepeatedNode in an error of its own
    if (!pass.repeated) throw err
  }
  const plan = await planImport(paths, options)
  return { plan, written: await write(carStream(plan), plan.carSize) }
}
