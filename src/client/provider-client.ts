/**
 * The client side of the provider API (SPEC §3.1) over undici. Every answer
 * that carries a signature is verified before it is returned; an HTTP error
 * body `{error: {code, message}}` becomes a `CairnError` with the provider's
 * code, and a provider that cannot be reached or stops answering becomes
 * ERR_UNREACHABLE or ERR_TIMEOUT (exit 5).
 */
import { request, type Dispatcher } from 'undici'
import type { CID } from 'multiformats/cid'
import { MAX_BLOCK_SIZE, verifyBlock } from '../car/index.js'
import { CairnError, codes, type ErrorCode } from '../errors.js'
import { verifyAcceptance, verifyDealStatus } from '../deal/acceptance.js'
import { verifyAsk } from '../deal/ask.js'
import type { SignedAcceptance, SignedAsk, SignedDealStatus, SignedProposal } from '../deal/interface.js'
import { decodeSignedJson, encodeSignedJson, type Signer } from '../deal/signing.js'
import { uploadAuthorization } from '../provider/auth.js'

/** Trustless Gateway CAR response asked for by `get` (order=dfs, no duplicates). */
export const CAR_ACCEPT = 'application/vnd.ipld.car; version=1; order=dfs; dups=n'
const RAW_ACCEPT = 'application/vnd.ipld.raw'

export interface ProviderClientOptions {
  /** time to connect and receive the response headers, ms */
  headersTimeoutMs?: number
  /** longest silence while a body streams, ms */
  bodyTimeoutMs?: number
  dispatcher?: Dispatcher
}

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
  private readonly dispatcher: Dispatcher | undefined

  constructor (url: string, options: ProviderClientOptions = {}) {
    this.url = normaliseUrl(url)
    this.headersTimeout = options.headersTimeoutMs ?? 30_000
    this.bodyTimeout = options.bodyTimeoutMs ?? 30_000
    this.dispatcher = options.dispatcher
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

  async status (dealId: CID, provider: string): Promise<SignedDealStatus> {
    const body = await this.json('GET', `/v1/deals/${dealId.toString()}`)
    return verifyDealStatus(decodeSignedJson(body), provider)
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
  async carResponse (root: CID, options: { path?: string[], signal?: AbortSignal } = {}): Promise<{ body: AsyncIterable<Uint8Array>, order: string, dups: string }> {
    const path = (options.path ?? []).map(p => '/' + encodeURIComponent(p)).join('')
    const res = await this.send('GET', `/ipfs/${root.toString()}${path}?dag-scope=all`, undefined, { accept: CAR_ACCEPT }, options.signal)
    await this.expectOk(res)
    const type = String(res.headers['content-type'] ?? '')
    const param = (name: string): string => new RegExp(`;\\s*${name}=([a-z]+)`, 'i').exec(type)?.[1]?.toLowerCase() ?? 'unk'
    return { body: res.body, order: param('order'), dups: param('dups') }
  }

  /**
   * One block by CID (Trustless Gateway, `application/vnd.ipld.raw`),
   * verified against its CID: for the few blocks of a DAG a lookup reads
   * (an encrypted directory's names) without fetching all of it.
   */
  async block (cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const res = await this.send('GET', `/ipfs/${cid.toString()}`, undefined, { accept: RAW_ACCEPT }, signal)
    await this.expectOk(res)
    const chunks: Uint8Array[] = []
    let size = 0
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength
        // no block cairn verifies is larger: the body cannot be this block
        if (size > MAX_BLOCK_SIZE) {
          res.body.destroy()
          throw new CairnError('ERR_BLOCK_MISMATCH', `provider ${this.url} sent more than ${MAX_BLOCK_SIZE} bytes for block ${cid.toString()}`)
        }
        chunks.push(chunk)
      }
    } catch (err) {
      throw this.networkError(err)
    }
    const bytes = Buffer.concat(chunks, size)
    verifyBlock(cid, bytes)
    return bytes
  }

  /** `GET /piece/{pieceCid}`, optionally a byte range (inclusive, as HTTP Range takes it). */
  async piece (pieceCid: CID | string, range?: { start: number, end?: number }, signal?: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const headers: Record<string, string> = {}
    if (range !== undefined) headers.range = `bytes=${range.start}-${range.end ?? ''}`
    const res = await this.send('GET', `/piece/${pieceCid.toString()}`, undefined, headers, signal)
    await this.expectOk(res)
    return res.body
  }

  private async json (method: Dispatcher.HttpMethod, path: string, body?: Dispatcher.DispatchOptions['body'] | AsyncIterable<Uint8Array>, headers: Record<string, string> = {}, signal?: AbortSignal, headersTimeout?: number): Promise<Uint8Array> {
    const res = await this.send(method, path, body, { accept: 'application/json', ...headers }, signal, headersTimeout)
    await this.expectOk(res)
    try {
      return new Uint8Array(await res.body.arrayBuffer())
    } catch (err) {
      throw this.networkError(err)
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

  /** Turns a non-2xx answer into the provider's coded error. */
  private async expectOk (res: Dispatcher.ResponseData): Promise<void> {
    if (res.statusCode >= 200 && res.statusCode < 300) return
    let text = ''
    try {
      text = await res.body.text()
    } catch {}
    throw providerError(this.url, res.statusCode, text)
  }

  private networkError (err: unknown): CairnError {
    if (err instanceof CairnError) return err
    const e = err as { code?: string, name?: string, message?: string, cause?: { code?: string } }
    const code = e.code ?? e.cause?.code ?? e.name ?? 'error'
    if (/TIMEOUT/i.test(code) || e.name === 'TimeoutError') {
      return new CairnError('ERR_TIMEOUT', `provider ${this.url} did not answer in time (${code})`, { cause: err })
    }
    if (e.name === 'AbortError' || code === 'UND_ERR_ABORTED') {
      return new CairnError('ERR_UNREACHABLE', `request to ${this.url} was aborted`, { cause: err })
    }
    return new CairnError('ERR_UNREACHABLE', `cannot reach provider ${this.url}: ${code}${e.message !== undefined && !e.message.includes(code) ? ` (${e.message})` : ''}`, { cause: err })
  }
}

/** The coded error in a provider's error body; a body without one still gets a code from its status. */
export function providerError (url: string, status: number, text: string): CairnError {
  let parsed: { error?: { code?: unknown, message?: unknown, details?: unknown } } | undefined
  try {
    parsed = JSON.parse(text)
  } catch {}
  const code = parsed?.error?.code
  const message = typeof parsed?.error?.message === 'string' ? parsed.error.message : `HTTP ${status} ${text.slice(0, 200)}`
  const details = parsed?.error?.details !== null && typeof parsed?.error?.details === 'object' ? parsed.error.details as Record<string, unknown> : undefined
  const extra = { details: { ...details, provider: url, status } }
  if (typeof code === 'string' && Object.hasOwn(codes, code)) return new CairnError(code as ErrorCode, message, extra)
  if (status === 404) return new CairnError('ERR_NOT_FOUND', `provider ${url}: ${message}`, extra)
  if (status === 408 || status === 504) return new CairnError('ERR_TIMEOUT', `provider ${url}: ${message}`, extra)
  if (status >= 500) return new CairnError('ERR_UNREACHABLE', `provider ${url} failed (HTTP ${status}${typeof code === 'string' ? ` ${code}` : ''}): ${message}`, extra)
  return new CairnError('ERR_BAD_REQUEST', `provider ${url} refused the request (HTTP ${status}${typeof code === 'string' ? ` ${code}` : ''}): ${message}`, extra)
}

/** An http(s) base URL without a trailing slash, or ERR_INVALID_ARGUMENT. */
export function normaliseUrl (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `expected a provider URL such as http://127.0.0.1:7470, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CairnError('ERR_INVALID_ARGUMENT', `a provider URL must be http or https, got ${JSON.stringify(value)}`)
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
}
