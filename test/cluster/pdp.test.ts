/**
 * PDP on a cluster (docs/cluster.md "PDP"): a data set created through one
 * node is read, added to and proven through another, since its state and the
 * PDP piece registry live in the shared database; a piece stays on the node
 * that received it, and another node reads it from there.
 */
import test, { type ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { generatePrivateKey } from 'viem/accounts'
import { generateClusterSecret, parseClusterSecret } from '../../src/cluster/auth.js'
import { MAX_LEAVES_PER_REQUEST, readRemoteLeaves } from '../../src/cluster/proofs.js'
import { CairnError } from '../../src/errors.js'
import type { AppendItem } from '../../src/ledger/interface.js'
import type { ProviderNode } from '../../src/provider/node.js'
import { verifyDataSetProof, type DataSetProof } from '../../src/pdp/prove.js'
import { spaces } from '../../src/state/spaces.js'
import { add, codeOf, create, createdId, PAYEE, send, upload, type World } from '../pdp/dataset-world.js'
import { dfsPiece, importInto, MemoryBlocks } from '../provider/fixtures.js'
import { flippingHolder, twoProviderNodes, until } from './helpers.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
/** The dataset-world helpers need only a node's URL. */
const at = (node: ProviderNode): World => ({ url: node.url }) as World

const absent = async (path: string): Promise<boolean> => await access(path).then(() => false, () => true)

/** Nothing of `piece` is written on `node`: no file, no layer cache, no location. */
async function notOn (t: ExecutionContext, node: ProviderNode, piece: string): Promise<void> {
  t.false(await node.pdp.pieces.store.has(piece), `${piece} is not in the PDP store`)
  t.true(await absent(node.pdp.pieces.store.path(piece)))
  t.true(await absent(join(node.pdp.pieces.store.dir, `${piece}.layers`)))
  t.is(await node.cluster!.state.state.get(spaces.pieceLocations, `${piece}/${node.cluster!.work.name}`), undefined)
}

test('a data set created through node A is read, added to and proven through node B', async (t) => {
  // one copy: no copy task moves a piece behind the test's back
  const { a, b, close } = await twoProviderNodes('cairn-cluster-pdp-', 1, { payee: PAYEE })
  t.teardown(close)
  const key = generatePrivateKey()

  const { id } = await createdId(at(a), (await create(at(a), key, 9n)).res)
  const first = randomBytes(70_000)
  const firstCid = await upload(at(a), first)
  t.is((await add(at(a), key, id, 9n, [firstCid], 1n)).res.status, 201)

  // B knows the data set and its piece
  const set = await fetch(`${b.url}/pdp/data-sets/${id}`)
  t.is(set.status, 200)
  t.deepEqual(((await set.json()) as { pieces: Array<{ pieceCid: string }> }).pieces.map((p) => p.pieceCid), [firstCid])
  // and serves A's piece from A, without a copy of its own
  const served = await fetch(`${b.url}/piece/${firstCid}`)
  t.is(served.status, 200)
  t.is(sha256(new Uint8Array(await served.arrayBuffer())), sha256(first))
  t.false(await b.pdp.pieces.store.has(firstCid))

  // a second piece uploaded to B, added through B
  const second = randomBytes(5000)
  const secondCid = await upload(at(b), second)
  t.is((await add(at(b), key, id, 9n, [secondCid], 2n)).res.status, 201)
  t.true(await b.pdp.pieces.store.has(secondCid))
  t.false(await a.pdp.pieces.store.has(secondCid))
  t.deepEqual(await a.cluster!.state.state.get(spaces.pieceLocations, `${secondCid}/b`), new Uint8Array(0))
  // the nonce B took is taken for A too
  t.is(await codeOf((await add(at(a), key, id, 9n, [secondCid], 2n)).res), 'ERR_REPLAYED_NONCE')

  // a CAR piece parked on A: its blocks and its whole DAG served on /ipfs/ through B, read from A
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, [{ path: 'a.bin', content: new Uint8Array(randomBytes(300_000)) }], { chunkSize: 65536 })
  const { car, pieceCid } = await dfsPiece(root, blocks)
  t.is(await upload(at(a), car), pieceCid.toString())
  const block = await fetch(`${b.url}/ipfs/${root.toString()}?format=raw`)
  t.is(block.status, 200)
  t.deepEqual(new Uint8Array(await block.arrayBuffer()), blocks.map.get(root.toString()))
  const dag = await fetch(`${b.url}/ipfs/${root.toString()}?format=car&dag-scope=all&dups=n`)
  t.is(dag.status, 200)
  t.deepEqual(new Uint8Array(await dag.arrayBuffer()), car)
  t.false(await b.pdp.pieces.store.has(pieceCid.toString()))

  // proven through B: the challenged leaves of A's piece are proven by A, checked by B — and not copied to B
  const seed = randomBytes(32)
  const res = await send('POST', `${b.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 16 })
  t.is(res.status, 200)
  const proof = await res.json() as DataSetProof
  const all = await (await fetch(`${a.url}/pdp/data-sets/${id}`)).json() as { allPieces: Array<{ pieceId: number, pieceCid: string, removed: string | null }> }
  t.deepEqual(all.allPieces.map((p) => p.pieceCid), [firstCid, secondCid])
  t.notThrows(() => verifyDataSetProof(id, all.allPieces, { seed, count: 16 }, proof))
  t.true(proof.proofs.some((p) => p.pieceCid === firstCid), 'A\'s piece (128 KiB of the set\'s 136 KiB) is challenged')
  await notOn(t, b, firstCid)

  // and through A, the other way round
  const again = await send('POST', `${a.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 16 })
  t.is(again.status, 200)
  const proofA = await again.json() as DataSetProof
  t.notThrows(() => verifyDataSetProof(id, all.allPieces, { seed, count: 16 }, proofA))

  // one chain: both nodes' entries verify from either
  const report = await a.ledger.verify()
  t.like(await b.ledger.verify(), { entries: report.entries })
  t.true(report.entries >= 4)
})

test('a data set proven through B with a piece only a bad holder and A hold: the bad leaves are not passed on, the holder is skipped; the internal leaves endpoint is signed and bounded', async (t) => {
  const { a, b, close } = await twoProviderNodes('cairn-cluster-pdp-bad-', 1, { payee: PAYEE })
  t.teardown(close)
  const key = generatePrivateKey()
  const { id } = await createdId(at(a), (await create(at(a), key, 4n)).res)
  const piece = await upload(at(a), randomBytes(70_000))
  t.is((await add(at(a), key, id, 4n, [piece], 1n)).res.status, 201)
  const pieces = [{ pieceId: 0, pieceCid: piece }]

  // a fake holder asked first: passes each request on to A and flips a bit of the first leaf of the answer
  const fake = await flippingHolder(t, a, b, piece, 0)

  // A holds it too: B asks the fake first, finds a leaf bad, and proves with A's leaves
  const seed = randomBytes(32)
  const good = await send('POST', `${b.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 16 })
  t.is(good.status, 200)
  t.is(fake.asked(), 1)
  const proof = await good.json() as DataSetProof
  t.notThrows(() => verifyDataSetProof(id, pieces, { seed, count: 16 }, proof))
  // and the fake's copy gets scrubbed (by whichever node claims the task), as a deal piece's bad holder is
  await until(async () => (await b.cluster!.state.state.get(spaces.scrubs, `${piece}/fake`)) !== undefined, 'the fake holder\'s copy is scrubbed', 30_000)

  // only the fake holds it: its bad leaves are refused with a code, not proven on
  await b.cluster!.state.state.batch([{ type: 'del', space: spaces.pieceLocations, key: `${piece}/a` }])
  const bad = await send('POST', `${b.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + randomBytes(32).toString('hex'), challenges: 16 })
  t.is(bad.status, 422)
  t.is(await codeOf(bad), 'ERR_CLUSTER_BAD_PROOF')
  t.is(fake.asked(), 2)

  // no live node holds it: not found
  await b.cluster!.state.state.batch([{ type: 'del', space: spaces.pieceLocations, key: `${piece}/fake` }])
  const none = await send('POST', `${b.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + randomBytes(32).toString('hex'), challenges: 16 })
  t.is(none.status, 404)
  t.is(await codeOf(none), 'ERR_PIECE_NOT_FOUND')
  await notOn(t, b, piece)

  // the internal endpoint: unsigned, or signed with another secret, is refused
  const cid = CID.parse(piece)
  const unsigned = await fetch(`${a.url}/internal/v1/proofs/${piece}?leaves=0,1`)
  t.is(unsigned.status, 403)
  t.is(await codeOf(unsigned), 'ERR_CLUSTER_AUTH')
  await t.throwsAsync(readRemoteLeaves(a.url, cid, [0, 1], { secret: parseClusterSecret(generateClusterSecret()), node: 'intruder' }), { instanceOf: CairnError, code: 'ERR_CLUSTER_AUTH' })
  // signed: the holder proves the leaves asked (checked by the reader), a node without the piece refuses, the leaves are bounded
  const secret = a.cluster!.state.secret
  t.deepEqual((await readRemoteLeaves(a.url, cid, [5, 0, 4095], { secret, node: 'b' })).map((p) => p.index), [5, 0, 4095])
  await t.throwsAsync(readRemoteLeaves(b.url, cid, [0], { secret, node: 'a' }), { instanceOf: CairnError, code: 'ERR_PIECE_NOT_FOUND' })
  await t.throwsAsync(readRemoteLeaves(a.url, cid, [4096], { secret, node: 'b' }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  await t.throwsAsync(readRemoteLeaves(a.url, cid, new Array(MAX_LEAVES_PER_REQUEST + 1).fill(0), { secret, node: 'b' }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
  await t.throwsAsync(readRemoteLeaves(a.url, cid, [], { secret, node: 'b' }), { instanceOf: CairnError, code: 'ERR_INVALID_ARGUMENT' })
})

/**
 * Holds the first `pieces-added` append of each node until both have come
 * (so both prepared their change from the same state); later ones pass.
 */
function gate (nodes: ProviderNode[]): void {
  let waiting: Array<() => void> = []
  let open = false
  for (const node of nodes) {
    const ledger = node.ledger
    const appendAll = ledger.appendAll.bind(ledger)
    ledger.appendAll = async (items: readonly AppendItem[]) => {
      if (!open && items.some((i) => i.kind === 'pieces-added')) {
        await new Promise<void>((resolve) => {
          waiting.push(resolve)
          if (waiting.length >= nodes.length) {
            open = true
            for (const go of waiting) go()
            waiting = []
          }
        })
      }
      return await appendAll(items)
    }
  }
}

/** Two additions to one data set, one through each node, prepared from the same state. */
async function raceAdds (capacity: bigint): Promise<{ statuses: string[], pieceIds: number[], entries: number, close: () => Promise<void> }> {
  const { a, b, close } = await twoProviderNodes('cairn-cluster-pdp-race-', 1, { payee: PAYEE, capacity })
  const key = generatePrivateKey()
  const { id } = await createdId(at(a), (await create(at(a), key, 3n)).res)
  const onA = await upload(at(a), randomBytes(70_000))
  const onB = await upload(at(b), randomBytes(70_000))
  gate([a, b])
  const results = await Promise.all([add(at(a), key, id, 3n, [onA], 10n), add(at(b), key, id, 3n, [onB], 11n)])
  const statuses = await Promise.all(results.map(async ({ res }) => res.status === 201 ? 'added' : await codeOf(res)))
  const set = await (await fetch(`${b.url}/pdp/data-sets/${id}`)).json() as { allPieces: Array<{ pieceId: number }> }
  const { entries } = await a.ledger.verify()
  return { statuses, pieceIds: set.allPieces.map((p) => p.pieceId), entries, close }
}

// a 70,000-byte piece pads to 128 KiB
const PADDED = 131072n

test('two nodes adding to one data set from the same state both land, with their own piece ids', async (t) => {
  const race = await raceAdds(2n * PADDED)
  t.teardown(race.close)
  t.deepEqual(race.statuses, ['added', 'added'])
  t.deepEqual(race.pieceIds, [0, 1])
  t.is(race.entries, 3)
})

test('two nodes adding to one data set with room for one piece: one lands, the other is ERR_INSUFFICIENT_CAPACITY', async (t) => {
  const race = await raceAdds(PADDED)
  t.teardown(race.close)
  t.deepEqual([...race.statuses].sort(), ['ERR_INSUFFICIENT_CAPACITY', 'added'])
  t.deepEqual(race.pieceIds, [0])
  t.is(race.entries, 2)
})
