/**
 * Auditing a provider's PDP data set from the client side (`cairn audit
 * --data-set`, docs/pdp.md "Proving data sets"): read the data set's pieces,
 * draw a fresh random seed, ask the provider to prove it
 * (`POST /pdp/data-sets/{id}/prove`), and check every answer here — the same
 * leaves PDPVerifier would draw, each hashing to its piece's root.
 */
import { randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { request, undici } from '../lazy/undici.js'
import { CairnError, isCairnError } from '../errors.js'
import { providerError } from '../client/provider-client.js'
import { verifyDataSetProof, type DataSetProof } from './prove.js'

/** Most bytes of an answer: 1,024 challenges with 50-sibling paths are about 3.5 MB of JSON. */
const MAX_ANSWER_BYTES = 16 << 20

export interface DataSetAuditOptions {
  challenges: number
  timeoutMs: number
  /** the seed (32 bytes); random when left out */
  seed?: Uint8Array
}

export interface DataSetAudit {
  dataSet: number
  provider: string
  outcome: 'passed' | 'failed'
  code?: string
  message?: string
  /** 0x and 64 hex digits */
  seed: string
  challenges: number
  /** live pieces and data-bearing leaves challenged over */
  pieces: number
  leafCount: string
  ms: number
}

async function call (base: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<unknown> {
  // loaded before the timeout starts, which is the provider's alone
  await undici()
  const signal = AbortSignal.timeout(timeoutMs)
  let res: Dispatcher.ResponseData
  try {
    res = await request(base + path, {
      method,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    })
  } catch (err) {
    if (signal.aborted) throw new CairnError('ERR_TIMEOUT', `provider ${base} did not answer ${method} ${path} within ${timeoutMs} ms`, { cause: err })
    throw new CairnError('ERR_UNREACHABLE', `provider ${base}: ${(err as Error).message}`, { cause: err })
  }
  const parts: Uint8Array[] = []
  let size = 0
  try {
    for await (const chunk of res.body) {
      size += chunk.length
      if (size > MAX_ANSWER_BYTES) {
        res.body.destroy()
        throw new CairnError('ERR_RESPONSE_TOO_LARGE', `provider ${base} answered more than ${MAX_ANSWER_BYTES} bytes to ${method} ${path}`)
      }
      parts.push(chunk)
    }
  } catch (err) {
    if (isCairnError(err)) throw err
    throw new CairnError(signal.aborted ? 'ERR_TIMEOUT' : 'ERR_UNREACHABLE', `provider ${base}: reading the answer to ${method} ${path}: ${(err as Error).message}`, { cause: err })
  }
  const text = Buffer.concat(parts).toString('utf8')
  if (res.statusCode !== 200) throw providerError(base, res.statusCode, text)
  try {
    return JSON.parse(text)
  } catch {
    throw new CairnError('ERR_PROOF_MALFORMED', `provider ${base} answered ${method} ${path} with something that is not JSON`)
  }
}

interface DataSetView { allPieces?: Array<{ pieceId: number, pieceCid: string, removed: string | null }> }

/**
 * Audits data set `id` at `provider` once. A wrong or malformed proof is a
 * `failed` outcome (with the code); an unreachable provider, an unknown data
 * set or one with no live piece throws.
 */
export async function auditDataSet (provider: string, id: number, options: DataSetAuditOptions): Promise<DataSetAudit> {
  const base = provider.replace(/\/+$/, '')
  const started = Date.now()
  const view = await call(base, 'GET', `/pdp/data-sets/${id}`, undefined, options.timeoutMs) as DataSetView
  if (!Array.isArray(view?.allPieces)) throw new CairnError('ERR_PROOF_MALFORMED', `provider ${base} listed data set ${id} without its pieces (allPieces): not a cairn provider?`)
  const pieces = view.allPieces
  const seed = options.seed ?? new Uint8Array(randomBytes(32))
  const seedHex = '0x' + Buffer.from(seed).toString('hex')
  const live = pieces.filter((p) => p.removed === null || p.removed === undefined).length
  const base0 = { dataSet: id, provider: base, seed: seedHex, challenges: options.challenges, pieces: live }
  const proof = await call(base, 'POST', `/pdp/data-sets/${id}/prove`, { seed: seedHex, challenges: options.challenges }, options.timeoutMs) as DataSetProof
  try {
    verifyDataSetProof(id, pieces, { seed, count: options.challenges }, proof)
  } catch (err) {
    const e = err as { code?: string, message?: string }
    return { ...base0, outcome: 'failed', code: e.code ?? 'ERR_PROOF_MALFORMED', message: e.message, leafCount: String(proof?.leafCount ?? ''), ms: Date.now() - started }
  }
  return { ...base0, outcome: 'passed', leafCount: String(proof.leafCount), ms: Date.now() - started }
}
