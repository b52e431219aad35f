/**
 * passVerified: a CAR's own bytes let out only once each block in them is
 * verified (hash and DFS place), as the provider's whole-piece stream and
 * `cairn get --car -` relay them.
 */
import test from 'ava'
import { join } from 'node:path'
import { DagVerifier, passVerified, readCar } from '../../src/car/index.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import { collect, deterministicBytes, tempDir, writeTree } from '../unixfs/helpers.js'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

/** A DFS CAR of one file: 40 raw leaves of 500 bytes under dag-pb nodes of at most 3 links. */
async function sample (t: { teardown: (f: () => Promise<void>) => void }): Promise<{ root: CID, bytes: Buffer }> {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const input = join(dir.path, 'f.bin')
  await writeTree(input, deterministicBytes(20_000, 'pass'))
  const plan = await planImport([input], { chunkSize: 500, maxLinks: 3 })
  return { root: plan.root, bytes: await collect(carStream(plan)) }
}

async function * chunked (bytes: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += step) yield bytes.subarray(i, i + step)
}

/** Everything let out before the pass ended or threw, and what it threw. */
async function drain (source: AsyncIterable<Uint8Array>, root: CID, trustRawLeaves = false): Promise<{ out: Buffer, batches: number, error?: unknown }> {
  const parts: Uint8Array[] = []
  let batches = 0
  try {
    for await (const batch of passVerified(source, { verifier: new DagVerifier(root, { order: 'dfs' }), trustRawLeaves })) {
      batches++
      parts.push(...batch)
    }
    return { out: Buffer.concat(parts), batches }
  } catch (error) {
    return { out: Buffer.concat(parts), batches, error }
  }
}

test('passVerified lets out exactly the CAR\'s bytes, in chunks of any size, the source\'s own memory', async (t) => {
  const { root, bytes } = await sample(t)
  for (const step of [1, 7, 333, 4096, bytes.length]) {
    const { out, batches, error } = await drain(chunked(bytes, step), root)
    t.is(error, undefined)
    t.deepEqual(out, bytes, `chunks of ${step}`)
    t.true(batches > 1)
  }
  // not copies: every chunk let out is a view of the input's memory
  const views: Uint8Array[] = []
  for await (const batch of passVerified(chunked(bytes, 1000), { verifier: new DagVerifier(root, { order: 'dfs' }) })) views.push(...batch)
  t.true(views.every(v => v.buffer === bytes.buffer))
})

test('a corrupted block in the middle: ERR_BLOCK_MISMATCH, and only the frames before it were let out', async (t) => {
  const { root, bytes } = await sample(t)
  const frames: Array<{ offset: number, end: number }> = []
  for await (const b of readCar(chunked(bytes, 4096))) frames.push({ offset: b.offset, end: b.blockOffset + b.length })
  const victim = frames[Math.floor(frames.length / 2)]
  const bad = Buffer.from(bytes)
  bad[victim.end - 10] ^= 0xff
  const { out, error } = await drain(chunked(bad, 4096), root)
  t.is((error as { code?: string }).code, 'ERR_BLOCK_MISMATCH')
  t.is(out.length, victim.offset, 'everything up to the bad block\'s frame, nothing of it')
  t.deepEqual(out, bytes.subarray(0, victim.offset))
})

test('a stream cut short, a missing last block, another root: nothing past the last good frame, each with its code', async (t) => {
  const { root, bytes } = await sample(t)
  const cut = await drain(chunked(bytes.subarray(0, bytes.length - 100), 512), root)
  t.is((cut.error as { code?: string }).code, 'ERR_CAR_TRUNCATED')
  t.true(cut.out.length < bytes.length - 100)
  t.deepEqual(cut.out, bytes.subarray(0, cut.out.length))
  // the CAR without its last block: the walk misses it at the end
  const frames: number[] = []
  for await (const b of readCar(chunked(bytes, 4096))) frames.push(b.offset)
  const short = await drain(chunked(bytes.subarray(0, frames.at(-1)), 512), root)
  t.is((short.error as { code?: string }).code, 'ERR_CAR_BLOCK_MISSING')
  t.deepEqual(short.out, bytes.subarray(0, frames.at(-1)))
  // another root than the one asked for: the first block is refused, nothing at all let out
  const other = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1, 2, 3])))
  const wrong = await drain(chunked(bytes, 512), other)
  t.is((wrong.error as { code?: string }).code, 'ERR_CAR_ROOT_MISSING')
  t.is(wrong.out.length, 0)
})

test('trustRawLeaves: a raw leaf\'s changed bytes pass, but a changed inner node or a leaf\'s changed CID still stops the pass before its frame', async (t) => {
  const { root, bytes } = await sample(t)
  const frames: Array<{ code: number, offset: number, blockOffset: number, end: number }> = []
  for await (const b of readCar(chunked(bytes, 4096))) frames.push({ code: b.cid.code, offset: b.offset, blockOffset: b.blockOffset, end: b.blockOffset + b.length })
  const leaves = frames.filter(f => f.code === raw.code)
  const leaf = leaves[Math.floor(leaves.length / 2)]
  const inner = frames.slice(1).find(f => f.code !== raw.code)
  if (inner === undefined) throw new Error('the sample has no inner node below the root')
  const changed = (at: number): Buffer => { const b = Buffer.from(bytes); b[at] ^= 0xff; return b }

  const leafBytes = changed(leaf.end - 10)
  const trusted = await drain(chunked(leafBytes, 4096), root, true)
  t.is(trusted.error, undefined)
  t.deepEqual(trusted.out, leafBytes, 'the CAR as given, the changed leaf in it')
  const hashed = await drain(chunked(leafBytes, 4096), root)
  t.is((hashed.error as { code?: string }).code, 'ERR_BLOCK_MISMATCH')

  const node = await drain(chunked(changed(inner.end - 3), 4096), root, true)
  t.is((node.error as { code?: string }).code, 'ERR_BLOCK_MISMATCH')
  t.deepEqual(node.out, bytes.subarray(0, inner.offset))

  // the last byte of the leaf's CID: another CID than the one its parent links to at this place
  const place = await drain(chunked(changed(leaf.blockOffset - 1), 4096), root, true)
  t.is((place.error as { code?: string }).code, 'ERR_DAG_INVALID')
  t.deepEqual(place.out, bytes.subarray(0, leaf.offset))
})
