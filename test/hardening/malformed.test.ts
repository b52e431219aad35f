/**
 * Malformed input, one class per test, each asserting the exact error code:
 * CARs crafted byte by byte (js-car keeps such corrupt CARs as fixtures),
 * dag-pb and UnixFS nodes the exporter must refuse, DAG-JSON bodies, keys and
 * signatures sent to a real provider, replays, CID strings, gateway queries
 * and path traversal. The table of classes and codes goes to the run summary.
 */
import test from 'ava'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJSON from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { ed25519 } from '@noble/curves/ed25519.js'
import { UnixFS } from 'ipfs-unixfs'
import { varint } from 'multiformats'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { DagVerifier, encodeFramePrefix, encodeHeader, readCar, type ReadCarOptions } from '../../src/car/index.js'
import { parseTarget } from '../../src/client/retrieve.js'
import { pieceCidInfo } from '../../src/protocol/piece-cid.js'
import { signProposal, parseDealId } from '../../src/protocol/proposal.js'
import { sign, Tag } from '../../src/protocol/signing.js'
import { parseCid, parseGatewayRequest } from '../../src/gateway/request.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { parsePieceCidParam } from '../../src/provider/piece.js'
import { lsCarFile, unpack } from '../../src/unixfs/exporter.js'
import { rawRequest } from '../provider/fixtures.js'
import { destroy, errorCode, makeDeal, newClient, payload, postJSON, proposalOf, summarize, uploadPiece, world, type Payload, type World } from './helpers.js'

// ---------------------------------------------------------------- builders

interface Block { cid: CID, bytes: Uint8Array }

async function rawBlock (data: string | Uint8Array): Promise<Block> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes }
}

async function pbBlock (data: Uint8Array | undefined, links: Array<{ name?: string, cid: CID, tsize?: number }> = []): Promise<Block> {
  const bytes = dagPb.encode(dagPb.prepare({ Data: data, Links: links.map((l) => ({ Name: l.name, Hash: l.cid, Tsize: l.tsize ?? 1 })) }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

async function pbRaw (bytes: Uint8Array): Promise<Block> {
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

const dirData = (): Uint8Array => new UnixFS({ type: 'directory' }).marshal()
const fileData = (blockSizes: bigint[], data?: Uint8Array): Uint8Array => new UnixFS({ type: 'file', blockSizes, data }).marshal()

function car (roots: CID[], blocks: Block[], header?: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [header ?? encodeHeader(roots)]
  for (const b of blocks) parts.push(encodeFramePrefix(b.cid, b.bytes.byteLength), b.bytes)
  return Buffer.concat(parts)
}

function uvarint (n: number): Uint8Array {
  return varint.encodeTo(n, new Uint8Array(varint.encodingLength(n)))
}

function rawHeader (value: unknown): Uint8Array {
  const body = dagCbor.encode(value)
  return Buffer.concat([uvarint(body.byteLength), body])
}

async function * chunks (bytes: Uint8Array, step = 997): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += step) yield bytes.subarray(i, i + step)
}

/** What a provider does with an upload: verify every block and the DAG's completeness from the header's root. */
async function verifyUpload (bytes: Uint8Array, options: ReadCarOptions & { order?: 'linked' | 'dfs' } = {}): Promise<void> {
  let verifier: DagVerifier | undefined
  for await (const block of readCar(chunks(bytes), { ...options, onHeader: (h) => { verifier = new DagVerifier(h.roots[0] as CID, { order: options.order ?? 'linked' }) } })) {
    verifier?.add(block.cid, block.bytes)
  }
  verifier?.finish()
}

let scratch: string
let counter = 0
async function carFile (bytes: Uint8Array): Promise<string> {
  const path = join(scratch, `c${counter++}.car`)
  await writeFile(path, bytes)
  return path
}

async function unpackCar (bytes: Uint8Array): Promise<void> {
  const out = join(scratch, `out${counter++}`)
  let failed = false
  let failure: unknown
  try {
    await unpack(await carFile(bytes), out)
  } catch (err) {
    failed = true
    failure = err
  }
  // nothing may be left outside the target, and a failure leaves no target
  const left = (await readdir(scratch)).filter((n) => n.startsWith('.out'))
  if (left.length > 0) throw new Error(`unpack left ${left.join(', ')} behind`)
  if (failed) throw failure
}

async function lsCar (bytes: Uint8Array): Promise<void> {
  for await (const _ of lsCarFile(await carFile(bytes))) { /* drain */ }
}

async function codeOf (run: () => unknown): Promise<string> {
  try {
    await run()
  } catch (err) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string' ? code : `untyped ${(err as Error).name}: ${(err as Error).message}`
  }
  return 'accepted'
}

// ---------------------------------------------------------------- the provider under test

let w: World
let p: Payload
/** a deal whose piece is stored, for the gateway's path handling */
let q: Payload
let dealId: string
const notAPoint = (): Uint8Array => {
  for (let i = 0; ; i++) {
    const candidate = new Uint8Array(32).fill(i)
    candidate[31] = 0x7f & i
    try { ed25519.Point.fromBytes(candidate) } catch { return candidate }
  }
}
const didOf = (key: Uint8Array): string => `did:key:${base58btc.encode(Uint8Array.from([0xed, 0x01, ...key]))}`

test.before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cairn-malformed-'))
  w = await world()
  p = await payload(7)
  const res = await postJSON(`${w.url}/v1/deals`, dagJSON.stringify(signProposal(w.client, proposalOf(w.client, w.repo.identity.did, p, 1n))))
  dealId = (dagJSON.parse(await res.text()) as { payload: { dealId: CID } }).payload.dealId.toString()
  q = await payload(8)
  const active = await makeDeal(w.url, w.client, w.repo.identity.did, q, 2n)
  const put = await uploadPiece(w.url, w.client, active, q.car)
  if (put.status !== 200) throw new Error(`upload failed: ${await put.text()}`)
})

test.after.always(async () => {
  await destroy(w)
  await rm(scratch, { recursive: true, force: true })
})

/** A signed proposal as a plain DAG-JSON-able object, to be broken in one place. */
function signedProposal (nonce: bigint, overrides = {}): { payload: Record<string, unknown>, signer: string, signature: Uint8Array } {
  return signProposal(w.client, proposalOf(w.client, w.repo.identity.did, p, nonce, overrides)) as never
}

/** A valid proof request payload for the accepted deal. */
function proofRequestPayload (): Record<string, unknown> {
  return { dealId: CID.parse(dealId), seed: new Uint8Array(32), count: 1, at: Math.floor(Date.now() / 1000), head: null }
}

async function challengeCode (body: unknown): Promise<string> {
  return await errorCode(await postJSON(`${w.url}/v1/deals/${dealId}/proofs`, typeof body === 'string' ? body : dagJSON.stringify(body)))
}

async function proposeCode (body: unknown): Promise<string> {
  return await errorCode(await postJSON(`${w.url}/v1/deals`, typeof body === 'string' ? body : dagJSON.stringify(body)))
}

/** Replaces a JSON value in the DAG-JSON text of a signed proposal (for numbers DAG-JSON cannot produce from JS). */
async function proposeEdited (edit: (json: string) => string): Promise<string> {
  return await proposeCode(edit(dagJSON.stringify(signedProposal(BigInt(Date.now()) * 1000n + BigInt(counter++)))))
}

async function getCode (path: string, headers: Record<string, string> = {}): Promise<string> {
  return await errorCode(await fetch(`${w.url}${path}`, { headers }))
}

// ---------------------------------------------------------------- the classes

interface Class { area: string, name: string, code: string, run: () => Promise<unknown> | unknown }

const leaf = await rawBlock('leaf')
const leaf2 = await rawBlock('another leaf')
const dir = await pbBlock(dirData(), [{ name: 'a', cid: leaf.cid }])
const goodCar = car([dir.cid], [dir, leaf])

const classes: Class[] = [
  // CARs, through the provider's verifying upload path
  { area: 'car', name: 'empty input', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(new Uint8Array()) },
  { area: 'car', name: 'truncated header varint', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(Uint8Array.from([0x80])) },
  { area: 'car', name: 'unterminated 10-byte varint', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(new Uint8Array(12).fill(0xff)) },
  { area: 'car', name: 'varint not minimally encoded', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(Uint8Array.from([0x80, 0x00])) },
  { area: 'car', name: 'header length zero', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(Uint8Array.from([0, 1, 2])) },
  { area: 'car', name: 'header length over 64 KiB', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(Buffer.concat([uvarint(1 << 20), new Uint8Array(16)])) },
  { area: 'car', name: 'header cut short', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(goodCar.subarray(0, 20)) },
  { area: 'car', name: 'header not CBOR', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(Buffer.concat([uvarint(4), Uint8Array.from([0xff, 0xfe, 0xfd, 0xfc])])) },
  { area: 'car', name: 'header CBOR but not a map', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(rawHeader([1, [dir.cid]])) },
  { area: 'car', name: 'wrong version (2)', code: 'ERR_CAR_UNSUPPORTED_VERSION', run: async () => await verifyUpload(car([], [dir, leaf], rawHeader({ version: 2, roots: [dir.cid] }))) },
  { area: 'car', name: 'version missing', code: 'ERR_CAR_UNSUPPORTED_VERSION', run: async () => await verifyUpload(car([], [dir, leaf], rawHeader({ roots: [dir.cid] }))) },
  { area: 'car', name: 'roots not a list', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(car([], [dir, leaf], rawHeader({ version: 1, roots: dir.cid }))) },
  { area: 'car', name: 'root not a CID', code: 'ERR_CAR_HEADER', run: async () => await verifyUpload(car([], [dir, leaf], rawHeader({ version: 1, roots: ['bafy'] }))) },
  { area: 'car', name: 'zero roots', code: 'ERR_CAR_NO_ROOTS', run: async () => await verifyUpload(car([], [dir, leaf])) },
  { area: 'car', name: 'several roots', code: 'ERR_CAR_MULTIPLE_ROOTS', run: async () => await verifyUpload(car([dir.cid, leaf.cid], [dir, leaf])) },
  { area: 'car', name: 'block length varint cut short', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(Buffer.concat([encodeHeader([leaf.cid]), Uint8Array.from([0x80])])) },
  { area: 'car', name: 'block frame cut short', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(goodCar.subarray(0, goodCar.length - 2)) },
  { area: 'car', name: 'block frame declares over 2 MiB', code: 'ERR_CAR_BLOCK_TOO_LARGE', run: async () => await verifyUpload(Buffer.concat([encodeHeader([leaf.cid]), uvarint(3 << 20), new Uint8Array(64)])) },
  { area: 'car', name: 'block length varint of 8+ bytes', code: 'ERR_CAR_BLOCK_TOO_LARGE', run: async () => await verifyUpload(Buffer.concat([encodeHeader([leaf.cid]), Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])])) },
  {
    area: 'car',
    name: 'block data over 2 MiB (frame within the slack)',
    code: 'ERR_CAR_BLOCK_TOO_LARGE',
    run: async () => {
      const big = new Uint8Array((2 << 20) + 64)
      const cid = CID.createV1(raw.code, await sha256.digest(big))
      await verifyUpload(Buffer.concat([encodeHeader([cid]), encodeFramePrefix(cid, big.length), big]))
    }
  },
  { area: 'car', name: 'zero-length block frame', code: 'ERR_DAG_INVALID', run: async () => await verifyUpload(Buffer.concat([encodeHeader([leaf.cid]), Uint8Array.from([0])])) },
  { area: 'car', name: 'frame not starting with a CID', code: 'ERR_DAG_INVALID', run: async () => await verifyUpload(Buffer.concat([encodeHeader([leaf.cid]), uvarint(8), Uint8Array.from([0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])])) },
  { area: 'car', name: 'CID/bytes mismatch', code: 'ERR_BLOCK_MISMATCH', run: async () => await verifyUpload(car([leaf.cid], [{ cid: leaf.cid, bytes: leaf2.bytes }])) },
  {
    area: 'car',
    name: 'unsupported multihash (sha2-512)',
    code: 'ERR_DAG_INVALID',
    run: async () => {
      const cid = CID.createV1(raw.code, await sha512.digest(leaf.bytes))
      await verifyUpload(car([cid], [{ cid, bytes: leaf.bytes }]))
    }
  },
  { area: 'car', name: 'duplicate block (unique)', code: 'ERR_CAR_DUPLICATE_BLOCK', run: async () => await verifyUpload(car([dir.cid], [dir, leaf, leaf]), { unique: true }) },
  { area: 'car', name: 'duplicate block (DFS verifier)', code: 'ERR_CAR_DUPLICATE_BLOCK', run: async () => await verifyUpload(car([dir.cid], [dir, leaf, leaf]), { order: 'dfs' }) },
  { area: 'car', name: 'trailing garbage after the last block', code: 'ERR_CAR_TRUNCATED', run: async () => await verifyUpload(Buffer.concat([goodCar, Uint8Array.from([0x20, 0x01, 0x55])])) },
  { area: 'car', name: 'first block is not the root', code: 'ERR_CAR_ROOT_MISSING', run: async () => await verifyUpload(car([dir.cid], [leaf, dir])) },
  { area: 'car', name: 'block linked from nothing', code: 'ERR_DAG_INVALID', run: async () => await verifyUpload(car([dir.cid], [dir, leaf, leaf2])) },
  { area: 'car', name: 'linked block missing', code: 'ERR_CAR_BLOCK_MISSING', run: async () => await verifyUpload(car([dir.cid], [dir])) },
  {
    area: 'car',
    name: 'blocks out of DFS order',
    code: 'ERR_DAG_INVALID',
    run: async () => {
      const two = await pbBlock(dirData(), [{ name: 'a', cid: leaf.cid }, { name: 'b', cid: leaf2.cid }])
      await verifyUpload(car([two.cid], [two, leaf2, leaf]), { order: 'dfs' })
    }
  },
  {
    area: 'car',
    name: 'codec cairn cannot walk (dag-json)',
    code: 'ERR_DAG_INVALID',
    run: async () => {
      const bytes = dagJSON.encode({ a: 1 })
      const cid = CID.createV1(dagJSON.code, await sha256.digest(bytes))
      await verifyUpload(car([cid], [{ cid, bytes }]))
    }
  },
  {
    area: 'car',
    name: 'identity-hash block whose bytes differ',
    code: 'ERR_BLOCK_MISMATCH',
    run: async () => {
      const cid = CID.createV1(raw.code, identity.digest(Uint8Array.from([1, 2, 3])))
      await verifyUpload(car([cid], [{ cid, bytes: Uint8Array.from([1, 2, 4]) }]))
    }
  },

  // dag-pb and UnixFS, through the exporter (unpack/ls verify the whole DAG first)
  { area: 'unixfs', name: 'dag-pb block that is not protobuf', code: 'ERR_DAG_INVALID', run: async () => { const b = await pbRaw(Uint8Array.from([0xff, 0xff, 0xff])); await lsCar(car([b.cid], [b])) } },
  { area: 'unixfs', name: 'dag-pb node without Data', code: 'ERR_DAG_INVALID', run: async () => { const b = await pbBlock(undefined); await lsCar(car([b.cid], [b])) } },
  { area: 'unixfs', name: 'UnixFS Data that is not protobuf', code: 'ERR_DAG_INVALID', run: async () => { const b = await pbBlock(Uint8Array.from([0xff, 0x01])); await lsCar(car([b.cid], [b])) } },
  { area: 'unixfs', name: 'unknown UnixFS type (99)', code: 'ERR_DAG_INVALID', run: async () => { const b = await pbBlock(Uint8Array.from([0x08, 99])); await lsCar(car([b.cid], [b])) } },
  { area: 'unixfs', name: 'UnixFS metadata node (not exportable)', code: 'ERR_DAG_INVALID', run: async () => { const b = await pbBlock(Uint8Array.from([0x08, 3])); await lsCar(car([b.cid], [b])) } },
  {
    area: 'unixfs',
    name: 'file whose blocksizes understate its links',
    code: 'ERR_DAG_INVALID',
    run: async () => { const f = await pbBlock(fileData([1n]), [{ cid: leaf.cid }]); await unpackCar(car([f.cid], [f, leaf])) }
  },
  {
    area: 'unixfs',
    name: 'absurd file size (2^60 declared)',
    code: 'ERR_DAG_INVALID',
    run: async () => { const f = await pbBlock(fileData([1n << 60n]), [{ cid: leaf.cid }]); await unpackCar(car([f.cid], [f, leaf])) }
  },
  {
    area: 'unixfs',
    name: 'duplicate links: one leaf linked 64 times, sized once',
    code: 'ERR_DAG_INVALID',
    run: async () => {
      const f = await pbBlock(fileData([BigInt(leaf.bytes.length)]), Array.from({ length: 64 }, () => ({ cid: leaf.cid })))
      await unpackCar(car([f.cid], [f, leaf]))
    }
  },
  {
    area: 'unixfs',
    name: 'file linking to a directory',
    code: 'ERR_DAG_INVALID',
    run: async () => { const f = await pbBlock(fileData([0n]), [{ cid: dir.cid }]); await unpackCar(car([f.cid], [f, dir, leaf])) }
  },
  {
    area: 'unixfs',
    name: 'HAMT shard link name of one character',
    code: 'ERR_DAG_INVALID',
    run: async () => {
      const shard = await pbBlock(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n }).marshal(), [{ name: 'A', cid: leaf.cid }])
      await lsCar(car([shard.cid], [shard, leaf]))
    }
  },
  { area: 'path', name: 'entry name ".."', code: 'ERR_UNSAFE_PATH', run: async () => { const d = await pbBlock(dirData(), [{ name: '..', cid: leaf.cid }]); await unpackCar(car([d.cid], [d, leaf])) } },
  { area: 'path', name: 'entry name "."', code: 'ERR_UNSAFE_PATH', run: async () => { const d = await pbBlock(dirData(), [{ name: '.', cid: leaf.cid }]); await unpackCar(car([d.cid], [d, leaf])) } },
  { area: 'path', name: 'entry name with a slash (../../etc/passwd)', code: 'ERR_UNSAFE_PATH', run: async () => { const d = await pbBlock(dirData(), [{ name: '../../etc/passwd', cid: leaf.cid }]); await unpackCar(car([d.cid], [d, leaf])) } },
  { area: 'path', name: 'empty entry name', code: 'ERR_UNSAFE_PATH', run: async () => { const d = await pbBlock(dirData(), [{ name: '', cid: leaf.cid }]); await unpackCar(car([d.cid], [d, leaf])) } },
  { area: 'path', name: 'entry name with NUL', code: 'ERR_UNSAFE_PATH', run: async () => { const d = await pbBlock(dirData(), [{ name: 'a\0b', cid: leaf.cid }]); await unpackCar(car([d.cid], [d, leaf])) } },
  {
    area: 'path',
    name: 'same entry name twice (duplicate links)',
    code: 'ERR_UNSAFE_PATH',
    run: async () => { const d = await pbBlock(dirData(), [{ name: 'x', cid: leaf.cid }, { name: 'x', cid: leaf2.cid }]); await unpackCar(car([d.cid], [d, leaf, leaf2])) }
  },
  {
    area: 'path',
    name: 'HAMT entry named ".." behind its 2-char prefix',
    code: 'ERR_UNSAFE_PATH',
    run: async () => {
      const shard = await pbBlock(new UnixFS({ type: 'hamt-sharded-directory', fanout: 256n, hashType: 0x22n }).marshal(), [{ name: 'AB..', cid: leaf.cid }])
      await unpackCar(car([shard.cid], [shard, leaf]))
    }
  },
  { area: 'path', name: 'get path with ..', code: 'ERR_INVALID_ARGUMENT', run: () => parseTarget(`${dir.cid.toString()}/../etc/passwd`) },
  { area: 'path', name: 'get path with %2e%2e (decodes to ..)', code: 'ERR_INVALID_ARGUMENT', run: () => parseTarget(`${dir.cid.toString()}/%2e%2e`) },
  { area: 'path', name: 'get path segment hiding a slash (a%2F..%2F..)', code: 'ERR_INVALID_ARGUMENT', run: () => parseTarget(`${dir.cid.toString()}/a%2F..%2F..`) },
  { area: 'path', name: 'get path not valid percent-encoding', code: 'ERR_INVALID_ARGUMENT', run: () => parseTarget(`${dir.cid.toString()}/%`) },
  { area: 'path', name: 'get path with .', code: 'ERR_INVALID_ARGUMENT', run: () => parseTarget(`${dir.cid.toString()}/./a`) },
  {
    area: 'path',
    name: 'gateway path climbing out of /ipfs with %2e%2e',
    code: 'ERR_NOT_FOUND',
    run: async () => { const r = await rawRequest(w.url, [`GET /ipfs/${q.root.toString()}/%2e%2e/%2e%2e/v1/x HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.ipld.car\r\nConnection: close\r\n\r\n`]); throw { code: JSON.parse(r.body).error.code } }
  },
  { area: 'path', name: 'gateway path segment hiding ../ as %2F', code: 'ERR_PATH_NOT_FOUND', run: async () => { throw { code: await getCode(`/ipfs/${q.root.toString()}/d%2F..%2F..%2Fetc`, { accept: 'application/vnd.ipld.car' }) } } },

  // DAG-JSON bodies to POST /v1/deals
  { area: 'json', name: 'malformed JSON', code: 'ERR_INVALID_JSON', run: async () => { throw { code: await proposeCode('{"payload": ') } } },
  { area: 'json', name: 'empty body', code: 'ERR_INVALID_JSON', run: async () => { throw { code: await proposeCode('') } } },
  { area: 'json', name: 'JSON that is not DAG-JSON (bad bytes form)', code: 'ERR_INVALID_JSON', run: async () => { throw { code: await proposeCode('{"/": {"bytes": "!!!"}}') } } },
  { area: 'json', name: 'wrong Content-Type', code: 'ERR_BAD_REQUEST', run: async () => { throw { code: await errorCode(await postJSON(`${w.url}/v1/deals`, '{}', { 'content-type': 'text/plain' })) } } },
  { area: 'json', name: 'body over 64 KiB', code: 'ERR_PAYLOAD_TOO_LARGE', run: async () => { throw { code: await proposeCode(`{"x":"${'a'.repeat(70_000)}"}`) } } },
  { area: 'json', name: 'top-level list', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeCode('[1,2]') } } },
  { area: 'json', name: 'unknown field in the envelope', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeCode({ ...signedProposal(100n), extra: 1 }) } } },
  { area: 'json', name: 'unknown field in the proposal', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(101n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, tip: 5 } }) } } },
  { area: 'json', name: 'missing field', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(102n); const { nonce: _n, ...rest } = s.payload; throw { code: await proposeCode({ ...s, payload: rest }) } } },
  { area: 'json', name: 'wrong type (pieceSize as a string)', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(103n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, pieceSize: '2048' } }) } } },
  { area: 'json', name: 'huge number (price 2^70)', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeEdited((j) => j.replace(/"pricePerGiBDay":\d+/, '"pricePerGiBDay":1180591620717411303424')) } } },
  { area: 'json', name: 'negative amount (collateral -1)', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeEdited((j) => j.replace(/"providerCollateral":\d+/, '"providerCollateral":-1')) } } },
  { area: 'json', name: 'float amount (price 40.5)', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeEdited((j) => j.replace(/"pricePerGiBDay":\d+/, '"pricePerGiBDay":40.5')) } } },
  { area: 'json', name: 'amount as a string of digits', code: 'ERR_INVALID_MESSAGE', run: async () => { throw { code: await proposeEdited((j) => j.replace(/"pricePerGiBDay":(\d+)/, '"pricePerGiBDay":"$1"')) } } },
  { area: 'json', name: 'label over 256 bytes', code: 'ERR_LABEL_TOO_LONG', run: async () => { throw { code: await proposeCode(signedProposal(104n, { label: 'x'.repeat(300) })) } } },
  { area: 'json', name: 'pieceCid that is not a piece CID', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(105n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, pieceCid: p.root } }) } } },
  { area: 'json', name: 'payloadCid garbage', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(106n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, payloadCid: 'not-a-cid' } }) } } },
  { area: 'json', name: 'end before start', code: 'ERR_INVALID_MESSAGE', run: async () => { const s = signedProposal(107n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, end: 1 } }) } } },
  { area: 'json', name: 'proof request with an unknown field', code: 'ERR_INVALID_ARGUMENT', run: async () => { throw { code: await challengeCode(sign(w.client, Tag.proofRequest, { ...proofRequestPayload(), x: 1 })) } } },
  { area: 'json', name: 'proof request count as a float', code: 'ERR_INVALID_ARGUMENT', run: async () => { throw { code: await challengeCode(sign(w.client, Tag.proofRequest, { ...proofRequestPayload(), count: 1.5 })) } } },
  { area: 'signature', name: 'unsigned proof request ({seed, count})', code: 'ERR_UNAUTHORIZED', run: async () => { throw { code: await challengeCode('{"seed":{"/":{"bytes":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},"count":1}') } } },
  { area: 'signature', name: 'proof request signed by a key other than the deal\'s client', code: 'ERR_UNAUTHORIZED', run: async () => { throw { code: await challengeCode(sign(newClient(), Tag.proofRequest, proofRequestPayload())) } } },

  // signatures and keys
  { area: 'signature', name: 'signature of 63 bytes', code: 'ERR_BAD_SIGNATURE', run: async () => { const s = signedProposal(110n); throw { code: await proposeCode({ ...s, signature: s.signature.subarray(0, 63) }) } } },
  { area: 'signature', name: 'signature not bytes', code: 'ERR_BAD_SIGNATURE', run: async () => { const s = signedProposal(111n); throw { code: await proposeCode({ ...s, signature: 'abc' }) } } },
  { area: 'signature', name: 'one bit flipped in the signature', code: 'ERR_BAD_SIGNATURE', run: async () => { const s = signedProposal(112n); const sig = new Uint8Array(s.signature); sig[5] ^= 1; throw { code: await proposeCode({ ...s, signature: sig }) } } },
  { area: 'signature', name: 'signed by another key (signer says so)', code: 'ERR_WRONG_SIGNER', run: async () => { const other = newClient(); const s = sign(other, Tag.proposal, signedProposal(113n).payload); throw { code: await proposeCode(s) } } },
  { area: 'signature', name: 'signed by another key (claims the client)', code: 'ERR_BAD_SIGNATURE', run: async () => { const other = newClient(); const s = sign(other, Tag.proposal, signedProposal(114n).payload); throw { code: await proposeCode({ ...s, signer: w.client.did }) } } },
  { area: 'signature', name: 'wrong domain tag (signed as an ask)', code: 'ERR_BAD_SIGNATURE', run: async () => { const s = sign(w.client, Tag.ask, signedProposal(115n).payload); throw { code: await proposeCode(s) } } },
  { area: 'signature', name: 'payload changed after signing', code: 'ERR_BAD_SIGNATURE', run: async () => { const s = signedProposal(116n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, nonce: 117n } }) } } },
  { area: 'key', name: 'client key of 31 bytes', code: 'ERR_INVALID_KEY', run: async () => { const s = signedProposal(118n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, client: didOf(new Uint8Array(31).fill(9)) } }) } } },
  { area: 'key', name: 'client key not a curve point', code: 'ERR_INVALID_KEY', run: async () => { const s = signedProposal(119n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, client: didOf(notAPoint()) } }) } } },
  { area: 'key', name: 'did:key of another curve (secp256k1 multicodec)', code: 'ERR_INVALID_KEY', run: async () => { const s = signedProposal(120n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, client: `did:key:${base58btc.encode(Uint8Array.from([0xe7, 0x01, ...new Uint8Array(33).fill(2)]))}` } }) } } },
  { area: 'key', name: 'did that is not did:key', code: 'ERR_INVALID_KEY', run: async () => { const s = signedProposal(121n); throw { code: await proposeCode({ ...s, payload: { ...s.payload, client: 'did:web:example.com' } }) } } },
  { area: 'key', name: 'proposal for another provider', code: 'ERR_WRONG_PROVIDER', run: async () => { throw { code: await proposeCode(signedProposal(122n, { provider: newClient().did })) } } },

  // replays
  { area: 'replay', name: 'the same signed proposal twice', code: 'ERR_REPLAYED_DEAL', run: async () => { const s = signedProposal(130n); await proposeCode(s); throw { code: await proposeCode(s) } } },
  { area: 'replay', name: 'a new proposal reusing a nonce', code: 'ERR_REPLAYED_NONCE', run: async () => { await proposeCode(signedProposal(131n)); throw { code: await proposeCode(signedProposal(131n, { label: 'other' })) } } },
  { area: 'replay', name: 'an upload signature replayed for another deal', code: 'ERR_UNAUTHORIZED', run: async () => { const res = await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: uploadAuthorization(w.client, CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')) } }); throw { code: await errorCode(res) } } },
  { area: 'replay', name: 'upload Authorization not a Cairn signature', code: 'ERR_UNAUTHORIZED', run: async () => { const res = await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car, headers: { authorization: 'Bearer abc' } }); throw { code: await errorCode(res) } } },

  // HTTP framing of an upload
  { area: 'http', name: 'upload without Content-Length (chunked)', code: 'ERR_LENGTH_REQUIRED', run: async () => { const r = await rawRequest(w.url, [`PUT /v1/deals/${dealId}/piece HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`]); throw { code: JSON.parse(r.body).error.code } } },
  { area: 'http', name: 'Content-Length not a number', code: 'ERR_BAD_REQUEST', run: async () => { const r = await rawRequest(w.url, [`PUT /v1/deals/${dealId}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n`]); throw { code: JSON.parse(r.body).error.code } } },
  { area: 'http', name: 'Content-Length and Transfer-Encoding both', code: 'ERR_BAD_REQUEST', run: async () => { const r = await rawRequest(w.url, [`PUT /v1/deals/${dealId}/piece HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`]); throw { code: JSON.parse(r.body).error.code } } },
  { area: 'http', name: 'Content-Length other than payloadSize', code: 'ERR_CONTENT_LENGTH', run: async () => { throw { code: await errorCode(await fetch(`${w.url}/v1/deals/${dealId}/piece`, { method: 'PUT', body: p.car.subarray(3), headers: { authorization: uploadAuthorization(w.client, dealId) } })) } } },
  { area: 'http', name: 'request line that is not HTTP', code: 'ERR_BAD_REQUEST', run: async () => { const r = await rawRequest(w.url, ['HELLO\r\n\r\n']); throw { code: JSON.parse(r.body).error.code } } },

  // CID strings
  { area: 'cid', name: 'garbage CID in a gateway path', code: 'ERR_INVALID_CID', run: async () => { throw { code: await getCode('/ipfs/not-a-cid', { accept: 'application/vnd.ipld.raw' }) } } },
  { area: 'cid', name: 'unknown multibase prefix', code: 'ERR_INVALID_CID', run: () => parseCid('!' + p.root.toString().slice(1)) },
  { area: 'cid', name: 'base32 CID with characters outside the alphabet', code: 'ERR_INVALID_CID', run: () => parseCid('bafy1890' + p.root.toString().slice(8)) },
  { area: 'cid', name: 'truncated CID', code: 'ERR_INVALID_CID', run: () => parseCid(p.root.toString().slice(0, 20)) },
  { area: 'cid', name: 'CIDv0 where a deal id (v1 dag-cbor) is needed', code: 'ERR_INVALID_CID', run: async () => { throw { code: await getCode('/v1/deals/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG') } } },
  { area: 'cid', name: 'raw CID where a deal id is needed', code: 'ERR_INVALID_CID', run: () => parseDealId(leaf.cid.toString()) },
  { area: 'cid', name: 'deal id in base58 of a non-CID', code: 'ERR_INVALID_CID', run: async () => { throw { code: await getCode('/v1/deals/zzzzzz') } } },
  { area: 'cid', name: 'piece route with a content CID', code: 'ERR_INVALID_CID', run: () => parsePieceCidParam(p.root.toString()) },
  { area: 'cid', name: 'piece route with garbage', code: 'ERR_INVALID_CID', run: async () => { throw { code: await getCode('/piece/%00%01') } } },
  { area: 'piece-cid', name: 'piece CID v2 with height over 58', code: 'ERR_INVALID_MESSAGE', run: () => pieceCidInfo(pieceV2(0, 59)) },
  { area: 'piece-cid', name: 'piece CID v2 digest of the wrong length', code: 'ERR_INVALID_MESSAGE', run: () => pieceCidInfo(pieceV2(0, 10, 31)) },
  { area: 'piece-cid', name: 'piece CID v2 padding larger than the piece', code: 'ERR_INVALID_MESSAGE', run: () => pieceCidInfo(pieceV2(5000, 5)) },
  { area: 'piece-cid', name: 'piece CID v1 where v2 is needed', code: 'ERR_INVALID_MESSAGE', run: () => pieceCidInfo(CID.parse('baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq')) },

  // gateway queries
  { area: 'gateway', name: 'unknown format=', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=zip')) },
  { area: 'gateway', name: 'format=dag-json on a trustless gateway', code: 'ERR_NOT_ACCEPTABLE', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=dag-json')) },
  { area: 'gateway', name: 'dag-scope=everything', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=car&dag-scope=everything')) },
  { area: 'gateway', name: 'entity-bytes not from:to', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=car&entity-bytes=1-2')) },
  { area: 'gateway', name: 'entity-bytes ending before it starts', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=car&entity-bytes=9:3')) },
  { area: 'gateway', name: 'entity-bytes beyond 2^53', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams('format=car&entity-bytes=0:99999999999999999999')) },
  { area: 'gateway', name: 'CAR version 2 asked for', code: 'ERR_NOT_ACCEPTABLE', run: () => parseGatewayRequest(p.root.toString(), '', 'application/vnd.ipld.car; version=2', new URLSearchParams()) },
  { area: 'gateway', name: 'Accept: text/html only', code: 'ERR_NOT_ACCEPTABLE', run: () => parseGatewayRequest(p.root.toString(), '', 'text/html', new URLSearchParams()) },
  { area: 'gateway', name: 'no response type asked for', code: 'ERR_BAD_REQUEST', run: () => parseGatewayRequest(p.root.toString(), '', undefined, new URLSearchParams()) },
  { area: 'gateway', name: 'raw block request with a path', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), 'd/a.bin', undefined, new URLSearchParams('format=raw')) },
  { area: 'gateway', name: 'path not valid percent-encoding', code: 'ERR_INVALID_ARGUMENT', run: () => parseGatewayRequest(p.root.toString(), '%E0%A4%A', undefined, new URLSearchParams('format=car')) },
  { area: 'gateway', name: 'unknown endpoint', code: 'ERR_NOT_FOUND', run: async () => { throw { code: await getCode('/v2/anything') } } },
  { area: 'gateway', name: 'method not allowed', code: 'ERR_METHOD_NOT_ALLOWED', run: async () => { throw { code: await errorCode(await fetch(`${w.url}/v1/ask`, { method: 'DELETE' })) } } }
]

function pieceV2 (padding: number, height: number, rootLength = 32): CID {
  const digest = Uint8Array.from([...uvarint(padding), height, ...new Uint8Array(rootLength)])
  const mh = Uint8Array.from([...uvarint(0x1011), ...uvarint(digest.length), ...digest])
  return CID.createV1(raw.code, { code: 0x1011, size: digest.length, digest, bytes: mh } as never)
}

const observed = new Map<Class, string>()
for (const c of classes) {
  test.serial(`${c.area}: ${c.name} → ${c.code}`, async (t) => {
    const code = await codeOf(c.run)
    observed.set(c, code)
    t.is(code, c.code)
  })
}

test.after.always(async () => {
  for (const c of classes) {
    const code = observed.get(c) ?? 'not run'
    await summarize({ area: 'malformed', what: `${c.area}: ${c.name}`, injected: 1, outcome: code === c.code ? `rejected ${code}` : `UNEXPECTED ${code} (wanted ${c.code})` })
  }
})

test.serial('at least 50 classes, and nothing of the rejected uploads is left in the store', async (t) => {
  t.true(classes.length >= 50, `${classes.length} classes`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.deepEqual((await readdir(w.repo.tmpDir)).filter((n) => !n.startsWith('.')), [])
  t.deepEqual((await readdir(w.repo.piecesDir)).filter((n) => n.endsWith('.car')), [`${q.pieceCid.toString()}.car`])
})
