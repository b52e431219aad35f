/**
 * The messages of a deal (docs/protocol.md). Amounts are base units and sizes are
 * bytes, both `bigint`; times are unix seconds and durations seconds.
 */
import type { CID } from 'multiformats/cid'
import type { Signed } from './signing.js'

/**
 * A node's ledger head: the seq and CID of its newest entry. Every signed
 * message between client and provider (proposal, acceptance, proof request,
 * proof, cancellation) carries its sender's, so that the receiver can later
 * check the sender's ledger still holds that entry (docs/protocol.md
 * "Witnessed heads"). `null`: the sender's ledger was empty.
 */
export interface LedgerHead {
  seq: number
  cid: CID
}

/** A provider's signed offer: its terms for any deal it will take now. */
export interface Ask {
  provider: string
  endpoint: string
  pricePerGiBDay: bigint
  collateralPerGiB: bigint
  minPieceSize: bigint
  maxPieceSize: bigint
  freeCapacity: bigint
  maxDuration: number
  provingPeriod: number
  challenges: number
  seq: number
  expiry: number
  /** the Ethereum address PDP clients name as payee in a signed CreateDataSet (docs/pdp.md), where the provider has one */
  payee?: string
}

/** A client's signed offer to store one piece, in the spirit of Filecoin's DealProposal. */
export interface Proposal {
  /** FRC-0069 piece CID v2 */
  pieceCid: CID
  /** padded piece size: 2^height × 32 bytes */
  pieceSize: bigint
  /** root of the DAG whose CAR is the piece payload */
  payloadCid: CID
  /** CAR bytes */
  payloadSize: bigint
  client: string
  provider: string
  label: string
  start: number
  end: number
  pricePerGiBDay: bigint
  providerCollateral: bigint
  clientCollateral: bigint
  provingPeriod: number
  challenges: number
  nonce: bigint
  /** the client's ledger head when it signed (deal-proposal/v2); absent in v1 proposals */
  head?: LedgerHead | null
}

/** The provider's signed answer that it takes the deal. */
export interface Acceptance {
  dealId: CID
  client: string
  provider: string
  pieceCid: CID
  acceptedAt: number
  /** unix seconds: the upload must be complete by then or the deal expires (deal-acceptance/v2) */
  uploadBy?: number
  /** the provider's ledger head once the deal is recorded (deal-acceptance/v2) */
  head?: LedgerHead | null
}

/** A client's signed request for a proof of its deal's piece (proof-request/v1). */
export interface ProofRequest {
  dealId: CID
  /** 32 fresh random bytes */
  seed: Uint8Array
  /** leaves challenged: at most the deal's own `challenges` */
  count: number
  /** unix seconds when the request was signed */
  at: number
  head: LedgerHead | null
}

/** A client's signed cancellation of a deal not yet active (deal-cancel/v1). */
export interface Cancellation {
  dealId: CID
  /** unix seconds */
  at: number
  head: LedgerHead | null
}

export type DealState = 'proposed' | 'accepted' | 'transferring' | 'active' | 'expired' | 'terminated' | 'rejected' | 'failed'

/** The provider's signed view of a deal (GET /v1/deals/{id}). */
export interface DealStatus {
  dealId: CID
  provider: string
  state: DealState
  at: number
}

export type SignedAsk = Signed<Ask>
export type SignedProposal = Signed<Proposal>
export type SignedAcceptance = Signed<Acceptance>
export type SignedDealStatus = Signed<DealStatus>
export type SignedProofRequest = Signed<ProofRequest>
export type SignedCancellation = Signed<Cancellation>
