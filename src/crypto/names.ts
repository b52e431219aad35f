/**
 * Names in an encrypted tree (docs/encryption.md). An encrypted directory
 * names its entries by ordinal — `0`, `1`, … in the order of their sorted
 * names — and holds one more entry, `names.age`: an age file whose plaintext
 * is this manifest, in JSON:
 *
 *   {"format":"cairn/names/v1","entries":["a.txt","photos"],"symlinks":[{"name":"latest","target":"photos/1.jpg"}]}
 *
 * `entries[i]` is the name of the entry stored as `i`. Symbolic links live
 * only in the manifest (a UnixFS symlink node would show its target), with
 * `targetBase64` instead of `target` when the target is not UTF-8.
 */
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'

export const MANIFEST_NAME = 'names.age'
export const MANIFEST_FORMAT = 'cairn/names/v1'
/** A manifest larger than this is refused rather than held in memory. */
export const MAX_MANIFEST = 64 * 1024 * 1024

export interface Manifest {
  entries: string[]
  symlinks: Array<{ name: string, target: Uint8Array }>
}

export function ordinalName (index: number): string {
  return String(index)
}

/** The ordinal an entry name stands for, if it is one in canonical form (no sign, no leading zero). */
export function ordinalOf (name: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,14})$/.test(name)) return undefined
  return Number(name)
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function encodeManifest (manifest: Manifest): Uint8Array {
  const symlinks = manifest.symlinks.map(({ name, target }) => {
    try {
      return { name, target: utf8.decode(target) }
    } catch {
      return { name, targetBase64: Buffer.from(target).toString('base64') }
    }
  })
  return Buffer.from(JSON.stringify({ format: MANIFEST_FORMAT, entries: manifest.entries, symlinks }))
}

/** The manifest of the encrypted directory `dir`, or ERR_DAG_INVALID saying what is wrong with it. */
export function decodeManifest (bytes: Uint8Array, dir: CID): Manifest {
  const bad = (why: string): CairnError => new CairnError('ERR_DAG_INVALID', `the names of encrypted directory ${dir.toString()} are malformed: ${why}`)
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    throw bad('not UTF-8 JSON')
  }
  if (typeof value !== 'object' || value === null) throw bad('not a JSON object')
  const { format, entries, symlinks } = value as Record<string, unknown>
  if (format !== MANIFEST_FORMAT) throw bad(`format ${JSON.stringify(format)}, expected ${MANIFEST_FORMAT}`)
  if (!Array.isArray(entries) || !entries.every(e => typeof e === 'string')) throw bad('entries is not a list of names')
  if (!Array.isArray(symlinks)) throw bad('symlinks is not a list')
  const links = symlinks.map((s: unknown) => {
    const { name, target, targetBase64 } = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>
    if (typeof name !== 'string') throw bad('a symlink has no name')
    if (typeof target === 'string') return { name, target: Buffer.from(target) }
    if (typeof targetBase64 === 'string') return { name, target: Buffer.from(targetBase64, 'base64') }
    throw bad(`symlink ${JSON.stringify(name)} has no target`)
  })
  return { entries: entries as string[], symlinks: links }
}
