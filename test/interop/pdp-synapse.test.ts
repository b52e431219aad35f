/**
 * A Filecoin Onchain Cloud client stores with a cairn provider: @filoz/synapse-core
 * 0.5.2, unmodified, against a real `cairn provider start` process on
 * 127.0.0.1 (docs/pdp.md). ping, classic and streaming uploads, findPiece with
 * polling, downloadAndValidate from /piece, a finalize naming the wrong piece
 * CID, a park flood refused with a coded 429, and data sets: createDataSet,
 * addPieces, createDataSetAndAddPieces with their status polling, getDataSet,
 * schedulePieceDeletion, and a pull of pieces between two cairn providers, all
 * signed by a viem account that signs locally (no RPC).
 *
 * The largest piece (1,065,353,216 bytes) and one byte more move 2 GiB through
 * loopback and disk; CAIRN_PDP_GIB=0 leaves them out of a quick local run.
 */
import test from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import * as SP from '@filoz/synapse-core/sp'
import * as Piece from '@filoz/synapse-core/piece'
import { calibration } from '@filoz/synapse-core/chains'
import { createWalletClient, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createPieceHasher } from '../../proofs/index.js'
import { BIN, cairn, tempDir } from '../helpers/cli.js'

const MAX = 1_065_353_216
const GIB = process.env.CAIRN_PDP_GIB !== '0'

interface Provider { url: string, child: ChildProcess, stderr: () => string, stop: () => Promise<number | null> }

async function startProvider (repo: string, flags: string[] = []): Promise<Provider> {
  const init = await cairn(['init', '--repo', repo])
  if (init.code !== 0) throw new Error(init.stderr)
  const child = spawn(process.execPath, [BIN, 'provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--json', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const killer = setTimeout(() => child.kill('SIGKILL'), 600_000)
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { url: string }).url)
    })
    child.on('close', () => reject(new Error(`provider exited early: ${stderr}`)))
  })
  return {
    url: `${url}/`,
    child,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM')
      const code = await exited
      clearTimeout(killer)
      return code
    }
  }
}

/** `size` pseudo-random bytes as fresh 1 MiB chunks, the same every time. */
function * chunks (size: number, seed: Uint8Array): Generator<Uint8Array> {
  const step = 1 << 20
  for (let offset = 0, i = 0; offset < size; offset += step, i++) {
    const chunk = seed.slice(0, Math.min(step, size - offset))
    if (chunk.length >= 4) new DataView(chunk.buffer).setUint32(0, i)
    yield chunk
  }
}

function streamOf (size: number, seed: Uint8Array): ReadableStream<Uint8Array> {
  const it = chunks(size, seed)
  return new ReadableStream({
    pull (controller) {
      const next = it.next()
      if (next.done === true) controller.close()
      else controller.enqueue(next.value)
    }
  })
}

async function pieceCidOf (size: number, seed: Uint8Array): Promise<Piece.PieceCID> {
  const hasher = createPieceHasher()
  for (const chunk of chunks(size, seed)) await hasher.update(chunk)
  return Piece.parse((await hasher.digest()).cid.toString())
}

/**
 * findPiece of a piece not held: iso-web turns a 404 with a JSON body into a
 * JsonError carrying the body, so the provider's code reaches the caller.
 */
async function notFound (t: import('ava').ExecutionContext, found: Promise<unknown>): Promise<void> {
  const err = await t.throwsAsync(found)
  t.is(err?.name, 'JsonError', details(err))
  t.is((err?.cause as { error?: { code?: string } } | undefined)?.error?.code, 'ERR_PIECE_NOT_FOUND')
}

/** An error's name, details and message, and its causes' (a client-side refusal reaches the caller wrapped in fetch's errors). */
function details (err: unknown, depth = 0): string {
  if (err === undefined || err === null || depth > 5) return ''
  const e = err as { name?: string, details?: string, message?: string, cause?: unknown }
  return `${e.name ?? ''} ${e.details ?? ''} ${e.message ?? ''} | ${details(e.cause, depth + 1)}`
}

test('synapse-core 0.5.2 stores with a cairn provider: ping, streaming and classic uploads, findPiece polling, downloadAndValidate, a wrong finalize refused', async t => {
  const dir = await tempDir('cairn-pdp-synapse-')
  const provider = await startProvider(join(dir.path, 'provider'))
  const serviceURL = provider.url
  try {
    await t.notThrowsAsync(SP.ping(serviceURL))

    // streaming (commp-last): 127 bytes and 1 MiB, the client computing the piece CID as it streams
    for (const size of [127, 1 << 20]) {
      const data = new Uint8Array(randomBytes(size))
      const uploaded = await SP.uploadPieceStreaming({ serviceURL, data })
      t.is(uploaded.size, size)
      t.is(uploaded.pieceCid.toString(), Piece.calculate(data).toString())
      const found = await SP.findPiece({ serviceURL, pieceCid: uploaded.pieceCid })
      t.is(found.toString(), uploaded.pieceCid.toString())
      const back = await Piece.downloadAndValidate({ url: Piece.createPieceUrlPDP({ cid: uploaded.pieceCid.toString(), serviceURL }), expectedPieceCid: uploaded.pieceCid })
      // compared as buffers: ava's deepEqual walks a 1 MiB array for seconds, blocking the event loop past
      // the provider's keep-alive, so the next request would go out on a socket the server has closed
      t.true(Buffer.from(back).equals(data))
    }

    // classic, with findPiece polling from before the upload until the piece is there
    const data = new Uint8Array(randomBytes(300_000))
    const pieceCid = Piece.calculate(data)
    await notFound(t, SP.findPiece({ serviceURL, pieceCid }))
    const polling = SP.findPiece({ serviceURL, pieceCid, retry: true, pollInterval: 100, timeout: 60_000 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    await SP.uploadPiece({ serviceURL, data, pieceCid })
    t.is((await polling).toString(), pieceCid.toString())
    // already held: the upload stops at POST /pdp/piece (200)
    await t.notThrowsAsync(SP.uploadPiece({ serviceURL, data, pieceCid }))
    const back = await Piece.downloadAndValidate({ url: Piece.createPieceUrlPDP({ cid: pieceCid.toString(), serviceURL }), expectedPieceCid: pieceCid })
    t.true(Buffer.from(back).equals(data))

    // a finalize naming another piece CID is refused, and the piece is not findable by it
    const other = new Uint8Array(randomBytes(4096))
    const wrong = Piece.calculate(new Uint8Array(randomBytes(4096)))
    const refused = await t.throwsAsync(SP.uploadPieceStreaming({ serviceURL, data: other, pieceCid: wrong }))
    t.is(refused?.name, 'PostPieceError')
    t.regex(details(refused), /ERR_PIECE_CID_MISMATCH/)
    await notFound(t, SP.findPiece({ serviceURL, pieceCid: wrong }))
    await notFound(t, SP.findPiece({ serviceURL, pieceCid: Piece.calculate(other) }))

    // a classic upload whose bytes are not the announced piece
    const liar = await t.throwsAsync(SP.uploadPiece({ serviceURL, data: new Uint8Array(randomBytes(1000)), pieceCid: Piece.calculate(new Uint8Array(randomBytes(1000))) }))
    t.is(liar?.name, 'UploadPieceError')
    t.regex(details(liar), /ERR_PIECE_CID_MISMATCH/)
  } finally {
    t.is(await provider.stop(), 0, provider.stderr())
    await dir.cleanup()
  }
})

test('a park flood is refused with 429 and a code, before or during the upload; the provider stays up', async t => {
  const dir = await tempDir('cairn-pdp-flood-')
  const provider = await startProvider(join(dir.path, 'provider'), ['--park-quota-per-client', '3584KiB', '--park-ttl', '1h'])
  const serviceURL = provider.url
  try {
    let stored = 0
    let refusal: unknown
    for (let i = 0; i < 10 && refusal === undefined; i++) {
      const data = new Uint8Array(randomBytes(1 << 20))
      try {
        await SP.uploadPiece({ serviceURL, data, pieceCid: Piece.calculate(data) })
        stored++
      } catch (err) { refusal = err }
    }
    t.is(stored, 3)
    // announced at 1 MiB with half a MiB of quota left: refused before a byte is sent
    t.is((refusal as Error | undefined)?.name, 'PostPieceError')
    t.regex(details(refusal), /ERR_PARK_QUOTA_CLIENT/)
    // streamed, of unknown size: refused when it passes the quota, and the answer still reaches the client
    const streamed = await t.throwsAsync(SP.uploadPieceStreaming({ serviceURL, data: new Uint8Array(randomBytes(1 << 20)) }))
    t.is(streamed?.name, 'UploadPieceError')
    t.regex(details(streamed), /ERR_PARK_QUOTA_CLIENT/)
    // what fits is still taken
    await t.notThrowsAsync(SP.uploadPieceStreaming({ serviceURL, data: new Uint8Array(randomBytes(400_000)) }))
    const full = await t.throwsAsync(SP.uploadPieceStreaming({ serviceURL, data: new Uint8Array(randomBytes(200_000)) }))
    t.regex(details(full), /ERR_PARK_QUOTA_CLIENT/)
    await t.notThrowsAsync(SP.ping(serviceURL))
  } finally {
    t.is(await provider.stop(), 0, provider.stderr())
    await dir.cleanup()
  }
})

const PAYEE = '0x5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a' as Hex

function walletFor (key: Hex) {
  // the transport is never used: a local account signs typed data without RPC
  return createWalletClient({ account: privateKeyToAccount(key), chain: calibration, transport: http('http://127.0.0.1:9') })
}

test('synapse-core 0.5.2 keeps data sets with a cairn provider: create, add, create-and-add, status polling, getDataSet, deletion, a refused replay and wrong key, a pull between two providers', async t => {
  const dir = await tempDir('cairn-pdp-datasets-')
  const [provider, second] = await Promise.all([
    startProvider(join(dir.path, 'provider'), ['--payee', PAYEE]),
    startProvider(join(dir.path, 'second'), ['--payee', PAYEE, '--pull-sources', 'any'])
  ])
  const serviceURL = provider.url
  try {
    const client = walletFor(generatePrivateKey())
    const created = await SP.createDataSet(client, { serviceURL, payee: PAYEE, cdn: false, clientDataSetId: 11n, metadata: { project: 'cairn' } })
    t.regex(created.txHash, /^0x[0-9a-f]{64}$/)
    const done = await SP.waitForCreateDataSet({ statusUrl: created.statusUrl, pollInterval: 100, timeout: 30_000 })
    t.is(done.txStatus, 'confirmed')
    const dataSetId = done.dataSetId

    const pieces: Piece.PieceCID[] = []
    for (const size of [1000, 70_000]) {
      const data = new Uint8Array(randomBytes(size))
      pieces.push((await SP.uploadPieceStreaming({ serviceURL, data })).pieceCid)
    }
    const added = await SP.addPieces(client, { serviceURL, dataSetId, clientDataSetId: 11n, pieces: pieces.map((pieceCid) => ({ pieceCid, metadata: { name: 'x' } })) })
    const confirmed = await SP.waitForAddPieces({ statusUrl: added.statusUrl, pollInterval: 100, timeout: 30_000 })
    t.deepEqual(confirmed.confirmedPieceIds, [0n, 1n])
    const set = await SP.getDataSet({ serviceURL, dataSetId })
    t.is(set.id, dataSetId)
    t.deepEqual(set.pieces.map((p) => [p.pieceId, p.pieceCid.toString()]), pieces.map((p, i) => [BigInt(i), p.toString()]))

    // the same signed AddPieces again, and one signed by another key
    const replay = await t.throwsAsync(SP.addPieces(client, { serviceURL, dataSetId, clientDataSetId: 11n, pieces: [{ pieceCid: pieces[0] as Piece.PieceCID }], nonce: 7n }).then(async () => await SP.addPieces(client, { serviceURL, dataSetId, clientDataSetId: 11n, pieces: [{ pieceCid: pieces[0] as Piece.PieceCID }], nonce: 7n })))
    t.is(replay?.name, 'AddPiecesError')
    t.regex(details(replay), /ERR_REPLAYED_NONCE/)
    const stranger = await t.throwsAsync(SP.addPieces(walletFor(generatePrivateKey()), { serviceURL, dataSetId, clientDataSetId: 11n, pieces: [{ pieceCid: pieces[0] as Piece.PieceCID }] }))
    t.regex(details(stranger), /ERR_WRONG_SIGNER/)
    const again = await t.throwsAsync(SP.createDataSet(client, { serviceURL, payee: PAYEE, cdn: false, clientDataSetId: 11n }))
    t.is(again?.name, 'CreateDataSetError')
    t.regex(details(again), /ERR_REPLAYED_DATA_SET/)

    const deleted = await SP.schedulePieceDeletion(client, { serviceURL, dataSetId, clientDataSetId: 11n, pieceId: 0n })
    t.regex(deleted.hash, /^0x[0-9a-f]{64}$/)
    t.deepEqual((await SP.getDataSet({ serviceURL, dataSetId })).pieces.map((p) => p.pieceId), [1n, 2n])

    // create-and-add in one signed message, polled as synapse-core polls it
    const both = await SP.createDataSetAndAddPieces(client, { serviceURL, payee: PAYEE, pieces: [{ pieceCid: pieces[1] as Piece.PieceCID }] })
    const result = await SP.waitForCreateDataSetAddPieces({ statusUrl: both.statusUrl })
    t.deepEqual(result.piecesIds, [0n])
    t.not(result.dataSetId, dataSetId)

    // the second provider pulls a piece from the first into a new data set of its own
    const pulledCid = pieces[1] as Piece.PieceCID
    const pulled = await SP.waitForPullPieces(client, {
      serviceURL: second.url,
      payee: PAYEE,
      pieces: [{ pieceCid: pulledCid, sourceUrl: Piece.createPieceUrlPDP({ cid: pulledCid.toString(), serviceURL }) }],
      pollInterval: 100,
      timeout: 60_000
    })
    t.is(pulled.status, 'complete')
    t.is((await SP.findPiece({ serviceURL: second.url, pieceCid: pulledCid })).toString(), pulledCid.toString())
    const secondSet = await SP.getDataSet({ serviceURL: second.url, dataSetId: 1n })
    t.deepEqual(secondSet.pieces.map((p) => p.pieceCid.toString()), [pulledCid.toString()])
  } finally {
    t.is(await provider.stop(), 0, provider.stderr())
    t.is(await second.stop(), 0, second.stderr())
    await dir.cleanup()
  }
})

const gib = GIB ? test : test.skip
gib('the largest piece (1,065,353,216 bytes) streams in and back; one byte more fails cleanly with a coded error', async t => {
  const dir = await tempDir('cairn-pdp-gib-')
  const provider = await startProvider(join(dir.path, 'provider'))
  const serviceURL = provider.url
  try {
    const seed = new Uint8Array(randomBytes(1 << 20))
    const pieceCid = await pieceCidOf(MAX, seed)
    // the piece CID is given, so that the client does not spend minutes computing it in JavaScript
    const uploaded = await SP.uploadPieceStreaming({ serviceURL, data: streamOf(MAX, seed), size: MAX, pieceCid })
    t.is(uploaded.size, MAX)
    t.is((await SP.findPiece({ serviceURL, pieceCid })).toString(), pieceCid.toString())
    const res = await fetch(`${serviceURL}piece/${pieceCid.toString()}`)
    t.is(res.headers.get('content-length'), String(MAX))
    const hasher = createPieceHasher()
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) await hasher.update(chunk)
    t.is((await hasher.digest()).cid.toString(), pieceCid.toString())

    // the client stops its own stream past the limit; the provider keeps nothing of it
    const over = await t.throwsAsync(SP.uploadPieceStreaming({ serviceURL, data: streamOf(MAX + 1, seed), size: MAX + 1, pieceCid }))
    t.regex(details(over), /InvalidUploadSizeError/)
    await t.notThrowsAsync(SP.ping(serviceURL))
    const status = await (await fetch(`${serviceURL}pdp/piece/${pieceCid.toString()}/status`)).json() as { size: number }
    t.is(status.size, MAX, 'the held piece is untouched')
  } finally {
    t.is(await provider.stop(), 0, provider.stderr())
    await dir.cleanup()
  }
})
