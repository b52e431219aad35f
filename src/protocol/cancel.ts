/**
 * A client's signed cancellation of a deal not yet active (deal-cancel/v1,
 * docs/protocol.md "Cancelling a deal"): `{dealId, at, head}` signed by the
 * deal's client. The provider frees the deal's reservation and records the
 * message; a cancellation by anyone else is ERR_UNAUTHORIZED.
 */
import { CairnError } from '../errors.js'
import type { Cancellation, SignedCancellation } from './interface.js'
import { parseDealId } from './proposal.js'
import { sign, signingBytes, Tag, verifyByDid, type Signer } from './signing.js'
import { ledgerHead, record, uint } from './validate.js'

export function cancellationFrom (value: unknown): Cancellation {
  const m = record(value, 'cancellation', ['dealId', 'at', 'head'])
  return { dealId: parseDealId(m.dealId, 'cancellation.dealId'), at: uint(m.at, 'cancellation.at'), head: ledgerHead(m.head, 'cancellation.head') }
}

export function signCancellation (client: Signer, cancellation: Cancellation): SignedCancellation {
  return sign(client, Tag.cancel, cancellationFrom(cancellation))
}

/** A cancellation body as the provider receives it, signed by `client` (the deal's), or a coded refusal. */
export function verifyCancellation (body: unknown, client: string): SignedCancellation {
  const m = record(body, 'signed cancellation', ['payload', 'signer', 'signature'])
  const payload = cancellationFrom(m.payload)
  let good = false
  try {
    good = m.signer === client && m.signature instanceof Uint8Array && verifyByDid(client, signingBytes(Tag.cancel, payload), m.signature)
  } catch {}
  if (!good) throw new CairnError('ERR_UNAUTHORIZED', `deal ${payload.dealId.toString()} can be cancelled only by its client ${client}, with its signature`)
  return { payload, signer: client, signature: m.signature as Uint8Array }
}
