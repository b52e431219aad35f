/**
 * An encrypted tree (docs/encryption.md) read as the plaintext it was made
 * from, through the one UnixFS reader: each directory's names from its
 * decrypted manifest, each file's content decrypted as its blocks are read
 * (the writer's reading for unpack and get), its entries listed by their
 * real names (ls), and a path of real names turned into the stored one
 * (get <root>/<path>). Blocks come through a `Load`, so any source of
 * verified blocks serves: a CAR file, or a provider's blocks one at a time.
 */
import type { Decrypter } from 'age-encryption'
import type { CID } from 'multiformats/cid'
import { CairnError, isCairnError } from '../errors.js'
import type { Block, Entry, Load } from '../unixfs/interface.js'
import { checkName, decodeNode, readNode, type DirectoryNode, type FileNode } from '../unixfs/node.js'
import { directoryEntries, fileParts, resolvePath } from '../unixfs/reader.js'
import type { TreeReading } from '../unixfs/writer.js'
import { AgeFileDecryptor, decryptAll } from './decrypt.js'
import { headerLength, MAX_HEADER, startsLikeAge } from './header.js'
import { isEncryptedListing } from './layout.js'
import { decodeManifest, MANIFEST_NAME, MAX_MANIFEST, ordinalName, ordinalOf, type Manifest } from './names.js'
import { NONCE, plaintextSize } from './stream.js'

/** Gathers plaintext into large writes (the payload opens in 64 KiB chunks). */
const WRITE_BATCH = 1024 * 1024

/** A file's bytes as stored, block by block. */
async function * storedBytes (file: FileNode, load: Load): AsyncGenerator<Uint8Array> {
  for await (const part of fileParts(file, load)) yield part.data
}

/** The decrypted names of the directory `dir`, whose `names.age` is the file at `cid`. */
async function readManifest (dir: CID, cid: CID, load: Load, decrypter: Decrypter): Promise<Manifest> {
  const node = decodeNode(cid, await load(cid))
  if (node.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `${MANIFEST_NAME} of ${dir.toString()} is not a file`)
  const what = `the names of directory ${dir.toString()}`
  return decodeManifest(await decryptAll(decrypter, storedBytes(node, load), MAX_MANIFEST, what), dir)
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
  const manifest = await readManifest(dir.cid, manifestCid, load, decrypter)
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

function plainSymlink (cid: CID): CairnError {
  return new CairnError('ERR_DAG_INVALID', `encrypted tree holds a plain symlink node ${cid.toString()} (its links are kept in the encrypted names)`)
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
    symlink: node => { throw plainSymlink(node.cid) }
  }
}

/** The block stored under `name` in the encrypted directory `dir`, which its layout says is there. */
async function stored (dir: Block, name: string, load: Load): Promise<Block> {
  try {
    return (await resolvePath(dir, [name], load)).terminal
  } catch (err) {
    if (!isCairnError(err) || err.code !== 'ERR_PATH_NOT_FOUND') throw err
    throw new CairnError('ERR_DAG_INVALID', `directory ${dir.cid.toString()} in an encrypted tree stores no ${JSON.stringify(name)} (its names say it does)`, { cause: err })
  }
}

/**
 * The stored path (ordinals) of `path`, given in real names below the
 * encrypted directory `root`: at each level the directory's `names.age` is
 * decrypted, the name found in it, and its ordinal looked up in the
 * directory, both by the one resolver. Only the blocks on the way are read
 * (each directory, the shards on the way to two of its names, its
 * manifest), so a provider can serve them one at a time. A name that is not
 * there, or is a symbolic link (kept in the names only), is ERR_PATH_NOT_FOUND.
 */
export async function storedPath (root: Block, path: string[], load: Load, decrypter: Decrypter): Promise<string[]> {
  const out: string[] = []
  let current = root
  for (const [i, segment] of path.entries()) {
    const where = `/${path.slice(0, i + 1).join('/')}`
    const node = readNode(current.cid, current.bytes)
    if (node?.type !== 'directory' && node?.type !== 'hamt-sharded-directory') {
      throw new CairnError('ERR_PATH_NOT_FOUND', `${where}: ${current.cid.toString()} is not a directory`)
    }
    const names = await stored(current, MANIFEST_NAME, load)
    const manifest = await readManifest(current.cid, names.cid, load, decrypter)
    const index = manifest.entries.indexOf(segment)
    if (index < 0) {
      const link = manifest.symlinks.some(l => l.name === segment)
      throw new CairnError('ERR_PATH_NOT_FOUND', link
        ? `${where} under ${root.cid.toString()} is a symbolic link, kept only in its directory's encrypted names: get the directory that holds it`
        : `no such path ${where} under ${root.cid.toString()}`)
    }
    const ordinal = ordinalName(index)
    current = await stored(current, ordinal, load)
    out.push(ordinal)
  }
  return out
}

/** An age file's plaintext size, from its stored size and its header's length: no key is needed. */
async function plaintextSizeOf (file: FileNode, load: Load): Promise<number> {
  let head: Uint8Array = new Uint8Array(0)
  for await (const data of storedBytes(file, load)) {
    head = head.byteLength === 0 ? data : Buffer.concat([head, data])
    const length = headerLength(head)
    if (length !== undefined) {
      const size = plaintextSize(file.size - length - NONCE)
      if (size === undefined) break
      return size
    }
    if (!startsLikeAge(head) || head.byteLength > MAX_HEADER) break
  }
  throw new CairnError('ERR_DECRYPTION_FAILED', `file ${file.cid.toString()} in an encrypted tree is not an age file of a possible size`)
}

/**
 * Every entry under the encrypted `cid` (named `path`), depth first, the
 * entry itself first, as `list` gives a plaintext tree: real names,
 * plaintext sizes. A symbolic link has no block of its own: its CID is that
 * of the `names.age` holding it.
 */
export async function * listDecrypted (load: Load, cid: CID, path: string, decrypter: Decrypter): AsyncGenerator<Entry> {
  const node = decodeNode(cid, await load(cid))
  switch (node.type) {
    case 'file':
      yield { cid, path, size: await plaintextSizeOf(node, load), type: 'file' }
      return
    case 'symlink':
      throw plainSymlink(node.cid)
    default: {
      yield { cid, path, size: 0, type: 'directory' }
      const { manifest, ordinals, manifestCid } = await readDirectory(node, load, decrypter)
      for (const [i, name] of manifest.entries.entries()) yield * listDecrypted(load, ordinals[i], `${path}/${name}`, decrypter)
      for (const { name, target } of manifest.symlinks) yield { cid: manifestCid, path: `${path}/${name}`, size: target.byteLength, type: 'symlink' }
    }
  }
}
