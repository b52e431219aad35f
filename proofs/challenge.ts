/**
 * Challenge leaf indices (docs/protocol.md "Proofs"):
 *
 *   i_k = uint256(SHA-256("cairn/challenge/v1" ‖ seed ‖ dealId bytes ‖ u64be(k))) mod leafCount
 *   leafCount = 2^height − floor((128·padding/127) / 32)
 *
 * so that leaves made only of padding are never challenged.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import type { CID } from 'multiformats/cid'
import { proofsError } from './errors.js'

export const CHALLENGE_DOMAIN = new TextEncoder().encode('cairn/challenge/v1')

export interface Challenge {
  /** the deal's id: its CID, or that CID's bytes */
  dealId: CID | Uint8Array
  /** 32 fresh random bytes chosen by the challenger */
  seed: Uint8Array
  /** number of leaves to challenge */
  count: number
}

/** Most leaves a proof index may address: indices stay exact JS numbers. */
export const MAX_PROVABLE_HEIGHT = 50

function dealIdBytes (dealId: CID | Uint8Array): Uint8Array {
  return dealId instanceof Uint8Array ? dealId : dealId.bytes
}

/** Leaves that hold payload (challengeable), per docs/protocol.md "Proofs". */
export function challengeLeafCount (height: number, padding: bigint): number {
  if (!Number.isInteger(height) || height < 0 || height > MAX_PROVABLE_HEIGHT) throw new RangeError(`piece height must be 0…${MAX_PROVABLE_HEIGHT}, got ${height}`)
  const count = (1n << BigInt(height)) - (128n * padding / 127n) / 32n
  return Number(count)
}

/** The leaf indices a challenge selects in a piece of the given height and padding. */
export function challengeIndices (challenge: Challenge, piece: { height: number, padding: bigint }): number[] {
  const { seed, count } = challenge
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw proofsError('ERR_PROOF_MALFORMED', `challenge seed must be 32 bytes, got ${(seed as Uint8Array | undefined)?.length}`)
  if (!Number.isSafeInteger(count) || count < 1) throw proofsError('ERR_PROOF_MALFORMED', `challenge count must be a positive integer, got ${count}`)
  const leafCount = BigInt(challengeLeafCount(piece.height, piece.padding))
  if (leafCount < 1n) throw proofsError('ERR_PROOF_MALFORMED', 'an empty piece has no leaf to challenge')
  const id = dealIdBytes(challenge.dealId)
  const message = new Uint8Array(CHALLENGE_DOMAIN.length + 32 + id.length + 8)
  message.set(CHALLENGE_DOMAIN, 0)
  message.set(seed, CHALLENGE_DOMAIN.length)
  message.set(id, CHALLENGE_DOMAIN.length + 32)
  const counter = new DataView(message.buffer, message.length - 8, 8)
  const indices: number[] = []
  for (let k = 0; k < count; k++) {
    counter.setBigUint64(0, BigInt(k), false)
    const digest = sha256(message)
    let value = 0n
    for (const byte of digest) value = (value << 8n) | BigInt(byte)
    indices.push(Number(value % leafCount))
  }
  return indices
}
