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
