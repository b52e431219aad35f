/**
 * The client side of the provider API (docs/protocol.md) over undici. Every answer
 * that carries a signature is verified before it is returned; an HTTP error
 * body `{error: {code, message}}` becomes a `CairnError` with the provider's
 * code, and a provider that cannot be reached or stops answering becomes
 * ERR_UNREACHABLE or ERR_TIMEOUT (exit 5).
 */
import type { Dispatcher } from 'undici'
import { request } from '../lazy/undici.js'
import * as dagJson from '@ipld/dag-json'
import type { CID } from 'multiformats/cid'
import { MAX_BLOCK_SIZE, verifyBlock } from '../car/index.js'
import { CairnError, isCairnError } from '../errors.js'
import { parseHttpUrl } from '../config/values.js'
import { verifyAcceptance, verifyDealStatus } from '../protocol/acceptance.js'
import { verifyAsk } from '../protocol/ask.js'
import type { SignedAcceptance, SignedAsk, SignedCancellation, SignedDealStatus, SignedProposal } from '../protocol/interface.js'
import { decodeSignedJson, encodeSignedJson, type Signer } from '../protocol/signing.js'
import { uploadAuthorization } from '../protocol/auth.js'
import type { SignedProofRequest } from '../protocol/interface.js'
import { verifyProofAnswer, type ProofExpectation, type SignedProof } from '../protocol/proof.js'
import { readBounded } from '../http/body.js'
import { slabGet, type SlabBody } from '../http/slab-get.js'
import { networkError, providerError } from '../http/errors.js'

export { providerError }

/** Trustless Gateway CAR response asked for by `get` (order=dfs, no duplicates). */
export const CAR_ACCEPT = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'
const RAW_ACCEPT = 'application/vnd.ipld.raw'

/** Largest signed message read from a provider (ask, acceptance, status): honest ones are well under 4 KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024

/** Largest proof answer read: 1024 leaves of a 2^50-leaf tree in DAG-JSON stay well below it. */
export const MAX_PROOF_BYTES = 8 << 20

/** A retrieval's average rate must stay above this (judged from twice `bodyTimeoutMs` on), bytes per second. */
export const DEFAULT_MIN_TRANSFER_RATE = 16 * 1024

export interface ProviderClientOptions {
  /** time to connect and receive the response headers, ms */
  headersTimeoutMs?: number
  /** longest silence while a body streams, ms (a retrieval's `--timeout`) */
  bodyTimeoutMs?: number
  /** whole time a signed message may take to arrive, ms */
  messageTimeoutMs?: number
  /** bytes per second a retrieval must average, judged from twice `bodyTimeoutMs` on (ERR_TRANSFER_TOO_SLOW below) */
  minBytesPerSecond?: number
  dispatcher?: Dispatcher
  /**
   * false: a whole-DAG CAR is read through undici like every other answer,
   * not straight into pooled slabs (src/http/slab-get.ts); always so over
   * https or with a `dispatcher`
   */
  slabs?: boolean
}

/** A body read into pooled slabs: what its consumer says it is done with goes back to the pool. */
export type BodySlabs = Pick<SlabBody, 'release' | 'holds'>

export interface UploadOptions {
  /** bytes in the body; sent as Content-Length */
  length: number
  signal?: AbortSignal
  /** how long the provider may take to answer once it has every byte, ms (default 5 min) */
  answerTimeoutMs?: number
}

export class ProviderClient {
  readonly url: string
  private readonly headersTimeout: number
  private readonly bodyTimeout: number
  private readonly messageTimeout: number
  private readonly minRate: number
  private readonly dispatcher: Dispatcher | undefined
  private readonly slabs: boolean

  constructor (url: string, options: ProviderClientOptions = {}) {
    this.url = normaliseUrl(url)
    this.headersTimeout = options.headersTimeoutMs ?? 30_000
    this.bodyTimeout = options.bodyTimeoutMs ?? 30_000
    this.messageTimeout = options.messageTimeoutMs ?? 30_000
    this.minRate = options.minBytesPerSecond ?? DEFAULT_MIN_TRANSFER_RATE
    this.dispatcher = options.dispatcher
    this.slabs = options.slabs !== false && options.dispatcher === undefined && this.url.startsWith('http:')
  }

  /** The provider's signed ask, verified: signature and did. */
  async ask (): Promise<SignedAsk> {
    const body = await this.json('GET', '/v1/ask')
    return verifyAsk(decodeSignedJson(body))
  }

  /** Submits a signed proposal; returns the acceptance verified against `provider`, or throws the provider's rejection. */
  async propose (signed: SignedProposal): Promise<SignedAcceptance> {
    const body = await this.json('POST', '/v1/deals', encodeSignedJson(signed), { 'content-type': 'application/json' })
    return verifyAcceptance(decodeSignedJson(body), signed.payload.provider)
  }

  /** Streams the piece with the client's signature on the request; returns the provider's signed status. */
  async upload (client: Signer, dealId: CID, provider: string, body: AsyncIterable<Uint8Array>, options: UploadOptions): Promise<SignedDealStatus> {
    // undici's headers timeout runs while the body is still being sent, so an
    // upload longer than it would be cut; instead the watchdog fires when the
    // provider stops taking bytes, or does not answer once it has them all
    const watchdog = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const arm = (ms: number, why: string): void => {
      clearTimeout(timer)
      timer = setTimeout(() => watchdog.abort(new CairnError('ERR_TIMEOUT', `provider ${this.url} ${why} for ${ms} ms`)), ms)
    }
    const idle = this.bodyTimeout
    const answer = options.answerTimeoutMs ?? 5 * 60_000
    async function * watched (): AsyncGenerator<Uint8Array> {
      arm(idle, 'took no upload bytes')
      for await (const chunk of body) {
        yield chunk
        arm(idle, 'took no upload bytes')
      }
      arm(answer, 'did not answer after the whole piece was sent')
    }
    const signal = options.signal === undefined ? watchdog.signal : AbortSignal.any([options.signal, watchdog.signal])
    try {
      const text = await this.json('PUT', `/v1/deals/${dealId.toString()}/piece`, watched(), {
        'content-type': 'application/vnd.ipld.car; version=1',
        'content-length': String(options.length),
        authorization: uploadAuthorization(client, dealId)
      }, signal, 0)
      return verifyDealStatus(decodeSignedJson(text), provider)
    } catch (err) {
      if (watchdog.signal.aborted) throw watchdog.signal.reason
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Whether the provider serves the PDP API (`GET /pdp/ping` answers 200). */
  async speaksPdp (): Promise<boolean> {
    try {
      const res = await this.send('GET', '/pdp/ping', undefined, {})
      await res.body.dump()
      return res.statusCode === 200
    } catch {
      return false
    }
  }

  /**
   * Asks the provider to fetch a piece from another provider's `/piece`
   * (`POST /pdp/piece/pull`, docs/pdp.md "Pull") and polls the same request
   * until it ends: resolves when the piece is held, ERR_PULL_FAILED otherwise.
   */
  async pull (pieceCid: string, sourceUrl: string, options: { pollMs?: number, timeoutMs?: number } = {}): Promise<void> {
    const body = JSON.stringify({ pieces: [{ pieceCid, sourceUrl }] })
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000)
    for (;;) {
      const text = new TextDecoder().decode(await this.json('POST', '/pdp/piece/pull', body, { 'content-type': 'application/json' }))
      const answer = JSON.parse(text) as { status?: string, pieces?: Array<{ error?: { code?: string, message?: string } }> }
      if (answer.status === 'complete') return
      if (answer.status === 'failed') {
        const error = answer.pieces?.find((p) => p.error !== undefined)?.error
        throw new CairnError('ERR_PULL_FAILED', `provider ${this.url} could not pull ${pieceCid} from ${sourceUrl}: ${error?.code ?? ''} ${error?.message ?? ''}`.trim())
      }
      if (Date.now() >= deadline) throw new CairnError('ERR_TIMEOUT', `provider ${this.url} did not finish pulling ${pieceCid} within ${options.timeoutMs ?? 600_000} ms`)
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500))
    }
  }

  /** Has the provider feed a piece it holds (pulled) to an accepted deal's upload (docs/pdp.md "Repair by pull"); returns its signed status. */
  async uploadFromHeld (client: Signer, dealId: CID, provider: string, pieceCid: string): Promise<SignedDealStatus> {
    const text = await this.json('POST', `/v1/deals/${dealId.toString()}/piece/from-held`, JSON.stringify({ pieceCid }), {
      'content-type': 'application/json',
      authorization: uploadAuthorization(client, dealId)
    }, undefined, 0)
    return verifyDealStatus(decodeSignedJson(text), provider)
  }

  /** Sends the client's signed cancellation; returns the provider's signed status of the deal. */
  async cancel (signed: SignedCancellation, provider: string): Promise<SignedDealStatus> {
    const body = await this.json('POST', `/v1/deals/${signed.payload.dealId.toString()}/cancel`, encodeSignedJson(signed), { 'content-type': 'application/json' })
    return verifyDealStatus(decodeSignedJson(body), provider)
  }

  async status (dealId: CID, provider: string): Promise<SignedDealStatus> {
    const body = await this.json('GET', `/v1/deals/${dealId.toString()}`)
    return verifyDealStatus(decodeSignedJson(body), provider)
  }

  /**
   * Sends a signed challenge (`POST /v1/deals/{id}/proofs`) and returns the
   * provider's proof once it verifies against `expect`; a proof that does not
   * throws the code of the first thing wrong (src/protocol/proof.ts).
   */
  async prove (challenge: SignedProofRequest, expect: ProofExpectation, signal?: AbortSignal): Promise<SignedProof> {
    const what = `POST /v1/deals/${challenge.payload.dealId.toString()}/proofs`
    const res = await this.send('POST', what.slice(5), dagJson.encode(challenge), { 'content-type': 'application/json', accept: 'application/json' }, signal)
    await this.expectOk(res)
    const body = await this.readMessage(res, what, MAX_PROOF_BYTES, 'ERR_PROOF_MALFORMED')
    let answer: unknown
    try {
      answer = dagJson.decode(body)
    } catch (err) {
      throw new CairnError('ERR_PROOF_MALFORMED', `provider ${this.url} answered with something that is not DAG-JSON: ${(err as Error).message}`)
    }
    return verifyProofAnswer(answer, expect)
  }

  /**
   * A Trustless Gateway CAR of the whole DAG at `root/path` (dag-scope=all):
   * the blocks of the path, then everything under its last entry, rooted at
   * `root`. The body is returned unverified: the caller verifies every block
   * as it streams.
   */
  async car (root: CID, options: { path?: string[], signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    return (await this.carResponse(root, options)).body
  }

  /**
   * `car`, with the block order the provider declares for its body
   * (Trustless Gateway: the response's `order` and `dups` parameters say what
   * was actually sent; `unk` when it does not say).
   */
  async carResponse (root: CID, options: { path?: string[], signal?: AbortSignal } = {}): Promise<{ body: AsyncIterable<Uint8Array>, order: string, dups: string, slabs?: BodySlabs }> {
    const path = (options.path ?? []).map(p => '/' + encodeURIComponent(p)).join('')
    const what = `/ipfs/${root.toString()}${path}?dag-scope=all`
    const param = (type: string, name: string): string => new RegExp(`;\\s*${name}=([a-z]+)`, 'i').exec(type)?.[1]?.toLowerCase() ?? 'unk'
    if (this.slabs) {
      // every byte of a whole DAG passes here: read into pooled slabs, without undici's per-read buffers and streams
      let res: Awaited<ReturnType<typeof slabGet>>
      try {
        res = await slabGet(this.url + what, { headers: { accept: CAR_ACCEPT }, headersTimeoutMs: this.headersTimeout, bodyTimeoutMs: this.bodyTimeout, signal: options.signal })
      } catch (err) {
        throw this.networkError(err)
      }
      await this.expectOk({ statusCode: res.statusCode, headers: res.headers, body: res.body })
      const type = res.headers['content-type'] ?? ''
      return { body: this.paced(res.body), order: param(type, 'order'), dups: param(type, 'dups'), slabs: res.body }
    }
    const res = await this.send('GET', what, undefined, { accept: CAR_ACCEPT }, options.signal)
    await this.expectOk(res)
    const type = String(res.headers['content-type'] ?? '')
    return { body: this.paced(res.body), order: param(type, 'order'), dups: param(type, 'dups') }
  }

  /**
   * One block by CID (Trustless Gateway, `application/vnd.ipld.raw`),
   * verified against its CID: for the few blocks of a DAG a lookup reads
   * (an encrypted directory's names) without fetching all of it.
   */
  async block (cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const res = await this.send('GET', `/ipfs/${cid.toString()}`, undefined, { accept: RAW_ACCEPT }, signal)
    await this.expectOk(res)
    let bytes: Uint8Array
    try {
      // no block cairn verifies is larger: a longer body cannot be this block
      bytes = await readBounded(res.body, { limit: MAX_BLOCK_SIZE, tooLarge: () => new CairnError('ERR_BLOCK_MISMATCH', `provider ${this.url} sent more than ${MAX_BLOCK_SIZE} bytes for block ${cid.toString()}`) })
    } catch (err) {
      throw this.networkError(err)
    }
    verifyBlock(cid, bytes)
    return bytes
  }

  /** `GET /piece/{pieceCid}`, optionally a byte range (inclusive, as HTTP Range takes it). */
  async piece (pieceCid: CID | string, range?: { start: number, end?: number }, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const headers: Record<string, string> = {}
    if (range !== undefined) headers.range = `bytes=${range.start}-${range.end ?? ''}`
    const res = await this.send('GET', `/piece/${pieceCid.toString()}`, undefined, headers, signal)
    await this.expectOk(res)
    return this.paced(res.body)
  }

  /**
   * A retrieval body under an overall progress deadline: undici cuts a silence
   * of `bodyTimeoutMs` (ERR_TIMEOUT); from twice that on the average rate must
   * stay above `minBytesPerSecond` (ERR_TRANSFER_TOO_SLOW), so a provider
   * trickling bytes cannot hold a `get` for ever.
   */
  private async * paced (body: Body): AsyncGenerator<Uint8Array> {
    const started = Date.now()
    let bytes = 0
    let last = started
    let slow: CairnError | undefined
    const check = (): void => {
      const now = Date.now()
      const elapsed = now - started
      // silence is undici's to cut (bodyTimeout, ERR_TIMEOUT); the average is judged from twice that on
      if (elapsed < 2 * this.bodyTimeout || this.minRate <= 0) return
      const rate = bytes * 1000 / elapsed
      if (rate < this.minRate) {
        // a stalled event loop can run this check before undici's silence timer: a body that has
        // been silent for the body timeout is still a silence, whichever timer noticed it
        slow = now - last >= this.bodyTimeout
          ? new CairnError('ERR_TIMEOUT', `provider ${this.url} sent nothing for ${now - last} ms (after ${bytes} bytes); the limit is ${this.bodyTimeout} ms`)
          : new CairnError('ERR_TRANSFER_TOO_SLOW', `provider ${this.url} sent ${bytes} bytes in ${elapsed} ms (${Math.floor(rate)} bytes/s); at least ${this.minRate} bytes/s are expected`)
        body.destroy(slow)
      }
    }
    const timer = setInterval(check, Math.max(50, Math.min(1000, this.bodyTimeout / 4)))
    timer.unref()
    try {
      for await (const chunk of body as AsyncIterable<Uint8Array>) {
        bytes += chunk.length
        last = Date.now()
        yield chunk
      }
    } catch (err) {
      throw slow ?? this.networkError(err)
    } finally {
      clearInterval(timer)
      if (!body.destroyed) body.destroy()
    }
    if (slow !== undefined) throw slow
  }

  private async json (method: Dispatcher.HttpMethod, path: string, body?: Dispatcher.DispatchOptions['body'] | AsyncIterable<Uint8Array>, headers: Record<string, string> = {}, signal?: AbortSignal, headersTimeout?: number): Promise<Uint8Array> {
    const res = await this.send(method, path, body, { accept: 'application/json', ...headers }, signal, headersTimeout)
    await this.expectOk(res)
    return await this.readMessage(res, `${method} ${path}`)
  }

  /**
   * A signed message's body, at most MAX_MESSAGE_BYTES and whole within
   * `messageTimeoutMs`: a provider streaming without end gets
   * ERR_RESPONSE_TOO_LARGE or ERR_TIMEOUT, never this process's memory.
   */
  private async readMessage (res: Answer, what: string, limit = MAX_MESSAGE_BYTES, tooLargeCode: 'ERR_RESPONSE_TOO_LARGE' | 'ERR_PROOF_MALFORMED' = 'ERR_RESPONSE_TOO_LARGE'): Promise<Uint8Array> {
    let size = 0
    let late = false
    const timer = setTimeout(() => { late = true; res.body.destroy() }, this.messageTimeout)
    try {
      return await readBounded(res.body, {
        limit,
        declared: res.headers['content-length'] as string | undefined,
        tooLarge: (declared) => new CairnError(tooLargeCode, `provider ${this.url} answered ${what} with ${declared ?? `more than ${limit}`} bytes; a message is at most ${limit} bytes`),
        progress: (n) => { size = n }
      })
    } catch (err) {
      if (late) throw new CairnError('ERR_TIMEOUT', `provider ${this.url} took more than ${this.messageTimeout} ms to send its answer to ${what} (${size} bytes came)`)
      if (isCairnError(err)) res.body.destroy()
      throw this.networkError(err)
    } finally {
      clearTimeout(timer)
    }
  }

  private async send (method: Dispatcher.HttpMethod, path: string, body: Dispatcher.DispatchOptions['body'] | AsyncIterable<Uint8Array> | undefined, headers: Record<string, string>, signal?: AbortSignal, headersTimeout = this.headersTimeout): Promise<Dispatcher.ResponseData> {
    try {
      return await request(this.url + path, {
        method,
        headers,
        body: body as Dispatcher.DispatchOptions['body'],
        headersTimeout,
        bodyTimeout: this.bodyTimeout,
        signal,
        dispatcher: this.dispatcher
      })
    } catch (err) {
      throw this.networkError(err)
    }
  }

  /** Turns a non-2xx answer into the provider's coded error (its body read up to a message's size). */
  private async expectOk (res: Answer): Promise<void> {
    if (res.statusCode >= 200 && res.statusCode < 300) return
    let text = ''
    try {
      text = new TextDecoder().decode(await this.readMessage(res, `a request (HTTP ${res.statusCode})`))
    } catch (err) {
      if (isCairnError(err) && err.code === 'ERR_RESPONSE_TOO_LARGE') throw err
    }
    throw providerError(this.url, res.statusCode, text)
  }

  private networkError (err: unknown): CairnError {
    return networkError(err, `provider ${this.url}`)
  }
}

/** A response body, from undici or read into slabs. */
type Body = AsyncIterable<Uint8Array> & { destroy: (err?: Error) => unknown, readonly destroyed: boolean }

/** What the coded-error and message readers need of a response. */
interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: Body
}

/** An http(s) base URL without a trailing slash, or ERR_INVALID_ARGUMENT. */
export function normaliseUrl (value: string): string {
  return parseHttpUrl(value, 'a provider URL')
}
