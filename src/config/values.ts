/**
 * Values as a person writes them on a command line or in config.json, each
 * checked by a labelled helper that returns the checked value or throws a
 * coded usage error naming the flag, what was expected and what was found.
 * A number in config.json counts as that many base units (bytes, seconds).
 */
import { CairnError } from '../errors.js'

const UNITS: Record<string, bigint> = { '': 1n, b: 1n, kib: 1n << 10n, mib: 1n << 20n, gib: 1n << 30n, tib: 1n << 40n, kb: 1000n, mb: 1000n ** 2n, gb: 1000n ** 3n, tb: 1000n ** 4n }

/** A byte size such as `1048576`, `512MiB` or `2TiB`. */
export function parseSize (value: string | undefined, flag: string, fallback: bigint): bigint {
  if (value === undefined) return fallback
  const m = /^(\d+)\s*([kmgt]i?b|b)?$/i.exec(value.trim())
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a size in bytes such as 1048576, 512MiB or 2TiB, got ${JSON.stringify(value)}`)
  return BigInt(m[1] as string) * unit
}

/** A padded piece size: a power of two of at least 128 bytes (Filecoin's padded piece sizes). */
export function parsePieceSize (value: string, flag: string): bigint {
  const size = parseSize(value, flag, 0n)
  if (size < 128n || (size & (size - 1n)) !== 0n) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a padded piece size, a power of two of at least 128 bytes (e.g. 1MiB, 32GiB), got ${size} bytes`)
  }
  return size
}

const SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 }

/** A duration such as `3600`, `24h` or `180d`, in seconds. */
export function parseDuration (value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  const m = /^(\d+)\s*([smhdw])?$/i.exec(value.trim())
  const unit = SECONDS[(m?.[2] ?? '').toLowerCase()]
  if (m === null || unit === undefined || Number(m[1]) <= 0) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a duration such as 3600, 24h or 180d, got ${JSON.stringify(value)}`)
  return Number(m[1]) * unit
}

/** A whole number of base units (money: bigint, never floating point). */
export function parseAmount (value: string, flag: string): bigint {
  if (!/^\d+$/.test(value.trim())) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a whole number of base units, got ${JSON.stringify(value)}`)
  return BigInt(value.trim())
}

/** A whole number between `min` and `max`. */
export function parseCount (value: string, flag: string, min: number, max: number): number {
  const text = value.trim()
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < min || n > max) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`)
  return n
}

/** `host:port`, `[v6]:port`; port 0 lets the system pick one. */
export function parseListen (value: string, flag = '--listen'): { host: string, port: number } {
  const m = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i.exec(value.trim())
  const port = Number(m?.[2])
  if (m === null || port > 65535) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be host:port such as 127.0.0.1:7470, got ${JSON.stringify(value)}`)
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port }
}

/** One of a few words. */
export function parseChoice<T extends string> (value: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`)
  return value as T
}

/** An Ethereum address, 0x and 20 bytes in hex, as lower case (the form asks and EIP-712 digests carry). */
export function parseEthAddress (value: string, flag: string): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(value.trim())) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(value)}`)
  return value.trim().toLowerCase()
}

/** An EVM chain id: a whole number above 0 (314159: Filecoin calibration). */
export function parseChainId (value: string, flag: string): bigint {
  const id = parseAmount(value, flag)
  if (id === 0n) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be a positive chain id, got ${JSON.stringify(value)}`)
  return id
}

/**
 * An http(s) base URL, normalised to `scheme://host[:port][/path]` with no
 * trailing slash, so that one server is one string (address book, routers,
 * indexers announced to). `what` names it in the message.
 */
export function parseHttpUrl (value: string, what: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `expected ${what} such as http://127.0.0.1:7470, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CairnError('ERR_INVALID_ARGUMENT', `${what} must be http or https, got ${JSON.stringify(value)}`)
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`
}
