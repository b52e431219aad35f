/**
 * The peers cairn is measured against, each run in its own process by
 * bench/run.ts so its peak RSS is its own. Prints one JSON line: the digest.
 *
 *   node dist/bench/peers.js data-segment <file>
 *   node dist/bench/peers.js fr32-wasm <file>
 */
import { createReadStream } from 'node:fs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { RAW_CODE } from '../proofs/index.js'

interface StreamingHasher { write (bytes: Uint8Array): unknown, multihash (): Uint8Array }

/** The piece CID v2 (raw codec, FRC-0069 multihash) of a file, streamed. */
async function hashFile (hasher: StreamingHasher, file: string): Promise<string> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hasher.write(chunk as Buffer)
  return CID.createV1(RAW_CODE, Digest.decode(hasher.multihash())).toString()
}

const [name, file] = process.argv.slice(2)
if (name === undefined || file === undefined) throw new TypeError('usage: peers.js <data-segment|fr32-wasm> <file>')
let hasher: StreamingHasher
if (name === 'data-segment') {
  const { create } = await import('@web3-storage/data-segment/multihash')
  const h = create()
  hasher = { write: bytes => h.write(bytes), multihash: () => h.digest().bytes }
} else if (name === 'fr32-wasm') {
  const { create } = await import('fr32-sha2-256-trunc254-padded-binary-tree-multihash')
  const h = create()
  hasher = {
    write: bytes => h.write(bytes),
    multihash: () => {
      const out = new Uint8Array(h.multihashByteLength())
      h.digestInto(out, 0, true)
      h.free()
      return out
    }
  }
} else {
  throw new TypeError(`unknown peer ${name}`)
}
process.stdout.write(JSON.stringify({ peer: name, cid: await hashFile(hasher, file) }) + '\n')
