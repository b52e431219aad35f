/**
 * `/piece` on a node that does not hold the piece: the bytes stream from a
 * node that does (src/cluster/work.ts `remote`), whole and by Range, as they
 * arrive — nothing is copied into the serving node's store first.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import * as dagCBOR from '@ipld/dag-cbor'
import { spaces } from '../../src/state/spaces.js'
import { dealId } from '../ledger/helpers.js'
import { twoProviderNodes } from './helpers.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

test('a node without the piece streams /piece from its holder, whole and by Range, and keeps no copy', async (t) => {
  // one copy: no copy task brings the piece to B behind the test's back
  const { a, b, close } = await twoProviderNodes('cairn-cluster-stream-', 1)
  t.teardown(close)

  // a piece on A, indexed as a stored deal's piece is, located on A only
  const bytes = randomBytes(3 << 20)
  const staged = await a.store.stage((async function * () { yield bytes })())
  await staged.commit()
  const piece = staged.piece.cid.toString()
  await a.cluster!.state.state.batch([
    { type: 'put', space: spaces.pieceLocations, key: `${piece}/a`, value: new Uint8Array(0) },
    { type: 'put', space: spaces.pieces, key: piece, value: dagCBOR.encode({ deal: dealId(1), size: bytes.length }) }
  ])

  const whole = await fetch(`${b.url}/piece/${piece}`)
  t.is(whole.status, 200)
  t.is(whole.headers.get('content-length'), String(bytes.length))
  t.is(sha256(new Uint8Array(await whole.arrayBuffer())), sha256(bytes))

  const part = await fetch(`${b.url}/piece/${piece}`, { headers: { range: 'bytes=1000000-1999999' } })
  t.is(part.status, 206)
  t.is(part.headers.get('content-range'), `bytes 1000000-1999999/${bytes.length}`)
  t.is(sha256(new Uint8Array(await part.arrayBuffer())), sha256(bytes.subarray(1_000_000, 2_000_000)))

  const tail = await fetch(`${b.url}/piece/${piece}`, { headers: { range: 'bytes=-100' } })
  t.is(tail.status, 206)
  t.deepEqual(new Uint8Array(await tail.arrayBuffer()), new Uint8Array(bytes.subarray(bytes.length - 100)))

  t.false(await b.store.has(piece), 'B served the piece without copying it into its store')
  t.is(await b.cluster!.state.state.get(spaces.pieceLocations, `${piece}/b`), undefined)

  // a piece no node holds is not found, as on one node
  await a.cluster!.state.state.batch([{ type: 'del', space: spaces.pieceLocations, key: `${piece}/a` }])
  const gone = await fetch(`${b.url}/piece/${piece}`)
  t.is(gone.status, 404)
  t.is(((await gone.json()) as { error: { code: string } }).error.code, 'ERR_PIECE_NOT_FOUND')
})
