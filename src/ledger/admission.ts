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

/**
 * Refuses `needed` padded bytes when deals and data sets leave less free: the
 * one capacity rule, for a proposal and for pieces added to a PDP data set
 * (src/pdp/datasets.ts), so neither can take bytes the other just took.
 */
export async function checkFree (view: Pick<IndexView, 'stats'>, needed: bigint, capacity: bigint, what = 'piece needs'): Promise<void> {
  const { reserved, used } = await view.stats()
  const held = reserved + used
  const free = capacity > held ? capacity - held : 0n
  if (needed > free) {
    throw new CairnError('ERR_INSUFFICIENT_CAPACITY', `${what} ${needed} bytes, provider has ${free} bytes free`, { details: { needed, free } })
  }
}

/** The guard of a `deal-accepted` entry (AppendItem.guard). */
export function admissionGuard (a: Admission): NonNullable<AppendItem['guard']> {
  return async (view: IndexView) => {
    await checkFree(view, a.pieceSize, a.capacity)
    const id = a.dealId.toString()
    if (await view.deal(id) !== undefined) {
      throw new CairnError('ERR_REPLAYED_DEAL', `deal ${id} was already proposed to this provider`, { details: { dealId: id } })
    }
    if (await view.nonceUsed(a.client, a.nonce)) {
      throw new CairnError('ERR_REPLAYED_NONCE', `nonce ${a.nonce} was already used by ${a.client} with this provider`, { details: { client: a.client, nonce: a.nonce } })
    }
  }
}
