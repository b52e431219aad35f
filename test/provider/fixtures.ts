/**
 * Shared helpers for provider and gateway tests: UnixFS DAGs built with the
 * reference importer (ipfs-unixfs-importer) into an in-memory block map, a
 * provider server on 127.0.0.1:0 with in-memory stand-ins for its services,
 * and a raw-socket client for requests `fetch` refuses to send.
 */
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { importer, type ImportCandidate, type ImporterOptions } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import * as dagPB from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { randomBytes } from 'node:crypto'
import { pieceCidV2, pieceOf } from '../../proofs/index.js'
import { CairnError } from '../../src/errors.js'
import { encodeFrame, encodeHeader } from '../../src/car/index.js'
import type { Proposal } from '../../src/protocol/interface.js'
import { providerTerms, type ProviderTerms } from '../../src/provider/terms.js'
import type { BlockSource, DealService, PieceSource, UploadRequest } from '../../src/provider/interface.js'
import { createProviderServer, type HttpService, type ServerLimits } from '../../src/provider/server.js'

export class MemoryBlocks implements BlockSource {
  readonly map = new Map<string, Uint8Array>()
  readonly gets: string[] = []
  async get (cid: CID): Promise<Uint8Array | undefined> {
    this.gets.push(cid.toString())
    return this.map.get(cid.toString())
  }

  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    this.map.set(cid.toString(), bytes)
    return cid
  }
}

export interface ImportShape { chunkSize?: number, maxLinks?: number, shardSplitThresholdBytes?: number, shardFanoutBits?: number, rawLeaves?: boolean, cidVersion?: 0 | 1 }

export async function importInto (blocks: MemoryBlocks, candidates: ImportCandidate[], shape: ImportShape = {}, wrap = false): Promise<CID> {
  const options: ImporterOptions = {
    cidVersion: shape.cidVersion ?? 1,
    rawLeaves: shape.rawLeaves ?? true,
    chunker: fixedSize({ chunkSize: shape.chunkSize ?? 1024 }),
    layout: balanced({ maxChildrenPerNode: shape.maxLinks ?? 174 }),
    shardSplitThresholdBytes: shape.shardSplitThresholdBytes ?? 262144,
    shardFanoutBits: shape.shardFanoutBits ?? 8,
    wrapWithDirectory: wrap
  }
  let root: CID | undefined
  const store = { put: async (cid: CID, bytes: Uint8Array) => await blocks.put(cid, bytes) }
  for await (const entry of importer(candidates, store as unknown as Parameters<typeof importer>[1], options)) root = entry.cid
  if (root === undefined) throw new Error('importer produced nothing')
  return root
}

/** Deterministic pseudo-random bytes (xorshift), so fixtures are the same every run. */
export function bytesOf (length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed | 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** A DealService stand-in: deals are ids in a map; uploads are read to the end and checked by length. */
export class FakeDeals implements DealService {
  readonly deals = new Map<string, { state: string, size: number, received?: number }>()
  uploads: UploadRequest[] = []
  /** When set, upload resolves only after this promise does (to test aborts). */
  hold: Promise<void> | undefined

  async ask (): Promise<object> { return { provider: 'did:key:z6MkFake', pricePerGiBDay: 40n } }

  async propose (body: unknown): Promise<object> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new CairnError('ERR_INVALID_ARGUMENT', 'proposal must be an object')
    const known = new Set(['pieceCid', 'payloadSize', 'price'])
    for (const key of Object.keys(body)) if (!known.has(key)) throw new CairnError('ERR_UNKNOWN_FIELD', `unknown field ${key}`)
    const { payloadSize, price } = body as { payloadSize?: unknown, price?: unknown }
    if (typeof price === 'number' && price < 40) throw new CairnError('ERR_PERMISSION_DENIED', `offered ${price} per GiB per day, provider asks at least 40`)
    const id = CID.parse('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').toString()
    this.deals.set(id, { state: 'accepted', size: Number(payloadSize ?? 0) })
    return { dealId: id, state: 'accepted' }
  }

  async upload (request: UploadRequest): Promise<object> {
    const deal = this.deals.get(request.dealId)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${request.dealId}`)
    if (request.contentLength !== deal.size) throw new CairnError('ERR_CONTENT_LENGTH', `Content-Length ${request.contentLength} is not the deal's payloadSize ${deal.size}`)
    this.uploads.push(request)
    let received = 0
    for await (const chunk of request.body as AsyncIterable<Buffer>) received += chunk.length
    if (this.hold !== undefined) await this.hold
    request.signal.throwIfAborted()
    deal.received = received
    deal.state = 'active'
    return { dealId: request.dealId, state: 'active', bytes: received }
  }

  async status (dealId: string): Promise<object> {
    const deal = this.deals.get(dealId)
    if (deal === undefined) throw new CairnError('ERR_DEAL_NOT_FOUND', `no deal ${dealId}`)
    return { dealId, state: deal.state }
  }
}

export class MemoryPieces implements PieceSource {
  readonly map = new Map<string, Uint8Array>()
  async open (pieceCid: CID): Promise<{ size: number, createReadStream: (start: number, end: number) => Readable } | undefined> {
    const bytes = this.map.get(pieceCid.toString())
    if (bytes === undefined) return undefined
    return { size: bytes.length, createReadStream: (start, end) => Readable.from([Buffer.from(bytes.subarray(start, end + 1))]) }
  }
}

export interface Running {
  url: string
  service: HttpService
  deals: FakeDeals
  blocks: MemoryBlocks
  pieces: MemoryPieces
  logs: Array<{ event: string, fields?: Record<string, unknown> }>
}

export async function startProvider (limits: Partial<ServerLimits> = {}, parts: Partial<Pick<Running, 'deals' | 'blocks' | 'pieces'>> = {}): Promise<Running> {
  const deals = parts.deals ?? new FakeDeals()
  const blocks = parts.blocks ?? new MemoryBlocks()
  const pieces = parts.pieces ?? new MemoryPieces()
  const logs: Running['logs'] = []
  const service = createProviderServer({
    deals,
    blocks,
    pieces,
    limits,
    log: (event, fields) => { logs.push({ event, fields }) },
    gauges: async () => ({ dealsByState: { active: [...deals.deals.values()].filter((d) => d.state === 'active').length }, bytesStored: 1234 })
  })
  const url = await service.listen('127.0.0.1', 0)
  return { url, service, deals, blocks, pieces, logs }
}

export interface RawResponse { status: number, headers: string, body: string }

/**
 * Sends bytes as they are on a fresh socket and reads until the server closes
 * (or `timeoutMs`), for malformed requests fetch will not send.
 */
export async function rawRequest (url: string, chunks: Array<string | Uint8Array | { pauseMs: number }>, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  return await new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let data = ''
    const timer = setTimeout(() => { socket.destroy(); finish() }, timeoutMs)
    const finish = (): void => {
      clearTimeout(timer)
      const split = data.indexOf('\r\n\r\n')
      const head = split < 0 ? data : data.slice(0, split)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
      resolve({ status, headers: head, body: split < 0 ? '' : data.slice(split + 4) })
    }
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { data += d })
    socket.on('error', () => {})
    socket.on('close', finish)
    socket.on('connect', () => {
      void (async () => {
        for (const chunk of chunks) {
          if (typeof chunk === 'object' && 'pauseMs' in chunk) await new Promise((resolve) => setTimeout(resolve, chunk.pauseMs))
          else if (!socket.destroyed) socket.write(chunk)
        }
      })().catch(reject)
    })
  })
}

/**
 * The Filecoin-deterministic CAR of a DAG held in memory (DFS first-seen order,
 * no duplicates), its block order and its piece: what a client uploads in a deal.
 */
export async function dfsPiece (root: CID, blocks: MemoryBlocks): Promise<{ car: Uint8Array, order: string[], pieceCid: CID, pieceSize: bigint }> {
  const parts: Uint8Array[] = [encodeHeader([root])]
  const order: string[] = []
  const seen = new Set<string>()
  const visit = (cid: CID): void => {
    const key = cid.toString()
    if (seen.has(key)) return
    seen.add(key)
    order.push(key)
    const bytes = blocks.map.get(key)
    if (bytes === undefined) throw new Error(`no block ${key}`)
    parts.push(encodeFrame(cid, bytes))
    if (cid.code === dagPB.code) for (const link of dagPB.decode(bytes).Links) visit(link.Hash)
  }
  visit(root)
  const car = new Uint8Array(Buffer.concat(parts))
  const piece = await pieceOf(car)
  return { car, order, pieceCid: piece.cid, pieceSize: piece.paddedSize }
}

/** Provider terms the in-process test providers run with. */
export function testTerms (overrides: Partial<ProviderTerms> = {}): ProviderTerms {
  return providerTerms({ maxPieceSize: 1n << 30n, capacity: 1n << 32n, maxDuration: 400 * 86400, provingPeriod: 3600, ...overrides })
}

/** A piece CID v2 of `paddedSize` bytes (a power of two) with a random root: proposals need no data. */
export function pieceOfSize (paddedSize: bigint): { pieceCid: CID, pieceSize: bigint, payloadSize: bigint } {
  const height = paddedSize.toString(2).length - 1 - 5
  return { pieceCid: pieceCidV2(new Uint8Array(randomBytes(32)), height, 0n), pieceSize: paddedSize, payloadSize: paddedSize / 128n * 127n }
}

/** A proposal for a made-up piece of `size` padded bytes (a provider accepts it without data), starting in 10 minutes. */
export function proposalOfSize (client: string, provider: string, size: bigint, nonce: bigint, overrides: Partial<Proposal> = {}): Proposal {
  const now = Math.floor(Date.now() / 1000)
  return {
    ...pieceOfSize(size),
    payloadCid: CID.parse('bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'),
    client,
    provider,
    label: '',
    start: now + 600,
    end: now + 600 + 86400,
    pricePerGiBDay: 40n,
    providerCollateral: 0n,
    clientCollateral: 0n,
    provingPeriod: 3600,
    challenges: 16,
    nonce,
    head: null,
    ...overrides
  }
}
