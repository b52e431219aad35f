/**
 * The provider's check of an upload's CAR as it streams in (docs/protocol.md
 * "Transfer"): every block is hashed against its CID by the reader, the DAG
 * must be complete under the deal's root, and whether the CAR is the canonical
 * one a gateway sends for `dag-scope=all&dups=n` (depth-first, first seen,
 * minimal varints) is noted so that it can later be served whole.
 *
 * The check runs on the event loop beside the transfer, so it yields in time
 * slices (the blocks of one network read arrive without a turn of the loop in
 * between), and `warmUploadCheck` runs it once on a small DAG when the
 * provider starts: cold, the first 1 GiB upload after a start spent 20–30 ms
 * of one event-loop stall in V8 compiling and interpreting the dag-pb and CID
 * decoders (docs/performance.md).
 */
import * as dagPb from '@ipld/dag-pb'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { CairnError } from '../errors.js'
import { DagVerifier, encodeFramePrefix, encodeHeader, linksOf, readCar } from '../car/index.js'
import { TimeSlicer } from '../slice.js'

export interface UploadCheck {
  /** the DAG's root: the deal's payloadCid, or the CAR header's root where none was expected */
  root: CID
  /** the blocks in CAR order, and where each block's bytes start in the CAR and how long they are */
  blocks: Array<{ cid: CID, offset: number, length: number }>
  /** the CAR is exactly the canonical DFS CAR of the DAG */
  canonical: boolean
}

/**
 * Reads and checks an upload's CAR for a deal on `root` — or, without one, on
 * the root its header names (a PDP piece that happens to be a CAR); throws a
 * coded error on the first fault.
 */
export async function checkUploadCar (car: AsyncIterable<Uint8Array>, expected: CID | undefined): Promise<UploadCheck> {
  const slicer = new TimeSlicer()
  let root = expected as CID
  let verifier = expected === undefined ? undefined as unknown as DagVerifier : new DagVerifier(expected, { order: 'linked' })
  let dfs = expected === undefined ? undefined as unknown as DagVerifier : new DagVerifier(expected, { order: 'dfs' })
  const blocks: UploadCheck['blocks'] = []
  let canonical = true
  for await (const block of readCar(car, {
    onHeader: (header) => {
      const first = header.roots[0]
      if (expected === undefined && first !== undefined) {
        root = first
        verifier = new DagVerifier(first, { order: 'linked' })
        dfs = new DagVerifier(first, { order: 'dfs' })
      } else if (first === undefined || !first.equals(root)) {
        throw new CairnError('ERR_CAR_ROOT_MISSING', `the CAR's root is ${String(first)}; the deal's payloadCid is ${String(root)}`)
      }
    },
    // leaves are only hashed here (the piece store has the bytes), not copied out
    rawBytes: false
  })) {
    if (slicer.due) await slicer.pause()
    const links = linksOf(block.cid, block.bytes)
    verifier.add(block.cid, block.bytes, links)
    blocks.push({ cid: block.cid, offset: block.blockOffset, length: block.length })
    if (canonical) {
      const cidLength = block.cid.bytes.byteLength
      canonical = block.blockOffset - block.offset === varint.encodingLength(cidLength + block.length) + cidLength
      try { dfs.add(block.cid, block.bytes, links) } catch { canonical = false }
    }
  }
  verifier.finish()
  if (canonical) {
    try { dfs.finish() } catch { canonical = false }
  }
  return { root, blocks, canonical }
}

/** Links per node in a balanced UnixFS file (both IPIP-499 profiles use 174 or more). */
const WARM_LINKS = 174

/**
 * Runs `checkUploadCar` once on a two-level DAG shaped like the start of a
 * large file's CAR (a root and a node of 174 links each), so that V8 compiles
 * that path before the first upload rather than during it.
 */
export async function warmUploadCheck (): Promise<void> {
  const frames: Uint8Array[] = []
  const frame = (cid: CID, bytes: Uint8Array): void => { frames.push(encodeFramePrefix(cid, bytes.byteLength), bytes) }
  const node = async (links: CID[]): Promise<[CID, Uint8Array]> => {
    const bytes = dagPb.encode(dagPb.prepare({ Links: links.map(Hash => ({ Hash, Tsize: 1 })) }))
    return [CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes]
  }
  const leaves: Array<[CID, Uint8Array]> = []
  for (let i = 0; i < WARM_LINKS; i++) {
    const bytes = new Uint8Array([i])
    leaves.push([CID.createV1(raw.code, await sha256.digest(bytes)), bytes])
  }
  const inner = await node(leaves.map(([cid]) => cid))
  const root = await node(Array.from({ length: WARM_LINKS }, () => inner[0]))
  frame(...root)
  frame(...inner)
  for (const leaf of leaves) frame(...leaf)
  await checkUploadCar((async function * () { yield encodeHeader([root[0]]); yield * frames })(), root[0])
}
