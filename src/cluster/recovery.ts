/**
 * Start-up recovery of a cluster node (docs/cluster.md "Start-up recovery"):
 * what src/provider/recovery.ts does for one node's repo, for the part of the
 * cluster's state that is this node's — its piece store and its piece
 * locations. The shared indexes (deals, blocks, the ledger) are every node's:
 * one transaction writes each deal's entries together with its indexes, so a
 * node dying leaves nothing half-written there, and they are left alone.
 *
 * - `tmp/` loses what writers that are gone left (an upload cut off by the
 *   crash: the client resumes the deal at any node, which takes the upload
 *   from its start);
 * - a piece file this node is not recorded to hold — an upload renamed into
 *   the store whose deal never went active here, or a copy whose location was
 *   never recorded — goes to `quarantine/`, as on one node: nothing serves it,
 *   and a copy task brings the piece back if the cluster still needs it here;
 * - a piece this node is recorded to hold but whose file is missing or of the
 *   wrong size — in the deals' store, or for a PDP piece in the PDP piece
 *   store (`pdp/pieces/`, whose orphans src/pdp/pieces.ts removes) — loses its location, so no node reads it from here, and a copy
 *   task is posted for it (the other copies are the cluster's; scrub re-hashes).
 */
import { stat } from 'node:fs/promises'
import * as dagCBOR from '@ipld/dag-cbor'
import type { StateStore } from '../state/interface.js'
import { spaces } from '../state/spaces.js'
import type { PieceStore } from '../store/pieces.js'
import { sweepStore } from '../provider/recovery.js'
import { locationKey } from './node.js'

export interface ClusterRecoveryReport {
  tempFilesRemoved: number
  /** piece files (and layer caches) this node is not recorded to hold, moved to quarantine/ */
  quarantined: string[]
  /** pieces this node was recorded to hold whose file is missing or of the wrong size: their location is dropped */
  lost: string[]
  piecesChecked: number
}

/** Brings a cluster node's own store back to its invariants; see the module comment. */
export async function recoverClusterNode (options: {
  state: StateStore
  store: PieceStore
  /** the node's PDP piece store: a PDP piece's file is there (src/pdp/pieces.ts) */
  pdpStore?: PieceStore
  node: string
  log?: (event: string, fields?: Record<string, unknown>) => void
}): Promise<ClusterRecoveryReport> {
  const { state, store, node } = options
  const log = options.log ?? (() => {})
  const held = new Set<string>()
  const suffix = `/${node}`
  for await (const [key] of state.iterate(spaces.pieceLocations)) if (key.endsWith(suffix)) held.add(key.slice(0, -suffix.length))
  const retained = new Set<string>()
  for await (const [key] of state.iterate(spaces.retained)) retained.add(key.slice(key.indexOf('/') + 1))
  const swept = await sweepStore(store, (piece) => held.has(piece) || retained.has(piece), log, 'not recorded on this node')
  const report: ClusterRecoveryReport = { ...swept, lost: [], piecesChecked: 0 }
  for (const piece of held) {
    report.piecesChecked++
    const { path, size } = await expectedFile(state, store, options.pdpStore, piece)
    const info = await stat(path).catch(() => undefined)
    if (info !== undefined && (size === undefined || info.size === size)) continue
    await state.batch([{ type: 'del', space: spaces.pieceLocations, key: locationKey(piece, node) }])
    report.lost.push(piece)
    log('recovery-location-dropped', { piece, node, reason: info === undefined ? 'piece file missing' : `piece file is ${info.size} bytes; the index recorded ${String(size)}` })
  }
  return report
}

/** Where a held piece's file is and its size: a deal's piece in the deals' store, else a PDP piece in the PDP store. */
async function expectedFile (state: StateStore, store: PieceStore, pdpStore: PieceStore | undefined, piece: string): Promise<{ path: string, size?: number }> {
  const record = await state.get(spaces.pieces, piece)
  if (record !== undefined || pdpStore === undefined) return { path: store.path(piece), size: record === undefined ? undefined : (dagCBOR.decode(record) as { size: number }).size }
  const pdp = await state.get(spaces.pdpPieces, piece)
  if (pdp === undefined) return { path: store.path(piece) }
  return { path: pdpStore.path(piece), size: (dagCBOR.decode(pdp) as { size: number }).size }
}
