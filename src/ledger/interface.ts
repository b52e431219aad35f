/**
 * The ledger (docs/ledger.md): a local, append-only, hash-chained, signed log of
 * everything that happened to deals, with the indexes derived from it.
 */
import type { CID } from 'multiformats/cid'
import type { DealState } from '../protocol/interface.js'
import type { Space } from '../state/spaces.js'

export const ENTRY_KINDS = [
  'deal-proposed',
  'deal-accepted',
  'deal-rejected',
  'transfer-started',
  'piece-stored',
  'deal-active',
  'challenge-issued',
  'proof-passed',
  'proof-failed',
  'proof-missed',
  'payment-accrued',
  'collateral-slashed',
  'deal-expired',
  'deal-terminated',
  'deal-failed',
  'deal-repaired',
  // the provider's record of a client-signed proof request it answered (docs/protocol.md)
  'proof-answered',
  // PDP data sets (docs/pdp.md "Data sets"): each change a client signed, with its extraData
  'data-set-created',
  'pieces-added',
  'pieces-removed',
  'data-set-deleted',
  // the provider ended a data set at the end of its term; a data set's proven period (paid by a payment-accrued in its batch)
  'data-set-expired',
  'data-set-proven',
  // a client's audit of a provider's PDP data set (src/client/data-set-watch.ts): feeds the provider's reputation
  'data-set-audited'
] as const

export type EntryKind = typeof ENTRY_KINDS[number]

/**
 * Fields of an entry beyond {seq, prev, at, kind} as a writer gives them:
 * IPLD data (strings, integers as number or bigint, bytes, CIDs, lists,
 * maps; no floats). What each kind holds is typed below (EntryFieldsOf);
 * the fields are stored exactly as given, so the entry's bytes and hash are
 * the writer's.
 */
export type EntryFields = Record<string, unknown>

/** An integer field: DAG-CBOR gives back small integers as numbers, large ones as bigints. */
export type Int = number | bigint

/** A signed message of either side as an entry keeps it; one another node signed carries its ledger head (a witnessed head). */
export interface SignedRecord {
  payload: unknown
  signer: string
  signature: Uint8Array
}

/**
 * Fields every entry kind may carry beyond its typed ones: entries are open
 * records (an older or newer writer may add fields), read as unknown.
 */
interface OpenFields {
  [field: string]: unknown
}

/** Every entry about one deal: the deal id, and the provider whose counters and balance it touches. */
export interface DealEntryFields extends OpenFields {
  deal: CID
  provider?: string
}

/** A deal's terms as the client (`deal-proposed`) or the provider (`deal-accepted`) records them. */
export interface DealTermsFields extends DealEntryFields {
  client?: string
  /** the replay index: one nonce per client */
  nonce?: Int
  pieceCid?: CID
  payloadCid?: CID
  pieceSize?: Int
  payloadSize?: Int
  /** the signed proposal */
  proposal?: SignedRecord
}

export interface DealProposedFields extends DealTermsFields {
  /** the provider's URL when the client proposed */
  endpoint?: string
  /** the client's price policy at deal time: a repair of this deal is held to it */
  maxPrice?: Int
  /** a distinct replica: the root it is a copy of, and for whom a repair encrypts the next one */
  replicaOf?: string
  recipients?: string[]
}

export interface DealAcceptedFields extends DealTermsFields {
  /** on a provider: the deal's schedule (unix seconds) and challenges per proof */
  start?: number
  end?: number
  uploadBy?: number
  challenges?: number
  /** on a client: the provider's signed acceptance, or its signed status standing for it */
  acceptance?: SignedRecord
  status?: SignedRecord
}

export interface DealActiveFields extends DealEntryFields {
  endpoint?: string
  pieceCid?: CID
  pieceCidV1?: CID
  payloadCid?: CID
  payloadSize?: Int
  /** blocks indexed (provider) */
  blocks?: number
  replicaOf?: string
  status?: SignedRecord
}

/** A deal that ended otherwise than by running its term: rejected, expired, terminated, failed. */
export interface DealEndedFields extends DealEntryFields {
  code?: string
  message?: string
  reason?: string
  pieceCid?: CID
  uploadBy?: number
  end?: number
  status?: SignedRecord
  cancel?: SignedRecord
}

export interface PieceFields extends DealEntryFields {
  pieceCid?: CID
}

export interface ChallengeFields extends DealEntryFields {
  period?: number
  seed?: Uint8Array
  count?: number
  /** unix ms by which the proof had to arrive */
  deadline?: number
}

/** A proof result the client recorded (proof-passed, -failed, -missed). */
export interface ProofResultFields extends DealEntryFields {
  period?: number
  /** the `challenge-issued` entry answered */
  challenge?: CID
  pieceCid?: CID
  seed?: Uint8Array
  count?: number
  /** how long the challenge took, ms */
  ms?: Int
  /** the provider's signed proof as received (checked by `ledger verify`'s proof hook, not here) */
  proof?: unknown
  code?: string
  message?: string
  providerCode?: string
  attempts?: number
}

/**
 * Money moved (docs/protocol.md "Amounts"): payment-accrued payer → payee,
 * collateral-slashed provider → client. A deal's, or (payment-accrued only) a
 * PDP data set's proven period, which names `dataSet` instead of `deal`.
 */
export interface SettlementFields extends OpenFields {
  deal?: CID
  dataSet?: number
  provider?: string
  from?: string
  to?: string
  amount?: Int
  period?: number
  fee?: Int
  reason?: string
}

export interface DealRepairedFields extends DealEntryFields {
  reason?: string
  /** the replacement deal's id */
  replacement?: CID | string
  replacementProvider?: string
  reencrypted?: boolean
}

export interface ProofAnsweredFields extends DealEntryFields {
  client?: string
  seed?: Uint8Array
  count?: number
  request?: SignedRecord
}

/** A PDP data set change a client signed (docs/pdp.md "Data sets"). */
export interface DataSetFields extends OpenFields {
  dataSet: number
  payer?: string
  payee?: string
  pieces?: Array<{ pieceId: number }>
  pieceIds?: number[]
  /** the data set's term, unix seconds (data-set-created, data-set-expired) */
  start?: number
  end?: number
  /** padded and payload bytes the change holds or frees (capacity; the `data-sets` index) */
  padded?: Int
  bytes?: Int
}

/** A proving period of a PDP data set answered (provider side): pays that period. */
export interface DataSetProvenFields extends DataSetFields {
  period?: number
  /** the challenge's uint256 seed, 0x and 64 hex digits as PDP speaks it */
  seed?: string
  count?: number
}

/** A client's audit of a provider's PDP data set (src/client/data-set-watch.ts). */
export interface DataSetAuditedFields extends DataSetFields {
  endpoint?: string
  provider?: string
  outcome?: string
  period?: number
  /** the challenge's uint256 seed, 0x and 64 hex digits */
  seed?: string
  count?: number
  ms?: Int
  /** decimal, as the provider's proof states it */
  leafCount?: string
  code?: string
  message?: string
}

/** What each kind of entry holds. */
export interface EntryFieldsOf {
  'deal-proposed': DealProposedFields
  'deal-accepted': DealAcceptedFields
  'deal-rejected': DealEndedFields
  'transfer-started': PieceFields
  'piece-stored': PieceFields
  'deal-active': DealActiveFields
  'challenge-issued': ChallengeFields
  'proof-passed': ProofResultFields
  'proof-failed': ProofResultFields
  'proof-missed': ProofResultFields
  'payment-accrued': SettlementFields
  'collateral-slashed': SettlementFields
  'deal-expired': DealEndedFields
  'deal-terminated': DealEndedFields
  'deal-failed': DealEndedFields
  'deal-repaired': DealRepairedFields
  'proof-answered': ProofAnsweredFields
  'data-set-created': DataSetFields
  'pieces-added': DataSetFields
  'pieces-removed': DataSetFields
  'data-set-deleted': DataSetFields
  'data-set-expired': DataSetFields
  'data-set-proven': DataSetProvenFields
  'data-set-audited': DataSetAuditedFields
}

/** What every entry has, whatever its kind. */
export interface EntryHeader {
  seq: number
  /** CID (dag-cbor, sha2-256) of the signed record; the next entry's `prev` */
  cid: CID
  prev: CID | null
  /** unix milliseconds */
  at: number
  signer: string
  signature: Uint8Array
  /** DAG-CBOR of {seq, prev, at, kind, …fields}: what the signature covers after the tag */
  entryBytes: Uint8Array
  /** DAG-CBOR of {entry: entryBytes, signer, signature}: what is stored and hashed */
  recordBytes: Uint8Array
}

/** One entry of kind K as read back from the ledger, its fields checked against the kind (src/ledger/entry.ts `parseFields`). */
export type EntryOf<K extends EntryKind> = EntryHeader & { kind: K, fields: EntryFieldsOf[K] }

/** One entry as read back from the ledger: a union on `kind`, so `entry.kind === 'deal-proposed'` types `entry.fields`. */
export type LedgerEntry = { [K in EntryKind]: EntryOf<K> }[EntryKind]

/**
 * A write another part of the node wants committed atomically with an entry
 * (e.g. the block index): to a state space (`space`, any ledger), or — on the
 * LevelDB ledger — to a key of the repo's database or of a sublevel of it. A
 * raw key under a space's LevelDB prefix (`blocks!…`) is taken by every ledger
 * as a write to that space.
 */
export type ExtraOp =
  | { type: 'put', space?: Space, sublevel?: unknown, key: string, value: Uint8Array }
  | { type: 'del', space?: Space, sublevel?: unknown, key: string }

export interface DealRecord {
  state: DealState
  /** seq and time (unix ms) of the last entry that changed the record */
  seq: number
  at: number
  client?: string
  provider?: string
  pieceCid?: CID
  payloadCid?: CID
  pieceSize?: bigint
  payloadSize?: bigint
  /** unix seconds: the deal's start and end, and the provider's upload deadline (provider side) */
  start?: number
  end?: number
  uploadBy?: number
  /** the deal's challenges per proof */
  challenges?: number
  passed: number
  failed: number
  missed: number
  /** failed or missed periods since the last pass; docs/ledger.md fails the deal at 3 */
  consecutiveFaults: number
}

export interface ProviderCounters {
  challenges: number
  passed: number
  failed: number
  missed: number
}

/** Money between this node and one counterparty, in base units (docs/ledger.md). */
export interface Balance {
  counterparty: string
  /** payments accrued to this node */
  earned: bigint
  /** payments accrued from this node */
  paid: bigint
  /** fault fees taken from the counterparty's collateral for this node */
  slashedToUs: bigint
  /** fault fees taken from this node's collateral for the counterparty */
  slashedFromUs: bigint
  /** earned + slashedToUs − paid − slashedFromUs: what the counterparty owes this node (negative: what it is owed) */
  outstanding: bigint
}

/** The node's totals as a provider, kept as an index in the same batch as each entry (O(1) to read). */
export type DataSetLedgerState = 'live' | 'terminated' | 'expired'

/** The `data-sets` index (src/ledger/data-set-index.ts): one record per data set of this provider. */
export interface DataSetLedgerRecord {
  payer: string
  state: DataSetLedgerState
  /** unix seconds: creation, and the end its term gives (none for a data set recorded before data sets had terms) */
  start: number
  end?: number
  /** padded bytes of its live pieces (the capacity it holds) */
  padded: bigint
  /** payload bytes of its live pieces */
  bytes: bigint
  /** last proving period paid (−1: none) */
  paid: number
}

export interface LedgerStats {
  /** deals this node provides, by state */
  deals: Partial<Record<DealState, number>>
  /** padded bytes of deals accepted but not yet stored */
  reserved: bigint
  /** padded bytes of active deals */
  used: bigint
  /** payload (CAR) bytes of active deals */
  stored: bigint
  /** payments accrued to this node, base units */
  earned: bigint
  /** proof requests answered */
  proofsAnswered: number
  /** live PDP data sets (their pieces count in used and stored) */
  dataSets: number
}

/** A counterparty's ledger head seen in a signed message, and where it was recorded. */
export interface WitnessedHead {
  did: string
  seq: number
  cid: CID
  /** seq of this node's entry that holds the message */
  entry: number
  /** entry kind and field of the message, e.g. `deal-accepted.acceptance` */
  via: string
}

/** One entry of an atomic multi-entry append. */
export interface AppendItem {
  kind: EntryKind
  fields: EntryFields
  extra?: Iterable<ExtraOp>
  /**
   * Runs with the ledger head held, against the indexes as every entry before
   * this one left them (on a cluster, other nodes' entries too), just before
   * the entry is built; what it throws fails its unit alone and writes
   * nothing. For a rule another append could break between a check and the
   * append: a proposal's free capacity, nonce and deal id (src/ledger/admission.ts).
   */
  guard?: (view: IndexView) => Promise<void>
}

/** What a guard reads: the indexes at the append's place in the chain. */
export interface IndexView {
  stats (): Promise<LedgerStats>
  deal (id: string): Promise<DealRecord | undefined>
  nonceUsed (client: string, nonce: bigint): Promise<boolean>
  /**
   * A key of any state space as it stands at the append's place: for a guard
   * that checks what its caller read before the append is unchanged (a PDP
   * data-set change, src/pdp/reads.ts).
   */
  state (space: Space, key: string): Promise<Uint8Array | undefined>
}

export interface LogOptions {
  deal?: CID | string
  kind?: EntryKind
  limit?: number
}

export interface VerifyOptions {
  /**
   * 'chain' (default): every record hash, link and seq, every signer, and the
   * head's signature — which covers every earlier record and signature through
   * the hash chain. 'all': also every signature on its own.
   */
  signatures?: 'chain' | 'all'
  /** extra checks of each entry (e.g. re-verifying stored proofs); throw to fail */
  verifyEntry?: (entry: LedgerEntry) => void | Promise<void>
  onProgress?: (verified: number) => void
}

export interface VerifyReport {
  entries: number
  /** index entries re-derived from the chain and found equal to the stored ones */
  indexed?: number
  head: { seq: number, cid: CID } | null
}

export interface Ledger {
  /** the did:key that signs every entry */
  readonly did: string
  /**
   * Appends one signed entry and commits it with every index it changes and `extra`, in one synced batch.
   * `extra` may be a lazy iterable (e.g. a generator encoding an upload's block index); it is read once,
   * in time slices, and an error thrown while reading it fails this entry alone.
   */
  append (kind: EntryKind, fields: EntryFields, extra?: Iterable<ExtraOp>): Promise<LedgerEntry>
  /** Appends several entries in one batch: all of them commit, or none (e.g. a proof with its payment). */
  appendAll (items: readonly AppendItem[]): Promise<LedgerEntry[]>
  head (): { seq: number, cid: CID } | null
  get (seq: number): Promise<LedgerEntry | undefined>
  /** Newest first. */
  log (options?: LogOptions): AsyncIterable<LedgerEntry>
  /** Throws ERR_LEDGER_BROKEN naming the first broken entry. */
  verify (options?: VerifyOptions): Promise<VerifyReport>
  /** Newline-delimited DAG-JSON, one line per entry, oldest first; verifiable with verifyExport alone. */
  export (): AsyncIterable<string>
  balance (): Promise<Balance[]>
  deal (id: CID | string): Promise<DealRecord | undefined>
  counters (provider: string): Promise<ProviderCounters>
  nonceUsed (client: string, nonce: bigint): Promise<boolean>
  /** The node's provider totals (O(1)). */
  stats (): Promise<LedgerStats>
  /** Deals of this provider due by `until` (unix seconds: upload deadlines and ends), earliest first, at most `limit`. */
  due (until: number, limit: number): Promise<Array<{ at: number, deal: string }>>
  /** A PDP data set's capacity, end and payments (the `data-sets` index). */
  dataSet (id: number): Promise<DataSetLedgerRecord | undefined>
  /** Live data sets whose term ends by `until` (unix seconds), earliest first, at most `limit`. */
  dataSetsDue (until: number, limit: number): Promise<Array<{ at: number, dataSet: number }>>
  /** Active deals of this provider holding `pieceCid`. */
  holders (pieceCid: string): Promise<string[]>
  /** Counterparties' heads seen in signed messages (all, or one did's), oldest seq first. */
  witnessed (did?: string): AsyncIterable<WitnessedHead>
}
