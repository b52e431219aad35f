import { planImport, carStream } from '../unixfs/importer.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { PieceStore, type StagedPiece } from '../store/pieces.js'
import { importCar, type ImportSummary } from '../unixfs/one-pass.js'
import { recordRoot } from '../store/roots.js'
import { pieceOf, type PieceInfo } from '../../proofs/index.js'
import { importOptionsFrom, type ContentFlags } from './content-options.js'
import { encryptionFrom, type EncryptionFlags } from './encryption-options.js'
import { Output, type GlobalOptions } from './output.js'

interface AddOptions extends GlobalOptions, ContentFlags, EncryptionFlags {
  onlyHash?: boolean
  quieter?: boolean
}

export default async function add (paths: string[], options: AddOptions): Promise<void> {
  const out = new Output(options)
  const importOptions = importOptionsFrom(options)
  // open the repo first: a missing repo should not cost a pass over the input
  const repo = options.onlyHash === true ? undefined : await Repo.open(resolveRepoPath(options.repo))
  try {
    const encryption = await encryptionFrom(options, repo ?? resolveRepoPath(options.repo))
    let bar = out.progress('adding')
    let plan: ImportSummary
    let piece: PieceInfo
    let size: number
    try {
      if (repo === undefined) {
        // nothing stored: the CAR is only hashed, in order, so it is planned, then streamed
        const planned = plan = await planImport(paths, { ...importOptions, encryption })
        bar = out.progress('adding', planned.carSize)
        let written = 0
        piece = await pieceOf(carStream(planned, { onBytes: n => bar.update(written += n) }))
        size = Number(piece.payloadSize)
      } else {
        const store = new PieceStore(repo.piecesDir, repo.tmpDir)
        let staged: StagedPiece
        ({ plan, written: staged } = await importCar(paths, { ...importOptions, encryption }, async (car, carSize) => {
          bar = out.progress('adding', carSize)
          return await store.stage(car, { onBytes: total => { bar.update(total) } })
        }))
        await staged.commit()
        piece = staged.piece
        size = staged.size
        await recordRoot(await repo.db(), plan.root.toString(), {
          piece: piece.cid.toString(),
          pieceV1: piece.cidV1.toString(),
          payloadSize: size,
          paddedSize: piece.paddedSize.toString(),
          added: new Date().toISOString(),
          ...(encryption === undefined ? {} : { recipients: [...encryption.recipients] })
        })
      }
    } finally {
      bar.done()
    }
    const root = plan.root.toString()
    // docs/json.md: one name per concept, sizes as numbers of bytes
    const result = {
      root,
      pieceCid: piece.cid.toString(),
      pieceCidV1: piece.cidV1.toString(),
      pieceSize: Number(piece.paddedSize),
      payloadSize: size,
      bytes: plan.bytes,
      files: plan.files,
      encrypted: encryption !== undefined
    }
    out.result(result, () => options.quieter === true || out.quiet
      ? root
      : `added ${root}${encryption === undefined ? '' : ' (encrypted)'}\npiece ${result.pieceCid}\n      ${result.pieceCidV1} (v1)\nsize  ${size} bytes in ${plan.files} file(s), padded piece ${piece.paddedSize} bytes`)
  } finally {
    await repo?.close()
  }
}
