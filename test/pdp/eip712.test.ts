/**
 * The client's EIP-712 authorisations (src/pdp/eip712.ts), with viem and
 * @filoz/synapse-core 0.5.2 as oracles: synapse-core's own `sign…` functions,
 * run with a viem account from `privateKeyToAccount` that signs locally (no
 * RPC), produce the `extraData` a Filecoin Onchain Cloud client sends; viem's
 * `hashTypedData` gives the digest FWSS computes on chain.
 */
import test from 'ava'
import fc from 'fast-check'
import { createWalletClient, encodeAbiParameters, hashTypedData, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { calibration } from '@filoz/synapse-core/chains'
import * as Piece from '@filoz/synapse-core/piece'
import { EIP712Types, getStorageDomain, signAddPieces, signCreateDataSet, signDeleteDataSet, signSchedulePieceRemovals } from '@filoz/synapse-core/typed-data'
import {
  CALIBRATION, decodeAbi, recoverSigner, typedDataDigest, verifyAddPieces, verifyCreateDataSet, verifyDeleteDataSet,
  verifySchedulePieceRemovals, type Eip712Domain
} from '../../src/pdp/eip712.js'
import { codeOf } from '../helpers/errors.js'

const domain: Eip712Domain = { chainId: CALIBRATION.chainId, verifyingContract: CALIBRATION.fwssAddress }
const payee = '0x1111111111111111111111111111111111111111'

function walletFor (key: Hex) {
  // the transport is never used: a local account signs typed data without RPC
  return createWalletClient({ account: privateKeyToAccount(key), chain: calibration, transport: http('http://127.0.0.1:9') })
}

function hexToBytes (value: Hex): Uint8Array { return Uint8Array.from(Buffer.from(value.slice(2), 'hex')) }

test('the defaults are calibration as synapse-core 0.5.2 defines it', t => {
  t.is(BigInt(calibration.id), CALIBRATION.chainId)
  t.is(calibration.contracts.fwss.address.toLowerCase(), CALIBRATION.fwssAddress.toLowerCase())
  t.deepEqual(getStorageDomain({ chain: calibration }), { name: 'FilecoinWarmStorageService', version: '1', chainId: 314159, verifyingContract: calibration.contracts.fwss.address })
})

const metadataArb = fc.array(fc.record({ key: fc.string({ maxLength: 20 }), value: fc.string({ maxLength: 40 }) }), { maxLength: 4 })
const u256 = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => ('0x' + Buffer.from(b).toString('hex')) as Hex)

test('digests equal viem hashTypedData for every FWSS type (property)', t => {
  t.notThrows(() => fc.assert(fc.property(u256, u256, address, metadataArb, fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 4 }), fc.array(u256, { maxLength: 5 }), fc.bigInt({ min: 1n, max: 1n << 64n }), address,
    (id, nonce, payeeAddress, metadata, cids, pieceIds, chainId, contract) => {
      const d = { chainId, verifyingContract: contract }
      const viemDomain = { name: 'FilecoinWarmStorageService', version: '1', chainId, verifyingContract: contract }
      const same = (primaryType: 'CreateDataSet' | 'AddPieces' | 'SchedulePieceRemovals' | 'DeleteDataSet', ours: Record<string, unknown>, theirs: Record<string, unknown>): boolean =>
        Buffer.from(typedDataDigest(d, primaryType, ours)).toString('hex') === hashTypedData({ domain: viemDomain, types: EIP712Types, primaryType, message: theirs as never }).slice(2)
      const pieceMetadata = cids.map((_, i) => ({ pieceIndex: BigInt(i), metadata }))
      return same('CreateDataSet', { clientDataSetId: id, payee: payeeAddress, metadata }, { clientDataSetId: id, payee: payeeAddress, metadata }) &&
        same('AddPieces', { clientDataSetId: id, nonce, pieceData: cids.map((data) => ({ data })), pieceMetadata },
          { clientDataSetId: id, nonce, pieceData: cids.map((data) => ({ data: ('0x' + Buffer.from(data).toString('hex')) as Hex })), pieceMetadata }) &&
        same('SchedulePieceRemovals', { clientDataSetId: id, pieceIds }, { clientDataSetId: id, pieceIds }) &&
        same('DeleteDataSet', { dataSetId: id }, { dataSetId: id })
    }), { numRuns: 60 }))
})

test('CreateDataSet signed by synapse-core with a viem account verifies, and names the payer', async t => {
  const key = generatePrivateKey()
  const metadata = [{ key: 'withIPFSIndexing', value: '' }, { key: 'source', value: 'cairn-test ✓' }]
  const extraData = await signCreateDataSet(walletFor(key), { payee, metadata, clientDataSetId: 42n })
  const auth = verifyCreateDataSet(domain, extraData, payee)
  t.is(auth.payer, privateKeyToAccount(key).address.toLowerCase())
  t.is(auth.clientDataSetId, 42n)
  t.deepEqual(auth.metadata, metadata)
})

test('CreateDataSet: a wrong key, a tampered field and another domain are refused with ERR_WRONG_SIGNER', async t => {
  const victim = privateKeyToAccount(generatePrivateKey()).address
  // signed by another key, claiming the victim as payer
  const forged = await signCreateDataSet(walletFor(generatePrivateKey()), { payee, payer: victim, clientDataSetId: 1n })
  t.is(codeOf(() => verifyCreateDataSet(domain, forged, payee)), 'ERR_WRONG_SIGNER')

  const extraData = await signCreateDataSet(walletFor(generatePrivateKey()), { payee, clientDataSetId: 7n, metadata: [{ key: 'a', value: 'b' }] })
  t.notThrows(() => verifyCreateDataSet(domain, extraData, payee))
  // another payee (the signed message names this provider's payee)
  t.is(codeOf(() => verifyCreateDataSet(domain, extraData, '0x2222222222222222222222222222222222222222')), 'ERR_WRONG_SIGNER')
  // another clientDataSetId in the ABI body
  const [payer, , keys, values, signature] = decodeAbi(['address', 'uint256', 'string[]', 'string[]', 'bytes'], extraData) as [Hex, bigint, string[], string[], Uint8Array]
  const sig = ('0x' + Buffer.from(signature).toString('hex')) as Hex
  const tampered = encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }, { type: 'string[]' }, { type: 'string[]' }, { type: 'bytes' }], [payer, 8n, keys, values, sig])
  t.is(codeOf(() => verifyCreateDataSet(domain, tampered, payee)), 'ERR_WRONG_SIGNER')
  const tamperedMeta = encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }, { type: 'string[]' }, { type: 'string[]' }, { type: 'bytes' }], [payer, 7n, keys, ['c'], sig])
  t.is(codeOf(() => verifyCreateDataSet(domain, tamperedMeta, payee)), 'ERR_WRONG_SIGNER')
  // mainnet's chain id, or another service contract
  t.is(codeOf(() => verifyCreateDataSet({ ...domain, chainId: 314n }, extraData, payee)), 'ERR_WRONG_SIGNER')
  t.is(codeOf(() => verifyCreateDataSet({ ...domain, verifyingContract: '0x' + '33'.repeat(20) }, extraData, payee)), 'ERR_WRONG_SIGNER')
})

test('AddPieces signed by synapse-core verifies over the pieces\' CID bytes; another piece list is refused', async t => {
  const key = generatePrivateKey()
  const payer = privateKeyToAccount(key).address
  const pieceCids = [Piece.calculate(new Uint8Array(200).fill(1)), Piece.calculate(new Uint8Array(300).fill(2))]
  const pieces = pieceCids.map((pieceCid, i) => ({ pieceCid, metadata: i === 0 ? [{ key: 'name', value: 'one' }] : [] }))
  const extraData = await signAddPieces(walletFor(key), { clientDataSetId: 5n, pieces, nonce: 99n })
  const bytes = pieceCids.map((cid) => cid.bytes)
  const auth = verifyAddPieces(domain, extraData, { payer, clientDataSetId: 5n, pieces: bytes })
  t.is(auth.nonce, 99n)
  t.deepEqual(auth.metadata, [[{ key: 'name', value: 'one' }], []])
  t.is(codeOf(() => verifyAddPieces(domain, extraData, { payer, clientDataSetId: 5n, pieces: [bytes[1] as Uint8Array, bytes[0] as Uint8Array] })), 'ERR_WRONG_SIGNER')
  t.is(codeOf(() => verifyAddPieces(domain, extraData, { payer, clientDataSetId: 6n, pieces: bytes })), 'ERR_WRONG_SIGNER')
  t.is(codeOf(() => verifyAddPieces(domain, extraData, { payer, clientDataSetId: 5n, pieces: bytes.slice(0, 1) })), 'ERR_INVALID_EXTRA_DATA')
})

test('SchedulePieceRemovals and DeleteDataSet signed by synapse-core verify; by another key they do not', async t => {
  const key = generatePrivateKey()
  const payer = privateKeyToAccount(key).address
  const removals = await signSchedulePieceRemovals(walletFor(key), { clientDataSetId: 3n, pieceIds: [0n, 4n] })
  t.notThrows(() => verifySchedulePieceRemovals(domain, removals, { payer, clientDataSetId: 3n, pieceIds: [0n, 4n] }))
  t.is(codeOf(() => verifySchedulePieceRemovals(domain, removals, { payer, clientDataSetId: 3n, pieceIds: [0n] })), 'ERR_WRONG_SIGNER')
  const del = await signDeleteDataSet(walletFor(key), { dataSetId: 12n })
  t.notThrows(() => verifyDeleteDataSet(domain, del, { payer, dataSetId: 12n }))
  t.is(codeOf(() => verifyDeleteDataSet(domain, del, { payer, dataSetId: 13n })), 'ERR_WRONG_SIGNER')
  const other = await signDeleteDataSet(walletFor(generatePrivateKey()), { dataSetId: 12n })
  t.is(codeOf(() => verifyDeleteDataSet(domain, other, { payer, dataSetId: 12n })), 'ERR_WRONG_SIGNER')
})

test('TerminateService (the contract\'s current name for deleting a data set) is accepted too', async t => {
  const account = privateKeyToAccount(generatePrivateKey())
  const signature = await account.signTypedData({
    domain: getStorageDomain({ chain: calibration }),
    types: { TerminateService: [{ name: 'dataSetId', type: 'uint256' }] },
    primaryType: 'TerminateService',
    message: { dataSetId: 4n }
  })
  const extraData = encodeAbiParameters([{ type: 'bytes' }], [signature])
  t.notThrows(() => verifyDeleteDataSet(domain, extraData, { payer: account.address, dataSetId: 4n }))
})

test('signatures are recovered as ecrecover does: v of 0/1 and high s are accepted; bad length, v or r/s are ERR_BAD_SIGNATURE', async t => {
  const account = privateKeyToAccount(generatePrivateKey())
  const message = { dataSetId: 1n }
  const signature = hexToBytes(await account.signTypedData({ domain: getStorageDomain({ chain: calibration }), types: EIP712Types, primaryType: 'DeleteDataSet', message }))
  const digest = typedDataDigest(domain, 'DeleteDataSet', message)
  const signer = account.address.toLowerCase()
  t.is(recoverSigner(digest, signature), signer)
  const v01 = signature.slice()
  v01[64] = (signature[64] as number) - 27
  t.is(recoverSigner(digest, v01), signer)
  // the malleable twin (n − s, other parity) recovers the same key: ecrecover has no low-s rule
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  const s = BigInt('0x' + Buffer.from(signature.subarray(32, 64)).toString('hex'))
  const high = signature.slice()
  high.set(Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'), 32)
  high[64] = (signature[64] as number) === 27 ? 28 : 27
  t.is(recoverSigner(digest, high), signer)
  t.is(codeOf(() => recoverSigner(digest, signature.subarray(0, 64))), 'ERR_BAD_SIGNATURE')
  const v29 = signature.slice()
  v29[64] = 29
  t.is(codeOf(() => recoverSigner(digest, v29)), 'ERR_BAD_SIGNATURE')
  const zeroR = signature.slice()
  zeroR.fill(0, 0, 32)
  t.is(codeOf(() => recoverSigner(digest, zeroR)), 'ERR_BAD_SIGNATURE')
})

test('malformed extraData is ERR_INVALID_EXTRA_DATA, never a crash', async t => {
  const extraData = await signCreateDataSet(walletFor(generatePrivateKey()), { payee, metadata: [{ key: 'k', value: 'v' }] })
  for (const input of ['0x', '0xzz', 'nothex', extraData.slice(0, 200), extraData.slice(0, extraData.length - 64)]) {
    t.is(codeOf(() => verifyCreateDataSet(domain, input, payee)), 'ERR_INVALID_EXTRA_DATA', input.slice(0, 20))
  }
  // a string length claiming far more bytes than there are
  const huge = encodeAbiParameters([{ type: 'address' }, { type: 'uint256' }, { type: 'string[]' }, { type: 'string[]' }, { type: 'bytes' }], [payee, 1n, ['a'], ['b', 'c'], '0x00'])
  t.is(codeOf(() => verifyCreateDataSet(domain, huge, payee)), 'ERR_INVALID_EXTRA_DATA')
  const lengthBomb = '0x' + '00'.repeat(31) + '20' + 'ff'.repeat(32)
  t.is(codeOf(() => decodeAbi(['string[]'], lengthBomb)), 'ERR_INVALID_EXTRA_DATA')
  t.is(codeOf(() => decodeAbi(['address'], '0x' + 'ff'.repeat(32))), 'ERR_INVALID_EXTRA_DATA')
  t.is(codeOf(() => verifyCreateDataSet(domain, extraData, 'not-an-address')), 'ERR_INVALID_ARGUMENT')
})
