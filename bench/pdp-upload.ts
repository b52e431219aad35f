/**
 * One PDP client step for the bench (bench/transfer.ts), in its own process so
 * that its time and RSS are its own:
 *
 *   node dist/bench/pdp-upload.js cid FILE BYTES        prints the piece CID of the first BYTES of FILE
 *   node dist/bench/pdp-upload.js upload URL FILE BYTES CID
 *       streams the first BYTES of FILE with @filoz/synapse-core's uploadPieceStreaming
 *       (POST, chunked PUT, finalize), the piece CID given so the client does not
 *       spend its time computing it in JavaScript
 */
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import * as SP from '@filoz/synapse-core/sp'
import * as Piece from '@filoz/synapse-core/piece'
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
} else {
  process.stderr.write('usage: pdp-upload.js cid FILE BYTES | upload URL FILE BYTES CID\n')
  process.exitCode = 2
}
