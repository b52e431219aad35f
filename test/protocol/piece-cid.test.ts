/**
 * A deal reads its piece CID as proofs/ does (FRC-0069 piece CID v2): a piece
 * CID the proofs library refuses cannot be proposed, and the sizes a deal
 * checks against are the ones proofs/ proves against.
 */
import test from 'ava'
import fc from 'fast-check'
import { parsePieceCid, pieceCidV1, pieceCidV2 } from '../../proofs/index.js'
import { MAX_PIECE_HEIGHT, pieceCidInfo } from '../../src/protocol/piece-cid.js'
import { codeOf } from '../helpers/errors.js'

const root = Uint8Array.from({ length: 32 }, (_, i) => 255 - i)

test('piece CIDs that FRC-0069 forbids and proofs/ refuses are refused in a deal too', t => {
  const cases: Array<[string, number, bigint]> = [
    // 1000 bytes of data in a tree of 32 KiB: padding ≥ the data, so a lower tree would hold it
    ['a tree larger than its data needs', 10, 32512n - 1000n],
    // one or two leaves hold no whole Fr32 quad, so there is no payload to pad
    ['padding on a two-leaf tree', 1, 3n],
    ['padding on a one-leaf tree', 0, 1n]
  ]
  for (const [name, height, padding] of cases) {
    const cid = pieceCidV2(root, height, padding)
    t.is(codeOf(() => parsePieceCid(cid)), 'ERR_INVALID_PIECE_CID', name)
    const err = t.throws(() => pieceCidInfo(cid, 'proposal.pieceCid'), undefined, name)
    t.is((err as { code?: string }).code, 'ERR_INVALID_MESSAGE', name)
    t.regex(err?.message ?? '', /^proposal\.pieceCid: /, name)
  }
})

test('a legacy v1 piece CID and a tree above the deal limit are refused with the field named', t => {
  for (const cid of [pieceCidV1(root), pieceCidV2(root, MAX_PIECE_HEIGHT + 1, 0n)]) {
    const err = t.throws(() => pieceCidInfo(cid, 'proposal.pieceCid'))
    t.is((err as { code?: string }).code, 'ERR_INVALID_MESSAGE')
    t.regex(err?.message ?? '', /^proposal\.pieceCid: /)
  }
})

test('on any v2 digest the deal accepts exactly what proofs/ accepts, with the same sizes (fast-check)', t => {
  t.notThrows(() => fc.assert(fc.property(
    fc.integer({ min: 0, max: MAX_PIECE_HEIGHT }),
    fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
    fc.nat({ max: 100 }),
    (height, bigPadding, percent) => {
      // paddings spread over the whole capacity of the tree, and a few past it
      const capacity = (32n << BigInt(height)) / 128n * 127n
      const padding = percent === 100 ? bigPadding : capacity * BigInt(percent) / 100n
      const cid = pieceCidV2(root, height, padding)
      let expected: ReturnType<typeof parsePieceCid> | undefined
      try { expected = parsePieceCid(cid) } catch { expected = undefined }
      if (expected === undefined) return codeOf(() => pieceCidInfo(cid)) === 'ERR_INVALID_MESSAGE'
      const info = pieceCidInfo(cid)
      return info.paddedSize === expected.paddedSize && info.payloadSize === expected.payloadSize &&
        info.padding === expected.padding && info.height === expected.height
    }
  ), { numRuns: 500 }))
})
