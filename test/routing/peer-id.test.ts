/**
 * Peer IDs of Ed25519 keys (libp2p peer-ids spec), held against the
 * reference implementation @libp2p/peer-id on random keys.
 */
import test from 'ava'
import fc from 'fast-check'
import { peerIdFromString, peerIdFromPublicKey as referencePeerId } from '@libp2p/peer-id'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { peerIdCid, peerIdFromPublicKey, publicKeyFromPeerId } from '../../src/routing/peer-id.js'
import { throwsCode } from '../helpers/errors.js'

const keys = fc.constant(null).map(() => identityFromSecret(generateSecretKey()).publicKey)

test('the peer ID of an Ed25519 key equals @libp2p/peer-id\'s, in base58btc and as a libp2p-key CID', (t) => {
  fc.assert(fc.property(keys, (publicKey) => {
    const reference = referencePeerId(publicKeyFromRaw(publicKey))
    t.is(peerIdFromPublicKey(publicKey), reference.toString())
    t.is(peerIdCid(publicKey), reference.toCID().toString())
  }), { numRuns: 50 })
})

test('a peer ID written by @libp2p/peer-id gives back its key, in every string form', (t) => {
  fc.assert(fc.property(keys, (publicKey) => {
    const reference = referencePeerId(publicKeyFromRaw(publicKey))
    for (const form of [reference.toString(), reference.toCID().toString(), reference.toCID().toString(base36)]) {
      t.deepEqual(publicKeyFromPeerId(form), publicKey, form)
    }
    // and the reference reads ours back to the same key
    t.deepEqual(peerIdFromString(peerIdFromPublicKey(publicKey)).publicKey?.raw, publicKey)
  }), { numRuns: 30 })
})

test('peer IDs that do not carry an Ed25519 key are refused with ERR_INVALID_PEER_ID', async (t) => {
  const rsaLike = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
  const notKey = CID.createV1(0x55, await sha256.digest(new Uint8Array(4))).toString()
  for (const bad of [rsaLike, notKey, '12D3KooWnot-base58', '', 'x'.repeat(200), 'bafzaajaiaejca']) {
    throwsCode(t, () => publicKeyFromPeerId(bad), 'ERR_INVALID_PEER_ID', bad)
  }
})
