/** The provider's signed acceptance and deal status messages (docs/protocol.md). */
import type { Acceptance, DealStatus, SignedAcceptance, SignedDealStatus } from './interface.js'
import { sign, Tag, verifySigned, type Signed, type Signer } from './signing.js'
import { DEAL_STATES } from './state.js'
import { cid, did, ledgerHead, oneOf, record, uint } from './validate.js'
import { parseDealId } from './proposal.js'

export function acceptanceFrom (value: unknown): Acceptance {
  const m = record(value, 'acceptance', ['dealId', 'client', 'provider', 'pieceCid', 'acceptedAt'], ['uploadBy', 'head'])
  const acceptance: Acceptance = {
    dealId: parseDealId(m.dealId, 'acceptance.dealId'),
    client: did(m.client, 'acceptance.client'),
    provider: did(m.provider, 'acceptance.provider'),
    pieceCid: cid(m.pieceCid, 'acceptance.pieceCid'),
    acceptedAt: uint(m.acceptedAt, 'acceptance.acceptedAt')
  }
  // v2: both or neither
  if (m.head !== undefined || m.uploadBy !== undefined) {
    acceptance.uploadBy = uint(m.uploadBy, 'acceptance.uploadBy')
    acceptance.head = ledgerHead(m.head, 'acceptance.head')
  }
  return acceptance
}

function acceptanceTag (a: Acceptance): typeof Tag.acceptance | typeof Tag.acceptanceV2 {
  return a.head === undefined ? Tag.acceptance : Tag.acceptanceV2
}

export function signAcceptance (signer: Signer, acceptance: Acceptance): SignedAcceptance {
  const checked = acceptanceFrom(acceptance)
  if (checked.provider !== signer.did) throw new TypeError(`an acceptance by ${checked.provider} cannot be signed by ${signer.did}`)
  return sign(signer, acceptanceTag(checked), checked)
}

/** Validates an acceptance signed by `provider` (the one the proposal named). */
export function verifyAcceptance (envelope: Signed<unknown>, provider: string): SignedAcceptance {
  const payload = acceptanceFrom(envelope.payload)
  return verifySigned(acceptanceTag(payload), { payload, signer: envelope.signer, signature: envelope.signature }, provider)
}

export function dealStatusFrom (value: unknown): DealStatus {
  const m = record(value, 'deal status', ['dealId', 'provider', 'state', 'at'])
  return {
    dealId: parseDealId(m.dealId, 'status.dealId'),
    provider: did(m.provider, 'status.provider'),
    state: oneOf(m.state, 'status.state', DEAL_STATES),
    at: uint(m.at, 'status.at')
  }
}

export function signDealStatus (signer: Signer, status: DealStatus): SignedDealStatus {
  const checked = dealStatusFrom(status)
  if (checked.provider !== signer.did) throw new TypeError(`a status by ${checked.provider} cannot be signed by ${signer.did}`)
  return sign(signer, Tag.status, checked)
}

export function verifyDealStatus (envelope: Signed<unknown>, provider: string): SignedDealStatus {
  const payload = dealStatusFrom(envelope.payload)
  return verifySigned(Tag.status, { payload, signer: envelope.signer, signature: envelope.signature }, provider)
}
