/**
 * passVerified with `hashMany` (`cairn get --car -` where the addon hashes
 * leaves off the main thread): the source copied into pooled slabs, leaves
 * hashed in batches where they lie in a slab, bytes let out only once
 * verified, and a slab used again only once every byte of it was written.
 */
import test from 'ava'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { DagVerifier, passVerified, readCar, type ReadCarOptions } from '../../src/car/index.js'
import { carStream, planImport } from '../../src/unixfs/importer.js'
import { loadNative } from '../../proofs/native.js'
import { collect, deterministicBytes, tempDir, writeTree } from '../unixfs/helpers.js'

type HashMany = NonNullable<ReadCarOptions['hashMany']>

const codeOf = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code

/** node:crypto one message at a time, answering as `sha256x16` does; the messages are recorded. */
function portable (calls: Uint8Array[][]): HashMany {
  return async (messages) => {
    calls.push(messages)
    if (messages.length < 1 || messages.length > 16 || new Set(messages.map(m => m.byteLength)).size !== 1) throw new RangeError('sha256x16: 1 to 16 messages of one length')
    return Buffer.concat(messages.map(m => createHash('sha256').update(m).digest()))
  }
}

const native = loadNative().addon?.sha256x16
const hashers: Array<[string, (calls: Uint8Array[][]) => HashMany]> = [['portable', portable]]
if (native !== undefined) hashers.push(['native', (calls) => async (messages) => { calls.push(messages); return await native(messages) }])

const LEAF = 64 * 1024
/** slabs holding several leaves, slabs a leaf mostly spans two of, slabs smaller than a leaf */
const SLABS = [1024 * 1024, 100_000, 40_000]

/** A DFS CAR of one file of `leaves` leaves of 64 KiB and a short last one, under nodes of at most `maxLinks` links. */
async function sample (t: { teardown: (f: () => Promise<void>) => void }, maxLinks: number, leaves = 41): Promise<{ root: CID, car: Buffer }> {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const input = join(dir.path, 'f.bin')
  await writeTree(input, deterministicBytes(leaves * LEAF + 1234, `slabs-${maxLinks}`))
  const plan = await planImport([input], { chunkSize: LEAF, maxLinks })
  return { root: plan.root, car: await collect(carStream(plan)) }
}

async function * chunked (bytes: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += step) yield bytes.subarray(i, i + step)
}

interface Drained { out: Buffer, views: Uint8Array[], error?: unknown }

/**
 * Everything let out before the pass ended or threw (copied as it came, then
 * said written, as a sink's write callback would), and what it threw.
 */
async function drain (source: AsyncIterable<Uint8Array>, root: CID, hashMany: HashMany, slabSize: number, written = true): Promise<Drained> {
  const parts: Buffer[] = []
  const views: Uint8Array[] = []
  try {
    for await (const batch of passVerified(source, { verifier: new DagVerifier(root, { order: 'dfs' }), hashMany, slabSize })) {
      for (const chunk of batch) parts.push(Buffer.from(chunk))
      views.push(...batch)
      if (written) batch.written?.()
    }
    return { out: Buffer.concat(parts), views }
  } catch (error) {
    return { out: Buffer.concat(parts), views, error }
  }
}

async function frames (car: Uint8Array): Promise<Array<{ cid: CID, offset: number, blockOffset: number, length: number }>> {
  const out = []
  for await (const b of readCar(chunked(car, 65536))) out.push({ cid: b.cid, offset: b.offset, blockOffset: b.blockOffset, length: b.length })
  return out
}

for (const [name, make] of hashers) {
  test(`${name}: exactly the CAR's bytes, from slabs of any size against chunks of any size; leaves hashed in batches, in place where they lie in one slab`, async t => {
    const { root, car } = await sample(t, 174)
    const leaves = (await frames(car)).filter(f => f.cid.code === raw.code && f.length >= LEAF)
    for (const slabSize of SLABS) {
      for (const step of [1000, 65536, 300_000]) {
        const calls: Uint8Array[][] = []
        const { out, views, error } = await drain(chunked(car, step), root, make(calls), slabSize)
        t.is(error, undefined)
        t.true(out.equals(car), `slabs of ${slabSize}, chunks of ${step}`)
        t.true(views.every(v => v.buffer !== car.buffer), 'copies in slabs, not the source\'s chunks')
        t.deepEqual(calls.map(c => c.length), [16, 16, 9])
        // a leaf hashed in place is a view of a slab the output came from; one across slabs is a copy
        const slabs = new Set(views.map(v => v.buffer))
        const inPlace = calls.flat().filter(m => slabs.has(m.buffer)).length
        if (slabSize === 40_000) t.is(inPlace, 0, 'a leaf larger than a slab is copied out')
        if (slabSize === 1024 * 1024) t.true(inPlace >= leaves.length - 3, `${inPlace} of ${leaves.length} hashed in place`)
      }
    }
  })

  test(`${name}: a corrupted leaf in the middle of a batch, in one slab, across two slabs, or larger than a slab: ERR_BLOCK_MISMATCH after exactly the frames before it`, async t => {
    const { root, car } = await sample(t, 174)
    const all = await frames(car)
    for (const slabSize of SLABS) {
      // leaves 20 and 27: the fifth and the twelfth of the second batch of sixteen; the byte changed near the leaf's end
      for (const index of [21, 28]) {
        const victim = all[index]
        t.is(victim.cid.code, raw.code)
        const bad = Buffer.from(car)
        bad[victim.blockOffset + victim.length - 5] ^= 0xff
        const { out, error } = await drain(chunked(bad, 65536), root, make([]), slabSize)
        t.is(codeOf(error), 'ERR_BLOCK_MISMATCH', `slabs of ${slabSize}, leaf ${index}`)
        t.is(out.length, victim.offset, 'everything up to the bad leaf\'s frame, nothing of it')
        t.true(out.equals(car.subarray(0, victim.offset)))
      }
    }
    // a leaf across two slabs and one within a slab, with 100 000-byte slabs: both kinds were met above
    const start = (f: { offset: number }): number => Math.floor(f.offset / 100_000)
    const end = (f: { blockOffset: number, length: number }): number => Math.floor((f.blockOffset + f.length - 1) / 100_000)
    t.true([all[21], all[28]].some(f => start(f) !== end(f)))
  })
}

test.serial('a slab is used again once every byte of it was said written, never before', async t => {
  // batches of sixteen, so several slabs hold unverified leaves at once; slabs of another
  // size class in the pool than the copies of leaves across two of them
  const { root, car } = await sample(t, 174, 120)
  const slabSize = 300 * 1024
  const slabsNeeded = Math.ceil(car.length / slabSize)
  const recycled = await drain(chunked(car, 16_384), root, portable([]), slabSize)
  t.is(recycled.error, undefined)
  t.true(recycled.out.equals(car), 'no slab was overwritten before its bytes went out')
  const reused = new Set(recycled.views.map(v => v.buffer)).size
  t.true(reused < slabsNeeded / 2, `${reused} slabs for ${slabsNeeded} slabs' worth`)
  // never said written: every slab is a new one
  const kept = await drain(chunked(car, 16_384), root, portable([]), slabSize, false)
  t.true(kept.out.equals(car))
  t.is(new Set(kept.views.map(v => v.buffer)).size, slabsNeeded)
})

test('a failed batch job is the error, with nothing of its leaves let out', async t => {
  const { root, car } = await sample(t, 174)
  const all = await frames(car)
  let jobs = 0
  const failing: HashMany = async (messages) => {
    if (++jobs === 2) throw new Error('native SHA-256 job failed')
    return await portable([])(messages)
  }
  const { out, error } = await drain(chunked(car, 65536), root, failing, 1024 * 1024)
  t.is((error as Error).message, 'native SHA-256 job failed')
  // the root and the first batch of sixteen leaves
  t.is(out.length, all[17].offset)
  t.true(out.equals(car.subarray(0, all[17].offset)))
})
