/**
 * One PDP client step for the bench (bench/transfer.ts), in its own process so
 * that its time and RSS are its own:
 *
 *   node dist/bench/pdp-upload.js cid FILE BYTES        prints the piece CID of the first BYTES of FILE
 *   node dist/bench/pdp-upload.js upload URL FILE BYTES CID
 *       streams the first BYTES of FILE with @filoz/synapse-core's uploadPieceStreaming
 *       (POST, chunked PUT, finalize), the piece CID given so the client does not
 *       spend its time computing it in JavaScript
 *   node dist/bench/pdp-upload.js data-set URL PAYEE CID
 *       with a viem account signing locally: createDataSet and addPieces of that
 *       piece (each polled until confirmed), then one proof of 16 challenges on
 *       the data set, the first of which builds the piece's layer cache; prints
 *       the milliseconds of each step
 */
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import * as SP from '@filoz/synapse-core/sp'
import * as Piece from '@filoz/synapse-core/piece'
import { calibration } from '@filoz/synapse-core/chains'
import { createWalletClient, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { createPieceHasher } from '../proofs/index.js'

const [mode, ...args] = process.argv.slice(2)
if (mode === 'cid') {
  const [file, bytes] = args as [string, string]
  const hasher = createPieceHasher()
  for await (const chunk of createReadStream(file, { end: Number(bytes) - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>) await hasher.update(chunk)
  process.stdout.write((await hasher.digest()).cid.toString() + '\n')
} else if (mode === 'upload') {
  const [url, file, bytes, cid] = args as [string, string, string, string]
  const data = Readable.toWeb(createReadStream(file, { end: Number(bytes) - 1, highWaterMark: 1 << 20 })) as unknown as ReadableStream<Uint8Array>
  const result = await SP.uploadPieceStreaming({ serviceURL: `${url}/`, data, size: Number(bytes), pieceCid: Piece.parse(cid) })
  await SP.findPiece({ serviceURL: `${url}/`, pieceCid: result.pieceCid })
  process.stdout.write(JSON.stringify({ pieceCid: result.pieceCid.toString(), size: result.size }) + '\n')
} else if (mode === 'data-set') {
  const [url, payee, cid] = args as [string, Hex, string]
  const serviceURL = `${url}/`
  // the transport is never used: a local account signs typed data without RPC
  const client = createWalletClient({ account: privateKeyToAccount(generatePrivateKey()), chain: calibration, transport: http('http://127.0.0.1:9') })
  let at = performance.now()
  const lap = (): number => { const now = performance.now(); const ms = Math.round(now - at); at = now; return ms }
  // a fresh clientDataSetId each run: the provider refuses one it has seen (a replay)
  const clientDataSetId = BigInt(Date.now()) * 1000n + BigInt(Math.floor(Math.random() * 1000))
  const created = await SP.createDataSet(client, { serviceURL, payee, cdn: false, clientDataSetId })
  const { dataSetId } = await SP.waitForCreateDataSet({ statusUrl: created.statusUrl, pollInterval: 50 })
  const createMs = lap()
  const added = await SP.addPieces(client, { serviceURL, dataSetId, clientDataSetId, pieces: [{ pieceCid: Piece.parse(cid) }] })
  await SP.waitForAddPieces({ statusUrl: added.statusUrl, pollInterval: 50 })
  const addPiecesMs = lap()
  const proof = await fetch(`${url}/pdp/data-sets/${dataSetId}/prove`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ seed: '0x' + '07'.repeat(32), challenges: 16 }) })
  if (proof.status !== 200) throw new Error(`prove answered ${proof.status}: ${await proof.text()}`)
  await proof.arrayBuffer()
  const firstProofMs = lap()
  process.stdout.write(JSON.stringify({ dataSetId: Number(dataSetId), createMs, addPiecesMs, firstProofMs }) + '\n')
} else {
  process.stderr.write('usage: pdp-upload.js cid FILE BYTES | upload URL FILE BYTES CID | data-set URL PAYEE CID\n')
  process.exitCode = 2
}
