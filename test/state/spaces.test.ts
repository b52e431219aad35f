/**
 * The one list of key spaces: names and LevelDB places unique and apart, and
 * the places those of the data the repo already holds (a ledger written by
 * LevelLedger reads back through LevelStore at the declared spaces).
 */
import test from 'ava'
import * as dagCbor from '@ipld/dag-cbor'
import { recordCid } from '../../src/ledger/entry.js'
import { INDEX_SPACES } from '../../src/ledger/indexes.js'
import { LevelStore } from '../../src/state/level.js'
import { BLOCK_PREFIX, DAG_PREFIX, GC_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX, spaces } from '../../src/state/spaces.js'
import { dealId, openLedger, provider } from '../ledger/helpers.js'

test('every space has its own name and its own place in LevelDB, none inside another', (t) => {
  const all = Object.values(spaces)
  t.is(new Set(all.map(s => s.name)).size, all.length)
  const places = all.map(s => 'prefix' in s.level ? `raw:${s.level.prefix}` : `sub:${s.level.sublevel.join('/')}`)
  t.is(new Set(places).size, all.length)
  const prefixes = all.flatMap(s => 'prefix' in s.level ? [s.level.prefix] : [])
  for (const p of prefixes) {
    // pdp!usage- holds one key (`pdp!usage-total`), as repos have always held it
    if (p !== 'pdp!usage-') t.true(p.endsWith('!') && !p.startsWith('!'), `${p} ends with ! and does not start with one (sublevels do)`)
    for (const q of prefixes) if (p !== q) t.false(q.startsWith(p), `${q} lies inside ${p}`)
  }
})

test('the provider\'s index prefixes are the ones existing repos hold', (t) => {
  t.deepEqual([BLOCK_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX, DAG_PREFIX, GC_PREFIX], ['blocks!', 'pieces!', 'pieces-v1!', 'dags!', 'gc!'])
})

test('the PDP piece registry\'s prefixes are the ones existing repos hold', (t) => {
  const { pdpPieces, pdpPiecesV1, pdpExpiry, pdpUsage, pdpUsageTotal, pdpBlocks, pdpPieceBlocks, pdpDags } = spaces
  t.deepEqual([pdpPieces, pdpPiecesV1, pdpExpiry, pdpUsage, pdpUsageTotal, pdpBlocks, pdpPieceBlocks, pdpDags].map(s => 'prefix' in s.level ? s.level.prefix : ''),
    ['pdp!piece!', 'pdp!piece-v1!', 'pdp!expiry!', 'pdp!usage!', 'pdp!usage-', 'pdp!block!', 'pdp!piece-blocks!', 'pdp!dag!'])
})

test('every index sublevel the ledger keeps is a declared space', (t) => {
  const declared = new Set(Object.values(spaces).flatMap(s => 'sublevel' in s.level && s.level.sublevel[0] === 'ledger' ? [s.level.sublevel[1]] : []))
  t.deepEqual(INDEX_SPACES.filter(name => !declared.has(name)), [])
})

test('a ledger written by LevelLedger reads back through LevelStore at the declared spaces', async (t) => {
  const fx = await openLedger()
  t.teardown(fx.cleanup)
  const deal = dealId(1)
  const entry = await fx.ledger.append('deal-proposed', { deal, provider, client: fx.signer.did, nonce: 7n, pieceSize: 1024n })
  await fx.ledger.append('deal-accepted', { deal })
  const store = new LevelStore(fx.db)
  const entries: string[] = []
  for await (const [key, value] of store.iterate(spaces.ledgerEntries)) entries.push(`${key}:${recordCid(value).toString()}`)
  t.deepEqual(entries, [`0000000000000001:${entry.cid.toString()}`, `0000000000000002:${fx.ledger.head()?.cid.toString() ?? ''}`])
  const record = await store.get(spaces.ledgerDeals, deal.toString())
  t.is((dagCbor.decode(record as Uint8Array) as { state: string }).state, 'accepted')
  const byDeal: string[] = []
  for await (const [key] of store.iterate(spaces.ledgerByDeal, { gt: `${deal.toString()}/`, lt: `${deal.toString()}/~` })) byDeal.push(key)
  t.deepEqual(byDeal, [`${deal.toString()}/0000000000000001`, `${deal.toString()}/0000000000000002`])
  const nonces: string[] = []
  for await (const [key] of store.iterate(spaces.ledgerNonces)) nonces.push(key)
  t.deepEqual(nonces, [`${fx.signer.did}/${'7'.padStart(20, '0')}`])
})
