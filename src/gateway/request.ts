/**
 * Reading a Trustless Gateway request: the CID, the content path, the response
 * format negotiated from `Accept` and `?format=`, and the CAR parameters
 * (`dag-scope`, `entity-bytes`, `order`, `dups`), per the IPFS Trustless Gateway
 * specification and IPIP-0412 (CAR content type parameters).
 */
import { CID } from 'multiformats/cid'
import { bases } from 'multiformats/basics'
import type { MultibaseDecoder } from 'multiformats/bases/interface'
import { CairnError } from '../errors.js'

export const RAW = 'application/vnd.ipld.raw'
export const CAR = 'application/vnd.ipld.car'

export type DagScope = 'block' | 'entity' | 'all'

/** `entity-bytes=from:to` as written: negatives count from the end, `*` is end-of-file. */
export interface EntityBytes {
  from: number
  to: number | '*'
}

export type GatewayRequest = {
  cid: CID
  /** Decoded path segments after the CID. */
  path: string[]
} & ({ format: 'raw' } | {
  format: 'car'
  scope: DagScope
  entityBytes: EntityBytes | undefined
  /** `dups=y`: a block is sent every time the walk meets it. */
  dups: boolean
})

/** Every multibase multiformats knows, chosen by the prefix character. */
const decoder: MultibaseDecoder<string> = {
  decode (text: string): Uint8Array<ArrayBuffer> {
    const base = Object.values(bases).find((b) => b.prefix === text[0])
    if (base === undefined) throw new Error(`unknown multibase prefix ${text[0] ?? ''}`)
    return base.decoder.decode(text) as Uint8Array<ArrayBuffer>
  }
}

/** Parses a CID in any multibase (CIDv0 as `Qm…`), or ERR_INVALID_CID. */
export function parseCid (text: string): CID {
  try {
    return text.startsWith('Qm') ? CID.parse(text) : CID.parse(text, decoder)
  } catch {
    throw new CairnError('ERR_INVALID_CID', `not a valid CID: ${JSON.stringify(text.slice(0, 120))}`)
  }
}

interface MediaRange { type: string, params: Record<string, string>, q: number }

function parseAccept (header: string): MediaRange[] {
  const ranges: MediaRange[] = []
  for (const item of header.split(',')) {
    const [type, ...rest] = item.split(';').map((s) => s.trim())
    if (type === undefined || type === '') continue
    const params: Record<string, string> = {}
    let q = 1
    for (const p of rest) {
      const eq = p.indexOf('=')
      if (eq < 0) continue
      const name = p.slice(0, eq).trim().toLowerCase()
      const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1')
      if (name === 'q') q = Number(value)
      else params[name] = value.toLowerCase()
    }
    if (Number.isFinite(q) && q > 0) ranges.push({ type: type.toLowerCase(), params, q })
  }
  // stable: equal q keeps the client's order
  return ranges.map((r, i) => ({ r, i })).sort((a, b) => b.r.q - a.r.q || a.i - b.i).map(({ r }) => r)
}

interface CarParams { version?: string, order?: string, dups?: string }

/** Whether this gateway can produce a CAR with these parameters (CARv1, DFS order). */
function carParamsSupported (p: CarParams): boolean {
  return (p.version === undefined || p.version === '1') &&
    (p.order === undefined || p.order === 'dfs' || p.order === 'unk') &&
    (p.dups === undefined || p.dups === 'y' || p.dups === 'n')
}

/** Formats a full gateway knows but a trustless one does not serve. */
const deserializedFormats = new Set(['dag-json', 'dag-cbor', 'json', 'cbor', 'tar', 'ipns-record'])

interface Negotiated { format: 'raw' | 'car', car: CarParams }

function negotiate (accept: string | undefined, query: URLSearchParams): Negotiated {
  let fromAccept: Negotiated | undefined
  let sawAny = false
  let sawWildcard = false
  if (accept !== undefined && accept.trim() !== '') {
    for (const range of parseAccept(accept)) {
      sawAny = true
      if (range.type === RAW) { fromAccept = { format: 'raw', car: {} }; break }
      if (range.type === CAR) {
        const car = { version: range.params.version, order: range.params.order, dups: range.params.dups }
        if (carParamsSupported(car)) { fromAccept = { format: 'car', car }; break }
        continue
      }
      if (range.type === '*/*' || range.type === 'application/*') sawWildcard = true
    }
  }
  const carQuery: CarParams = {
    version: query.get('car-version') ?? undefined,
    order: query.get('car-order') ?? undefined,
    dups: query.get('car-dups') ?? undefined
  }
  const format = query.get('format')
  // the spec: when both are present, `format` takes precedence
  if (format !== null) {
    if (format === 'raw') return { format: 'raw', car: {} }
    if (format === 'car') {
      const car = { ...(fromAccept?.format === 'car' ? fromAccept.car : {}) }
      for (const [k, v] of Object.entries(carQuery)) if (v !== undefined) car[k as keyof CarParams] = v
      if (!carParamsSupported(car)) throw new CairnError('ERR_NOT_ACCEPTABLE', `unsupported CAR parameters ${JSON.stringify(car)}; this gateway writes version=1, order=dfs, dups=y|n`)
      return { format: 'car', car }
    }
    if (deserializedFormats.has(format)) throw new CairnError('ERR_NOT_ACCEPTABLE', `format=${format} is not served by a trustless gateway; use format=raw or format=car`)
    throw new CairnError('ERR_INVALID_ARGUMENT', `unknown format ${JSON.stringify(format)}; expected raw or car`)
  }
  if (fromAccept !== undefined) {
    if (fromAccept.format === 'car') {
      const car = { ...fromAccept.car }
      for (const [k, v] of Object.entries(carQuery)) if (v !== undefined) car[k as keyof CarParams] = v
      if (!carParamsSupported(car)) throw new CairnError('ERR_NOT_ACCEPTABLE', `unsupported CAR parameters ${JSON.stringify(car)}`)
      return { format: 'car', car }
    }
    return fromAccept
  }
  if (sawAny && !sawWildcard) {
    throw new CairnError('ERR_NOT_ACCEPTABLE', `cannot answer Accept: ${accept}; this trustless gateway serves ${RAW} and ${CAR}; version=1; order=dfs; dups=y|n`)
  }
  // the spec: a strict trustless gateway SHOULD answer 400 when no response type is asked for
  throw new CairnError('ERR_BAD_REQUEST', `ask for ${RAW} or ${CAR} (Accept header or ?format=raw|car)`)
}

function parseEntityBytes (text: string): EntityBytes {
  const m = /^(-?\d{1,16}):(-?\d{1,16}|\*)$/.exec(text)
  if (m === null) throw new CairnError('ERR_INVALID_ARGUMENT', `entity-bytes must be from:to with integers or * (e.g. 0:1023, -1024:*), got ${JSON.stringify(text)}`)
  const from = Number(m[1])
  const to = m[2] === '*' ? '*' : Number(m[2])
  if (to !== '*' && from >= 0 && to >= 0 && from > to) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `entity-bytes range ${text} ends before it starts`)
  }
  return { from, to }
}

/** Reads `/ipfs/{cid}[/path]` and its negotiation into a request, or a coded 4xx. */
export function parseGatewayRequest (cidText: string, rest: string, accept: string | undefined, query: URLSearchParams): GatewayRequest {
  let decodedCid: string
  let path: string[]
  try {
    decodedCid = decodeURIComponent(cidText)
    path = rest.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s))
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', 'content path is not valid percent-encoding')
  }
  const cid = parseCid(decodedCid)
  const negotiated = negotiate(accept, query)
  if (negotiated.format === 'raw') {
    if (path.length > 0) throw new CairnError('ERR_INVALID_ARGUMENT', 'raw block requests take only /ipfs/{cid}; ask for a CAR to resolve a path')
    return { cid, path, format: 'raw' }
  }
  const scopeText = query.get('dag-scope') ?? 'all'
  if (scopeText !== 'block' && scopeText !== 'entity' && scopeText !== 'all') {
    throw new CairnError('ERR_INVALID_ARGUMENT', `dag-scope must be block, entity or all, got ${JSON.stringify(scopeText)}`)
  }
  const bytesText = query.get('entity-bytes')
  const entityBytes = bytesText === null ? undefined : parseEntityBytes(bytesText)
  return {
    cid,
    path,
    format: 'car',
    // the spec: entity-bytes implies dag-scope=entity
    scope: entityBytes !== undefined ? 'entity' : scopeText,
    entityBytes,
    dups: negotiated.car.dups === 'y'
  }
}
