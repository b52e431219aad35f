/**
 * Advertisements (docs/routing.md): signed by the provider's Ed25519 key,
 * verified against the key inside its peer ID, every field checked, entries
 * in a chain of chunks, IPNI metadata naming transport-ipfs-gateway-http.
 */
import test from 'ava'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'
import { cborBlock, decodeAdvertisement, decodeEntryChunk, encodeMetadata, ENTRIES_PER_CHUNK, entryChunks, protocolsOf, signAdvertisement, type Block } from '../../src/routing/advertisement.js'
import { peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { advertisement, dealIdBytes, GATEWAY, newIdentity, randomCids } from './helpers.js'
import { throwsCode } from '../helpers/errors.js'

test('a signed advertisement decodes to its fields; its provider is the signer\'s peer ID, which @libp2p/peer-id reads to the same key', (t) => {
  const signer = newIdentity()
  const context = dealIdBytes()
  const made = advertisement(signer, null, { context, add: randomCids(3).map(c => c.multihash.bytes) })
  const ad = decodeAdvertisement(made.ad)
  t.is(ad.provider, peerIdFromPublicKey(signer.publicKey))
  t.deepEqual(peerIdFromString(ad.provider).publicKey?.raw, signer.publicKey)
  t.deepEqual(ad.contextId, context)
  t.is(ad.entries?.toString(), made.chunks[0]?.cid.toString())
  t.is(ad.previous, null)
  t.deepEqual(protocolsOf(ad.metadata), ['transport-ipfs-gateway-http'])
})

/** The advertisement block with one field of the signed map replaced, re-encoded (its CID recomputed). */
function tampered (block: Block, change: (m: Record<string, unknown>) => void): Block {
  const m = dagCbor.decode(block.bytes) as Record<string, unknown>
  change(m)
  return cborBlock(m)
}

test('an advertisement changed after signing, or signed by another key, fails with ERR_BAD_SIGNATURE', (t) => {
  const signer = newIdentity()
  const made = advertisement(signer, null, { context: dealIdBytes(), add: randomCids(2).map(c => c.multihash.bytes) })
  throwsCode(t, () => decodeAdvertisement(tampered(made.ad, m => { m.addresses = ['/ip4/10.0.0.1/tcp/80/http'] })), 'ERR_BAD_SIGNATURE')
  throwsCode(t, () => decodeAdvertisement(tampered(made.ad, m => { m.isRm = true; m.entries = null })), 'ERR_BAD_SIGNATURE')
  // a valid signature by someone else, naming this provider
  const other = newIdentity()
  const forged = signAdvertisement(other, { previous: null, addresses: [], contextId: new Uint8Array(0), metadata: new Uint8Array(0), entries: null, isRm: false, at: 1 })
  throwsCode(t, () => decodeAdvertisement(tampered(forged.block, m => { m.provider = peerIdFromPublicKey(signer.publicKey) })), 'ERR_BAD_SIGNATURE')
})

test('malformed advertisements are refused with ERR_INVALID_ADVERTISEMENT (or the peer ID code), before any signature check', (t) => {
  const signer = newIdentity()
  const made = advertisement(signer, null, { context: dealIdBytes(), add: randomCids(1).map(c => c.multihash.bytes) })
  const cases: Array<[string, (m: Record<string, unknown>) => void, string]> = [
    ['unknown field', m => { m.extra = 1 }, 'ERR_INVALID_ADVERTISEMENT'],
    ['missing field', m => { delete m.at }, 'ERR_INVALID_ADVERTISEMENT'],
    ['addresses not a list', m => { m.addresses = '/ip4/1.2.3.4/tcp/80/http' }, 'ERR_INVALID_ADVERTISEMENT'],
    ['a non-http address', m => { m.addresses = ['/ip4/1.2.3.4/tcp/4001'] }, 'ERR_INVALID_ADVERTISEMENT'],
    ['a malformed address', m => { m.addresses = ['/ip4/999.2.3.4/tcp/80/http'] }, 'ERR_INVALID_MULTIADDR'],
    ['too many addresses', m => { m.addresses = Array(17).fill('/ip4/1.2.3.4/tcp/80/http') }, 'ERR_INVALID_ADVERTISEMENT'],
    ['contextId too long', m => { m.contextId = new Uint8Array(65) }, 'ERR_INVALID_ADVERTISEMENT'],
    ['metadata too long', m => { m.metadata = new Uint8Array(101) }, 'ERR_INVALID_ADVERTISEMENT'],
    ['isRm not a boolean', m => { m.isRm = 1 }, 'ERR_INVALID_ADVERTISEMENT'],
    ['previous not a link', m => { m.previous = 'bafy' }, 'ERR_INVALID_ADVERTISEMENT'],
    ['a withdrawal with entries', m => { m.isRm = true }, 'ERR_INVALID_ADVERTISEMENT'],
    ['entries without a context', m => { m.contextId = new Uint8Array(0) }, 'ERR_INVALID_ADVERTISEMENT'],
    ['signature of the wrong size', m => { m.signature = new Uint8Array(63) }, 'ERR_INVALID_ADVERTISEMENT'],
    ['negative time', m => { m.at = -1 }, 'ERR_INVALID_ADVERTISEMENT'],
    ['provider not a peer ID', m => { m.provider = 'did:key:z6Mk' }, 'ERR_INVALID_PEER_ID']
  ]
  for (const [name, change, code] of cases) t.throws(() => decodeAdvertisement(tampered(made.ad, change)), { code }, name)
  throwsCode(t, () => decodeAdvertisement({ cid: made.ad.cid, bytes: Uint8Array.of(0xff) }), 'ERR_INVALID_ADVERTISEMENT', 'not DAG-CBOR')
  throwsCode(t, () => decodeAdvertisement(cborBlock([1, 2])), 'ERR_INVALID_ADVERTISEMENT', 'not a map')
})

test('entry chunks: at most ENTRIES_PER_CHUNK each, linked first to last, every multihash kept in order', (t) => {
  const multihashes = randomCids(ENTRIES_PER_CHUNK * 2 + 5).map(c => c.multihash.bytes)
  const chunks = entryChunks(multihashes)
  t.is(chunks.length, 3)
  const byCid = new Map(chunks.map(c => [c.cid.toString(), c]))
  const read: Uint8Array[] = []
  for (let next: CID | null = chunks[0]?.cid ?? null; next !== null;) {
    const chunk = decodeEntryChunk(byCid.get(next.toString()) as Block)
    t.true(chunk.entries.length <= ENTRIES_PER_CHUNK)
    read.push(...chunk.entries)
    next = chunk.next
  }
  t.deepEqual(read, multihashes)
  t.deepEqual(entryChunks([]), [])
})

test('entry chunks with something other than multihashes are refused with ERR_INVALID_ADVERTISEMENT', (t) => {
  const good = randomCids(1)[0]?.multihash.bytes as Uint8Array
  for (const [name, value] of [
    ['a string entry', { entries: ['x'], next: null }],
    ['bytes that are not a multihash', { entries: [Uint8Array.of(0x12, 0x20, 1, 2)], next: null }],
    ['an empty entry', { entries: [new Uint8Array(0)], next: null }],
    ['next not a link', { entries: [good], next: 'x' }],
    ['unknown field', { entries: [good], next: null, more: true }],
    ['too many entries', { entries: Array(ENTRIES_PER_CHUNK + 1).fill(good), next: null }]
  ] as Array<[string, unknown]>) {
    throwsCode(t, () => decodeEntryChunk(cborBlock(value)), 'ERR_INVALID_ADVERTISEMENT', name)
  }
})

test('metadata is IPNI\'s: uvarint protocol codes in increasing order; names are read while the codes are known payload-free ones', (t) => {
  t.deepEqual(GATEWAY, varint.encodeTo(0x0920, new Uint8Array(2)))
  t.deepEqual(protocolsOf(encodeMetadata([0x0930, 0x0900])), ['transport-bitswap', 'transport-filecoin-piece-http'])
  // graphsync carries a CBOR payload after its code: reading stops there
  t.deepEqual(protocolsOf(Uint8Array.of(...varint.encodeTo(0x0910, new Uint8Array(2)), 0xa1)), [])
  t.deepEqual(protocolsOf(new Uint8Array(0)), [])
  t.deepEqual(protocolsOf(Uint8Array.of(0x80)), [])
})
