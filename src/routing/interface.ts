/**
 * The indexer's storage boundary: the LevelDB index (level-index.ts, the
 * default) and the PostgreSQL one (pg-index.ts, `indexer start --db`). Both keep the same three things per
 * provider — its record (addresses, chain head), the advertisements it has
 * had applied, and multihash → (provider, context, metadata) entries — and
 * pass the same conformance suite (test/routing/index-store.ts).
 */
import type { CID } from 'multiformats/cid'

export interface IndexedProvider {
  /** libp2p peer ID (base58btc) */
  peerId: string
  /** http(s) multiaddrs from its latest advertisement */
  addresses: string[]
  /** its latest applied advertisement */
  head: CID
  /** unix ms of its latest applied advertisement */
  updatedAt: number
}

/** One verified advertisement, as the indexer applies it: all of it or none. */
export interface IndexChange {
  peerId: string
  addresses: string[]
  ad: CID
  at: number
  /** a chain (re)start: everything the provider had indexed is dropped first */
  reset: boolean
  /** the context added to or withdrawn; undefined for an address update */
  context?: {
    id: Uint8Array
    metadata: Uint8Array
    /** true: every multihash of the context is withdrawn */
    remove: boolean
    /** multihashes added under the context */
    multihashes: readonly Uint8Array[]
  }
}

export interface IndexHit {
  provider: IndexedProvider
  /** the metadata of the context the multihash is held under */
  metadata: Uint8Array
}

export interface IndexStore {
  provider (peerId: string): Promise<IndexedProvider | undefined>
  /** Whether this advertisement was already applied for the provider (a replay is then a no-op). */
  hasAdvertisement (peerId: string, ad: CID): Promise<boolean>
  apply (change: IndexChange): Promise<void>
  /** Who serves `multihash`: at most `limit` hits, at most one per (provider, context). */
  find (multihash: Uint8Array, limit: number): AsyncIterable<IndexHit>
  /** Counts for logs and metrics. */
  stats (): Promise<{ providers: number, multihashes: number }>
  close (): Promise<void>
}
