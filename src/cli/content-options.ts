/** The content flags shared by `add` and `pack`, from CLI strings to importer options. */
import { CairnError } from '../errors.js'
import { parseIntegerFlag } from './output.js'
import type { ImportOptions } from '../unixfs/importer.js'

export interface ContentFlags {
  profile?: string
  chunkSize?: string
  maxLinks?: string
  wrap?: boolean
  hidden?: boolean
}

const PROFILES = ['unixfs-v1-2025', 'unixfs-v0-2015']

export function importOptionsFrom (flags: ContentFlags): ImportOptions {
  const profile = flags.profile ?? 'unixfs-v1-2025'
  if (!PROFILES.includes(profile)) {
    throw new CairnError('ERR_INVALID_PROFILE', `unknown profile ${JSON.stringify(profile)}; expected one of ${PROFILES.join(', ')}`)
  }
  return {
    profile: profile as ImportOptions['profile'],
    chunkSize: parseIntegerFlag(flags.chunkSize, '--chunk-size', 'ERR_INVALID_CHUNK_SIZE', 1, Number.MAX_SAFE_INTEGER),
    maxLinks: parseIntegerFlag(flags.maxLinks, '--max-links', 'ERR_INVALID_MAX_LINKS', 1, Number.MAX_SAFE_INTEGER),
    wrap: flags.wrap === true,
    hidden: flags.hidden === true
  }
}
