import test from 'ava'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as Digest from 'multiformats/hashes/digest'
import { parsePieceCid, pieceCidV1, pieceCidV2, pieceCidV1FromV2, pieceCidV2FromV1 } from '../../proofs/index.js'
import { throwsCode } from '../helpers/errors.js'

const root = Uint8Array.from({ length: 32 }, (_, i) => i)

test('v2 round-trips root, height and padding', t => {
  for (const [height, padding] of [[2, 127n], [5, 0n], [30, 123456789n], [45, 2n ** 40n]] as Array<[number, bigint]>) {
    const cid = pieceCidV2(root, height, padding)
    t.true(cid.toString().startsWith('bafkzcib'))
    const parsed = parsePieceCid(cid.toString())
    t.deepEqual(parsed.root, root)
    t.is(parsed.height, height)
    t.is(parsed.padding, padding)
    t.is(parsed.paddedSize, 32n << BigInt(height))
    t.is(parsed.payloadSize, (32n << BigInt(height)) / 128n * 127n - padding)
  }
})

test('v1 <-> v2', t => {
  const v2 = pieceCidV2(root, 10, 0n)
  const { cidV1, paddedSize } = pieceCidV1FromV2(v2)
  t.true(cidV1.toString().startsWith('baga6ea4sea'))
  t.is(cidV1.toString(), pieceCidV1(root).toString())
  t.is(paddedSize, 32768n)
  t.is(pieceCidV2FromV1(cidV1, paddedSize).toString(), v2.toString())
})

const notPieces: Array<[string, () => string | CID]> = [
  ['garbage', () => 'not-a-cid'],
  ['sha2-256 raw CID', () => CID.createV1(0x55, Digest.create(0x12, new Uint8Array(32))).toString()],
  ['v1 piece CID', () => pieceCidV1(root).toString()],
  ['dag-pb CIDv0', () => 'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n'],
  ['digest too short', () => CID.createV1(0x55, Digest.create(0x1011, new Uint8Array(20))).toString()],
  ['padding larger than the piece', () => pieceCidV2(root, 3, 300n)],
  ['non-minimal tree (padding ≥ the data)', () => pieceCidV2(root, 10, 20000n)],
  ['non-minimal varint', () => CID.createV1(0x55, Digest.create(0x1011, Uint8Array.from([0x80, 0x00, 2, ...root]))).toString()]
]

for (const [name, make] of notPieces) {
  test(`parsePieceCid rejects ${name} with ERR_INVALID_PIECE_CID`, async t => {
    const input = make()
    throwsCode(t, () => parsePieceCid(input), 'ERR_INVALID_PIECE_CID')
  })
}

test('pieceCidV2FromV1 rejects non-v1 and bad sizes', async t => {
  const sha = await sha256.digest(new Uint8Array(1))
  throwsCode(t, () => pieceCidV2FromV1(CID.createV1(0x55, sha), 1024n), 'ERR_INVALID_PIECE_CID')
  throwsCode(t, () => pieceCidV2FromV1(pieceCidV1(root), 1000n), 'ERR_INVALID_PIECE_CID')
})
