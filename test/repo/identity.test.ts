import test from 'ava'
import { randomBytes } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { identityFromSecret, publicKeyFromDid, verifySignature } from '../../src/repo/identity.js'
import { throwsCode } from '../helpers/errors.js'

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'))

test('the public key is RFC 8032 test vector 1, taken from OpenSSL', t => {
  // RFC 8032 §7.1, TEST 1
  const identity = identityFromSecret(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'))
  t.is(Buffer.from(identity.publicKey).toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
  t.is(Buffer.from(identity.sign(new Uint8Array())).toString('hex'),
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
})

test('public keys, dids and signatures agree with @noble/curves for random secrets', t => {
  for (let i = 0; i < 32; i++) {
    const secret = Uint8Array.from(randomBytes(32))
    const identity = identityFromSecret(secret)
    t.deepEqual(identity.publicKey, ed25519.getPublicKey(secret))
    t.deepEqual(publicKeyFromDid(identity.did), ed25519.getPublicKey(secret))
    const message = Uint8Array.from(randomBytes(i * 7))
    const signature = identity.sign(message)
    t.deepEqual(signature, ed25519.sign(message, secret))
    t.true(verifySignature(identity.did, message, signature))
  }
})

test('a secret of the wrong length is ERR_REPO_CORRUPT', t => {
  throwsCode(t, () => identityFromSecret(new Uint8Array(31)), 'ERR_REPO_CORRUPT')
})
