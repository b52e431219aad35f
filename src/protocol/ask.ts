/** The provider's signed ask (docs/protocol.md). */
import { CairnError } from '../errors.js'
import type { Ask, SignedAsk } from './interface.js'
import { sign, Tag, verifySigned, type Signed, type Signer } from './signing.js'
import { did, httpUrl, record, u64, uint } from './validate.js'

const FIELDS = ['provider', 'endpoint', 'pricePerGiBDay', 'collateralPerGiB', 'minPieceSize', 'maxPieceSize', 'freeCapacity', 'maxDuration', 'provingPeriod', 'challenges', 'seq', 'expiry'] as const
/** `payee`: the Ethereum address a PDP client's signed CreateDataSet names (docs/pdp.md); only providers that set one announce it. */
const OPTIONAL = ['payee'] as const

function ethAddress (value: unknown, label: string): string {
  if (typeof value !== 'string' || !/^0x[0-9a-f]{40}$/.test(value)) {
    throw new CairnError('ERR_INVALID_MESSAGE', `${label}: expected a lower-case 0x-prefixed 20-byte hex address, got ${JSON.stringify(String(value).slice(0, 60))}`)
  }
  return value
}

/** Checks and normalises an ask read from outside. */
export function askFrom (value: unknown): Ask {
  const m = record(value, 'ask', FIELDS, OPTIONAL)
  const ask: Ask = {
    provider: did(m.provider, 'ask.provider'),
    endpoint: httpUrl(m.endpoint, 'ask.endpoint'),
    pricePerGiBDay: u64(m.pricePerGiBDay, 'ask.pricePerGiBDay'),
    collateralPerGiB: u64(m.collateralPerGiB, 'ask.collateralPerGiB'),
    minPieceSize: u64(m.minPieceSize, 'ask.minPieceSize'),
    maxPieceSize: u64(m.maxPieceSize, 'ask.maxPieceSize'),
    freeCapacity: u64(m.freeCapacity, 'ask.freeCapacity'),
    maxDuration: uint(m.maxDuration, 'ask.maxDuration', 1),
    provingPeriod: uint(m.provingPeriod, 'ask.provingPeriod', 1),
    challenges: uint(m.challenges, 'ask.challenges', 1),
    seq: uint(m.seq, 'ask.seq'),
    expiry: uint(m.expiry, 'ask.expiry')
  }
  if (m.payee !== undefined) ask.payee = ethAddress(m.payee, 'ask.payee')
  if (ask.minPieceSize > ask.maxPieceSize) {
    throw new CairnError('ERR_INVALID_MESSAGE', `ask: minPieceSize ${ask.minPieceSize} bytes exceeds maxPieceSize ${ask.maxPieceSize} bytes`)
  }
  return ask
}

export function signAsk (signer: Signer, ask: Ask): SignedAsk {
  const checked = askFrom(ask)
  if (checked.provider !== signer.did) throw new TypeError(`an ask for ${checked.provider} cannot be signed by ${signer.did}`)
  return sign(signer, Tag.ask, checked)
}

/** Validates an envelope's payload as an ask signed by its own provider. */
export function verifyAsk (envelope: Signed<unknown>): SignedAsk {
  const payload = askFrom(envelope.payload)
  return verifySigned(Tag.ask, { payload, signer: envelope.signer, signature: envelope.signature }, payload.provider)
}
