/**
 * What the gateway reads from: the provider (or any other holder of blocks)
 * hands it a BlockSource, so the gateway depends on no provider code.
 */
import type { FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { CID } from 'multiformats/cid'

/** Where the gateway finds blocks: only content held under a deal is served. */
export interface BlockSource {
  get (cid: CID): Promise<Uint8Array | undefined>
  /**
   * Optional: a stored CAR that is exactly the depth-first, duplicate-free CAR
   * of the whole DAG under `root` (header, then every block once in DFS
   * pre-order, minimal varints), which the gateway may stream as it is.
   */
  dag? (root: CID): Promise<PieceHandle | undefined>
}

export interface PieceHandle {
  /** Bytes in the stored piece file (the CAR, unpadded). */
  size: number
  /** Inclusive byte range, as `fs.createReadStream` takes it. */
  createReadStream (start: number, end: number): Readable
  /**
   * The piece file for positional reads, when the piece is one; `GET /piece`
   * then streams it with a bounded number of bytes in flight across all
   * responses (src/provider/piece.ts). The caller closes it.
   */
  openFile?: () => Promise<FileHandle>
}
