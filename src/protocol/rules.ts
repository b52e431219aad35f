/**
 * The rules a provider applies to a signed proposal against its ask and its
 * state (docs/protocol.md). Each refusal is its own error code and its message names
 * the rule and both values with their units, so a client can act on it.
 * Clients run the same checks before proposing.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import type { Ask, Proposal, SignedProposal } from './interface.js'
import { pieceCidInfo } from './piece-cid.js'
import { dealIdOf, verifyProposal } from './proposal.js'
import type { Signed } from './signing.js'

export const GiB = 1n << 30n
export const SECONDS_PER_DAY = 86_400n
export const MAX_LABEL_BYTES = 256
/** How far in the past a proposal's start may lie, for clock skew and transit (seconds). */
export const DEFAULT_CLOCK_SKEW = 60
/** docs/ledger.md: a failed or missed period costs the provider twice the period's price. */
export const FAULT_FEE_MULTIPLIER = 2n
/**
 * A deal's whole price (and each collateral) must stay below this many base
 * units, so that every payment, fault fee and collateral the ledger records
 * for it fits a 64-bit integer (DAG-CBOR's) with room to spare.
 */
export const MAX_DEAL_AMOUNT = 1n << 62n

/** What the rules need to know about the provider beyond its ask. */
export interface ProviderState {
  /** bytes of padded piece the provider can still take */
  freeCapacity: bigint
  /** whether a deal with this id was already proposed to this provider */
  hasDeal (dealId: CID): boolean | Promise<boolean>
  /** whether this client already used this nonce with this provider */
  hasNonce (client: string, nonce: bigint): boolean | Promise<boolean>
}

export interface CheckOptions {
  /** unix seconds; defaults to the clock */
  now?: number
  clockSkew?: number
  /** how far ahead a start may lie, seconds (the provider's --max-start-delay); unbounded when unset */
  maxStartDelay?: number
}

export interface CheckedProposal {
  dealId: CID
  signed: SignedProposal
}

function refuse (code: ConstructorParameters<typeof CairnError>[0], message: string, details: Record<string, unknown>): CairnError {
  return new CairnError(code, message, { details })
}

/**
 * Checks a signed proposal as received (already parsed from DAG-JSON) and
 * returns its deal id, or throws the first rule it breaks.
 */
export async function checkProposal (envelope: Signed<unknown>, ask: Ask, state: ProviderState, options: CheckOptions = {}): Promise<CheckedProposal> {
  const now = options.now ?? Math.floor(Date.now() / 1000)
  const skew = options.clockSkew ?? DEFAULT_CLOCK_SKEW
  const signed = verifyProposal(envelope)
  const p = signed.payload
  checkTerms(p, ask, now, skew)
  if (options.maxStartDelay !== undefined && p.start > now + options.maxStartDelay) {
    throw refuse('ERR_START_TOO_LATE', `deal starts at ${p.start}, ${p.start - now} s from now; provider takes starts at most ${options.maxStartDelay} s ahead`, { start: p.start, max: options.maxStartDelay })
  }
  if (p.pieceSize > state.freeCapacity) {
    throw refuse('ERR_INSUFFICIENT_CAPACITY', `piece needs ${p.pieceSize} bytes, provider has ${state.freeCapacity} bytes free`, { needed: p.pieceSize, free: state.freeCapacity })
  }
  const dealId = dealIdOf(signed)
  if (await state.hasDeal(dealId)) {
    throw refuse('ERR_REPLAYED_DEAL', `deal ${dealId.toString()} was already proposed to this provider`, { dealId: dealId.toString() })
  }
  if (await state.hasNonce(p.client, p.nonce)) {
    throw refuse('ERR_REPLAYED_NONCE', `nonce ${p.nonce} was already used by ${p.client} with this provider`, { client: p.client, nonce: p.nonce })
  }
  return { dealId, signed }
}

/** The rules that depend only on the proposal, the ask and the time. */
export function checkTerms (p: Proposal, ask: Ask, now: number, clockSkew = DEFAULT_CLOCK_SKEW): void {
  if (p.provider !== ask.provider) {
    throw refuse('ERR_WRONG_PROVIDER', `proposal is addressed to ${p.provider}, this provider is ${ask.provider}`, { offered: p.provider, expected: ask.provider })
  }
  if (ask.expiry <= now) {
    throw refuse('ERR_ASK_EXPIRED', `ask ${ask.seq} expired at ${ask.expiry}, it is now ${now} (unix seconds)`, { expiry: ask.expiry, now })
  }
  const labelBytes = Buffer.byteLength(p.label, 'utf8')
  if (labelBytes > MAX_LABEL_BYTES) {
    throw refuse('ERR_LABEL_TOO_LONG', `label is ${labelBytes} bytes, at most ${MAX_LABEL_BYTES} bytes are allowed`, { offered: labelBytes, max: MAX_LABEL_BYTES })
  }
  const piece = pieceCidInfo(p.pieceCid, 'proposal.pieceCid')
  if (p.pieceSize !== piece.paddedSize) {
    throw refuse('ERR_PIECE_SIZE_MISMATCH', `pieceSize is ${p.pieceSize} bytes, the piece CID says ${piece.paddedSize} bytes padded`, { offered: p.pieceSize, expected: piece.paddedSize })
  }
  if (p.payloadSize !== piece.payloadSize) {
    throw refuse('ERR_PIECE_SIZE_MISMATCH', `payloadSize is ${p.payloadSize} bytes, the piece CID says ${piece.payloadSize} bytes`, { offered: p.payloadSize, expected: piece.payloadSize })
  }
  if (p.pieceSize < ask.minPieceSize) {
    throw refuse('ERR_PIECE_TOO_SMALL', `piece is ${p.pieceSize} bytes padded, provider takes at least ${ask.minPieceSize} bytes`, { offered: p.pieceSize, min: ask.minPieceSize })
  }
  if (p.pieceSize > ask.maxPieceSize) {
    throw refuse('ERR_PIECE_TOO_LARGE', `piece is ${p.pieceSize} bytes padded, provider takes at most ${ask.maxPieceSize} bytes`, { offered: p.pieceSize, max: ask.maxPieceSize })
  }
  if (p.end <= now) {
    throw refuse('ERR_PROPOSAL_EXPIRED', `deal ends at ${p.end}, it is already ${now} (unix seconds)`, { end: p.end, now })
  }
  if (p.start < now - clockSkew) {
    throw refuse('ERR_START_IN_PAST', `deal starts at ${p.start}, ${now - p.start} s ago; starts may lie at most ${clockSkew} s in the past`, { start: p.start, now })
  }
  const duration = p.end - p.start
  if (duration > ask.maxDuration) {
    throw refuse('ERR_DURATION_TOO_LONG', `duration is ${duration} s, provider takes at most ${ask.maxDuration} s`, { offered: duration, max: ask.maxDuration })
  }
  if (duration < p.provingPeriod) {
    throw refuse('ERR_DURATION_TOO_SHORT', `duration is ${duration} s, shorter than one proving period of ${p.provingPeriod} s`, { offered: duration, min: p.provingPeriod })
  }
  if (p.pricePerGiBDay < ask.pricePerGiBDay) {
    throw refuse('ERR_PRICE_TOO_LOW', `offered ${p.pricePerGiBDay} per GiB per day, provider asks at least ${ask.pricePerGiBDay}`, { offered: p.pricePerGiBDay, min: ask.pricePerGiBDay })
  }
  checkAmounts(p)
  const collateral = requiredCollateral(ask.collateralPerGiB, p.pieceSize)
  if (p.providerCollateral < collateral) {
    throw refuse('ERR_COLLATERAL_TOO_LOW', `provider collateral is ${p.providerCollateral}, the ask's ${ask.collateralPerGiB} per GiB makes ${collateral} for ${p.pieceSize} bytes`, { offered: p.providerCollateral, expected: collateral })
  }
  if (p.providerCollateral > collateral) {
    throw refuse('ERR_COLLATERAL_TOO_HIGH', `provider collateral is ${p.providerCollateral}, provider pledges only ${collateral} (${ask.collateralPerGiB} per GiB) for ${p.pieceSize} bytes`, { offered: p.providerCollateral, expected: collateral })
  }
  if (p.provingPeriod < ask.provingPeriod) {
    throw refuse('ERR_PROVING_PERIOD_TOO_SHORT', `proving period is ${p.provingPeriod} s, provider proves at most every ${ask.provingPeriod} s`, { offered: p.provingPeriod, min: ask.provingPeriod })
  }
  if (p.challenges > ask.challenges) {
    throw refuse('ERR_TOO_MANY_CHALLENGES', `${p.challenges} challenges per proof asked, provider answers at most ${ask.challenges}`, { offered: p.challenges, max: ask.challenges })
  }
}

/**
 * Price × size × duration, and the collaterals, within MAX_DEAL_AMOUNT
 * (ERR_AMOUNT_TOO_LARGE): both sides check before a deal is made, so no
 * payment or fee of it can overflow later.
 */
export function checkAmounts (p: Pick<Proposal, 'pricePerGiBDay' | 'pieceSize' | 'start' | 'end' | 'providerCollateral' | 'clientCollateral'>): void {
  const total = dealPrice(p)
  if (total >= MAX_DEAL_AMOUNT) {
    throw refuse('ERR_AMOUNT_TOO_LARGE', `the deal would cost ${total} base units (${p.pricePerGiBDay} per GiB per day for ${p.pieceSize} bytes over ${p.end - p.start} s); less than ${MAX_DEAL_AMOUNT} is allowed`, { offered: total, max: MAX_DEAL_AMOUNT })
  }
  for (const key of ['providerCollateral', 'clientCollateral'] as const) {
    if (p[key] >= MAX_DEAL_AMOUNT) throw refuse('ERR_AMOUNT_TOO_LARGE', `${key} is ${p[key]} base units; less than ${MAX_DEAL_AMOUNT} is allowed`, { offered: p[key], max: MAX_DEAL_AMOUNT })
  }
}

function ceilDiv (a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b
}

/** Provider collateral the ask pledges for a piece: collateralPerGiB × GiB, rounded up. */
export function requiredCollateral (collateralPerGiB: bigint, pieceSize: bigint): bigint {
  return ceilDiv(collateralPerGiB * pieceSize, GiB)
}

/** docs/ledger.md: what one proven period earns: pricePerGiBDay × GiB × days, rounded down. */
export function periodPayment (p: Pick<Proposal, 'pricePerGiBDay' | 'pieceSize' | 'provingPeriod'>): bigint {
  return p.pricePerGiBDay * p.pieceSize * BigInt(p.provingPeriod) / (GiB * SECONDS_PER_DAY)
}

/** docs/ledger.md: what a failed or missed period charges the provider's collateral. */
export function faultFee (p: Pick<Proposal, 'pricePerGiBDay' | 'pieceSize' | 'provingPeriod'>): bigint {
  return FAULT_FEE_MULTIPLIER * periodPayment(p)
}

/** The whole deal's price at its rate over its duration, rounded down. */
export function dealPrice (p: Pick<Proposal, 'pricePerGiBDay' | 'pieceSize' | 'start' | 'end'>): bigint {
  return p.pricePerGiBDay * p.pieceSize * BigInt(p.end - p.start) / (GiB * SECONDS_PER_DAY)
}
