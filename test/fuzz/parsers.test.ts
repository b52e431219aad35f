/**
 * Every parser that reads bytes or text from outside, fuzzed with fast-check
 * for a bounded time: the CAR reader and DAG verifier, dag-pb/UnixFS decoding
 * in the exporter, the DAG-JSON message parsers (signed envelopes, proposals,
 * asks, acceptances, challenges, proofs), piece CIDs, deal ids, gateway
 * requests, HTTP ranges and upload authorizations.
 *
 * The property is the same for all: the parser returns, or throws a
 * CairnError with a code from src/errors.ts (or a proofs error with its own
 * code) — never a TypeError, RangeError or anything uncoded — and it never
 * hangs. Inputs are bounded in size; each parser gets a time budget
 * (CAIRN_FUZZ_MS, default 3 s; 30 s with CAIRN_SOAK=1).
 */
import test from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { parsePieceCid } from '../../proofs/index.js'
import { DagVerifier, linksOf, readCar } from '../../src/car/index.js'
import { parseTarget } from '../../src/client/retrieve.js'
import { acceptanceFrom, dealStatusFrom } from '../../src/protocol/acceptance.js'
import { askFrom } from '../../src/protocol/ask.js'
import { pieceCidInfo } from '../../src/protocol/piece-cid.js'
import { parseDealId, proposalFrom, signProposal, verifyProposal } from '../../src/protocol/proposal.js'
import { decodeSignedCbor, decodeSignedJson } from '../../src/protocol/signing.js'
import { codes, isCairnError } from '../../src/errors.js'
import { parseCid, parseGatewayRequest } from '../../src/gateway/request.js'
import { verifyUploadAuthorization } from '../../src/protocol/auth.js'
import { parsePieceCidParam, parseRange } from '../../src/provider/piece.js'
import { proofRequestFrom } from '../../src/protocol/proof-request.js'
import { proofPayloadFrom } from '../../src/provider/proofs.js'
import { lsCarFile } from '../../src/unixfs/exporter.js'
import { newClient, payload, proposalOf, SOAK, summarize } from '../hardening/helpers.js'

const BUDGET_MS = Number(process.env.CAIRN_FUZZ_MS ?? (SOAK ? 30_000 : 3_000))
/** one input may take this long before it counts as a hang */
const HANG_MS = 5_000
const proofsCodes = new Set(['ERR_INVALID_PIECE_CID', 'ERR_PIECE_TOO_LARGE', 'ERR_PROOF_MALFORMED', 'ERR_PROOF_LEAF_INDEX', 'ERR_PROOF_ROOT_MISMATCH', 'ERR_PROOF_PIECE_MISMATCH', 'ERR_PIECE_READ', 'ERR_LAYER_CACHE_INVALID', 'ERR_PIECE_CORRUPT'])

/** Fails unless `err` is a coded error cairn can report. */
function assertCoded (err: unknown): void {
  if (isCairnError(err) && Object.hasOwn(codes, err.code)) return
  const code = (err as { code?: unknown })?.code
  if (err instanceof Error && typeof code === 'string' && proofsCodes.has(code)) return
  throw new Error(`uncoded failure: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err })
}

async function guarded (run: () => unknown): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`hung for ${HANG_MS} ms`)), HANG_MS) })
  try {
    await Promise.race([(async () => { await run() })().catch(assertCoded), hang])
  } finally {
    clearTimeout(timer)
  }
}

const runs: Array<{ parser: string, runs: number }> = []

async function fuzz<T> (t: { pass: () => void, log: (...v: unknown[]) => void }, parser: string, arb: fc.Arbitrary<T>, run: (value: T) => unknown): Promise<void> {
  let count = 0
  const result = await fc.check(fc.asyncProperty(arb, async (value) => { count++; await guarded(() => run(value)) }), {
    numRuns: 1_000_000,
    interruptAfterTimeLimit: BUDGET_MS,
    markInterruptAsFailure: false,
    seed: process.env.CAIRN_FUZZ_SEED === undefined ? undefined : Number(process.env.CAIRN_FUZZ_SEED)
  })
  runs.push({ parser, runs: count })
  await summarize({ area: 'fuzz', what: parser, injected: count, outcome: result.failed ? `FAILED (seed ${result.seed})` : 'only coded errors, no hang', ms: BUDGET_MS })
  if (result.failed) throw new Error(fc.defaultReportMessage(result) ?? 'property failed')
  t.log(`${parser}: ${count} inputs`)
  t.pass()
}

// ---------------------------------------------------------------- seeds to mutate

const sample = await payload(11, 5000)
const client = newClient()
const provider = newClient()
const signed = signProposal(client, proposalOf(client, provider.did, sample, 1n))
const signedJson = dagJSON.encode(signed)

/** A valid input with a few bytes changed, cut or inserted: most fuzz finds its bugs near valid input. */
function mutated (seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.tuple(fc.nat({ max: seed.length }), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert', 'truncate')), { minLength: 1, maxLength: 6 })
    .map((edits) => {
      let bytes = Uint8Array.from(seed)
      for (const [at, value, op] of edits) {
        const i = Math.min(at, Math.max(0, bytes.length - 1))
        if (op === 'set') bytes[i] = value
        else if (op === 'cut') bytes = Uint8Array.from([...bytes.subarray(0, i), ...bytes.subarray(i + 1 + (value & 7))])
        else if (op === 'insert') bytes = Uint8Array.from([...bytes.subarray(0, i), value, ...bytes.subarray(i)])
        else bytes = bytes.subarray(0, i)
      }
      return bytes
    })
}

const bytesOrMutant = (seed: Uint8Array, max = 4096): fc.Arbitrary<Uint8Array> => fc.oneof(fc.uint8Array({ maxLength: max }), mutated(seed), mutated(seed))

/** Any IPLD-ish value DAG-JSON can carry, to stand in for fields of a message. */
const ipldValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }), fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), fc.constant(sample.root), fc.constant(sample.pieceCid),
    fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 12 }), tie('value'), { maxKeys: 4 }))
})).value

/** A signed proposal with some fields replaced by arbitrary values or removed. */
const brokenProposal = fc.tuple(
  fc.subarray(Object.keys(signed.payload)),
  fc.array(ipldValue, { minLength: 15, maxLength: 15 }),
  fc.boolean()
).map(([keys, values, remove]) => {
  const payload: Record<string, unknown> = { ...signed.payload }
  keys.forEach((k, i) => { if (remove && i === 0) delete payload[k]; else payload[k] = values[i] })
  return { payload, signer: signed.signer, signature: signed.signature }
})

let scratch = ''
test.before(async () => { scratch = await mkdtemp(join(tmpdir(), 'cairn-fuzz-')) })
test.after.always(async () => { await rm(scratch, { recursive: true, force: true }) })

async function * chunks (bytes: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += step) yield bytes.subarray(i, i + step)
}

// ---------------------------------------------------------------- the parsers

test.serial('CAR reader + DAG verifier (linked and DFS order)', async (t) => {
  await fuzz(t, 'CAR reader + DAG verifier', fc.tuple(bytesOrMutant(sample.car, 8192), fc.integer({ min: 1, max: 4096 }), fc.boolean()), async ([bytes, step, dfs]) => {
    let verifier: DagVerifier | undefined
    for await (const block of readCar(chunks(bytes, step), { unique: dfs, onHeader: (h) => { verifier = new DagVerifier(h.roots[0] as CID, { order: dfs ? 'dfs' : 'linked' }) } })) {
      verifier?.add(block.cid, block.bytes)
    }
    verifier?.finish()
  })
})

test.serial('dag-pb / UnixFS decoding in the exporter (ls of a CAR file)', async (t) => {
  let n = 0
  await fuzz(t, 'exporter: dag-pb/UnixFS of a CAR file', mutated(sample.car), async (bytes) => {
    const path = join(scratch, `f${n++ % 4}.car`)
    await writeFile(path, bytes)
    for await (const _ of lsCarFile(path)) { /* drain */ }
  })
})

test.serial('dag-pb link extraction of single blocks', async (t) => {
  const node = sample.blocks.map.get(sample.root.toString()) as Uint8Array
  await fuzz(t, 'dag-pb links (linksOf)', bytesOrMutant(node, 512), async (bytes) => {
    const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
    linksOf(cid, bytes)
    linksOf(CID.createV1(0x71, cid.multihash), bytes)
  })
})

test.serial('signed envelopes: DAG-JSON and DAG-CBOR', async (t) => {
  await fuzz(t, 'signed envelope (DAG-JSON/DAG-CBOR)', bytesOrMutant(signedJson, 2048), (bytes) => {
    try { decodeSignedJson(bytes) } catch (err) { assertCoded(err) }
    decodeSignedCbor(bytes)
  })
})

test.serial('proposals: shape, signature and deal rules inputs', async (t) => {
  await fuzz(t, 'proposal (proposalFrom/verifyProposal)', brokenProposal, (envelope) => {
    try { proposalFrom(envelope.payload) } catch (err) { assertCoded(err) }
    verifyProposal(envelope)
  })
})

test.serial('asks, acceptances, deal statuses, challenges and proofs from arbitrary values', async (t) => {
  await fuzz(t, 'ask/acceptance/status/challenge/proof parsers', ipldValue, (value) => {
    for (const parse of [askFrom, acceptanceFrom, dealStatusFrom, proofRequestFrom, proofPayloadFrom]) {
      try { parse(value) } catch (err) { assertCoded(err) }
    }
  })
})

test.serial('piece CIDs: v2 digests, strings, route parameters', async (t) => {
  await fuzz(t, 'piece CID parsers', fc.tuple(fc.uint8Array({ maxLength: 48 }), fc.string({ maxLength: 80 })), ([digest, text]) => {
    const mh = { code: 0x1011, size: digest.length, digest, bytes: Uint8Array.from([0x91, 0x20, digest.length, ...digest]) }
    try { pieceCidInfo(CID.createV1(raw.code, mh as never)) } catch (err) { assertCoded(err) }
    for (const s of [text, sample.pieceCid.toString().slice(0, text.length % 70) + text]) {
      try { parsePieceCidParam(s) } catch (err) { assertCoded(err) }
      try { parsePieceCid(s) } catch (err) { assertCoded(err) }
    }
  })
})

test.serial('CID strings, deal ids and get targets', async (t) => {
  const valid = [sample.root.toString(), 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', sample.pieceCid.toString()]
  const text = fc.oneof(fc.string({ maxLength: 120 }), fc.tuple(fc.constantFrom(...valid), fc.nat({ max: 70 }), fc.string({ maxLength: 10 })).map(([v, cut, tail]) => v.slice(0, cut) + tail))
  await fuzz(t, 'CID / deal id / get target', text, (s) => {
    try { parseCid(s) } catch (err) { assertCoded(err) }
    try { parseDealId(s) } catch (err) { assertCoded(err) }
    parseTarget(s)
  })
})

test.serial('gateway requests: path, Accept and query', async (t) => {
  const part = fc.stringMatching(/^[a-z0-9%:=&;,.*\-/ ]{0,40}$/)
  await fuzz(t, 'gateway request parsing', fc.tuple(fc.oneof(fc.constant(sample.root.toString()), fc.string({ maxLength: 60 })), part, fc.option(fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('application/vnd.ipld.car; version=1; order=dfs; dups=y', 'application/vnd.ipld.raw', '*/*;q=0.1'))), part), ([cid, path, accept, query]) => {
    parseGatewayRequest(cid, path, accept ?? undefined, new URLSearchParams(query))
  })
})

test.serial('HTTP Range headers and upload Authorization headers', async (t) => {
  const dealId = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
  await fuzz(t, 'Range / Authorization headers', fc.tuple(fc.string({ maxLength: 60 }), fc.nat(), fc.string({ maxLength: 100 })), ([range, size, auth]) => {
    parseRange('bytes=' + range, size)
    parseRange(range, size)
    try { verifyUploadAuthorization(auth, client.did, dealId) } catch (err) { assertCoded(err) }
    verifyUploadAuthorization('Cairn ' + auth.replace(/[^A-Za-z0-9_-]/g, 'A').padEnd(86, 'A').slice(0, 86), client.did, dealId)
  })
})

test.after.always(() => {
  const total = runs.reduce((n, r) => n + r.runs, 0)
  process.stdout.write(`fuzz: ${total} inputs over ${runs.length} parsers\n`)
})
