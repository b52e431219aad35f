/**
 * The client's signed deal proposal and the deal id: the CID (dag-cbor,
 * sha2-256) of the signed proposal envelope (docs/protocol.md), so the same signed
 * proposal always names the same deal and any change names another.
 */
import { createHash } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { DAG_CBOR, SHA2_256 } from '../codecs.js'
import { CairnError } from '../errors.js'
import type { Proposal, SignedProposal } from './interface.js'
import { pieceCidInfo } from './piece-cid.js'
import { sign, Tag, verifySigned, type Signed, type Signer } from './signing.js'
import { cid, did, ledgerHead, record, text, u64, uint } from './validate.js'

const FIELDS = ['pieceCid', 'pieceSize', 'payloadCid', 'payloadSize', 'client', 'provider', 'label', 'start', 'end', 'pricePerGiBDay', 'providerCollateral', 'clientCollateral', 'provingPeriod', 'challenges', 'nonce'] as const

/**
 * Checks and normalises a proposal read from outside. Shape only: the rules a
 * provider applies (sizes against its ask, label length, times) are in rules.ts
 * so that each refusal carries its own code.
 */
export function proposalFrom (value: unknown): Proposal {
  const m = record(value, 'proposal', FIELDS, ['head'])
  const proposal: Proposal = {
    pieceCid: cid(m.pieceCid, 'proposal.pieceCid'),
    pieceSize: u64(m.pieceSize, 'proposal.pieceSize'),
    payloadCid: cid(m.payloadCid, 'proposal.payloadCid'),
    payloadSize: u64(m.payloadSize, 'proposal.payloadSize'),
    client: did(m.client, 'proposal.client'),
    provider: did(m.provider, 'proposal.provider'),
    label: text(m.label, 'proposal.label'),
    start: uint(m.start, 'proposal.start'),
    end: uint(m.end, 'proposal.end'),
    pricePerGiBDay: u64(m.pricePerGiBDay, 'proposal.pricePerGiBDay'),
    providerCollateral: u64(m.providerCollateral, 'proposal.providerCollateral'),
    clientCollateral: u64(m.clientCollateral, 'proposal.clientCollateral'),
    provingPeriod: uint(m.provingPeriod, 'proposal.provingPeriod', 1),
    challenges: uint(m.challenges, 'proposal.challenges', 1),
    nonce: u64(m.nonce, 'proposal.nonce')
  }
  if (m.head !== undefined) proposal.head = ledgerHead(m.head, 'proposal.head')
  pieceCidInfo(proposal.pieceCid, 'proposal.pieceCid')
  if (proposal.end <= proposal.start) {
    throw new CairnError('ERR_INVALID_MESSAGE', `proposal: end ${proposal.end} must be after start ${proposal.start} (unix seconds)`)
  }
  return proposal
}

export function signProposal (signer: Signer, proposal: Proposal): SignedProposal {
  const checked = proposalFrom(proposal)
  if (checked.client !== signer.did) throw new TypeError(`a proposal from ${checked.client} cannot be signed by ${signer.did}`)
  return sign(signer, proposalTag(checked), checked)
}

/** v2 carries the client's ledger head; a v1 proposal (recorded before heads were witnessed) has none. */
function proposalTag (p: Proposal): typeof Tag.proposal | typeof Tag.proposalV2 {
  return p.head === undefined ? Tag.proposal : Tag.proposalV2
}

/** Validates an envelope's payload as a proposal signed by its own client. */
export function verifyProposal (envelope: Signed<unknown>): SignedProposal {
  const payload = proposalFrom(envelope.payload)
  return verifySigned(proposalTag(payload), { payload, signer: envelope.signer, signature: envelope.signature }, payload.client)
}

/** The deal id: CID (dag-cbor, sha2-256) of DAG-CBOR({payload, signer, signature}). */
export function dealIdOf (signed: SignedProposal): CID {
  const bytes = dagCbor.encode({ payload: signed.payload, signer: signed.signer, signature: signed.signature })
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(DAG_CBOR, createDigest(SHA2_256, new Uint8Array(digest)))
}

/** A deal id from user input or the wire: a CIDv1, dag-cbor, sha2-256. */
export function parseDealId (value: unknown, label = 'deal id'): CID {
  let id: CID
  try {
    id = cid(value, label)
  } catch {
    throw new CairnError('ERR_INVALID_CID', `${label}: expected a deal id (a bafy… CID), found ${JSON.stringify(String(value))}`)
  }
  if (id.version !== 1 || id.code !== DAG_CBOR || id.multihash.code !== SHA2_256 || id.multihash.size !== 32) {
    throw new CairnError('ERR_INVALID_CID', `${label}: a deal id is a CIDv1 with the dag-cbor codec and sha2-256, found ${id.toString()}`)
  }
  return id
}
