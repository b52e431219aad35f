/**
 * PDP pieces on a cluster have copies too (docs/cluster.md "PDP"): a piece a
 * data set references is copied by a copy task to a second node's PDP piece
 * store, scrubbed there (a bad copy replaced), counted in `cluster status`,
 * kept by start-up recovery, moved by `cluster drain`, collected by gc once the
 * registry no longer names it — and with the node that received it stopped, the
 * other serves it and proves the data set. A parked piece stays on one node
 * unless its node is drained.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, utimes, writeFile } from 'node:fs/promises'
import { generatePrivateKey } from 'viem/accounts'
import { recoverClusterNode } from '../../src/cluster/recovery.js'
import { addTask } from '../../src/cluster/tasks.js'
import { clusterStatus, drainNode, nodeTaskType } from '../../src/cluster/work.js'
import type { ProviderNode } from '../../src/provider/node.js'
import { verifyDataSetProof, type DataSetProof } from '../../src/pdp/prove.js'
import { spaces } from '../../src/state/spaces.js'
import { add, create, createdId, PAYEE, send, upload, type World } from '../pdp/dataset-world.js'
import { twoProviderNodes, until } from './helpers.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
const at = (node: ProviderNode): World => ({ url: node.url }) as World

/** B's PDP copy of `piece` is there, byte-identical, and recorded as B's location. */
async function copiedToB (b: ProviderNode, piece: string, bytes: Uint8Array): Promise<boolean> {
  const held = await readFile(b.pdp.pieces.store.path(piece)).catch(() => undefined)
  return held !== undefined && sha256(held) === sha256(bytes) && await b.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`) !== undefined
}

async function scrubOf (node: ProviderNode, key: string): Promise<{ ok: boolean } | undefined> {
  const record = await node.cluster!.state.state.get(spaces.scrubs, key)
  return record === undefined ? undefined : JSON.parse(new TextDecoder().decode(record)) as { ok: boolean }
}

test('a PDP piece a data set references is copied to a second node, scrubbed there, and served and proven from it once the first stops', async (t) => {
  const { a, b, close } = await twoProviderNodes('cairn-cluster-pdp-copy-', 2, { payee: PAYEE })
  t.teardown(close)
  const cluster = { db: a.cluster!.state.db, state: a.cluster!.state.state }
  const key = generatePrivateKey()

  const parkedBytes = randomBytes(5000)
  const parked = await upload(at(a), parkedBytes)
  const bytes = randomBytes(70_000)
  const piece = await upload(at(a), bytes)
  const { id } = await createdId(at(a), (await create(at(a), key, 4n)).res)
  t.is((await add(at(a), key, id, 4n, [piece], 1n)).res.status, 201)

  // the copy task writes it into B's PDP piece store, checked, with its location
  await until(async () => await copiedToB(b, piece, bytes), 'B holds a copy of the referenced piece', 30_000)
  t.false(await b.store.has(piece), 'not in the deals\' store')
  t.false(await b.pdp.pieces.store.has(parked), 'a parked piece stays on the node that received it')
  const status = await clusterStatus(cluster, 2)
  t.deepEqual(Object.fromEntries(status.machines.map((m) => [m.name, m.pieces])), { a: 2, b: 1 })
  t.is(status.pieces.underCopied, 0, 'a parked piece is not under-copied')

  // B's start-up recovery finds its copy in its PDP store: the location stays
  const recovered = await recoverClusterNode({ state: cluster.state, store: b.store, pdpStore: b.pdp.pieces.store, node: 'b' })
  t.deepEqual(recovered.lost, [])
  t.true(await copiedToB(b, piece, bytes))

  // B's periodic maintenance scrubs its PDP copy, from its PDP store
  await b.cluster!.work.maintain()
  await until(async () => (await scrubOf(a, `${piece}/b`)) !== undefined, 'the scrub of B\'s copy ran', 30_000)
  t.is((await scrubOf(a, `${piece}/b`))?.ok, true)
  // a bad copy on B is found, dropped and copied again into B's PDP store
  await writeFile(b.pdp.pieces.store.path(piece), randomBytes(70_000))
  await addTask(cluster.db, 'scrub', { piece, node: 'b' })
  await until(async () => (await scrubOf(a, `${piece}/b`))?.ok === false, 'the scrub found the bad copy', 30_000)
  await until(async () => await copiedToB(b, piece, bytes), 'B holds a good copy again', 30_000)

  // draining A moves its parked piece too, before A leaves
  const drained = await drainNode(cluster, 'a')
  t.is(drained.pieces, 2)
  await until(async () => await copiedToB(b, parked, parkedBytes), 'B holds the drained parked piece', 30_000)

  // A stops: B serves the piece from its own copy and proves the data set
  await a.close()
  const served = await fetch(`${b.url}/piece/${piece}`)
  t.is(served.status, 200)
  t.is(sha256(new Uint8Array(await served.arrayBuffer())), sha256(bytes))
  const seed = randomBytes(32)
  const res = await send('POST', `${b.url}/pdp/data-sets/${id}/prove`, { seed: '0x' + seed.toString('hex'), challenges: 8 })
  t.is(res.status, 200)
  const proof = await res.json() as DataSetProof
  const all = await (await fetch(`${b.url}/pdp/data-sets/${id}`)).json() as { allPieces: Array<{ pieceId: number, pieceCid: string, removed: string | null }> }
  t.deepEqual(all.allPieces.map((p) => p.pieceCid), [piece])
  t.notThrows(() => verifyDataSetProof(id, all.allPieces, { seed, count: 8 }, proof))

  // B's gc: a PDP copy the registry no longer names (swept by another holder) goes once old enough; a referenced one stays
  const stray = await b.pdp.pieces.store.stage((async function * () { yield randomBytes(3000) })())
  await stray.commit()
  const strayPiece = stray.piece.cid.toString()
  const old = new Date(Date.now() - 2 * 3600_000)
  for (const p of [strayPiece, piece]) await utimes(b.pdp.pieces.store.path(p), old, old)
  await addTask(b.cluster!.state.db, nodeTaskType('b'), {})
  await until(async () => !await b.pdp.pieces.store.has(strayPiece), 'B collected the stray PDP file', 30_000)
  t.true(await copiedToB(b, piece, bytes), 'a referenced piece stays')
})
