/**
 * The peers cairn is measured against, each run in its own process by
 * bench/run.ts so its peak RSS is its own. Prints one JSON line: the digest.
 *
 *   node dist/bench/peers.js data-segment <file>
 *   node dist/bench/peers.js fr32-wasm <file>
 */
import { createReadStream } from 'node:fs'
import { base32 } from 'multiformats/bases/base32'

interface StreamingHasher { write (bytes: Uint8Array): unknown, digest (): { bytes: Uint8Array } }

async function hashFile (hasher: StreamingHasher, file: string): Promise<string> {
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hasher.write(chunk as Buffer)
  return base32.encode(hasher.digest().bytes)
}

const [name, file] = process.argv.slice(2)
if (name === undefined || file === undefined) throw new TypeError('usage: peers.js <data-segment|fr32-wasm> <file>')
let hasher: StreamingHasher
if (name === 'data-segment') {
  const { create } = await import('@web3-storage/data-segment/multihash')
  hasher = create() as unknown as StreamingHasher
} else if (name === 'fr32-wasm') {
  const { create } = await import('fr32-sha2-256-trunc254-padded-binary-tree-multihash')
  hasher = create() as unknown as StreamingHasher
} else {
  throw new TypeError(`unknown peer ${name}`)
}
process.stdout.write(JSON.stringify({ peer: name, multihash: await hashFile(hasher, file) }) + '\n')
