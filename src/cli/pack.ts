/**
 * `cairn pack <path…> -o out.car|-`: the piece CAR of files or directories,
 * written atomically, with its piece CID computed from the same bytes as they
 * are written (no second pass), as `add` computes it.
 */
import { open, rm } from 'node:fs/promises'
import { createPieceHasher, type PieceInfo } from '../../proofs/index.js'
import { CairnError, fromSystemError } from '../errors.js'
import { commitFile } from '../fs/atomic.js'
import { release, removeStaleTemps, removeTempsOnSignal, tempPathFor } from '../fs/temp.js'
import { writePiece, type PlacedBytes } from '../store/pieces.js'
import { carStream, planImport } from '../unixfs/importer.js'
import { importCar, type ImportSummary } from '../unixfs/one-pass.js'
import { importOptionsFrom, type ContentFlags } from './content-options.js'
import { encryptionFrom, type EncryptionFlags } from './encryption-options.js'
import { resolveRepoPath } from '../repo/repo.js'
import { Output, toJSON, writeToStdout, type GlobalOptions } from './output.js'

interface PackOptions extends GlobalOptions, ContentFlags, EncryptionFlags {
  output?: string
}

export default async function pack (args: Array<string | string[]>, options: PackOptions): Promise<void> {
  // commander passes a variadic argument as one array
  const paths = args.flat()
  const out = new Output(options)
  const output = options.output
  if (output === undefined || output === '') throw new CairnError('ERR_USAGE', 'missing -o/--output: a CAR file, or - for stdout')
  removeTempsOnSignal()
  const importOptions = importOptionsFrom(options)
  const encryption = await encryptionFrom(options, resolveRepoPath(options.repo))
  let bar = out.progress('packing')
  let plan: ImportSummary
  let piece: PieceInfo
  try {
    if (output === '-') {
      // a pipe takes bytes in order: planned, then streamed
      const planned = await planImport(paths, { ...importOptions, encryption })
      bar = out.progress('packing', planned.carSize)
      let done = 0
      plan = planned
      piece = await hashToStdout(carStream(planned, { onBytes: n => { done += n; bar.update(done) } }))
    } else {
      ({ plan, written: piece } = await importCar(paths, { ...importOptions, encryption }, async (car, carSize) => {
        bar = out.progress('packing', carSize)
        return await writeAtomic(output, car, total => { bar.update(total) })
      }))
    }
  } finally {
    bar.done()
  }
  const root = plan.root.toString()
  const result = {
    root,
    output,
    bytes: plan.bytes,
    pieceCid: piece.cid.toString(),
    pieceCidV1: piece.cidV1.toString(),
    pieceSize: Number(piece.paddedSize),
    payloadSize: Number(piece.payloadSize),
    encrypted: encryption !== undefined
  }
  const pieceLines = `piece ${result.pieceCid}\n      ${result.pieceCidV1} (v1)\nsize  ${result.payloadSize} bytes in ${plan.files} file(s), padded piece ${result.pieceSize} bytes`
  if (output === '-') {
    // stdout carries the CAR; the root and piece go to stderr (ipfs-car prints the root there too)
    if (!out.quiet) process.stderr.write((out.json ? toJSON(result) : `${root}\n${pieceLines}`) + '\n')
  } else {
    out.result(result, () => root)
    out.info(pieceLines)
  }
}

/** The CAR to stdout, its piece CID computed from the same chunks on the way. */
async function hashToStdout (car: AsyncIterable<Uint8Array>): Promise<PieceInfo> {
  const hasher = createPieceHasher()
  await writeToStdout((async function * () {
    for await (const chunk of car) {
      await hasher.update(chunk)
      yield chunk
    }
  })())
  return await hasher.digest()
}

async function writeAtomic (target: string, source: AsyncIterable<Uint8Array | PlacedBytes>, onBytes: (total: number) => void): Promise<PieceInfo> {
  await removeStaleTemps(target)
  const temp = tempPathFor(target)
  try {
    // read as well as written: the piece hasher reads back the room a one-pass import filled last
    const handle = await open(temp, 'wx+', 0o644)
    let piece: PieceInfo
    try {
      piece = (await writePiece(handle, source, { onBytes, syncBehind: true })).piece
      await handle.sync()
    } finally {
      await handle.close()
    }
    await commitFile(temp, target)
    return piece
  } catch (err) {
    await rm(temp, { force: true })
    release(temp)
    throw err instanceof CairnError ? err : fromSystemError(err, target)
  }
}
