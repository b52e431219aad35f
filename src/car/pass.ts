/**
 * A CAR stream passed through unchanged, each byte let out only once it is
 * verified: the header once checked, a block's frame once the block hashes
 * to its CID and holds its place in the DAG (`DagVerifier`). What comes out
 * is the source's own chunks (or slices of them), never re-encoded frames or
 * copies: the provider's whole-piece stream and `cairn get --car -` relay
 * bytes that way instead of decoding each block into a buffer of its own and
 * writing a new frame prefix and the block separately.
 *
 * Raw leaves are hashed where they lie in the chunks (`readCar` with
 * `rawBytes: false`), or not at all with `trustRawLeaves` (their CIDs still
 * hold their DFS places); only nodes with links are copied, to be decoded. A
 * failure throws before any byte of the failing block (or the header) is let
 * out, so what a consumer received is always a prefix of the CAR ending at a
 * verified frame.
 */
import type { CarHeader } from './interface.js'
import { readCar } from './reader.js'
import type { DagVerifier } from './verify.js'

export interface PassOptions {
  /** checks each block's place in the DAG; `finish()` is called at the end of the stream */
  verifier: DagVerifier
  /** throws to refuse the header (e.g. another root than asked for) */
  onHeader?: (header: CarHeader) => void
  /**
   * Raw sha2-256 leaves go out unhashed; nodes with links are still hashed
   * (they decide the walk) and every CID must hold its DFS place. For a
   * provider serving a piece it verified on ingest (`provider start
   * --hash-on-read` off): the client verifies every block anyway.
   */
  trustRawLeaves?: boolean
}

/**
 * The verified bytes of `source`, in batches: each batch holds the chunks (or
 * slices of them) that end at the last verified frame, in order, and is meant
 * to be written as one (`cork`/`uncork`, `writev`).
 */
export async function * passVerified (source: AsyncIterable<Uint8Array>, options: PassOptions): AsyncGenerator<Uint8Array[], void, undefined> {
  // chunks read but not yet let out, the first starting at `start` in the stream
  const held: Uint8Array[] = []
  let start = 0
  async function * holding (): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (chunk.byteLength === 0) continue
      held.push(chunk)
      yield chunk
    }
  }
  /** Takes the held bytes before `end` (an offset in the stream). */
  function release (end: number): Uint8Array[] {
    const out: Uint8Array[] = []
    let i = 0
    while (i < held.length && start < end) {
      const chunk = held[i]
      const take = Math.min(chunk.byteLength, end - start)
      if (take === chunk.byteLength) {
        out.push(chunk)
        i++
      } else {
        out.push(chunk.subarray(0, take))
        held[i] = chunk.subarray(take)
      }
      start += take
    }
    held.splice(0, i)
    return out
  }
  let headerEnd = 0
  const { verifier } = options
  for await (const block of readCar(holding(), {
    rawBytes: false,
    trustRawLeaves: options.trustRawLeaves,
    onHeader: (header) => {
      options.onHeader?.(header)
      headerEnd = header.length
    }
  })) {
    verifier.add(block.cid, block.bytes)
    // the header goes out with the first verified block
    const out = release(Math.max(headerEnd, block.blockOffset + block.length))
    if (out.length > 0) yield out
  }
  verifier.finish()
  // readCar consumed every byte into frames, so nothing is left unverified; a header with no block fails `finish`
  const rest = release(Infinity)
  if (rest.length > 0) yield rest
}
