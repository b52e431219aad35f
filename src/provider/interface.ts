/**
 * The boundaries of the provider's HTTP service. The HTTP layer speaks only to
 * these interfaces, so each route can be tested with an in-memory stand-in and
 * the real implementations (ledger, piece store, block index) plug in behind.
 */
import type { Readable } from 'node:stream'
import type { CID } from 'multiformats/cid'
import type { ErrorCode } from '../errors.js'
import type { BlockSource, PieceHandle } from '../gateway/interface.js'

export type { BlockSource, PieceHandle }

/**
 * A message the HTTP layer answers with as DAG-JSON: the real service's are
 * signed envelopes (src/protocol/interface.ts); stand-ins in tests answer
 * plain objects.
 */
export type WireMessage = object

/**
 * The deal side of docs/protocol.md: proposals, uploads and status. Implementations
 * throw `CairnError`s; the HTTP layer turns their codes into statuses.
 */
export interface DealService {
  /** The provider-signed ask (docs/protocol.md "Ask"), DAG-JSON encodable. */
  ask (): Promise<WireMessage>

  /**
   * Checks a decoded DAG-JSON proposal body against the ask and the deal rules.
   * Returns the provider-signed acceptance, or throws a coded rejection
   * (e.g. ERR_PRICE_TOO_LOW naming both values).
   */
  propose (body: unknown): Promise<WireMessage>

  /**
   * Streams a piece into the store: verify every block, DAG completeness, byte
   * count and piece CID, then commit all or nothing. Must leave nothing behind
   * when `body` errors or `signal` aborts.
   */
  upload (request: UploadRequest): Promise<WireMessage>

  /** The provider-signed status of a deal, or ERR_DEAL_NOT_FOUND. */
  status (dealId: string): Promise<WireMessage>

  /** Answers a challenge (docs/protocol.md "Proofs"); ERR_NOT_IMPLEMENTED until proofs land. */
  prove? (dealId: string, body: unknown): Promise<WireMessage>

  /** Cancels a deal not yet active on its client's signed request; answers with the signed status. */
  cancel? (dealId: string, body: unknown): Promise<WireMessage>

  /** Who and what a deal is about, for the log lines of its requests; undefined when unknown. */
  summary? (dealId: string): Promise<DealLogFields | undefined>
}

/** The fields an operator finds on every log line about a deal. */
export interface DealLogFields {
  client?: string
  pieceCid?: string
  /** padded piece bytes */
  pieceSize?: number
}

export interface UploadRequest {
  dealId: string
  /** The declared Content-Length; the body is cut off if it runs past it. */
  contentLength: number
  /** The request body, already guarded by the idle timeout and minimum rate. */
  body: Readable
  /** The client's request signature (the `Authorization` header), if any. */
  authorization: string | undefined
  /** Aborted when the client goes away or the provider stops. */
  signal: AbortSignal
}

/** Where `GET /piece/{pieceCid}` finds piece bytes. */
export interface PieceSource {
  open (pieceCid: CID): Promise<PieceHandle | undefined>
}

/** What `cairn provider status` shows (README "Provider"). */
export interface ProviderStatus {
  did: string
  url: string
  capacity: { total: number, used: number, free: number }
  deals: Record<string, number>
  bytesStored: number
  proofsAnswered: number
  /** Base units, decimal string (bigint on the wire). */
  earnings: string
  startedAt: string
}

export interface DealSummary {
  id: string
  state: string
  [field: string]: unknown
}

/** The admin API's backing: read-only views of the running provider. */
export interface ProviderAdmin {
  status (): Promise<ProviderStatus>
  deals (filter: { state?: string }): Promise<DealSummary[]>
}

/** A piece the provider found lost or changed, and will not serve. */
export interface FailedPiece {
  deal: string
  piece: string
  code: ErrorCode
  reason: string
}

/** One line per event on stderr; tests pass a recorder. */
export type Logger = (event: string, fields?: Record<string, unknown>) => void
