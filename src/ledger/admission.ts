/**
 * A proposal's admission, re-checked where it cannot race: under the ledger
 * head lock, in the transaction that appends its `deal-accepted` entry.
 *
 * The provider checks a proposal against its ask first (src/protocol/rules.ts)
 * and one node takes its proposals one at a time, but on a cluster the nodes
 * share one capacity, one nonce index and one set of deal ids: two nodes can
 * both check a proposal against the same free bytes before either records
 * its deal. The entry's guard reads the indexes as the chain stands at the
 * entry's place in it — other nodes' acceptances included, since their
 * appends hold the same head lock (docs/cluster.md "Proposals") — so of
 * proposals racing for the last free bytes exactly the ones that fit are
 * accepted. The refusals are the ones the first check gives.
 */
import { CairnError } from '../errors.js'
import type { CID } from 'multiformats/cid'
import type { AppendItem, IndexView } from './interface.js'

export interface Admission {
  dealId: CID
  client: string
  nonce: bigint
  pieceSize: bigint
  /** padded bytes the provider holds in total (`--capacity`) */
  capacity: bigint
}

/** The guard of a `deal-accepted` entry (AppendItem.guard). */
export function admissionGuard (a: Admission): NonNullable<AppendItem['guard']> {
  return async (view: IndexView) => {
    const { reserved, used } = await view.stats()
    const held = reserved + used
    const free = a.capacity > held ? a.capacity - held : 0n
    if (a.pieceSize > free) {
      throw new CairnError('ERR_INSUFFICIENT_CAPACITY', `piece needs ${a.pieceSize} bytes, provider has ${free} bytes free`, { details: { needed: a.pieceSize, free } })
    }
    const id = a.dealId.toString()
    if (await view.deal(id) !== undefined) {
      throw new CairnError('ERR_REPLAYED_DEAL', `deal ${id} was already proposed to this provider`, { details: { dealId: id } })
    }
    if (await view.nonceUsed(a.client, a.nonce)) {
      throw new CairnError('ERR_REPLAYED_NONCE', `nonce ${a.nonce} was already used by ${a.client} with this provider`, { details: { client: a.client, nonce: a.nonce } })
    }
  }
}
