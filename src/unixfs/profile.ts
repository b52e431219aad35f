/**
 * UnixFS DAG profiles of IPIP-499 (https://github.com/ipfs/specs/pull/499),
 * with the parameters ipfs-unixfs-importer 17 uses for each.
 */
import { CairnError } from '../errors.js'

export type Profile = 'unixfs-v1-2025' | 'unixfs-v0-2015'

/**
 * How a flat directory's size is estimated against the HAMT threshold:
 * - `block-bytes`: the exact serialized dag-pb size (unixfs-v1-2025),
 * - `links-bytes`: the sum of name length + CID length per link, framing
 *   ignored (unixfs-v0-2015, go-unixfsnode's historical estimate).
 */
export type ShardSplitStrategy = 'block-bytes' | 'links-bytes'

export interface ProfileParams {
  name: Profile
  cidVersion: 0 | 1
  rawLeaves: boolean
  chunkSize: number
  maxLinks: number
  shardSplitStrategy: ShardSplitStrategy
  /** a directory whose estimate is strictly greater than this becomes a HAMT */
  shardThreshold: number
  /** HAMT fanout: 256 (8 bits per level) */
  fanoutBits: number
}

export const PROFILES: Readonly<Record<Profile, Readonly<ProfileParams>>> = {
  'unixfs-v1-2025': {
    name: 'unixfs-v1-2025',
    cidVersion: 1,
    rawLeaves: true,
    chunkSize: 1_048_576,
    maxLinks: 1024,
    shardSplitStrategy: 'block-bytes',
    shardThreshold: 262_144,
    fanoutBits: 8
  },
  'unixfs-v0-2015': {
    name: 'unixfs-v0-2015',
    cidVersion: 0,
    rawLeaves: false,
    chunkSize: 262_144,
    maxLinks: 174,
    shardSplitStrategy: 'links-bytes',
    shardThreshold: 262_144,
    fanoutBits: 8
  }
}

export const DEFAULT_PROFILE: Profile = 'unixfs-v1-2025'

/**
 * Largest chunk: every block must stay within the 2 MiB limit IPFS
 * implementations exchange (and cairn's CAR reader enforces); 256 bytes are
 * left for the dag-pb/UnixFS wrapping of legacy leaves.
 */
export const MAX_CHUNK_SIZE = 2 * 1024 * 1024 - 256
/**
 * Most links per file node: 16384 links of ~50 bytes plus their block sizes
 * keep an internal node under 1 MiB.
 */
export const MAX_LINKS = 16_384

export function isProfile (name: unknown): name is Profile {
  return typeof name === 'string' && Object.hasOwn(PROFILES, name)
}

/** The checked parameters for a profile and its overrides. */
export function resolveProfile (options: { profile?: string, chunkSize?: number, maxLinks?: number } = {}): ProfileParams {
  const name = options.profile ?? DEFAULT_PROFILE
  if (!isProfile(name)) {
    throw new CairnError('ERR_INVALID_PROFILE', `unknown profile ${JSON.stringify(name)}; expected one of ${Object.keys(PROFILES).join(', ')}`)
  }
  const params = { ...PROFILES[name] }
  if (options.chunkSize !== undefined) {
    const n = options.chunkSize
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_CHUNK_SIZE) {
      throw new CairnError('ERR_INVALID_CHUNK_SIZE', `chunk size must be a whole number of bytes from 1 to ${MAX_CHUNK_SIZE}, got ${n}`)
    }
    params.chunkSize = n
  }
  if (options.maxLinks !== undefined) {
    const n = options.maxLinks
    if (!Number.isSafeInteger(n) || n < 2 || n > MAX_LINKS) {
      throw new CairnError('ERR_INVALID_MAX_LINKS', `max links must be a whole number from 2 to ${MAX_LINKS}, got ${n}`)
    }
    params.maxLinks = n
  }
  return params
}
