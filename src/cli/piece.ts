import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pieceOf } from '../../proofs/index.js'
import { CairnError, fromSystemError } from '../errors.js'
import { Output, type GlobalOptions } from './output.js'

export default async function piece ([file]: string[], options: GlobalOptions): Promise<void> {
  const out = new Output(options)
  const info = await stat(file).catch(err => { throw fromSystemError(err, file) })
  if (!info.isFile()) throw new CairnError(info.isDirectory() ? 'ERR_NOT_A_FILE' : 'ERR_UNSUPPORTED_FILE_TYPE', `expected a regular file: ${file}`)
  const bar = out.progress('hashing', info.size)
  let done = 0
  async function * read (): AsyncIterable<Uint8Array> {
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) {
        done += (chunk as Buffer).length
        bar.update(done)
        yield chunk as Buffer
      }
    } catch (err) {
      throw fromSystemError(err, file)
    }
  }
  const p = await pieceOf(read())
  bar.done()
  if (p.payloadSize !== BigInt(info.size)) {
    throw new CairnError('ERR_FILE_CHANGED', `${file} changed while being read: expected ${info.size} bytes, read ${p.payloadSize}`)
  }
  // docs/json.md: one name per concept, sizes as numbers of bytes
  const result = { pieceCid: p.cid.toString(), pieceCidV1: p.cidV1.toString(), pieceSize: Number(p.paddedSize), payloadSize: Number(p.payloadSize), height: p.height }
  out.result(result, () => out.quiet
    ? result.pieceCid
    : `piece CID    ${result.pieceCid}\npiece CID v1 ${result.pieceCidV1}\npadded size  ${p.paddedSize} bytes (height ${p.height})\npayload size ${p.payloadSize} bytes`)
}
