/** Keys, asks and proposals for the deal tests; piece CIDs come from @web3-storage/data-segment. */
import { randomBytes } from 'node:crypto'
import { Piece } from '@web3-storage/data-segment'
import { CID } from 'multiformats/cid'
import type { Ask, Proposal } from '../../src/protocol/interface.js'
import { createSigner, type Signer } from '../../src/protocol/signing.js'

export const NOW = 1_750_000_000
export const DAY = 86_400

export function newSigner (): Signer {
  return createSigner(randomBytes(32))
}

/** Piece of a 1000-byte payload: 1024 bytes padded. */
export const piece = Piece.fromPayload(new Uint8Array(1000).fill(7))
export const pieceCid = CID.parse(piece.link.toString())
export const payloadCid = CID.parse('bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')

export function askFor (provider: Signer, overrides: Partial<Ask> = {}): Ask {
  return {
    provider: provider.did,
    endpoint: 'http://127.0.0.1:7470',
    pricePerGiBDay: 40n,
    collateralPerGiB: 1n << 30n,
    minPieceSize: 128n,
    maxPieceSize: 1n << 36n,
    freeCapacity: 1n << 40n,
    maxDuration: 540 * DAY,
    provingPeriod: DAY,
    challenges: 16,
    seq: 1,
    expiry: NOW + 3600,
    ...overrides
  }
}

export function proposalFor (client: Signer, provider: Signer, overrides: Partial<Proposal> = {}): Proposal {
  return {
    pieceCid,
    pieceSize: 1024n,
    payloadCid,
    payloadSize: 1000n,
    client: client.did,
    provider: provider.did,
    label: 'photos 2024',
    start: NOW + 60,
    end: NOW + 60 + 180 * DAY,
    pricePerGiBDay: 40n,
    // 1024 bytes at 2^30 per GiB
    providerCollateral: 1024n,
    clientCollateral: 0n,
    provingPeriod: DAY,
    challenges: 16,
    nonce: 1n,
    ...overrides
  }
}
