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
 * The layout assumes that no two leaves are the same block. When two are (a
 * file of zeros, two copies of one file), the CAR holds that block once and
 * every block after it moves: the pass stops with `RepeatedLeaf`, and
 * `importCar` writes the CAR in two passes instead. Encrypted imports always
 * take two passes (the leaves are sealed as the DAG is planned).
 */
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { cidKey, encodeFramePrefix, encodeHeader, frameLength } from '../car/index.js'
import { buffers } from '../fs/pool.js'
import type { PlacedBytes } from '../store/pieces.js'
import { carStream, cidOf, dfsOrder, leafBlock, planImport, planShape, readAhead, type Child, type ImportOptions, type ImportPlan } from './importer.js'

/** What an import made, the DAG itself left out. */
export type ImportSummary = Omit<ImportPlan, 'dag'>

/** Two leaves are the same block: the layout from sizes does not hold (see above). */
export class RepeatedLeaf extends Error {
  constructor (cid: CID) {
    super(`internal: the block ${cid.toString()} is two leaves of the import; its CAR is written in two passes`)
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
  static async plan (paths: string[], options: Omit<ImportOptions, 'encryption' | 'onBytes'> = {}): Promise<OnePassImport> {
    return new OnePassImport(await planShape(paths, options))
  }

  /** the exact size of the CAR */
  get carSize (): number { return this.#shape.carSize }

  /** Whether `placed()` stopped because two leaves are one block (however a writer passed the RepeatedLeaf on). */
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
   * Throws RepeatedLeaf when two leaves are one block.
   */
  async * placed (): AsyncGenerator<PlacedBytes, void, undefined> {
    const shape = this.#shape
    const params = shape.profile
    const header = encodeHeader([shape.root])
    /** real CIDs of the layout's placeholders and nodes, by the layout's CID */
    const real = new Map<string, CID>()
    /** where each node goes, in CAR order */
    const places: Array<{ cid: CID, position: number }> = []
    let position = header.byteLength
    // a raw leaf is read behind room for its frame prefix, whose length the placeholder's CID shares
    const head = (child: Child): number => params.rawLeaves ? encodeFramePrefix(child.cid, (child.leaf as NonNullable<Child['leaf']>).length).byteLength : 0
    for await (const { child, node, buffer } of readAhead(dfsOrder(shape), { head, unchanged: true })) {
      if (node !== undefined) {
        places.push({ cid: child.cid, position })
        position += frameLength(child.cid, node.bytes.byteLength)
        continue
      }
      const data = buffer as Buffer
      let frame: Uint8Array
      let cid: CID
      if (params.rawLeaves) {
        const at = head(child)
        cid = cidOf(1, raw.code, data.subarray(at))
        data.set(encodeFramePrefix(cid, data.byteLength - at), 0)
        frame = data
      } else {
        const block = leafBlock(params, data)
        cid = cidOf(block.version, block.code, block.bytes)
        // leafBlock copied the data into the dag-pb node
        buffers.release(data)
        frame = Buffer.concat([encodeFramePrefix(cid, block.bytes.byteLength), block.bytes])
      }
      const key = cidKey(cid)
      if (real.has(key) || shape.dag.nodes.has(key)) {
        this.#repeated = true
        throw new RepeatedLeaf(cid)
      }
      real.set(key, cid)
      real.set(cidKey(child.cid), cid)
      yield { bytes: frame, position }
      position += frame.byteLength
    }
    if (position !== shape.carSize) throw new Error(`internal: CAR is ${position} bytes, laid out as ${shape.carSize}`)
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
    const root = real.get(cidKey(shape.root)) ?? shape.root
    const realHeader = encodeHeader([root])
    if (realHeader.byteLength !== header.byteLength) throw new Error('internal: the CAR header changed size')
    yield { bytes: realHeader, position: 0 }
    for (const place of places) {
      const key = cidKey(place.cid)
      const bytes = nodes.get(key) as Uint8Array
      const cid = real.get(key) ?? place.cid
      yield { bytes: Buffer.concat([encodeFramePrefix(cid, bytes.byteLength), bytes]), position: place.position }
    }
    const { dag: _, ...summary } = shape
    this.#summary = { ...summary, root }
  }
}

/**
 * The CAR of `paths`, written by `write` (a piece writer: `writePiece`,
 * `PieceStore.stage`), with what was imported: in one pass when it can, else
 * — encrypted, or two leaves that are one block — planned and streamed in two.
 * `write` must clean up after itself when it rejects: after a RepeatedLeaf it
 * is called again with the two-pass CAR.
 */
export async function importCar<T> (paths: string[], options: ImportOptions, write: (car: AsyncIterable<Uint8Array | PlacedBytes>, carSize: number) => Promise<T>): Promise<{ plan: ImportSummary, written: T }> {
  if (options.encryption === undefined) {
    const pass = await OnePassImport.plan(paths, options)
    try {
      const written = await write(pass.placed(), pass.carSize)
      return { plan: pass.summary, written }
    } catch (err) {
      // the writer may have wrapped the RepeatedLeaf in an error of its own
      if (!pass.repeated) throw err
    }
  }
  const plan = await planImport(paths, options)
  return { plan, written: await write(carStream(plan), plan.carSize) }
}
