import test from 'ava'
import fc from 'fast-check'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { askFrom, signAsk, verifyAsk } from '../../src/protocol/ask.js'
import { signAcceptance, signDealStatus, verifyAcceptance, verifyDealStatus } from '../../src/protocol/acceptance.js'
import { dealIdOf, parseDealId, proposalFrom, signProposal, verifyProposal } from '../../src/protocol/proposal.js'
import { pieceCidInfo } from '../../src/protocol/piece-cid.js'
import { createSigner, decodeSignedCbor, decodeSignedJson, encodeSignedJson, sign, signingBytes, Tag, verifyEd25519, verifySigned, type Signed } from '../../src/protocol/signing.js'
import { identityFromSecret, verifySignature } from '../../src/repo/identity.js'
import * as dagCbor from '@ipld/dag-cbor'
import { askFor, newSigner, piece, pieceCid, proposalFor, NOW } from './fixtures.js'
import { throwsCode } from '../helpers/errors.js'

const client = newSigner()
const provider = newSigner()

/** Over the wire and back: DAG-JSON bytes, as the HTTP API carries them. */
function wire<T> (signed: Signed<T>): Signed<unknown> {
  return decodeSignedJson(encodeSignedJson(signed))
}

test('the signed bytes are the domain tag followed by DAG-CBOR of the payload', t => {
  const bytes = signingBytes(Tag.proposal, { a: 1 })
  t.is(Buffer.from(bytes.subarray(0, 23)).toString(), 'cairn/deal-proposal/v1\n')
  t.deepEqual(bytes.subarray(23), dagCbor.encode({ a: 1 }))
})

test('ask, proposal, acceptance and status round-trip through DAG-JSON and verify', t => {
  const ask = verifyAsk(wire(signAsk(provider, askFor(provider))))
  t.is(ask.payload.pricePerGiBDay, 40n)
  const proposal = verifyProposal(wire(signProposal(client, proposalFor(client, provider))))
  t.is(proposal.payload.pieceSize, 1024n)
  t.true(proposal.payload.pieceCid.equals(pieceCid))
  const dealId = dealIdOf(proposal)
  t.true(dealId.equals(dealIdOf(signProposal(client, proposalFor(client, provider)))), 'Ed25519 is deterministic, so is the deal id')
  const acceptance = { dealId, client: client.did, provider: provider.did, pieceCid, acceptedAt: NOW }
  t.true(verifyAcceptance(wire(signAcceptance(provider, acceptance)), provider.did).payload.dealId.equals(dealId))
  t.is(verifyDealStatus(wire(signDealStatus(provider, { dealId, provider: provider.did, state: 'active', at: NOW })), provider.did).payload.state, 'active')
})

test('a repo identity (noble) and the node:crypto signer make the same signatures', t => {
  const secret = new Uint8Array(32).fill(9)
  const a = identityFromSecret(secret)
  const b = createSigner(secret)
  t.is(a.did, b.did)
  const message = new TextEncoder().encode('hello')
  t.deepEqual(a.sign(message), b.sign(message))
})

test('node:crypto and noble agree on valid and altered signatures', t => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), fc.nat(63), fc.boolean(), (secret, message, at, alter) => {
    const signer = createSigner(secret)
    const signature = signer.sign(message)
    if (alter) signature[at] ^= 1
    const publicKey = ed25519.getPublicKey(secret)
    const fast = verifyEd25519(publicKey, message, signature)
    t.is(fast, verifySignature(signer.did, message, signature))
    t.is(fast, !alter)
  }), { numRuns: 60 })
})

test('changing any proposal field invalidates the signature', t => {
  const signed = signProposal(client, proposalFor(client, provider))
  const other = newSigner()
  const changes: Record<string, unknown> = {
    pieceCid: CID.parse(piece.link.toString().replace(/.$/, c => c === 'a' ? 'b' : 'a')),
    pieceSize: 2048n,
    payloadCid: CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'),
    payloadSize: 999n,
    provider: other.did,
    label: 'photos 2025',
    start: NOW + 61,
    end: NOW + 10 ** 7,
    pricePerGiBDay: 41n,
    providerCollateral: 1025n,
    clientCollateral: 1n,
    provingPeriod: 3600,
    challenges: 8,
    nonce: 2n
  }
  for (const [field, value] of Object.entries(changes)) {
    const payload = { ...signed.payload, [field]: value }
    // a changed field that no longer parses (a piece CID made invalid) is refused before the
    // signature is checked, with the parser's own code; every other change breaks the signature
    let expected = 'ERR_BAD_SIGNATURE'
    try {
      proposalFrom(payload)
    } catch (parseError) {
      expected = (parseError as { code?: string }).code ?? 'no code'
      t.not(expected, 'no code', `${field}: the parser's refusal is coded`)
    }
    throwsCode(t, () => verifyProposal({ ...signed, payload }), expected, field)
  }
  throwsCode(t, () => verifyProposal({ ...signed, payload: { ...signed.payload, client: other.did } }), 'ERR_WRONG_SIGNER')
})

test('flipping any bit of the signature invalidates it', t => {
  const signed = signAsk(provider, askFor(provider))
  for (let i = 0; i < 64; i += 7) {
    const signature = Uint8Array.from(signed.signature)
    signature[i] ^= 0x10
    throwsCode(t, () => verifyAsk({ ...signed, signature }), 'ERR_BAD_SIGNATURE')
  }
})

test('a signature for one message type never verifies as another (domain tags)', t => {
  const payload = { hello: 'world' }
  const signed = sign(client, Tag.ask, payload)
  t.notThrows(() => verifySigned(Tag.ask, signed))
  throwsCode(t, () => verifySigned(Tag.proposal, signed), 'ERR_BAD_SIGNATURE')
})

test('signer, signature and key faults have distinct codes', t => {
  const signed = signProposal(client, proposalFor(client, provider))
  throwsCode(t, () => verifySigned(Tag.proposal, signed, provider.did), 'ERR_WRONG_SIGNER')
  throwsCode(t, () => verifySigned(Tag.proposal, { ...signed, signature: signed.signature.subarray(0, 63) }), 'ERR_BAD_SIGNATURE')
  const shortKey = `did:key:${base58btc.encode(Uint8Array.of(0xed, 0x01, ...new Uint8Array(31).fill(1)))}`
  throwsCode(t, () => verifySigned(Tag.proposal, { ...signed, signer: shortKey }), 'ERR_INVALID_KEY')
  throwsCode(t, () => verifySigned(Tag.proposal, { ...signed, signer: 'did:web:example.com' }), 'ERR_INVALID_KEY')
  // a y coordinate with no x on the curve
  let notAPoint: Uint8Array | undefined
  for (let i = 0; notAPoint === undefined; i++) {
    const candidate = new Uint8Array(32).fill(i)
    candidate[31] &= 0x7f
    try { ed25519.Point.fromBytes(candidate) } catch { notAPoint = candidate }
  }
  const offCurve = `did:key:${base58btc.encode(Uint8Array.of(0xed, 0x01, ...notAPoint))}`
  throwsCode(t, () => verifySigned(Tag.proposal, { ...signed, signer: offCurve }), 'ERR_INVALID_KEY')
})

test('messages with unknown fields, floats, negative or oversized amounts are rejected', t => {
  const base = proposalFor(client, provider)
  for (const bad of [
    { ...base, extra: 1 },
    { ...base, pricePerGiBDay: 1.5 },
    { ...base, pricePerGiBDay: -1n },
    { ...base, pricePerGiBDay: 1n << 64n },
    { ...base, pieceCid: 'not a cid' },
    { ...base, pieceCid: base.payloadCid },
    { ...base, end: base.start },
    { ...base, start: undefined }
  ]) {
    throwsCode(t, () => proposalFrom(bad), 'ERR_INVALID_MESSAGE')
  }
  throwsCode(t, () => askFrom({ ...askFor(provider), surprise: true }), 'ERR_INVALID_MESSAGE')
  throwsCode(t, () => askFrom({ ...askFor(provider), endpoint: 'ftp://x' }), 'ERR_INVALID_MESSAGE')
  throwsCode(t, () => decodeSignedJson('{"payload":{},"signer":"x","signature":{"/":{"bytes":"AA"}},"more":1}'), 'ERR_INVALID_MESSAGE')
  throwsCode(t, () => decodeSignedJson('not json'), 'ERR_INVALID_MESSAGE')
  throwsCode(t, () => decodeSignedCbor(Uint8Array.of(0xff)), 'ERR_INVALID_MESSAGE')
})

test('piece CID v2 sizes agree with @web3-storage/data-segment', t => {
  const info = pieceCidInfo(pieceCid)
  t.is(info.paddedSize, piece.size)
  t.is(info.height, piece.height)
  t.is(info.padding, piece.padding)
  t.is(info.payloadSize, 1000n)
})

test('deal ids are stable across re-encoding and distinct for distinct proposals', t => {
  const base = proposalFor(client, provider)
  const seen = new Set<string>()
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.string({ maxLength: 40 }), (nonce, label) => {
    const signed = signProposal(client, { ...base, nonce, label })
    const id = dealIdOf(signed)
    t.true(id.equals(dealIdOf(verifyProposal(wire(signed)))))
    t.true(id.equals(parseDealId(id.toString())))
    const key = `${nonce}/${label}`
    if (!seen.has(key)) {
      seen.add(key)
      t.false(seen.has(id.toString()))
      seen.add(id.toString())
    }
  }), { numRuns: 100 })
  throwsCode(t, () => parseDealId(pieceCid.toString()), 'ERR_INVALID_CID')
})

test('v2 messages carry the sender\'s ledger head under their own tag; v1 and v2 signatures do not stand for each other', t => {
  const head = { seq: 7, cid: CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy') }
  const v2 = signProposal(client, { ...proposalFor(client, provider), head })
  t.deepEqual(verifyProposal(wire(v2)).payload.head, head)
  throwsCode(t, () => verifySigned(Tag.proposal, v2), 'ERR_BAD_SIGNATURE')
  t.notThrows(() => verifySigned(Tag.proposalV2, v2))
  // a v1 signature over a payload with a head added is not a v2 signature
  const v1 = signProposal(client, proposalFor(client, provider))
  throwsCode(t, () => verifyProposal({ ...v1, payload: { ...v1.payload, head } }), 'ERR_BAD_SIGNATURE')
  t.false(dealIdOf(v1).equals(dealIdOf(v2)))
  t.is(verifyProposal(wire(signProposal(client, { ...proposalFor(client, provider), head: null }))).payload.head, null)
  const acceptance = { dealId: dealIdOf(v2), client: client.did, provider: provider.did, pieceCid, acceptedAt: NOW, uploadBy: NOW + 3600, head }
  const signed = verifyAcceptance(wire(signAcceptance(provider, acceptance)), provider.did)
  t.like(signed.payload, { uploadBy: NOW + 3600, head })
  throwsCode(t, () => verifySigned(Tag.acceptance, signed), 'ERR_BAD_SIGNATURE')
  throwsCode(t, () => proposalFrom({ ...v2.payload, head: { seq: 0, cid: head.cid } }), 'ERR_INVALID_MESSAGE')
})
