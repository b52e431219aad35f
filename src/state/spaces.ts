/**
 * Every key space a node keeps, in one place, with what its keys and values
 * are and where it lives in the repo's LevelDB. PostgreSQL keeps all of them
 * in one table, `state_kv (space, key, value)`, under the names below
 * (docs/cluster.md).
 *
 * The LevelDB locations are the ones the repo has always used, so a store
 * opened on an existing repo finds its data where it is: most spaces are
 * sublevels; five provider indexes and two client ones still use a hand-made
 * `name!` prefix in the root of the database.
 */

/** Where a space lives in LevelDB: a sublevel path, or a raw key prefix in the root. */
export type LevelLocation = { sublevel: readonly string[] } | { prefix: string }

export interface Space {
  /** the space's name in PostgreSQL and in messages */
  readonly name: string
  readonly level: LevelLocation
  /** what a key is, and what a value holds */
  readonly doc: string
}

function space (name: string, level: LevelLocation, doc: string): Space {
  return Object.freeze({ name, level: Object.freeze(level), doc })
}

export const spaces = {
  // the ledger (src/ledger): entries and the indexes derived from them, written together
  ledgerEntries: space('ledger/entries', { sublevel: ['ledger', 'entries'] }, 'seq, 16 digits zero-padded → signed DAG-CBOR record'),
  ledgerByDeal: space('ledger/by-deal', { sublevel: ['ledger', 'by-deal'] }, '<deal id>/<seq padded> → empty'),
  ledgerDeals: space('ledger/deals', { sublevel: ['ledger', 'deals'] }, 'deal id → DAG-CBOR DealRecord'),
  ledgerBalances: space('ledger/balances', { sublevel: ['ledger', 'balances'] }, 'counterparty did → DAG-CBOR Balance'),
  ledgerProviders: space('ledger/providers', { sublevel: ['ledger', 'providers'] }, 'provider did → DAG-CBOR ProviderCounters'),
  ledgerNonces: space('ledger/nonces', { sublevel: ['ledger', 'nonces'] }, '<client did>/<nonce, 20 digits> → deal id (UTF-8)'),
  // the provider's totals and schedule, and the heads of other nodes this one saw (docs/ledger.md "Indexes")
  ledgerStats: space('ledger/stats', { sublevel: ['ledger', 'stats'] }, '`provider` → DAG-CBOR LedgerStats (capacity reserved and used, deals by state, earnings; amounts as decimal strings)'),
  ledgerDue: space('ledger/due', { sublevel: ['ledger', 'due'] }, '<unix s, 12 digits>/<deal id> → deal state when it falls due (upload deadline or end)'),
  ledgerHolders: space('ledger/holders', { sublevel: ['ledger', 'holders'] }, '<piece CID v2>/<deal id> → true while that active deal holds the piece'),
  ledgerWitnessed: space('ledger/witnessed', { sublevel: ['ledger', 'witnessed'] }, '<did>/<seq, 16 digits>/<entry CID> → DAG-CBOR {entry, via}: a head of another node seen in a signed message'),
  ledgerDataSets: space('ledger/data-sets', { sublevel: ['ledger', 'data-sets'] }, 'PDP data set id, 20 digits → DAG-CBOR {payer, state, start, end, padded, bytes, paid}: the capacity it holds and the last period paid'),
  ledgerDataSetDue: space('ledger/data-set-due', { sublevel: ['ledger', 'data-set-due'] }, '<unix s, 12 digits>/<data set id, 20 digits> → empty: when a live data set ends'),
  ledgerMeta: space('ledger/meta', { sublevel: ['ledger', 'meta'] }, '`head` → DAG-CBOR {seq, cid}; `version` → the index version'),

  // the provider's indexes of what it stores (src/provider)
  blocks: space('blocks', { prefix: 'blocks!' }, 'block CID → DAG-CBOR {piece, offset, length}'),
  pieces: space('pieces', { prefix: 'pieces!' }, 'piece CID v2 → DAG-CBOR {deal, size}'),
  piecesV1: space('pieces-v1', { prefix: 'pieces-v1!' }, 'piece CID v1 → piece CID v2 (UTF-8)'),
  dags: space('dags', { prefix: 'dags!' }, 'root CID → piece CID v2 whose CAR is exactly that DAG (UTF-8)'),
  retained: space('gc', { prefix: 'gc!' }, '<unix s, 12 digits>/<piece CID v2> → empty: a piece no deal holds, its file removed after that time'),

  // PDP data sets (src/pdp/datasets.ts, docs/pdp.md "Data sets"): written in the batch of the ledger entry that records each change
  pdpDataSets: space('pdp/data-sets', { prefix: 'pdp!data-set!' }, 'data set id, 20 digits → DAG-CBOR DataSetRecord (payer, payee, clientDataSetId, metadata, next piece id, live pieces, leaves, terminated)'),
  pdpDataSetPieces: space('pdp/data-set-pieces', { prefix: 'pdp!data-set-piece!' }, '<data set id, 20 digits>/<piece id, 20 digits> → DAG-CBOR {pieceCid, size, leaves, metadata, removed}'),
  pdpClientDataSets: space('pdp/client-data-sets', { prefix: 'pdp!client-data-set!' }, '<payer, lower-case>/<clientDataSetId, 64 hex digits> → data set id (UTF-8): one data set per signed CreateDataSet'),
  pdpNonces: space('pdp/nonces', { prefix: 'pdp!nonce!' }, '<payer, lower-case>/<AddPieces nonce, 64 hex digits> → data set id (UTF-8): a signed AddPieces is taken once'),
  pdpTransactions: space('pdp/transactions', { prefix: 'pdp!tx!' }, '0x + ledger entry hash (64 hex digits) → DAG-CBOR {kind, dataSet, pieceIds, seq}: what a "tx hash" answered to a client did'),
  pdpPulls: space('pdp/pulls', { prefix: 'pdp!pull!' }, 'sha256 of a POST /pdp/piece/pull request (64 hex digits) → JSON PullJob (src/pdp/pull.ts): the request, its client, each piece\'s status and the data-set step\'s, when it ended'),
  pdpMeta: space('pdp/meta', { prefix: 'pdp!meta!' }, '`next-data-set` → the next data set id (decimal)'),
  // the PDP piece registry (src/pdp/pieces.ts, docs/pdp.md "Parked pieces"): uploaded pieces, parked or referenced by data sets
  pdpPieces: space('pdp/pieces', { prefix: 'pdp!piece!' }, 'piece CID v2 → DAG-CBOR PieceRecord (size, client, parkedAt, expiresAt, findable, v1, car, refs)'),
  pdpPiecesV1: space('pdp/pieces-v1', { prefix: 'pdp!piece-v1!' }, 'piece CID v1 → piece CID v2 (UTF-8)'),
  pdpExpiry: space('pdp/expiry', { prefix: 'pdp!expiry!' }, '<unix s, 16 digits>!<piece CID v2> → empty: when a parked piece expires'),
  pdpUsage: space('pdp/usage', { prefix: 'pdp!usage!' }, 'client (`0x…` or `ip:…`) → parked bytes (decimal)'),
  // one key, `total`: the stored key is `pdp!usage-total`, as repos have always held it
  pdpUsageTotal: space('pdp/usage-total', { prefix: 'pdp!usage-' }, '`total` → parked bytes of every client (decimal)'),
  pdpBlocks: space('pdp/blocks', { prefix: 'pdp!block!' }, '<block CID>!<piece CID v2> → DAG-CBOR {offset, length}: a block of a CARv1 piece'),
  pdpPieceBlocks: space('pdp/piece-blocks', { prefix: 'pdp!piece-blocks!' }, 'piece CID v2 → DAG-CBOR list of its block CIDs'),
  pdpDags: space('pdp/dags', { prefix: 'pdp!dag!' }, '<root CID>!<piece CID v2> → empty: a piece that is the canonical DFS CAR of that root'),
  // a cluster's (src/cluster/node.ts, docs/cluster.md): kept only in PostgreSQL in practice, declared like the rest
  clusterMeta: space('cluster/meta', { sublevel: ['cluster', 'meta'] }, '`identity` → the did every node of the cluster signs with (UTF-8)'),
  pieceLocations: space('cluster/piece-locations', { sublevel: ['cluster', 'piece-locations'] }, '<piece CID v2>/<node name> → empty: that node\'s piece store holds the piece'),
  drained: space('cluster/drained', { sublevel: ['cluster', 'drained'] }, 'node name → unix ms when it was drained: it takes no work and its pieces are copied away'),
  scrubs: space('cluster/scrubs', { sublevel: ['cluster', 'scrubs'] }, '<piece CID v2>/<node name> → JSON {at, ok, by}: the last re-hash of that copy'),

  // the client's (src/client, src/store)
  addressBook: space('client/providers', { sublevel: ['client', 'providers'] }, 'provider did → DAG-CBOR address book entry'),
  audits: space('audits', { prefix: 'audits!' }, 'deal id → DAG-CBOR AuditState'),
  roots: space('roots', { prefix: 'roots!' }, 'root CID → JSON record of a local add')
} as const

export type SpaceName = keyof typeof spaces

function prefixOf (space: Space): string {
  if (!('prefix' in space.level)) throw new TypeError(`space ${space.name} is a sublevel, not a raw prefix`)
  return space.level.prefix
}

// The raw key prefixes of the provider's spaces, for ledger batches that write
// them beside an entry (ExtraOp keys) and for tests that read the database.
export const BLOCK_PREFIX = prefixOf(spaces.blocks)
export const PIECE_PREFIX = prefixOf(spaces.pieces)
export const PIECE_V1_PREFIX = prefixOf(spaces.piecesV1)
/** root CID → the piece that is exactly the DFS, duplicate-free CAR of its DAG (what the gateway may stream whole) */
export const DAG_PREFIX = prefixOf(spaces.dags)
/** `<unix s>/<pieceCid>`: a piece no active deal holds any more, whose file goes once its retention grace ends */
export const GC_PREFIX = prefixOf(spaces.retained)

/** A name transactions lock to run one at a time (StateTransaction.lock). */
export type LockName = string & { readonly __lock: unique symbol }

function lockName (name: string): LockName {
  return name as LockName
}

export const locks = {
  /** held by every ledger append: the entries of all nodes form one chain */
  ledgerHead: lockName('ledger/head'),
  /** held while a node checks (or records) the cluster's identity */
  clusterIdentity: lockName('cluster/identity')
} as const

/** A lock for tests and for one-off names; real users add theirs to `locks`. */
export function namedLock (name: string): LockName {
  if (name === '' || name.length > 200) throw new RangeError(`a lock name has 1 to 200 characters, got ${name.length}`)
  return lockName(name)
}

/** A space for tests of the store itself, kept as the real ones are (a sublevel, or a raw prefix). */
export function testSpace (name: string, kind: 'sublevel' | 'prefix' = 'sublevel'): Space {
  if (!/^[a-z0-9-]+$/.test(name)) throw new RangeError(`a test space is named with a-z, 0-9 and -, got ${JSON.stringify(name)}`)
  return space(`test/${name}`, kind === 'sublevel' ? { sublevel: ['test', name] } : { prefix: `test-${name}!` }, 'test data')
}
