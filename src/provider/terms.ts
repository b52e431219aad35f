/**
 * The terms a provider offers and the defaults `provider start` gives them
 * (src/provider/options.ts), with the upload deadline they imply.
 */
import { DEFAULT_CLOCK_SKEW } from '../protocol/rules.js'

/** The terms a provider offers (`cairn provider start` flags). */
export interface ProviderTerms {
  endpoint: string
  pricePerGiBDay: bigint
  collateralPerGiB: bigint
  minPieceSize: bigint
  maxPieceSize: bigint
  /** padded bytes the provider will hold in total */
  capacity: bigint
  /** seconds */
  maxDuration: number
  provingPeriod: number
  challenges: number
  /** how long a signed ask stays valid, seconds */
  askTtl: number
  /** seconds an accepted deal may take to be uploaded (never past its start) before it expires; default 1 h */
  uploadWindow?: number
  /** how far ahead a proposal's start may lie, seconds; default 7 d */
  maxStartDelay?: number
  /** seconds a piece no active deal holds is kept before its file is removed; default 24 h */
  retentionGrace?: number
  /** the Ethereum address announced as `payee` in the ask (PDP, docs/pdp.md), lower-case */
  payee?: string
}

/**
 * Terms with `provider start`'s defaults (src/provider/options.ts) for what is
 * not given: for a provider run in process (the demo, benches, tests).
 */
export function providerTerms (given: Partial<ProviderTerms> = {}): ProviderTerms {
  return {
    endpoint: '',
    pricePerGiBDay: 40n,
    collateralPerGiB: 0n,
    minPieceSize: 128n,
    maxPieceSize: 32n << 30n,
    capacity: 100n << 30n,
    maxDuration: 540 * 86400,
    provingPeriod: 86400,
    challenges: 16,
    askTtl: 3600,
    ...given
  }
}

/**
 * When an accepted deal must be uploaded by: within the upload window and not
 * after the deal starts (the deal's proving begins then), except that a deal
 * starting about now still gets the clock skew a start may lie in the past
 * (60 s) rather than no time at all.
 */
export function uploadDeadline (acceptedAt: number, start: number, uploadWindow: number): number {
  return Math.min(acceptedAt + uploadWindow, Math.max(start, acceptedAt + DEFAULT_CLOCK_SKEW))
}

export const DEFAULT_UPLOAD_WINDOW = 3600
export const DEFAULT_MAX_START_DELAY = 7 * 86400
export const DEFAULT_RETENTION_GRACE = 86400
