/**
 * readCar with `hashMany`: raw leaves hashed in batches of up to sixteen of
 * one length off the main thread (the native addon's `sha256x16` where the
 * CPU has AVX-512, else a node:crypto stand-in here), yielding the same
 * blocks in the same order as hashing one by one, and stopping at the block
 * before a bad leaf wherever it sits in a batch.
 */
import test from 'ava'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { encodeFramePrefix, encodeHeader, readCar, type CarBlock, type ReadCarOptions } from '../../src/car/index.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import { loadNative } from '../../proofs/native.js'
import { collect, deterministicBytes, tempDir, writeTree } from '../unixfs/helpers.js'

type HashMany = NonNullable<ReadCarOptions['hashMany']>

const codeOf = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code

/** node:crypto one message at a time, as `sha256x16` answers: 32 bytes per message, in order; the calls are recorded. */
function portable (calls: Uint8Array[][]): HashMany {
  return async (messages) => {
    calls.push(messages)
    const lengths = new Set(messages.map(m => m.byteLength))
    if (messages.length < 1 || messages.length > 16 || lengths.size !== 1) throw new RangeError('sha256x16: 1 to 16 messages of one length')
    return Buffer.concat(messages.map(m => createHash('sha256').update(m).digest()))
  }
}

const native = loadNative().addon?.sha256x16
const hashers: Array<[string, (calls: Uint8Array[][]) => HashMany]> = [['portable', portable]]
if (native !== undefined) hashers.push(['native', (calls) => async (messages) => { calls.push(messages); return await native(messages) }])

const LEAF = 64 * 1024

/** A DFS CAR of one file of 41 leaves of 64 KiB and a short last one, under nodes of at most `maxLinks` links. */
async function sample (t: { teardown: (f: () => Promise<void>) => void }, maxLinks: number): Promise<Buffer> {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const input = join(dir.path, 'f.bin')
  await writeTree(input, deterministicBytes(41 * LEAF + 1234, `batched-${maxLinks}`))
  const plan = await planImport([input], { chunkSize: LEAF, maxLinks })
  return await collect(carStream(plan))
}

async function * chunked (bytes: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += step) yield bytes.subarray(i, i + step)
}

/** The blocks read before the reader ended or threw, and what it threw. */
async function readAll (bytes: Uint8Array, options: ReadCarOptions = {}): Promise<{ blocks: CarBlock[], error?: unknown }> {
  const blocks: CarBlock[] = []
  try {
    for await (const block of readCar(chunked(bytes, 10_000), options)) blocks.push({ ...block, bytes: Uint8Array.from(block.bytes) })
    return { blocks }
  } catch (error) {
    return { blocks, error }
  }
}

for (const [name, make] of hashers) {
  test(`${name}: the same blocks, bytes and offsets as one by one; leaves of 64 KiB or more in batches of at most 16 of one length`, async t => {
    // 174 links: the root, then 41 leaves in batches of 16, 16 and 9, and the short one hashed as read; 5 links: a node every few leaves ends a batch
    for (const maxLinks of [174, 5]) {
      const car = await sample(t, maxLinks)
      const one = await readAll(car)
      const calls: Uint8Array[][] = []
      const batched = await readAll(car, { hashMany: make(calls) })
      t.is(one.error, undefined)
      t.is(batched.error, undefined)
      t.deepEqual(batched.blocks.map(b => [b.cid.toString(), b.offset, b.blockOffset, b.length]), one.blocks.map(b => [b.cid.toString(), b.offset, b.blockOffset, b.length]))
      t.true(batched.blocks.every((b, i) => Buffer.from(b.bytes).equals(one.blocks[i].bytes)))
      const leaves = one.blocks.filter(b => b.cid.code === raw.code && b.length >= LEAF)
      t.is(calls.flat().length, leaves.length, 'every raw leaf of 64 KiB hashed by hashMany once, the short last one not')
      t.true(calls.every(c => c.length >= 1 && c.length <= 16 && new Set(c.map(m => m.byteLength)).size === 1))
      if (maxLinks === 174) t.deepEqual(calls.map(c => c.length), [16, 16, 9])
      else t.true(calls.every(c => c.length <= 5))
    }
  })

  test(`${name}: a corrupted leaf in the middle of a full batch is ERR_BLOCK_MISMATCH after exactly the blocks before it`, async t => {
    const car = await sample(t, 174)
    const good = await readAll(car)
    // the root, then leaves: index 21 is leaf 20, the fifth of the second batch of sixteen
    const victim = good.blocks[21]
    t.is(victim.cid.code, raw.code)
    const bad = Buffer.from(car)
    bad[victim.blockOffset + 100] ^= 0xff
    const got = await readAll(bad, { hashMany: make([]) })
    t.is(codeOf(got.error), 'ERR_BLOCK_MISMATCH')
    t.deepEqual(got.blocks.map(b => b.cid.toString()), good.blocks.slice(0, 21).map(b => b.cid.toString()))
  })
}

test('a leaf under 64 KiB is hashed as it is read; a leaf seen twice is refused after the ones before it; a failed batch job is the error', async t => {
  const small = new Uint8Array(1000).fill(7)
  const big = new Uint8Array(LEAF).fill(9)
  const smallCid = CID.createV1(raw.code, await sha256.digest(small))
  const bigCid = CID.createV1(raw.code, await sha256.digest(big))
  const frame = (cid: CID, bytes: Uint8Array): Uint8Array[] => [encodeFramePrefix(cid, bytes.byteLength), bytes]
  const car = Buffer.concat([encodeHeader([bigCid]), ...frame(bigCid, big), ...frame(smallCid, small), ...frame(bigCid, big)])
  const calls: Uint8Array[][] = []
  const all = await readAll(car, { hashMany: portable(calls) })
  t.is(all.error, undefined)
  t.deepEqual(all.blocks.map(b => b.cid.toString()), [bigCid, smallCid, bigCid].map(String))
  t.deepEqual(calls.map(c => c.map(m => m.byteLength)), [[LEAF], [LEAF]], 'the small leaf ends a batch and is not in one')

  const twice = await readAll(car, { hashMany: portable([]), unique: true })
  t.is(codeOf(twice.error), 'ERR_CAR_DUPLICATE_BLOCK')
  t.deepEqual(twice.blocks.map(b => b.cid.toString()), [bigCid, smallCid].map(String))

  const failing = await readAll(car, { hashMany: async () => { throw new Error('native SHA-256 job failed') } })
  t.is((failing.error as Error).message, 'native SHA-256 job failed')
  t.deepEqual(failing.blocks, [])
})
