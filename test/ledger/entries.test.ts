/**
 * Typed ledger entries (src/ledger/interface.ts EntryFieldsOf): each kind's
 * fields are checked once, where an entry is built or read back, and a
 * field that does not hold what its kind says is refused there.
 */
import test from 'ava'
import * as dagCbor from '@ipld/dag-cbor'
import { buildEntry, decodeRecord, MalformedRecord, parseFields } from '../../src/ledger/entry.js'
import { concatTag, createSigner, Tag } from '../../src/protocol/signing.js'
import { dealId, openLedger, provider } from './helpers.js'

const signer = createSigner(new Uint8Array(32).fill(3))

/** A record signed as buildEntry signs one, with fields buildEntry itself would refuse. */
function rawRecord (fields: Record<string, unknown>): Uint8Array {
  const entry = dagCbor.encode({ ...fields, seq: 1, prev: null, at: 1000, kind: 'deal-proposed' })
  return dagCbor.encode({ entry, signer: signer.did, signature: signer.sign(concatTag(Tag.ledgerEntry, entry)) })
}

test('an append whose typed field holds the wrong type is a TypeError, and nothing is written', async (t) => {
  const f = await openLedger()
  try {
    await t.throwsAsync(async () => await f.ledger.append('deal-proposed', { deal: dealId(1), provider, pieceSize: 'large' }), { instanceOf: TypeError, message: /pieceSize of a deal-proposed entry/ })
    await t.throwsAsync(async () => await f.ledger.append('deal-accepted', { deal: dealId(1), proposal: { payload: {} } }), { instanceOf: TypeError, message: /proposal/ })
    await t.throwsAsync(async () => await f.ledger.append('pieces-added', { pieces: [] }), { instanceOf: TypeError, message: /dataSet/ })
    t.is(f.ledger.head(), null)
  } finally {
    await f.cleanup()
  }
})

test('a stored entry whose typed field holds the wrong type is malformed when read', (t) => {
  t.notThrows(() => decodeRecord(rawRecord({ deal: dealId(1), provider })))
  const err = t.throws(() => decodeRecord(rawRecord({ deal: dealId(1), provider: 7 })))
  t.true(err instanceof MalformedRecord)
  t.regex(err?.message ?? '', /provider of a deal-proposed entry/)
  t.true(t.throws(() => decodeRecord(rawRecord({ provider }))) instanceof MalformedRecord, 'a deal kind without its deal')
})

test('read back, an entry is typed by its kind; a deal id an older writer stored as a string reads as its CID', (t) => {
  const id = dealId(2)
  const entry = decodeRecord(rawRecord({ deal: id.toString(), provider, nonce: 5 }))
  if (entry.kind !== 'deal-proposed') return t.fail(`read back as ${entry.kind}`)
  t.true(entry.fields.deal.equals(id))
  t.is(entry.fields.nonce, 5)
  // the bytes stay the writer's: the string is still what is stored and hashed
  t.is((dagCbor.decode(entry.entryBytes) as { deal: unknown }).deal, id.toString())
  const built = buildEntry(signer, 1, null, 1000, 'deal-proposed', { deal: id.toString(), provider })
  t.deepEqual(built.recordBytes, rawRecord({ deal: id.toString(), provider }))
})

test('fields a kind does not declare are kept and not checked', (t) => {
  const fields = parseFields('deal-terminated', { deal: dealId(3), provider, note: { any: 'shape' } })
  t.deepEqual(fields.note, { any: 'shape' })
})
