/**
 * Requests between the nodes of one cluster, authenticated with a secret they
 * share (not the public API's client signatures). The sender signs
 *
 *   "cairn/cluster-request/v1\n" METHOD "\n" PATH "\n" RANGE "\n" TIME "\n" NONCE "\n" NODE
 *
 * with HMAC-SHA-256 (RFC 2104) and sends TIME (unix ms), NONCE (16 random
 * bytes, hex), NODE (its name) and the tag in headers (docs/cluster.md). The
 * receiver recomputes the tag and compares in constant time, accepts TIME only
 * within its window of its own clock, and each NONCE only once within that
 * window, so a captured request cannot be replayed. Range is signed, so a
 * captured request cannot be turned into a read of other bytes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { CairnError } from '../errors.js'

export const CLUSTER_HEADERS = {
  node: 'x-cairn-node',
  time: 'x-cairn-time',
  nonce: 'x-cairn-nonce',
  signature: 'x-cairn-signature'
} as const

const TAG = 'cairn/cluster-request/v1\n'
/** Bytes of entropy a cluster secret has at least (HMAC-SHA-256's block of security). */
export const SECRET_BYTES = 32

/** A new secret for a cluster, as hex. */
export function generateClusterSecret (): string {
  return randomBytes(SECRET_BYTES).toString('hex')
}

/** A cluster secret as configured: at least 32 bytes as hex (64+ characters) or base64; ERR_CLUSTER_SECRET otherwise. */
export function parseClusterSecret (text: string): Uint8Array {
  const trimmed = text.trim()
  let bytes: Buffer | undefined
  if (/^([0-9a-f]{2})+$/i.test(trimmed)) bytes = Buffer.from(trimmed, 'hex')
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) bytes = Buffer.from(trimmed, 'base64')
  if (bytes === undefined || bytes.length < SECRET_BYTES) {
    throw new CairnError('ERR_CLUSTER_SECRET', `a cluster secret is at least ${SECRET_BYTES} random bytes, written as hex or base64 (got ${bytes === undefined ? 'neither' : `${bytes.length} bytes`}), such as the output of \`openssl rand -hex 32\``)
  }
  return new Uint8Array(bytes)
}

export interface SignedRequest {
  method: string
  /** the path and query as sent, e.g. /internal/v1/pieces/bafk… */
  path: string
  /** the Range header as sent, if any */
  range?: string
}

function tag (secret: Uint8Array, request: SignedRequest, time: string, nonce: string, node: string): Buffer {
  const text = `${TAG}${request.method.toUpperCase()}\n${request.path}\n${request.range ?? ''}\n${time}\n${nonce}\n${node}`
  return createHmac('sha256', secret).update(text).digest()
}

/** The headers that authenticate `request` from `node`. */
export function signClusterRequest (secret: Uint8Array, node: string, request: SignedRequest, now = Date.now()): Record<string, string> {
  if (!/^[\x21-\x7e]{1,200}$/.test(node)) throw new TypeError('a node name is 1 to 200 printable ASCII characters without spaces')
  const time = String(Math.floor(now))
  const nonce = randomBytes(16).toString('hex')
  return {
    [CLUSTER_HEADERS.node]: node,
    [CLUSTER_HEADERS.time]: time,
    [CLUSTER_HEADERS.nonce]: nonce,
    [CLUSTER_HEADERS.signature]: tag(secret, request, time, nonce, node).toString('base64url')
  }
}

export interface ClusterAuthOptions {
  /** how far a request's time may be from ours, either way, ms (default 30 s) */
  windowMs?: number
  /** most nonces remembered; past it the oldest go first (default 100,000) */
  maxNonces?: number
  now?: () => number
}

/** Checks requests from other nodes; remembers the nonces it has seen within the window. */
export class ClusterAuth {
  private readonly seen = new Map<string, number>()
  private readonly windowMs: number
  private readonly maxNonces: number
  private readonly now: () => number

  constructor (private readonly secret: Uint8Array, options: ClusterAuthOptions = {}) {
    if (secret.length < SECRET_BYTES) throw new CairnError('ERR_CLUSTER_SECRET', `a cluster secret is at least ${SECRET_BYTES} bytes, got ${secret.length}`)
    this.windowMs = options.windowMs ?? 30_000
    this.maxNonces = options.maxNonces ?? 100_000
    this.now = options.now ?? Date.now
  }

  /** Returns the sending node's name, or throws ERR_CLUSTER_AUTH saying what is wrong. */
  verify (request: SignedRequest, headers: IncomingHttpHeaders): string {
    const header = (name: string): string => {
      const value = headers[name]
      if (typeof value !== 'string' || value === '') throw new CairnError('ERR_CLUSTER_AUTH', `a cluster request needs the ${name} header`)
      return value
    }
    const node = header(CLUSTER_HEADERS.node)
    const time = header(CLUSTER_HEADERS.time)
    const nonce = header(CLUSTER_HEADERS.nonce)
    const signature = header(CLUSTER_HEADERS.signature)
    if (!/^\d{1,16}$/.test(time)) throw new CairnError('ERR_CLUSTER_AUTH', `${CLUSTER_HEADERS.time} is unix milliseconds, got ${JSON.stringify(time.slice(0, 40))}`)
    if (!/^[0-9a-f]{32}$/.test(nonce)) throw new CairnError('ERR_CLUSTER_AUTH', `${CLUSTER_HEADERS.nonce} is 16 bytes as hex`)
    const given = Buffer.from(signature, 'base64url')
    const expected = tag(this.secret, request, time, nonce, node)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new CairnError('ERR_CLUSTER_AUTH', `the request from ${JSON.stringify(node.slice(0, 200))} is not signed with this cluster's secret`)
    }
    const now = this.now()
    const skew = Number(time) - now
    if (Math.abs(skew) > this.windowMs) {
      throw new CairnError('ERR_CLUSTER_AUTH', `the request from ${node} is dated ${Math.round(skew / 1000)} s from this node's clock, beyond the ${this.windowMs / 1000} s window (are the clocks synchronised?)`)
    }
    this.forget(now)
    if (this.seen.has(nonce)) throw new CairnError('ERR_CLUSTER_AUTH', `the request from ${node} replays a nonce already used`)
    this.seen.set(nonce, Number(time) + this.windowMs)
    if (this.seen.size > this.maxNonces) this.seen.delete(this.seen.keys().next().value as string)
    return node
  }

  /** Drops nonces whose request time has left the window (they would be refused for their time anyway). */
  private forget (now: number): void {
    for (const [nonce, until] of this.seen) {
      if (until >= now) break
      this.seen.delete(nonce)
    }
  }
}
