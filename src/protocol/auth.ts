/**
 * The client's signature on a piece upload (docs/protocol.md "Upload": only the
 * proposing client may upload). The request carries
 * `Authorization: Cairn <base64url signature>` over the domain-tagged
 * DAG-CBOR of `{deal}`, made with the key of the proposal's client.
 */
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { sign, Tag, verifySigned, type Signer } from './signing.js'

export const UPLOAD_SCHEME = 'Cairn'

/** The `Authorization` header value a client sends with `PUT /v1/deals/{id}/piece`. */
export function uploadAuthorization (client: Signer, dealId: CID | string): string {
  const deal = typeof dealId === 'string' ? CID.parse(dealId) : dealId
  const signed = sign(client, Tag.upload, { deal })
  return `${UPLOAD_SCHEME} ${Buffer.from(signed.signature).toString('base64url')}`
}

/** Checks an upload's `Authorization` header against the deal's client, or ERR_UNAUTHORIZED. */
export function verifyUploadAuthorization (header: string | undefined, client: string, dealId: CID): void {
  const m = /^Cairn ([A-Za-z0-9_-]{80,90})$/.exec(header?.trim() ?? '')
  if (m === null) throw new CairnError('ERR_UNAUTHORIZED', 'a piece upload must carry `Authorization: Cairn <signature>` made with the proposing client\'s key')
  const signature = new Uint8Array(Buffer.from(m[1] as string, 'base64url'))
  try {
    verifySigned(Tag.upload, { payload: { deal: dealId }, signer: client, signature }, client)
  } catch {
    throw new CairnError('ERR_UNAUTHORIZED', `the upload signature is not ${client}'s signature for deal ${dealId.toString()}`)
  }
}
