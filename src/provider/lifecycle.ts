/**
 * How deals end (docs/protocol.md "Deal lifecycle", "Cancelling a deal"): a
 * client's cancellation, expiry at the upload deadline or the deal's end, and
 * the removal of piece files no deal holds once their retention grace ends.
 */
import { rm } from 'node:fs/promises'
import * as dagCBOR from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { pieceCidV1FromV2 } from '../../proofs/index.js'
import { carBlockCids } from '../car/index.js'
import { CairnError } from '../errors.js'
import { secondsKey } from '../ledger/indexes.js'
import type { ExtraOp } from '../ledger/interface.js'
import { verifyCancellation } from '../protocol/cancel.js'
import type { SignedDealStatus } from '../protocol/interface.js'
import { REQUEST_CLOCK_SKEW } from '../protocol/proof-request.js'
import { parseDealId } from '../protocol/proposal.js'
import { BLOCK_PREFIX, DAG_PREFIX, GC_PREFIX, PIECE_PREFIX, PIECE_V1_PREFIX, spaces } from '../state/spaces.js'
import type { BlockLocation, DealContext } from './context.js'
import { DEFAULT_RETENTION_GRACE } from './terms.js'

export class Lifecycle {
  constructor (private readonly c: DealContext) {}

  /**
   * Cancels a deal not yet active on its client's signed request
   * (docs/protocol.md "Cancelling a deal"): an upload in flight is cut off,
   * `deal-terminated` records the request and the reservation is freed. A
   * deal already cancelled answers the same; an active one cannot be.
   */
  async cancel (dealId: string, body: unknown): Promise<SignedDealStatus> {
    const { id, client } = await this.c.dealOfClient(dealId)
    const signed = verifyCancellation(body, client)
    if (!signed.payload.dealId.equals(id)) throw new CairnError('ERR_INVALID_ARGUMENT', `the cancellation is for deal ${signed.payload.dealId.toString()}, sent to deal ${dealId}`)
    const now = this.c.now()
    if (Math.abs(now - signed.payload.at) > REQUEST_CLOCK_SKEW) {
      throw new CairnError('ERR_REQUEST_EXPIRED', `the cancellation was signed at ${signed.payload.at}, it is now ${now} (unix seconds); it is taken within ${REQUEST_CLOCK_SKEW} s`)
    }
    const key = id.toString()
    await this.c.lanes.run(key, async () => {
      const current = await this.c.ledger.deal(id)
      if (current?.state === 'terminated') return
      if (current?.state !== 'accepted' && current?.state !== 'transferring') {
        throw new CairnError('ERR_DEAL_STATE', `deal ${dealId} is ${current?.state ?? 'unknown'}; only a deal not yet active can be cancelled`)
      }
      this.c.uploading.get(key)?.abort(new CairnError('ERR_DEAL_STATE', `deal ${dealId} was cancelled by its client`))
      await this.c.ledger.append('deal-terminated', {
        deal: id,
        provider: this.c.signer.did,
        reason: 'cancelled by the client',
        cancel: { payload: signed.payload, signer: signed.signer, signature: signed.signature }
      })
      this.c.ask.invalidate()
      this.c.options.onDealEnded?.(key)
    })
    return await this.c.status(dealId)
  }

  /**
   * Expires up to `limit` deals the ledger's schedule says are due by `now`
   * (docs/protocol.md "Deal lifecycle"): an accepted deal past its upload
   * deadline (an upload still running is cut off) and an active deal past its
   * end. An ended deal's piece stops being served in the same batch, unless
   * another active deal holds it, and is queued for removal after the grace.
   */
  async expireDue (now: number, limit: number): Promise<{ due: number, expired: string[] }> {
    const due = await this.c.ledger.due(now, limit)
    const expired: string[] = []
    for (const { deal } of due) {
      if (await this.c.lanes.run(deal, async () => await this.expire(deal, now))) expired.push(deal)
    }
    if (expired.length > 0) this.c.ask.invalidate()
    return { due: due.length, expired }
  }

  private async expire (deal: string, now: number): Promise<boolean> {
    const record = await this.c.ledger.deal(deal)
    const id = parseDealId(deal)
    if (record === undefined) return false
    if (record.state === 'accepted' || record.state === 'transferring') {
      if (record.uploadBy === undefined || record.uploadBy > now) return false
      this.c.uploading.get(deal)?.abort(new CairnError('ERR_DEAL_EXPIRED', `deal ${deal} had to be uploaded by ${record.uploadBy} (unix seconds)`))
      await this.c.ledger.append('deal-expired', { deal: id, provider: this.c.signer.did, reason: 'upload-window', uploadBy: record.uploadBy })
      this.c.options.onDealEnded?.(deal)
      return true
    }
    if (record.state !== 'active' || record.end === undefined || record.end > now) return false
    const extra: ExtraOp[] = []
    const piece = record.pieceCid?.toString()
    if (piece !== undefined && (await this.c.ledger.holders(piece)).every(d => d === deal)) {
      extra.push(...await this.unserve(piece, record.payloadCid))
      extra.push({ type: 'put', key: `${GC_PREFIX}${secondsKey(now + (this.c.terms.retentionGrace ?? DEFAULT_RETENTION_GRACE))}/${piece}`, value: new Uint8Array(0) })
    }
    await this.c.ledger.append('deal-expired', { deal: id, provider: this.c.signer.did, reason: 'end', end: record.end }, extra)
    this.c.options.onDealEnded?.(deal)
    return true
  }

  /**
   * The index deletions that stop a piece being served: its piece entries, its
   * whole-DAG entry, and every block entry that points into it (listed from
   * the piece file's frame headers, without reading the blocks).
   */
  private async unserve (piece: string, payloadCid: CID | undefined): Promise<ExtraOp[]> {
    const ops: ExtraOp[] = [{ type: 'del', key: PIECE_PREFIX + piece }, { type: 'del', key: PIECE_V1_PREFIX + pieceCidV1FromV2(CID.parse(piece)).toString() }]
    if (payloadCid !== undefined) {
      const dag = await this.c.state.get(spaces.dags, payloadCid.toString())
      if (dag !== undefined && new TextDecoder().decode(dag) === piece) ops.push({ type: 'del', key: DAG_PREFIX + payloadCid.toString() })
    }
    const cids = await carBlockCids(this.c.store.path(piece)).catch(() => [])
    for (const cid of cids) {
      const key = BLOCK_PREFIX + cid.toString()
      const at = await this.c.state.get(spaces.blocks, cid.toString())
      // a block another piece indexed last stays (it is that piece's to serve)
      if (at !== undefined && (dagCBOR.decode(at) as BlockLocation).piece === piece) ops.push({ type: 'del', key })
    }
    return ops
  }

  /** Removes up to `limit` piece files whose retention grace ended by `now` and that no deal holds again. */
  async collect (now: number, limit: number): Promise<{ due: number, removed: string[] }> {
    const removed: string[] = []
    const keys: string[] = []
    for await (const [key] of this.c.state.iterate(spaces.retained, { lt: secondsKey(now + 1), limit })) keys.push(key)
    for (const key of keys) {
      const piece = key.slice(key.indexOf('/') + 1)
      // a new deal for the same piece may have stored it again meanwhile
      const held = (await this.c.state.get(spaces.pieces, piece)) !== undefined || this.c.committing.has(piece) || (await this.c.ledger.holders(piece)).length > 0
      if (!held) {
        await rm(this.c.store.path(piece), { force: true })
        await rm(this.c.prover.cachePath(piece), { force: true })
        this.c.prover.forget(piece)
        this.c.suspect.delete(piece)
        removed.push(piece)
      }
      await this.c.state.batch([{ type: 'del', space: spaces.retained, key }])
    }
    return { due: keys.length, removed }
  }
}
