/**
 * An encrypted tree (docs/encryption.md) read as the plaintext it was made
 * from, through the one UnixFS reader: each directory's names from its
 * decrypted manifest, each file's content decrypted as its blocks are read.
 * Blocks come through a `Load`, so any source of verified blocks serves.
 */
import type { Decrypter } from 'age-encryption'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import type { Load } from '../unixfs/interface.js'
import { checkName, decodeNode, type DirectoryNode, type FileNode } from '../unixfs/node.js'
import { directoryEntries, fileParts } from '../unixfs/reader.js'
import type { TreeReading } from '../unixfs/writer.js'
import { AgeFileDecryptor, decryptAll } from './decrypt.js'
import { isEncryptedListing } from './layout.js'
import { decodeManifest, MANIFEST_NAME, MAX_MANIFEST, ordinalOf, type Manifest } from './names.js'

/** Gathers plaintext into large writes (the payload opens in 64 KiB chunks). */
const WRITE_BATCH = 1024 * 1024

/** A file's bytes as stored, block by block. */
async function * storedBytes (file: FileNode, load: Load): AsyncGenerator<Uint8Array> {
  for await (const part of fileParts(file, load)) yield part.data
}

/** The decrypted names of `dir`, whose `names.age` is the file at `cid`. */
export async function readManifest (dir: DirectoryNode, cid: CID, load: Load, decrypter: Decrypter): Promise<Manifest> {
  const node = decodeNode(cid, await load(cid))
  if (node.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `${MANIFEST_NAME} of ${dir.cid.toString()} is not a file`)
  const what = `the names of directory ${dir.cid.toString()}`
  return decodeManifest(await decryptAll(decrypter, storedBytes(node, load), MAX_MANIFEST, what), dir.cid)
}

export interface DecryptedDirectory {
  manifest: Manifest
  /** the CID stored under each ordinal: `manifest.entries[i]` names `ordinals[i]` */
  ordinals: CID[]
  /** the `names.age` file the names were read from */
  manifestCid: CID
}

/** An encrypted directory's names, checked (safe, distinct, one per stored entry), and the CID stored under each ordinal. */
export async function readDirectory (dir: DirectoryNode, load: Load, decrypter: Decrypter): Promise<DecryptedDirectory> {
  const links = new Map<string, CID>()
  for await (const { name, cid } of directoryEntries(dir, load)) links.set(name, cid)
  const manifestCid = links.get(MANIFEST_NAME)
  if (!isEncryptedListing(links.keys()) || manifestCid === undefined) {
    throw new CairnError('ERR_DAG_INVALID', `directory ${dir.cid.toString()} in an encrypted tree is not laid out as one (expected ${MANIFEST_NAME} and entries 0 … n−1)`)
  }
  const manifest = await readManifest(dir, manifestCid, load, decrypter)
  const ordinals: CID[] = []
  for (const [name, cid] of links) {
    const ordinal = ordinalOf(name)
    if (ordinal !== undefined) ordinals[ordinal] = cid
  }
  if (manifest.entries.length !== ordinals.length) {
    throw new CairnError('ERR_DAG_INVALID', `the names of directory ${dir.cid.toString()} list ${manifest.entries.length} entries, the directory stores ${ordinals.length}`)
  }
  const seen = new Set<string>()
  for (const name of [...manifest.entries, ...manifest.symlinks.map(s => s.name)]) {
    checkName(name, dir.cid)
    if (seen.has(name)) throw new CairnError('ERR_UNSAFE_PATH', `directory ${dir.cid.toString()} holds ${JSON.stringify(name)} twice`)
    seen.add(name)
  }
  return { manifest, ordinals, manifestCid }
}

/**
 * A file's plaintext: its stored bytes (which must add up to the size the
 * node declares) decrypted as they are read, in batches of WRITE_BATCH; the
 * last batch only once the payload has authenticated to its end.
 */
export async function * decryptedContent (file: FileNode, load: Load, decrypter: Decrypter): AsyncGenerator<Uint8Array> {
  const decryptor = new AgeFileDecryptor(decrypter, `file ${file.cid.toString()}`)
  let held: Buffer[] = []
  let heldBytes = 0
  const take = (chunks: Buffer[]): void => {
    for (const chunk of chunks) {
      held.push(chunk)
      heldBytes += chunk.byteLength
    }
  }
  const batch = (): Buffer => {
    const out = held.length === 1 ? held[0] : Buffer.concat(held, heldBytes)
    held = []
    heldBytes = 0
    return out
  }
  let stored = 0
  for await (const data of storedBytes(file, load)) {
    stored += data.byteLength
    if (stored > file.size) throw new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds more`)
    take(await decryptor.update(data))
    if (heldBytes >= WRITE_BATCH) yield batch()
  }
  if (stored !== file.size) throw new CairnError('ERR_DAG_INVALID', `file ${file.cid.toString()} declares ${file.size} bytes but holds ${stored}`)
  take(decryptor.final())
  if (heldBytes > 0) yield batch()
}

/** An encrypted tree as the writer writes it: real names, symbolic links from the manifests, plaintext content. */
export function decryptedTree (decrypter: Decrypter): TreeReading {
  return {
    async * entries (dir, load) {
      const { manifest, ordinals } = await readDirectory(dir, load, decrypter)
      for (const [i, name] of manifest.entries.entries()) yield { name, cid: ordinals[i] }
      for (const { name, target } of manifest.symlinks) yield { name, target }
    },
    async * content (file, load) {
      for await (const data of decryptedContent(file, load, decrypter)) yield { data }
    },
    symlink: node => {
      throw new CairnError('ERR_DAG_INVALID', `encrypted tree holds a plain symlink node ${node.cid.toString()} (its links are kept in the encrypted names)`)
    }
  }
}
