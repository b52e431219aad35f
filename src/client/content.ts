/**
 * Content into the client's repo: import files, store the piece, record which
 * piece holds the root — what `cairn add` does, as a library call for flows
 * such as `cairn demo` that run without a shell.
 */
import { carStream, type ImportOptions, type ImportPlan } from '../unixfs/importer.js'
import { importCar, type ImportSummary } from '../unixfs/one-pass.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore, type StagedPiece } from '../store/pieces.js'
import { recordRoot, type RootRecord } from '../store/roots.js'

export interface Added {
  root: string
  piece: { cid: string, cidV1: string, size: bigint, payloadSize: number }
  bytes: number
  files: number
}

export async function addToRepo (repo: Repo, paths: string[], options: ImportOptions = {}): Promise<Added> {
  // an age encryption names its recipients: recorded, so distinct replicas are encrypted to them too
  const recipients = (options.encryption as { recipients?: readonly string[] } | undefined)?.recipients
  const store = new PieceStore(repo.piecesDir, repo.tmpDir)
  const { plan, written } = await importCar(paths, options, async car => await store.stage(car))
  return await recordStaged(repo, plan, written, recipients === undefined ? {} : { recipients: [...recipients] })
}

/** Writes a planned DAG's piece into the repo and records which piece holds its root. */
export async function storePlan (repo: Repo, plan: ImportPlan, extra: Pick<RootRecord, 'recipients' | 'replicaOf'> = {}): Promise<Added> {
  return await recordStaged(repo, plan, await new PieceStore(repo.piecesDir, repo.tmpDir).stage(carStream(plan)), extra)
}

/** Moves a staged piece into the store and records which piece holds the import's root. */
async function recordStaged (repo: Repo, plan: ImportSummary, staged: StagedPiece, extra: Pick<RootRecord, 'recipients' | 'replicaOf'>): Promise<Added> {
  await staged.commit()
  const root = plan.root.toString()
  const piece = staged.piece
  await recordRoot(await repo.db(), root, {
    piece: piece.cid.toString(),
    pieceV1: piece.cidV1.toString(),
    payloadSize: staged.size,
    paddedSize: piece.paddedSize.toString(),
    added: new Date().toISOString(),
    ...extra
  })
  return { root, piece: { cid: piece.cid.toString(), cidV1: piece.cidV1.toString(), size: BigInt(piece.paddedSize), payloadSize: staged.size }, bytes: plan.bytes, files: plan.files }
}
