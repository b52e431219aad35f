/**
 * Challenge, prove and verify (docs/protocol.md "Proofs"). Honest proofs verify; every way of
 * cheating is rejected with its own code.
 */
import test from 'ava'
import { sha256 } from '@noble/hashes/sha2.js'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import {
  pieceOf, parsePieceCid, challengeIndices, challengeLeafCount, buildLayerCache, provePiece, proveLeaves, verifyPieceProof,
  LayerCache, LayerFile, RESIDENT_NODES, type Challenge, type PieceProof, type ReadAt
} from '../../proofs/index.js'
import { randomBytes } from './helpers.js'
import { rejectsCode, throwsCode } from '../helpers/errors.js'

const dealId = CID.createV1(0x71, Digest.create(0x12, sha256(new TextEncoder().encode('a deal'))))

function reader (bytes: Uint8Array): ReadAt {
  return (offset, length) => bytes.subarray(offset, offset + length)
}

function challenge (count = 16): Challenge {
  return { dealId, seed: randomBytes(32), count }
}

async function setup (size: number, level?: number): Promise<{ bytes: Uint8Array, cid: string, cache: LayerCache }> {
  const bytes = randomBytes(size)
  const { cid } = await pieceOf(bytes)
  const cache = await buildLayerCache(cid.toString(), reader(bytes), { level })
  return { bytes, cid: cid.toString(), cache }
}

test('leaf indices follow docs/protocol.md "Proofs" exactly', t => {
  const seed = Uint8Array.from({ length: 32 }, (_, i) => i)
  const piece = { height: 5, padding: 504n } // FRC-0069 vector: 512 payload bytes in a 32-leaf tree
  t.is(challengeLeafCount(5, 504n), 32 - 15)
  const indices = challengeIndices({ dealId, seed, count: 4 }, piece)
  const domain = new TextEncoder().encode('cairn/challenge/v1')
  for (let k = 0; k < 4; k++) {
    const counter = new Uint8Array(8)
    new DataView(counter.buffer).setBigUint64(0, BigInt(k))
    const digest = sha256(new Uint8Array([...domain, ...seed, ...dealId.bytes, ...counter]))
    const value = BigInt('0x' + Buffer.from(digest).toString('hex'))
    t.is(indices[k], Number(value % 17n))
  }
})

for (const [size, level] of [[1, undefined], [127 * 4 + 3, undefined], [300_000, undefined], [3 * 1024 * 1024 + 17, undefined], [3 * 1024 * 1024 + 17, 2], [1024 * 1024, 16]] as Array<[number, number | undefined]>) {
  test(`honest proof verifies (${size} bytes, cache level ${level ?? 'default'})`, async t => {
    const { bytes, cid, cache } = await setup(size, level)
    const c = challenge()
    const proof = await provePiece(cid, c, reader(bytes), cache)
    t.is(proof.proofs.length, 16)
    t.notThrows(() => verifyPieceProof(cid, c, proof))
    // the cache survives encoding
    const again = LayerCache.decode(cache.encode(), cid)
    const second = await provePiece(cid, c, reader(bytes), again)
    t.notThrows(() => verifyPieceProof(cid, c, second))
    // upper layers derived in JS equal those derived by the addon
    const portable = new LayerCache(cache.height, cache.level, cache.nodes, { portable: true })
    t.deepEqual(portable.root(), cache.root())
    t.deepEqual(await provePiece(cid, c, reader(bytes), portable), second)
  })
}

test('never challenges padding leaves', t => {
  const piece = { height: 5, padding: 504n }
  for (let i = 0; i < 50; i++) {
    for (const index of challengeIndices(challenge(16), piece)) t.true(index < 17)
  }
})

async function honest (): Promise<{ bytes: Uint8Array, cid: string, cache: LayerCache, c: Challenge, proof: PieceProof }> {
  const { bytes, cid, cache } = await setup(200_000)
  const c = challenge()
  return { bytes, cid, cache, c, proof: await provePiece(cid, c, reader(bytes), cache) }
}

test('wrong leaf → ERR_PROOF_ROOT_MISMATCH', async t => {
  const { cid, c, proof } = await honest()
  proof.proofs[3].leaf = proof.proofs[3].leaf.slice()
  proof.proofs[3].leaf[0] ^= 1
  throwsCode(t, () => verifyPieceProof(cid, c, proof), 'ERR_PROOF_ROOT_MISMATCH')
})

test('wrong sibling → ERR_PROOF_ROOT_MISMATCH', async t => {
  const { cid, c, proof } = await honest()
  proof.proofs[0].path[7] = new Uint8Array(32)
  throwsCode(t, () => verifyPieceProof(cid, c, proof), 'ERR_PROOF_ROOT_MISMATCH')
})

test('proof of another leaf → ERR_PROOF_LEAF_INDEX', async t => {
  const { cid, c, proof } = await honest()
  proof.proofs[2].index += 1
  throwsCode(t, () => verifyPieceProof(cid, c, proof), 'ERR_PROOF_LEAF_INDEX')
})

test('answer to another challenge → ERR_PROOF_LEAF_INDEX', async t => {
  const { cid, proof } = await honest()
  throwsCode(t, () => verifyPieceProof(cid, challenge(), proof), 'ERR_PROOF_LEAF_INDEX')
})

test('too few leaf proofs → ERR_PROOF_MALFORMED', async t => {
  const { cid, c, proof } = await honest()
  proof.proofs.pop()
  throwsCode(t, () => verifyPieceProof(cid, c, proof), 'ERR_PROOF_MALFORMED')
})

test('short path → ERR_PROOF_MALFORMED', async t => {
  const { cid, c, proof } = await honest()
  proof.proofs[1].path.pop()
  throwsCode(t, () => verifyPieceProof(cid, c, proof), 'ERR_PROOF_MALFORMED')
})

test('a proof of another piece → ERR_PROOF_PIECE_MISMATCH; replayed against another piece → ERR_PROOF_ROOT_MISMATCH', async t => {
  const a = await honest()
  const b = await setup(200_000)
  throwsCode(t, () => verifyPieceProof(b.cid, a.c, a.proof), 'ERR_PROOF_PIECE_MISMATCH')
  // relabelled as the other piece (same height and padding), the paths do not lead to its root
  const relabelled = { ...a.proof, piece: parsePieceCid(b.cid).cid }
  throwsCode(t, () => verifyPieceProof(b.cid, a.c, relabelled), 'ERR_PROOF_ROOT_MISMATCH')
})

test('a cache of another piece → ERR_LAYER_CACHE_INVALID', async t => {
  const a = await setup(100_000)
  const b = await setup(100_000)
  await rejectsCode(t, provePiece(a.cid, challenge(), reader(a.bytes), b.cache), 'ERR_LAYER_CACHE_INVALID')
  throwsCode(t, () => LayerCache.decode(b.cache.encode(), a.cid), 'ERR_LAYER_CACHE_INVALID')
  throwsCode(t, () => LayerCache.decode(new Uint8Array(10)), 'ERR_LAYER_CACHE_INVALID')
})

test('lost or altered data → ERR_PIECE_CORRUPT; unreadable → ERR_PIECE_READ', async t => {
  const { bytes, cid, cache } = await setup(100_000)
  const damaged = bytes.slice()
  for (let i = 0; i < damaged.length; i += 1000) damaged[i] ^= 0xff
  await rejectsCode(t, provePiece(cid, challenge(), reader(damaged), cache), 'ERR_PIECE_CORRUPT')
  await rejectsCode(t, buildLayerCache(cid, reader(damaged)), 'ERR_PIECE_CORRUPT')
  await rejectsCode(t, provePiece(cid, challenge(), reader(bytes.subarray(0, 10)), cache), 'ERR_PIECE_READ')
  await rejectsCode(t, provePiece(cid, challenge(), () => { throw new Error('EIO') }, cache), 'ERR_PIECE_READ')
})

test('the piece hasher collects the same layer cache as buildLayerCache, for every engine', async t => {
  const { availableEngines } = await import('../../proofs/engines.js')
  const K = 127 * 8192
  for (const [size, level] of [[0, 10], [1, 10], [127 * 256, 10], [127 * 256 + 1, 10], [K, 10], [3 * K + 777, 10], [2 * K + 5, 15], [K + 99, 2], [K + 99, 7], [5000, 12]] as Array<[number, number]>) {
    const bytes = randomBytes(size)
    const { cid } = await pieceOf(bytes)
    const expected = size === 0 ? undefined : await buildLayerCache(cid.toString(), reader(bytes), { level })
    for (const engine of availableEngines()) {
      const piece = await pieceOf([bytes.subarray(0, 1000), bytes.subarray(1000)], { engine, layerLevel: level })
      t.is(piece.cid.toString(), cid.toString())
      const layers = piece.layers as LayerCache
      t.deepEqual(layers.root(), piece.root, `${engine} ${size}/${level}`)
      if (expected !== undefined) {
        t.is(layers.level, expected.level, `${engine} ${size}/${level}`)
        t.deepEqual(layers.nodes, expected.nodes, `${engine} ${size}/${level}`)
        const c = challenge(8)
        const proof = await provePiece(cid.toString(), c, reader(bytes), layers)
        t.notThrows(() => verifyPieceProof(cid.toString(), c, proof))
      }
    }
  }
})

/** A LayerFile over an encoded cache held in memory, as the provider holds one on disk. */
async function loaded (encoded: Uint8Array, cid: string, resident: number, portable = false): Promise<LayerCache | LayerFile> {
  return await LayerFile.load(reader(encoded), encoded.length, cid, { resident, portable })
}

/** A reader that counts the bytes it hands out. */
function counted (bytes: Uint8Array): { read: ReadAt, total: () => number } {
  let total = 0
  return { read: (offset, length) => { const part = bytes.subarray(offset, offset + length); total += part.length; return part }, total: () => total }
}

for (const [size, level, resident] of [[3 * 1024 * 1024 + 17, undefined, 4], [3 * 1024 * 1024 + 17, undefined, 1], [300_000, 2, 16], [1024 * 1024, 12, 1], [127 * 256 * 64, undefined, 8]] as Array<[number, number | undefined, number]>) {
  test(`a layer file keeps at most ${resident} nodes of a layer in memory and proves as the whole cache does (${size} bytes, level ${level ?? 'default'})`, async t => {
    const { bytes, cid, cache } = await setup(size, level)
    for (const [portable, version] of [[false, 1], [true, 1], [false, 2], [true, 2]] as Array<[boolean, number]>) {
      // v1 reduced as it is read; v2 (written with the limit) loaded, or made from the cache as a prover does after building it
      const encoded = version === 1 ? cache.encode() : cache.encode({ resident })
      for (const file of [await loaded(encoded, cid, resident, portable), ...(version === 2 ? [LayerFile.from(cache, { resident, portable })] : [])]) {
        if (!(file instanceof LayerFile)) {
          t.fail(`a ${cache.nodes.length / 32}-node layer should not stay whole under a limit of ${resident}`)
          continue
        }
        t.true(file.resident.nodes.length <= resident * 32)
        t.true(file.resident.level > cache.level)
        t.deepEqual(file.root(), cache.root())
        const c = challenge()
        const expected = await provePiece(cid, c, reader(bytes), cache)
        t.deepEqual(await provePiece(cid, c, reader(bytes), file.reading(reader(encoded))), expected)
        // every leaf of the first and last regions, where runs are cut short by the payload's end
        const last = Math.floor((size * 128 / 127 - 1) / 32)
        const indices = [0, 1, 2 ** cache.level - 1, 2 ** cache.level, last, Math.max(0, last - 2 ** cache.level)]
        t.deepEqual(await proveLeaves(cid, indices, reader(bytes), file.reading(reader(encoded))), await proveLeaves(cid, indices, reader(bytes), cache))
      }
    }
  })
}

test('a v2 layer file is loaded from its header and resident layer alone, and decodes to the same cache', async t => {
  const { bytes, cid, cache } = await setup(3 * 1024 * 1024 + 17)
  const v1 = cache.encode()
  const v2 = cache.encode({ resident: 4 })
  t.true(v2.length > v1.length)
  const reads = counted(v2)
  const file = await LayerFile.load(reads.read, v2.length, cid)
  if (!(file instanceof LayerFile)) throw new Error('a v2 file loads as a LayerFile')
  t.true(reads.total() <= 24 + 4 + file.resident.nodes.length, `read ${reads.total()} bytes`)
  t.true(file.resident.nodes.length <= 4 * 32)
  t.deepEqual(LayerCache.decode(v2, cid).nodes, cache.nodes)
  const c = challenge()
  t.deepEqual(await provePiece(cid, c, reader(bytes), file.reading(reader(v2))), await provePiece(cid, c, reader(bytes), cache))
  // the v1 encoding of the same cache is read whole
  const legacy = counted(v1)
  await LayerFile.load(legacy.read, v1.length, cid, { resident: 4 })
  t.true(legacy.total() >= v1.length)
})

test('a v2 layer file whose resident layer or count is wrong → ERR_LAYER_CACHE_INVALID', async t => {
  const { cid, cache } = await setup(3 * 1024 * 1024 + 17)
  const v2 = cache.encode({ resident: 4 })
  const resident = v2.slice()
  resident[30] ^= 1
  await rejectsCode(t, loaded(resident, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'resident layer changed')
  throwsCode(t, () => LayerCache.decode(resident, cid), 'ERR_LAYER_CACHE_INVALID', 'resident layer changed')
  const count = v2.slice()
  count[27] += 1
  await rejectsCode(t, loaded(count, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'resident count changed')
  throwsCode(t, () => LayerCache.decode(count, cid), 'ERR_LAYER_CACHE_INVALID', 'resident count changed')
  const top = v2.slice()
  top[23] = 60
  await rejectsCode(t, loaded(top, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'resident level above the height')
})

test('a layer file small enough to hold stays a whole LayerCache', async t => {
  const { cid, cache } = await setup(300_000)
  t.true(cache.nodes.length / 32 <= RESIDENT_NODES)
  const file = await LayerFile.load(reader(cache.encode()), cache.encode().length, cid)
  t.true(file instanceof LayerCache)
  t.deepEqual((file as LayerCache).nodes, cache.nodes)
  t.is(LayerFile.from(cache), cache)
})

test('a layer file that is corrupt, cut short, of another piece or changed after loading → ERR_LAYER_CACHE_INVALID', async t => {
  const { bytes, cid, cache } = await setup(3 * 1024 * 1024 + 17)
  const other = await setup(3 * 1024 * 1024 + 17)
  const encoded = cache.encode()
  const magic = encoded.slice()
  magic[0] ^= 1
  await rejectsCode(t, loaded(magic, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'bad magic')
  await rejectsCode(t, loaded(encoded.subarray(0, encoded.length - 1), cid, 4), 'ERR_LAYER_CACHE_INVALID', 'not whole nodes')
  await rejectsCode(t, LayerFile.load(reader(encoded.subarray(0, encoded.length - 64)), encoded.length, cid, { resident: 4 }), 'ERR_LAYER_CACHE_INVALID', 'shorter than its size')
  await rejectsCode(t, loaded(other.cache.encode(), cid, 4), 'ERR_LAYER_CACHE_INVALID', 'another piece')
  const flipped = encoded.slice()
  flipped[encoded.length - 5] ^= 1
  await rejectsCode(t, loaded(flipped, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'a node changed')
  const tall = encoded.slice()
  tall[tall.indexOf(10, 20)] = 60
  await rejectsCode(t, loaded(tall, cid, 4), 'ERR_LAYER_CACHE_INVALID', 'a level above the height')
  // loaded, then the file changes under it: every run read afterwards is checked against the resident layer
  const file = await loaded(encoded, cid, 4) as LayerFile
  const leaves = Array.from({ length: 2 ** cache.level * file.span }, (_, i) => i)
  const changed = encoded.slice()
  for (let i = encoded.length - 32 * 97; i < encoded.length; i += 32) changed[i] ^= 1
  await rejectsCode(t, proveLeaves(cid, [0, ...leaves.slice(-1)], reader(bytes), file.reading(reader(changed))), 'ERR_LAYER_CACHE_INVALID', 'changed after loading')
  await rejectsCode(t, proveLeaves(cid, [0], reader(bytes), file.reading(reader(encoded.subarray(0, 100)))), 'ERR_LAYER_CACHE_INVALID', 'cut after loading')
  await rejectsCode(t, proveLeaves(cid, [0], reader(bytes), file.reading(() => { throw new Error('EIO') })), 'ERR_PIECE_READ', 'unreadable after loading')
})
