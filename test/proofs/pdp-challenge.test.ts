/**
 * PDP data-set challenges (proofs/pdp-challenge.ts) against PDPVerifier.
 *
 * Vectors from FilOzone's PDP contracts repository: `test/Cids.t.sol`
 * (`testLeafCount`, `testIsPaddingExcessive`) and `test/PDPVerifier.t.sol`
 * (`setUpTestingArray` with `testSumTree`, `testFindPieceId`,
 * `testFindPieceIdTraverseOffTheEdgeAndBack`). The repository has no vector for
 * the keccak derivation itself, so viem's `keccak256(encodePacked(...))` — the
 * same encoding `abi.encodePacked(uint256, uint256, uint64)` makes — is the oracle.
 */
import test from 'ava'
import fc from 'fast-check'
import { encodePacked, keccak256 } from 'viem'
import {
  buildLayerCache, parsePieceCid, pdpChallengeLeaf, pdpChallenges, pdpLeafCount, PdpSumTree, pieceOf, proveLeaves,
  verifyLeafProof, type ReadAt
} from '../../proofs/index.js'
import { randomBytes } from './helpers.js'
import { codeOf, rejectsCode } from '../helpers/errors.js'

test('leaf counts: Cids.t.sol testLeafCount and testIsPaddingExcessive', t => {
  t.is(pdpLeafCount(30, 0n), 1n << 30n)
  t.is(pdpLeafCount(30, 127n), (1n << 30n) - 4n)
  t.is(pdpLeafCount(30, 128n), (1n << 30n) - 4n)
  t.is(pdpLeafCount(2, 127n), 0n)
  t.is(pdpLeafCount(2, 126n), 1n)
  t.is(pdpLeafCount(5, 1024n * 127n / 128n), 0n)
})

// PDPVerifier.t.sol setUpTestingArray: eight pieces, ids 2 and 5 removed (0 leaves)
const counts = [200n, 100n, 0n, 30n, 50n, 0n, 400n, 40n]

test('sum tree: PDPVerifier.t.sol testSumTree', t => {
  const tree = new PdpSumTree(counts)
  t.deepEqual(tree.sums, [200n, 300n, 0n, 330n, 50n, 50n, 400n, 820n])
  t.is(tree.total, 820n)
})

test('leaf to piece: PDPVerifier.t.sol testFindPieceId', t => {
  const tree = new PdpSumTree(counts)
  const vectors: Array<[bigint, number, bigint]> = [
    [0n, 0, 0n], [199n, 0, 199n], [200n, 1, 0n], [299n, 1, 99n], [300n, 3, 0n], [329n, 3, 29n],
    [330n, 4, 0n], [379n, 4, 49n], [380n, 6, 0n], [779n, 6, 399n], [780n, 7, 0n], [819n, 7, 39n]
  ]
  for (const [leaf, pieceId, offset] of vectors) t.deepEqual(tree.find(leaf), { pieceId, offset }, `leaf ${leaf}`)
  t.is(codeOf(() => tree.find(820n)), 'ERR_PROOF_LEAF_INDEX')
  t.is(codeOf(() => tree.find(1000n)), 'ERR_PROOF_LEAF_INDEX')
})

test('leaf to piece: PDPVerifier.t.sol testFindPieceIdTraverseOffTheEdgeAndBack', t => {
  const tree = new PdpSumTree([0n, 0n, 0n, 1n, 1n])
  t.deepEqual(tree.find(0n), { pieceId: 3, offset: 0n })
  t.deepEqual(tree.find(1n), { pieceId: 4, offset: 0n })
})

test('sum tree: node j sums the 2^ctz(j+1) counts ending at j, and find agrees with a linear scan (property)', t => {
  t.notThrows(() => fc.assert(fc.property(fc.array(fc.bigInt({ min: 0n, max: 1000n }), { minLength: 1, maxLength: 70 }), fc.nat(), (raw, pick) => {
    const tree = new PdpSumTree(raw)
    for (let j = 0; j < raw.length; j++) {
      const range = 2 ** Math.log2((j + 1) & -(j + 1))
      let expected = 0n
      for (let k = j + 1 - range; k <= j; k++) expected += raw[k] as bigint
      if (tree.sums[j] !== expected) return false
    }
    if (tree.total === 0n) return codeOf(() => tree.find(0n)) === 'ERR_PROOF_LEAF_INDEX'
    const leaf = BigInt(pick) % tree.total
    let start = 0n
    let pieceId = 0
    while (start + (raw[pieceId] as bigint) <= leaf) { start += raw[pieceId] as bigint; pieceId++ }
    const found = tree.find(leaf)
    return found.pieceId === pieceId && found.offset === leaf - start
  })))
})

test('challenge leaf: keccak256(abi.encodePacked(uint256 seed, uint256 setId, uint64 i)) mod leafCount, viem as oracle (property)', t => {
  const u256 = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })
  t.notThrows(() => fc.assert(fc.property(u256, u256, fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 1n, max: 1n << 70n }), (seed, setId, i, leafCount) => {
    const expected = BigInt(keccak256(encodePacked(['uint256', 'uint256', 'uint64'], [seed, setId, i]))) % leafCount
    const seedBytes = Uint8Array.from(Buffer.from(seed.toString(16).padStart(64, '0'), 'hex'))
    return pdpChallengeLeaf(seed, setId, i, leafCount) === expected && pdpChallengeLeaf(seedBytes, setId, i, leafCount) === expected
  }), { numRuns: 200 }))
})

test('challenge leaf: a fixed vector', t => {
  // keccak256 of 72 zero bytes (seed 0, set 0, index 0) reduced mod 1000, checked by viem above
  const expected = BigInt(keccak256(new Uint8Array(72))) % 1000n
  t.is(pdpChallengeLeaf(0n, 0n, 0, 1000n), expected)
})

test('challenge derivation refuses malformed input with codes', t => {
  t.is(codeOf(() => pdpChallengeLeaf(new Uint8Array(31), 1n, 0, 10n)), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => pdpChallengeLeaf(1n << 256n, 1n, 0, 10n)), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => pdpChallengeLeaf(1n, -1n, 0, 10n)), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => pdpChallengeLeaf(1n, 1n, 1n << 64n, 10n)), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => pdpChallengeLeaf(1n, 1n, 0, 0n)), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => pdpChallenges({ seed: 1n, dataSetId: 1n, count: 0 }, [4n])), 'ERR_PROOF_MALFORMED')
  t.is(codeOf(() => new PdpSumTree([1n, -1n])), 'ERR_PROOF_MALFORMED')
})

function reader (bytes: Uint8Array): ReadAt {
  return (offset, length) => bytes.subarray(offset, offset + length)
}

test('a data set of three pieces: challenged leaves are proven with sha2-256-trunc254 paths and verify; a forged leaf does not', async t => {
  const payloads = [randomBytes(5000), randomBytes(127), randomBytes(70_000)]
  const pieces = await Promise.all(payloads.map(async (bytes) => {
    const { cid } = await pieceOf(bytes)
    const link = parsePieceCid(cid)
    return { bytes, cid, cache: await buildLayerCache(cid, reader(bytes), { level: 4 }), leaves: pdpLeafCount(link.height, link.padding) }
  }))
  const challenges = pdpChallenges({ seed: 0x1234n, dataSetId: 7n, count: 24 }, pieces.map(p => p.leaves))
  t.is(challenges.length, 24)
  const seen = new Set<number>()
  for (const c of challenges) {
    const piece = pieces[c.pieceId]
    t.truthy(piece)
    if (piece === undefined) continue
    t.true(c.offset < piece.leaves)
    seen.add(c.pieceId)
    const [proof] = await proveLeaves(piece.cid, [Number(c.offset)], reader(piece.bytes), piece.cache)
    t.notThrows(() => verifyLeafProof(piece.cid, Number(c.offset), proof as never))
  }
  t.true(seen.has(2), 'the largest piece is challenged')
  const first = challenges[0] as { pieceId: number, offset: bigint }
  const piece = pieces[first.pieceId] as (typeof pieces)[number]
  const [proof] = await proveLeaves(piece.cid, [Number(first.offset)], reader(piece.bytes), piece.cache)
  const forged = { ...proof as { index: number, leaf: Uint8Array, path: Uint8Array[] } }
  forged.leaf = forged.leaf.slice()
  forged.leaf[0] = (forged.leaf[0] as number) ^ 1
  t.is(codeOf(() => verifyLeafProof(piece.cid, Number(first.offset), forged)), 'ERR_PROOF_ROOT_MISMATCH')
  t.is(codeOf(() => verifyLeafProof(piece.cid, Number(first.offset) + 1, proof as never)), 'ERR_PROOF_LEAF_INDEX')
  await rejectsCode(t, proveLeaves(piece.cid, [2 ** 40], reader(piece.bytes), piece.cache), 'ERR_PROOF_LEAF_INDEX')
})
