/**
 * What the provider serves to the gateway and the piece route: blocks indexed
 * by an active deal's upload (BlockSource), pieces stored under a deal and
 * whole-DAG pieces (PieceSource) — never a piece a proof found corrupt.
 */
import { open as openFile } from 'node:fs/promises'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { matches } from '../car/index.js'
import { spaces } from '../state/spaces.js'
import type { BlockLocation, DealContext } from './context.js'
import type { BlockSource, PieceHandle, PieceSource } from './interface.js'

export class Serving implements BlockSource, PieceSource {
  constructor (private readonly c: DealContext) {}

  /** `open()` of a local piece; in a cluster, a piece another node holds is fetched first (`fetchPiece`). */
  private async local<T> (piece: string, open: () => Promise<T | undefined>): Promise<T | undefined> {
    const found = await open()
    if (found !== undefined || this.c.options.fetchPiece === undefined) return found
    return await this.c.options.fetchPiece(piece) ? await open() : undefined
  }

  async get (cid: CID): Promise<Uint8Array | undefined> {
    const value = await this.c.state.get(spaces.blocks, cid.toString())
    if (value === undefined) return undefined
    const at = dagCBOR.decode(value) as BlockLocation
    if (this.c.suspect.has(at.piece)) return undefined
    const handle = await this.local(at.piece, async () => await openFile(this.c.store.path(at.piece), 'r').catch(() => undefined))
    if (handle === undefined) return undefined
    try {
      const out = new Uint8Array(at.length)
      const { bytesRead } = await handle.read(out, 0, at.length, at.offset)
      // bytes that changed on disk are never served as the block
      return bytesRead === at.length && matches(cid, out) ? out : undefined
    } finally {
      await handle.close()
    }
  }

  /**
   * A stored piece that is exactly the depth-first, duplicate-free CAR of the
   * DAG under `root` (checked at upload), for the gateway to stream whole
   * instead of walking the DAG block by block. Only pieces `open` serves.
   */
  async dag (root: CID): Promise<PieceHandle | undefined> {
    const value = await this.c.state.get(spaces.dags, root.toString())
    if (value === undefined) return undefined
    return await this.open(CID.parse(new TextDecoder().decode(value)))
  }

  async open (pieceCid: CID): Promise<PieceHandle | undefined> {
    let v2 = pieceCid.toString()
    if (pieceCid.code === 0xf101) {
      const mapped = await this.c.state.get(spaces.piecesV1, v2)
      if (mapped === undefined) return undefined
      v2 = new TextDecoder().decode(mapped)
    }
    if ((await this.c.state.get(spaces.pieces, v2)) === undefined || this.c.suspect.has(v2)) return undefined
    const reader: PieceHandle | undefined = await this.c.store.open(v2) ?? await this.c.options.remotePiece?.(v2) ?? await this.local(v2, async () => await this.c.store.open(v2))
    if (reader === undefined) return undefined
    return { size: reader.size, createReadStream: (start, end) => reader.createReadStream(start, end), openFile: reader.openFile }
  }
}
