/**
 * The self-check's synthetic round trip (docs/monitoring.md "Provider
 * self-check"): the provider stores a small synthetic piece through its own
 * public ingest path, as a PDP client would (`POST /pdp/piece`, then
 * `PUT /pdp/piece/upload/{id}`, docs/pdp.md), fetches it back over HTTP on its
 * own listener through `/ipfs/{cid}` and `/piece/{pieceCid}`, compares the
 * bytes, proves it and verifies the proof, and then removes it.
 *
 * The PDP ingest path rather than a deal with itself: a deal is a signed,
 * hash-chained ledger entry that can never be taken back and would count in
 * `provider deals`, capacity and earnings. A parked PDP piece is none of these
 * — it sits in the PDP store under the park quota, is served by the same
 * `/piece` and `/ipfs` routes, and is removed here as soon as the round is
 * over (or by the park sweep, should that removal fail).
 *
 * Figures are those Filecoin's retrieval checks report (e.g. Spark's
 * time-to-first-byte): ingest ms (announce to upload answered), and per route
 * first-byte ms (request sent to the first body byte) and last-byte ms
 * (request sent to the body's end).
 */
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import { pieceOf, verifyPieceProof } from '../../proofs/index.js'
import { encodeFrame, encodeHeader } from '../car/index.js'
import type { PieceProver } from './proofs.js'

export type RoundTripStep = 'ingest' | 'ipfs' | 'piece' | 'prove' | 'cleanup'

export interface Fetched {
  firstByteMs: number
  lastByteMs: number
}

export interface RoundTripReport {
  ok: boolean
  /** payload bytes of the synthetic block */
  bytes: number
  pieceCid?: string
  /** the synthetic block's CID, fetched from /ipfs */
  cid?: string
  ingestMs?: number
  ipfs?: Fetched
  piece?: Fetched
  proveMs?: number
  /** the step that failed, its code and message */
  step?: RoundTripStep
  code?: string
  message?: string
}

export interface RoundTripTarget {
  /** the provider's own listener (`http://host:port`) */
  url: string
  /** proves pieces of the store the ingest path writes to */
  prover: PieceProver
  /** removes the synthetic piece once the round is over */
  discard: (pieceCid: string) => Promise<void>
  /** payload bytes (default 4 KiB) */
  bytes?: number
  /** the whole round trip's budget (default 30 s) */
  timeoutMs?: number
  /** test seam: runs once the piece is stored, before it is fetched */
  afterIngest?: (pieceCid: string) => Promise<void>
}

export const DEFAULT_ROUND_TRIP_BYTES = 4096
const DEFAULT_ROUND_TRIP_TIMEOUT_MS = 30_000
const PROVE_CHALLENGES = 16

/** A failure of one step, with the code the provider answered or the check found. */
class StepError extends Error {
  constructor (readonly step: RoundTripStep, readonly code: string, message: string) {
    super(message)
  }
}

function ms (since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000
}

/** The synthetic piece: a CARv1 of one raw block of random bytes (random, so no round finds the last one's piece held). */
async function synthetic (size: number): Promise<{ cid: CID, block: Uint8Array, car: Uint8Array, pieceCid: string }> {
  const block = new Uint8Array(randomBytes(size))
  const cid = CID.createV1(raw.code, await sha256.digest(block))
  const car = Buffer.concat([encodeHeader([cid]), encodeFrame(cid, block)])
  const piece = await pieceOf(car)
  return { cid, block, car: new Uint8Array(car), pieceCid: piece.cid.toString() }
}

/** The coded error a non-2xx answer carries (`{error: {code, message}}`), or one made of its status. */
async function answerError (step: RoundTripStep, res: Response): Promise<StepError> {
  const text = await res.text().catch(() => '')
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown, message?: unknown } }
    if (typeof body.error?.code === 'string') return new StepError(step, body.error.code, `HTTP ${res.status}: ${String(body.error.message)}`)
  } catch {}
  return new StepError(step, res.status === 404 ? 'ERR_NOT_FOUND' : 'ERR_INTERNAL', `HTTP ${res.status} ${text.slice(0, 200)}`)
}

async function request (step: RoundTripStep, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init)
  } catch (err) {
    const name = (err as Error).name
    if (name === 'TimeoutError' || name === 'AbortError') throw new StepError(step, 'ERR_TIMEOUT', `${url}: no answer within the round trip's budget`)
    throw new StepError(step, 'ERR_UNREACHABLE', `${url}: ${(err as Error).message}`)
  }
}

/** GETs `url`, timing the first and the last body byte, and checks the body is `expected` (else `mismatch`). */
async function fetchBack (step: 'ipfs' | 'piece', url: string, accept: string, expected: Uint8Array, mismatch: string, signal: AbortSignal): Promise<Fetched> {
  const started = performance.now()
  const res = await request(step, url, { headers: { Accept: accept }, signal })
  if (res.status !== 200 || res.body === null) throw await answerError(step, res)
  let firstByteMs: number | undefined
  const chunks: Uint8Array[] = []
  let length = 0
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      firstByteMs ??= ms(started)
      length += chunk.length
      // never hold more than the piece: a longer body is already a mismatch
      if (length > expected.length) break
      chunks.push(chunk)
    }
  } catch (err) {
    throw new StepError(step, 'ERR_UNREACHABLE', `${url}: the body broke off: ${(err as Error).message}`)
  }
  const lastByteMs = ms(started)
  if (length !== expected.length || !Buffer.concat(chunks).equals(expected)) {
    throw new StepError(step, mismatch, `${url}: ${length > expected.length ? 'more than' : String(length) + ' bytes of'} the ${expected.length} stored, or other bytes`)
  }
  return { firstByteMs: firstByteMs ?? lastByteMs, lastByteMs }
}

/**
 * One round trip; never throws: a failure is the report's `step`, `code` and
 * `message`. `stop` (the self-check stopping) cuts it short like its budget does.
 */
export async function roundTrip (target: RoundTripTarget, stop?: AbortSignal): Promise<RoundTripReport> {
  const size = target.bytes ?? DEFAULT_ROUND_TRIP_BYTES
  const budget = AbortSignal.timeout(target.timeoutMs ?? DEFAULT_ROUND_TRIP_TIMEOUT_MS)
  const signal = stop === undefined ? budget : AbortSignal.any([budget, stop])
  const report: RoundTripReport = { ok: false, bytes: size }
  const base = target.url.replace(/\/+$/, '')
  let stored = false
  try {
    const piece = await synthetic(size)
    report.pieceCid = piece.pieceCid
    report.cid = piece.cid.toString()

    const started = performance.now()
    const announced = await request('ingest', `${base}/pdp/piece`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ pieceCid: piece.pieceCid }), signal })
    if (announced.status === 201) {
      const { uploadId } = await announced.json() as { uploadId?: unknown }
      if (typeof uploadId !== 'string') throw new StepError('ingest', 'ERR_INTERNAL', 'POST /pdp/piece answered 201 without an uploadId')
      stored = true // from here on, whatever happens, the piece may be there: remove it
      const put = await request('ingest', `${base}/pdp/piece/upload/${encodeURIComponent(uploadId)}`, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: piece.car, signal })
      if (put.status !== 204) throw await answerError('ingest', put)
      await put.body?.cancel()
    } else if (announced.status === 200) {
      // held already (a random 4 KiB repeating is not expected, but it is then stored all the same)
      await announced.body?.cancel()
      stored = true
    } else {
      throw await answerError('ingest', announced)
    }
    report.ingestMs = ms(started)
    await target.afterIngest?.(piece.pieceCid)

    report.piece = await fetchBack('piece', `${base}/piece/${piece.pieceCid}`, 'application/octet-stream', piece.car, 'ERR_PIECE_CORRUPT', signal)
    report.ipfs = await fetchBack('ipfs', `${base}/ipfs/${piece.cid.toString()}?format=raw`, 'application/vnd.ipld.raw', piece.block, 'ERR_BLOCK_MISMATCH', signal)

    const proving = performance.now()
    const challenge = { dealId: piece.cid, seed: new Uint8Array(randomBytes(32)), count: PROVE_CHALLENGES }
    try {
      verifyPieceProof(piece.pieceCid, challenge, await target.prover.prove(piece.pieceCid, challenge))
    } catch (err) {
      throw new StepError('prove', (err as { code?: string }).code ?? 'ERR_INTERNAL', (err as Error).message)
    }
    report.proveMs = ms(proving)
    report.ok = true
  } catch (err) {
    report.ok = false
    report.step = err instanceof StepError ? err.step : 'ingest'
    report.code = err instanceof StepError ? err.code : (err as { code?: string }).code ?? 'ERR_INTERNAL'
    report.message = (err as Error).message
  }
  if (stored && report.pieceCid !== undefined) {
    try {
      await target.discard(report.pieceCid)
    } catch (err) {
      if (report.ok) {
        report.ok = false
        report.step = 'cleanup'
        report.code = (err as { code?: string }).code ?? 'ERR_IO'
        report.message = `the synthetic piece could not be removed (the park sweep will): ${(err as Error).message}`
      }
    }
  }
  return report
}
