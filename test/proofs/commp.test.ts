/**
 * CommP and piece CIDs against the FRC-0069 test vectors and against two
 * reference implementations used as oracles: @web3-storage/data-segment
 * (Piece.fromPayload, JS) and fr32-sha2-256-trunc254-padded-binary-tree-multihash
 * (Rust compiled to WASM).
 */
import test from 'ava'
import fc from 'fast-check'
import { Piece } from '@web3-storage/data-segment'
import * as WasmHasher from 'fr32-sha2-256-trunc254-padded-binary-tree-multihash'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { createPieceHasher, pieceOf, parsePieceCid, pieceCidV1FromV2, pieceCidV2FromV1 } from '../../proofs/index.js'
import { availableEngines } from '../../proofs/engines.js'
import { fixture, fromRuns, randomBytes, splitAt } from './helpers.js'
import { rejectsCode, throwsCode } from '../helpers/errors.js'

interface Vectors {
  payloads: Array<{ name: string, runs: Array<[number, number]>, padding: number, height: number, cidV1?: string, cidV2: string }>
  conversions: Array<{ name: string, paddedSize: string, padding: number, cidV1: string, cidV2: string }>
}
const vectors = fixture<Vectors>('frc-0069.json')

const engines = availableEngines()

function wasmPieceCid (bytes: Uint8Array): string {
  const hasher = WasmHasher.create()
  hasher.write(bytes)
  const digest = new Uint8Array(hasher.multihashByteLength())
  hasher.digestInto(digest, 0, true)
  hasher.free()
  return CID.createV1(0x55, Digest.decode(digest)).toString()
}

for (const engine of engines) {
  for (const v of vectors.payloads) {
    test(`FRC-0069 vector (${engine}): ${v.name}`, async t => {
      const piece = await pieceOf(fromRuns(v.runs), { engine })
      t.is(piece.cid.toString(), v.cidV2)
      if (v.cidV1 !== undefined) t.is(piece.cidV1.toString(), v.cidV1)
      t.is(piece.padding, BigInt(v.padding))
      t.is(piece.height, v.height)
      const parsed = parsePieceCid(v.cidV2)
      t.is(parsed.payloadSize, BigInt(fromRuns(v.runs).length))
      t.is(parsed.height, v.height)
    })
  }
}

for (const v of vectors.conversions) {
  test(`FRC-0069 conversion: ${v.name}`, t => {
    t.is(pieceCidV2FromV1(v.cidV1, BigInt(v.paddedSize), BigInt(v.padding)).toString(), v.cidV2)
    const back = pieceCidV1FromV2(v.cidV2)
    t.is(back.cidV1.toString(), v.cidV1)
    t.is(back.paddedSize, BigInt(v.paddedSize))
  })
}

const K = 127 * 2 ** 13
const edgeSizes = [0, 1, 31, 32, 64, 65, 126, 127, 128, 254, 255, 508, 1015, 1016, 1017,
  127 * 2 ** 10 - 1, 127 * 2 ** 10, 127 * 2 ** 10 + 1, K - 1, K, K + 1, 2 * K - 1, 2 * K, 2 * K + 1, 3 * K + 12345]

// payloads and the oracle's answers are computed once and shared by every engine
let edgeCases: Array<{ size: number, bytes: Uint8Array, v2: string, v1: string, paddedSize: bigint }> | undefined
function edges (): NonNullable<typeof edgeCases> {
  edgeCases ??= edgeSizes.map(size => {
    const bytes = randomBytes(size)
    const expected = Piece.fromPayload(bytes)
    return { size, bytes, v2: expected.link.toString(), v1: expected.toInfo().link.toString(), paddedSize: BigInt(expected.size) }
  })
  return edgeCases
}

for (const engine of engines) {
  test(`edge sizes equal data-segment, whole and streamed (${engine})`, async t => {
    for (const { size, bytes, v2, v1, paddedSize } of edges()) {
      const whole = await pieceOf(bytes, { engine })
      t.is(whole.cid.toString(), v2, `size ${size}`)
      t.is(whole.cidV1.toString(), v1, `v1, size ${size}`)
      t.is(whole.paddedSize, paddedSize, `padded size, size ${size}`)
      t.is(whole.payloadSize, BigInt(size))
      const streamed = await pieceOf(splitAt(bytes, [1, 100, 127 * 3, K - 5, K + 7]), { engine })
      t.is(streamed.cid.toString(), v2, `streamed, size ${size}`)
    }
  })
}

test(`random payloads and split points equal data-segment (engines: ${engines.join(', ')})`, async t => {
  await fc.assert(fc.asyncProperty(
    fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: 5 * 1024 * 1024 })),
    fc.array(fc.nat(), { maxLength: 6 }),
    async (size, rawCuts) => {
      const bytes = randomBytes(size)
      const expected = Piece.fromPayload(bytes).link.toString()
      for (const engine of engines) {
        const piece = await pieceOf(splitAt(bytes, rawCuts.map(c => c % (size + 1))), { engine })
        if (piece.cid.toString() !== expected) return false
      }
      return true
    }), { numRuns: 16 })
  t.pass()
})

test('agrees with the Rust/WASM hasher', async t => {
  for (const size of [0, 65, 127, 128, 9999, K + 1, 3 * 1024 * 1024]) {
    const bytes = randomBytes(size)
    t.is((await pieceOf(bytes)).cid.toString(), wasmPieceCid(bytes), `size ${size}`)
  }
})

test('the hasher copies what it keeps: caller buffers may be reused after update', async t => {
  const bytes = randomBytes(3 * K + 999)
  const hasher = createPieceHasher()
  const buffer = new Uint8Array(65536 + 3)
  for (let off = 0; off < bytes.length; off += buffer.length) {
    const n = Math.min(buffer.length, bytes.length - off)
    buffer.set(bytes.subarray(off, off + n))
    await hasher.update(buffer.subarray(0, n))
    buffer.fill(0xee)
  }
  t.is((await hasher.digest()).cid.toString(), Piece.fromPayload(bytes).link.toString())
})

test('updates not awaited one by one still hash in order', async t => {
  const bytes = randomBytes(5 * K + 12345)
  const expected = Piece.fromPayload(bytes).link.toString()
  for (const engine of engines) {
    const hasher = createPieceHasher({ engine })
    const pending: Array<void | Promise<void>> = []
    for (let off = 0; off < bytes.length; off += 300_001) pending.push(hasher.update(bytes.slice(off, off + 300_001)))
    await Promise.all(pending)
    t.is((await hasher.digest()).cid.toString(), expected, engine)
  }
})

test('a digested hasher refuses more input', async t => {
  const hasher = createPieceHasher()
  await hasher.update(new Uint8Array(10))
  await hasher.digest()
  throwsCode(t, () => { void hasher.update(new Uint8Array(1)) }, 'ERR_HASHER_FINISHED')
  await rejectsCode(t, hasher.digest(), 'ERR_HASHER_FINISHED')
})

/** Feeds `bytes` with the ranges in `gaps` skipped, then digests reading them back from `bytes`. */
async function withGaps (bytes: Uint8Array, gaps: Array<[number, number]>, engine: string, pieces = 3): Promise<string> {
  const hasher = createPieceHasher({ engine: engine as 'native' })
  let at = 0
  const feed = async (end: number): Promise<void> => {
    // in a few updates of their own, so gaps and updates meet in every order
    const step = Math.max(1, Math.ceil((end - at) / pieces))
    for (; at < end; at = Math.min(end, at + step)) await hasher.update(bytes.slice(at, Math.min(end, at + step)))
  }
  for (const [start, end] of gaps) {
    await feed(start)
    await hasher.skip(end - start)
    at = end
  }
  await feed(bytes.length)
  let reads = 0
  const piece = await hasher.digest({ read: (offset, length) => { reads++; return bytes.slice(offset, offset + length) } })
  if (gaps.some(([a, b]) => b > a) && reads === 0) throw new Error('skipped bytes were never read back')
  return piece.cid.toString()
}

test(`skipped bytes read back at digest give the piece of the whole payload (engines: ${engines.join(', ')})`, async t => {
  const cases: Array<[number, Array<[number, number]>]> = [
    [3 * K + 12345, [[0, 60]]],
    [3 * K + 12345, [[0, 60], [K - 10, K + 40_000], [3 * K + 100, 3 * K + 200]]],
    [2 * K, [[K, 2 * K]]],
    [1000, [[0, 10], [500, 1000]]],
    [5 * K + 7, [[0, 5 * K + 7]]]
  ]
  for (const engine of engines) {
    for (const [size, gaps] of cases) {
      const bytes = randomBytes(size)
      t.is(await withGaps(bytes, gaps, engine), Piece.fromPayload(bytes).link.toString(), `${engine}, size ${size}, gaps ${JSON.stringify(gaps)}`)
    }
  }
  const run = await fc.check(fc.asyncProperty(
    fc.integer({ min: 1, max: 4 * 1024 * 1024 }),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 2 * K })), { maxLength: 5 }),
    async (size, raw) => {
      const bytes = randomBytes(size)
      // sorted, non-overlapping gaps inside the payload
      const gaps: Array<[number, number]> = []
      for (const start of raw.map(([s, n]) => [s % size, n] as const).sort((a, b) => a[0] - b[0])) {
        const from = Math.max(start[0], gaps.at(-1)?.[1] ?? 0)
        gaps.push([from, Math.min(size, from + start[1])])
      }
      const expected = Piece.fromPayload(bytes).link.toString()
      for (const engine of engines) if (await withGaps(bytes, gaps, engine) !== expected) return false
      return true
    }), { numRuns: 12 })
  t.false(run.failed, `counterexample: ${JSON.stringify(run.counterexample)?.slice(0, 200)}`)
})

test('skip: digest without a way to read the skipped bytes back, a short read, a layer cache and a bad count are refused', async t => {
  const hasher = createPieceHasher()
  await hasher.update(randomBytes(100))
  await hasher.skip(50)
  await t.throwsAsync(hasher.digest(), { instanceOf: TypeError })

  const short = createPieceHasher()
  await short.skip(3 * K)
  await short.update(randomBytes(10))
  await t.throwsAsync(short.digest({ read: () => new Uint8Array(5) }), { code: 'ERR_PIECE_READ' } as never)

  const layered = createPieceHasher({ layerLevel: 10 })
  t.throws(() => { void layered.skip(1) }, { instanceOf: RangeError })
  t.throws(() => { void createPieceHasher().skip(-1) }, { instanceOf: RangeError })
})
