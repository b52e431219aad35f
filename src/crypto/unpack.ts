/**
 * Writing an encrypted tree back out as the plaintext it was made from: the
 * CAR is opened and every block verified as for any unpack, then each
 * directory's manifest is decrypted for its names and each file's age
 * content decrypted as it is written. As with `unpack`, everything goes into
 * a temporary sibling of the target, moved into place only when all of it
 * was written.
 */
import { mkdir, open, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Decrypter } from 'age-encryption'
import type { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import {
  checkName, checkTarget, directoryEntries, fileContent, openCarFile, resolveEntry, unpackOpen, writeTree,
  type CarFile, type Resolved, type UnpackResult
} from '../unixfs/exporter.js'
import { AgeFileDecryptor, decryptAll } from './decrypt.js'
import { isEncryptedListing, isEncryptedRoot } from './layout.js'
import { decodeManifest, MANIFEST_NAME, MAX_MANIFEST, ordinalOf, type Manifest } from './names.js'

export interface UnpackOptions {
  force?: boolean
  /** false: write an encrypted tree as it is stored (ordinal names, age files) */
  decrypt?: boolean
  /**
   * the identities to decrypt with, or a function giving them, called only
   * when the tree is encrypted; without any, an encrypted tree is ERR_NOT_A_RECIPIENT
   */
  decrypter?: Decrypter | (() => Promise<Decrypter | undefined>)
}

export interface DecryptingUnpackResult extends UnpackResult {
  /** whether the tree was encrypted and has been decrypted */
  decrypted: boolean
}

/** Gathers plaintext into large writes. */
const WRITE_BATCH = 1024 * 1024

/**
 * Verifies a CAR file and writes its root entry at `output`, decrypting it
 * when it is an encrypted tree (and `decrypt` is not false).
 */
export async function unpackCar (carPath: string, output: string, options: UnpackOptions = {}): Promise<DecryptingUnpackResult> {
  const exists = await checkTarget(output, options)
  const car = await openCarFile(carPath, { checkNames: true })
  try {
    if (options.decrypt === false || !await isEncryptedRoot(car)) return { ...await unpackOpen(car, output, exists), decrypted: false }
    const decrypter = typeof options.decrypter === 'function' ? await options.decrypter() : options.decrypter
    if (decrypter === undefined) {
      throw new CairnError('ERR_NOT_A_RECIPIENT', `${car.root.toString()} is encrypted and no age identity is at hand (no repo here; pass --identity FILE, or --no-decrypt to write it as stored)`)
    }
    return { ...await writeTree(car, output, exists, async (temp, result) => { await writeDecrypted(car, decrypter, car.root, temp, result) }), decrypted: true }
  } finally {
    await car.close()
  }
}

async function writeDecrypted (car: CarFile, decrypter: Decrypter, cid: CID, path: string, result: UnpackResult): Promise<void> {
  const entry = await resolveEntry(car, cid)
  switch (entry.type) {
    case 'symlink':
      throw new CairnError('ERR_DAG_INVALID', `encrypted tree holds a plain symlink node ${cid.toString()} (its links are kept in the encrypted names)`)
    case 'file': {
      const handle = await open(path, 'wx', 0o644)
      try {
        result.bytes += await writeFile(car, decrypter, entry, handle)
      } finally {
        await handle.close()
      }
      result.files++
      return
    }
    case 'directory': {
      const { manifest, ordinals } = await readDirectory(car, decrypter, entry)
      await mkdir(path, { mode: 0o755 })
      result.directories++
      for (const [i, name] of manifest.entries.entries()) await writeDecrypted(car, decrypter, ordinals[i], join(path, name), result)
      for (const { name, target } of manifest.symlinks) {
        await symlink(Buffer.from(target), join(path, name))
        result.symlinks++
      }
    }
  }
}

/** Decrypts a file's content into `handle`; returns the plaintext bytes written. */
async function writeFile (car: CarFile, decrypter: Decrypter, entry: Extract<Resolved, { type: 'file' }>, handle: FileHandle): Promise<number> {
  const decryptor = new AgeFileDecryptor(decrypter, `file ${entry.cid.toString()}`)
  let held: Buffer[] = []
  let heldBytes = 0
  let written = 0
  let stored = 0
  const write = async (chunks: Buffer[], flush: boolean): Promise<void> => {
    for (const chunk of chunks) {
      held.push(chunk)
      heldBytes += chunk.byteLength
    }
    if (heldBytes >= WRITE_BATCH || (flush && heldBytes > 0)) {
      await handle.writev(held)
      written += heldBytes
      held = []
      heldBytes = 0
    }
  }
  for await (const part of fileContent(car, entry)) {
    stored += part.byteLength
    await write(await decryptor.update(part), false)
  }
  if (stored !== entry.size) throw new CairnError('ERR_DAG_INVALID', `file ${entry.cid.toString()} declares ${entry.size} bytes but holds ${stored}`)
  await write(decryptor.final(), true)
  return written
}

/** An encrypted directory's names, checked, and the CID stored under each ordinal. */
async function readDirectory (car: CarFile, decrypter: Decrypter, dir: Extract<Resolved, { type: 'directory' }>): Promise<{ manifest: Manifest, ordinals: CID[] }> {
  const links = new Map<string, CID>()
  for await (const { name, cid } of directoryEntries(car, dir)) links.set(name, cid)
  const manifestCid = links.get(MANIFEST_NAME)
  if (!isEncryptedListing(links.keys()) || manifestCid === undefined) {
    throw new CairnError('ERR_DAG_INVALID', `directory ${dir.cid.toString()} in an encrypted tree is not laid out as one (expected ${MANIFEST_NAME} and entries 0 … n−1)`)
  }
  const manifestEntry = await resolveEntry(car, manifestCid)
  if (manifestEntry.type !== 'file') throw new CairnError('ERR_DAG_INVALID', `${MANIFEST_NAME} of ${dir.cid.toString()} is not a file`)
  const what = `the names of directory ${dir.cid.toString()}`
  const manifest = decodeManifest(await decryptAll(decrypter, fileContent(car, manifestEntry), MAX_MANIFEST, what), dir.cid)
  const ordinals: CID[] = []
  for (const [name, cid] of links) {
    const ordinal = ordinalOf(name)
    if (ordinal !== undefined) ordinals[ordinal] = cid
  }
  if (manifest.entries.length !== ordinals.length) {
    throw new CairnError('ERR_DAG_INVALID', `${what} list ${manifest.entries.length} entries, the directory stores ${ordinals.length}`)
  }
  const seen = new Set<string>()
  for (const name of [...manifest.entries, ...manifest.symlinks.map(s => s.name)]) {
    checkName(name, dir.cid)
    if (seen.has(name)) throw new CairnError('ERR_UNSAFE_PATH', `directory ${dir.cid.toString()} holds ${JSON.stringify(name)} twice`)
    seen.add(name)
  }
  return { manifest, ordinals }
}
