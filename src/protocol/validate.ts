/**
 * Labelled checks for values that arrive from outside (HTTP bodies, files,
 * the ledger on disk). Each returns the checked, normalised value or throws
 * ERR_INVALID_MESSAGE naming the field, what was expected and what was found.
 */
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { publicKeyOf } from './signing.js'

export const U64_MAX = (1n << 64n) - 1n

function invalid (label: string, expected: string, found: unknown): CairnError {
  return new CairnError('ERR_INVALID_MESSAGE', `${label}: expected ${expected}, found ${describe(found)}`)
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'nothing'
  if (typeof value === 'bigint') return `${value}`
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value)
  if (value instanceof Uint8Array) return `${value.length} bytes`
  if (typeof value === 'object') return Array.isArray(value) ? 'a list' : 'an object'
  return `${typeof value} ${String(value)}`
}

/** A plain map with exactly the `required` keys (plus any of `optional`); unknown fields are rejected. */
export function record (value: unknown, label: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value) !== null) {
    throw invalid(label, 'an object', value)
  }
  const map = value as Record<string, unknown>
  for (const key of Object.keys(map)) {
    if (!required.includes(key) && !optional.includes(key)) {
      throw new CairnError('ERR_INVALID_MESSAGE', `${label}: unknown field ${JSON.stringify(key)}`)
    }
  }
  for (const key of required) {
    if (map[key] === undefined) throw new CairnError('ERR_INVALID_MESSAGE', `${label}: missing field ${JSON.stringify(key)}`)
  }
  return map
}

/** An unsigned 64-bit integer (amounts, sizes, nonces) as a bigint; never a float. */
export function u64 (value: unknown, label: string): bigint {
  let n: bigint
  if (typeof value === 'bigint') n = value
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value)
  else throw invalid(label, 'a non-negative integer', value)
  if (n < 0n || n > U64_MAX) throw invalid(label, 'an integer from 0 to 2^64-1', value)
  return n
}

/** A non-negative safe integer (times in unix seconds, durations, counts). */
export function uint (value: unknown, label: string, min = 0): number {
  const n = typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= 0n ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw invalid(label, `an integer ≥ ${min}`, value)
  return n
}

export function text (value: unknown, label: string): string {
  if (typeof value !== 'string') throw invalid(label, 'a string', value)
  return value
}

export function bytes (value: unknown, label: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(label, length === undefined ? 'bytes' : `${length} bytes`, value)
  if (length !== undefined && value.length !== length) throw invalid(label, `${length} bytes`, value)
  return value
}

/** A CID, given as a CID or its string form. */
export function cid (value: unknown, label: string): CID {
  const asCid = CID.asCID(value)
  if (asCid !== null) return asCid
  if (typeof value === 'string') {
    try {
      return CID.parse(value)
    } catch {}
  }
  throw invalid(label, 'a CID', value)
}

/** An Ed25519 `did:key`; a malformed key is ERR_INVALID_KEY rather than a malformed message. */
export function did (value: unknown, label: string): string {
  const s = text(value, label)
  publicKeyOf(s, label)
  return s
}

export function httpUrl (value: unknown, label: string): string {
  const s = text(value, label)
  let url: URL
  try {
    url = new URL(s)
  } catch {
    throw invalid(label, 'an http(s) URL', value)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(label, 'an http(s) URL', value)
  return s
}

export function oneOf<T extends string> (value: unknown, label: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) throw invalid(label, `one of ${choices.join(', ')}`, value)
  return value as T
}

/** A ledger head `{seq, cid}` (seq ≥ 1), or null for an empty ledger. */
export function ledgerHead (value: unknown, label: string): { seq: number, cid: CID } | null {
  if (value === null) return null
  const m = record(value, label, ['seq', 'cid'])
  return { seq: uint(m.seq, `${label}.seq`, 1), cid: cid(m.cid, `${label}.cid`) }
}
