/**
 * Sharing an encrypted tree (docs/encryption.md): every age file in it — each
 * file and each directory's names — gets a header for the new recipient set,
 * wrapping the same file key, so its payload stays as it was. Since the
 * header is a file's first leaf, what changes is that leaf, the nodes on the
 * way down to it (the first link of each), and the directories above; every
 * payload leaf and every other node is the same block as before, read back
 * from the old CAR when the new one is written. The tree keeps its shape:
 * directories, shards and files are re-linked, never re-laid out.
 */
import { stat } from 'node:fs/promises'
import * as dagPb from '@ipld/dag-pb'
import type { Decrypter } from 'age-encryption'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { encodeHeader, linksOf, openCarFile, type CarFile } from '../car/index.js'
import { RAW, SHA2_256 } from '../codecs.js'
import { CairnError, fromSystemError } from '../errors.js'
import { shardLinks } from '../unixfs/hamt.js'
import { cidOf, PlannedBlocks, type Child, type FileRef, type ImportPlan } from '../unixfs/importer.js'
import { decodeNode, type DirectoryNode, type FileNode } from '../unixfs/node.js'
import { resolveProfile } from '../unixfs/profile.js'
import { isHeader, readFileKey, writeHeader } from './header.js'
import type { Recipient } from './keys.js'
import { isEncryptedRoot } from './layout.js'

interface Rewritten {
  cid: CID
  /** Tsize: bytes of the whole sub-DAG */
  size: number
  /** UnixFS content bytes (files) */
  fileSize: number
  child: Child
}

const EMPTY = new Uint8Array(0)

class Rewrite extends PlannedBlocks {
  /** age files given a new header: files and directory manifests */
  headers = 0
  directories = 0

  constructor (readonly car: CarFile, readonly source: FileRef, readonly decrypter: Decrypter, readonly recipients: readonly Recipient[]) {
    super()
  }

  /** A new block, kept for the CAR. */
  made (cid: CID, bytes: Uint8Array, children: Child[]): void {
    this.add(cid, bytes.byteLength, { bytes, children })
  }

  /** An unchanged block: a leaf read back from the old CAR, or a node kept with its children. */
  async same (cid: CID): Promise<Child> {
    const at = this.car.locate(cid)
    if (at === undefined) throw new CairnError('ERR_CAR_BLOCK_MISSING', `block ${cid.toString()} is not in ${this.car.path}`)
    if (cid.multihash.code !== SHA2_256) throw new CairnError('ERR_DAG_INVALID', `block ${cid.toString()} is not hashed with sha2-256`)
    if (cid.code !== RAW) {
      const bytes = await this.car.get(cid)
      const links = linksOf(cid, bytes)
      if (links.length > 0) {
        const children: Child[] = []
        for (const link of links) children.push(await this.same(link))
        this.made(cid, bytes, children)
        return { cid }
      }
    }
    this.add(cid, at.length)
    return { cid, leaf: { file: this.source, offset: at.offset, length: at.length } }
  }

  /** An entry of an encrypted directory: a directory, or an age file. */
  async entry (cid: CID): Promise<Rewritten> {
    const node = decodeNode(cid, await this.car.get(cid))
    if (node.type === 'directory' || node.type === 'hamt-sharded-directory') {
      this.directories++
      return await this.relink(node)
    }
    if (node.type === 'symlink') throw new CairnError('ERR_DAG_INVALID', `entry ${cid.toString()} of an encrypted tree is a UnixFS symlink, not an age file`)
    if (node.pb === undefined || node.pb.Links.length === 0) throw new CairnError('ERR_DAG_INVALID', `entry ${cid.toString()} of an encrypted tree is a bare leaf, not an age file`)
    this.headers++
    return await this.file(node)
  }

  private async shard (cid: CID): Promise<Rewritten> {
    const node = decodeNode(cid, await this.car.get(cid))
    if (node.type !== 'hamt-sharded-directory') throw new CairnError('ERR_DAG_INVALID', `shard link to ${cid.toString()} is not a shard`)
    return await this.relink(node)
  }

  /** A directory node with every link rewritten: the same names and Data, new CIDs and sizes. */
  private async relink (dir: DirectoryNode): Promise<Rewritten> {
    // in a HAMT shard, which links are sub-shards and which are entries
    const kinds = dir.type === 'hamt-sharded-directory' ? shardLinks(dir) : undefined
    const links: dagPb.PBLink[] = []
    const children: Child[] = []
    let size = 0
    for (const [i, link] of dir.pb.Links.entries()) {
      const kind = kinds?.[i]
      const sub = kind !== undefined && 'shard' in kind ? await this.shard(link.Hash) : await this.entry(link.Hash)
      links.push({ Name: link.Name, Tsize: sub.size, Hash: sub.cid })
      children.push(sub.child)
      size += sub.size
    }
    return this.node(dir.cid, { Data: dir.pb.Data, Links: links }, children, size, 0)
  }

  /** An age file: the way down its first links to the header leaf is rewritten, the rest kept. */
  private async file (node: FileNode): Promise<Rewritten> {
    const { cid, pb, unixfs } = node
    if (pb === undefined || unixfs === undefined) throw new TypeError(`file ${cid.toString()} is a leaf`)
    const first = pb.Links[0]
    const child = decodeNode(first.Hash, await this.car.get(first.Hash))
    if (child.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `file node ${cid.toString()} links to a ${child.type}`)
    const sub = child.pb === undefined || child.pb.Links.length === 0 ? await this.header(child) : await this.file(child)
    const sizes = unixfs.blockSizes
    if (sizes.length !== pb.Links.length) throw new CairnError('ERR_DAG_INVALID', `file node ${cid.toString()} has ${pb.Links.length} links but ${sizes.length} block sizes`)
    sizes[0] = BigInt(sub.fileSize)
    const links: dagPb.PBLink[] = [{ Name: first.Name, Tsize: sub.size, Hash: sub.cid }]
    const children: Child[] = [sub.child]
    let size = sub.size
    for (const link of pb.Links.slice(1)) {
      if (link.Tsize === undefined) throw new CairnError('ERR_DAG_INVALID', `file node ${cid.toString()} has a link without Tsize`)
      links.push(link)
      children.push(await this.same(link.Hash))
      size += link.Tsize
    }
    const fileSize = sizes.reduce((sum, n) => sum + Number(n), 0) + (unixfs.data?.byteLength ?? 0)
    return this.node(cid, { Data: unixfs.marshal(), Links: links }, children, size, fileSize)
  }

  /** The header leaf, for the new recipients: the same file key, so the payload still opens. */
  private async header (leaf: FileNode): Promise<Rewritten> {
    const { cid } = leaf
    const header = leaf.pb === undefined ? leaf.bytes : leaf.unixfs?.data ?? EMPTY
    if (!isHeader(header)) throw new CairnError('ERR_DAG_INVALID', `the first leaf ${cid.toString()} of an encrypted file is not one age header`)
    const fileKey = await readFileKey(this.decrypter, header)
    const fresh = await writeHeader(fileKey, this.recipients)
    if (cid.code === RAW) {
      const made = cidOf(1, RAW, fresh)
      this.made(made, fresh, [])
      return { cid: made, size: fresh.byteLength, fileSize: fresh.byteLength, child: { cid: made } }
    }
    const bytes = dagPb.encode({ Data: new UnixFS({ type: 'file', data: fresh }).marshal(), Links: [] })
    const made = cidOf(cid.version, dagPb.code, bytes)
    this.made(made, bytes, [])
    return { cid: made, size: bytes.byteLength, fileSize: fresh.byteLength, child: { cid: made } }
  }

  private node (old: CID, node: dagPb.PBNode, children: Child[], linked: number, fileSize: number): Rewritten {
    const bytes = dagPb.encode(dagPb.prepare(node))
    const cid = cidOf(old.version, dagPb.code, bytes)
    this.made(cid, bytes, children)
    return { cid, size: linked + bytes.byteLength, fileSize, child: { cid } }
  }
}

/**
 * Plans the CAR of the encrypted tree in `carPath` shared with `recipients`
 * (its headers unwrapped with `decrypter`): a new root whose CAR
 * `carStream` writes, new blocks from memory and the rest from `carPath`.
 * A tree that is not encrypted is ERR_NOT_ENCRYPTED; a header no identity
 * here opens, ERR_NOT_A_RECIPIENT.
 */
export async function shareTree (carPath: string, decrypter: Decrypter, recipients: readonly Recipient[]): Promise<ImportPlan & { headers: number }> {
  if (recipients.length === 0) throw new CairnError('ERR_INVALID_RECIPIENT', 'sharing needs at least one recipient')
  const car = await openCarFile(carPath)
  try {
    if (!await isEncryptedRoot(car.root, car.get)) throw new CairnError('ERR_NOT_ENCRYPTED', `${car.root.toString()} is not an encrypted tree: there is no header to rewrite (add it with --encrypt)`)
    let stats
    try {
      stats = await stat(carPath)
    } catch (err) {
      throw fromSystemError(err, carPath)
    }
    const source: FileRef = { path: carPath, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, blocks: true }
    const rewrite = new Rewrite(car, source, decrypter, recipients)
    const root = await rewrite.entry(car.root)
    return {
      root: root.cid,
      profile: resolveProfile({ profile: root.cid.version === 0 ? 'unixfs-v0-2015' : 'unixfs-v1-2025' }),
      bytes: 0,
      // every encrypted directory has one manifest; the other age files are files
      files: rewrite.headers - rewrite.directories,
      headers: rewrite.headers,
      directories: rewrite.directories,
      blocks: rewrite.seen.size,
      carSize: encodeHeader([root.cid]).byteLength + rewrite.carSize,
      dag: { nodes: rewrite.nodes, root: root.child }
    }
  } finally {
    await car.close()
  }
}
