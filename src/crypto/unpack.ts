/**
 * Reading an encrypted tree in a CAR file back out as the plaintext it was
 * made from: the CAR is opened and every block verified as for any unpack or
 * ls, then each directory's manifest is decrypted for its names and each
 * file's age content decrypted as it is written (tree.ts). As with `unpack`,
 * everything goes into a temporary sibling of the target, moved into place
 * only when all of it was written.
 */
import type { Decrypter } from 'age-encryption'
import type { CID } from 'multiformats/cid'
import { openCarFile } from '../car/index.js'
import { CairnError, isCairnError } from '../errors.js'
import { ls, unpack, type Entry, type UnpackResult } from '../unixfs/exporter.js'
import { decodeNode } from '../unixfs/node.js'
import { isEncryptedRoot } from './layout.js'
import { decryptedTree, listDecrypted, readDirectory } from './tree.js'

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

/** The identities of `option`, or ERR_NOT_A_RECIPIENT naming the encrypted `root` none is at hand for. */
export async function decrypterOf (option: UnpackOptions['decrypter'], root: CID): Promise<Decrypter> {
  const decrypter = typeof option === 'function' ? await option() : option
  if (decrypter === undefined) {
    throw new CairnError('ERR_NOT_A_RECIPIENT', `${root.toString()} is encrypted and no age identity is at hand (no repo here; pass --identity FILE, or --no-decrypt to write it as stored)`)
  }
  return decrypter
}

/**
 * Verifies a CAR file and writes its root entry at `output`, decrypting it
 * when it is an encrypted tree (and `decrypt` is not false).
 */
export async function unpackCar (carPath: string, output: string, options: UnpackOptions = {}): Promise<DecryptingUnpackResult> {
  let decrypted = false
  const result = await unpack(carPath, output, {
    force: options.force,
    readAs: async car => {
      if (options.decrypt === false || !await isEncryptedRoot(car.root, car.get)) return undefined
      const reading = decryptedTree(await decrypterOf(options.decrypter, car.root))
      decrypted = true
      return reading
    }
  })
  return { ...result, decrypted }
}

export interface LsOptions {
  /** false: list an encrypted tree as it is stored */
  decrypt?: boolean
  decrypter?: UnpackOptions['decrypter']
  /** told why an encrypted tree is listed as stored after all: no identity here opens its names */
  onStored?: (err: CairnError) => void
}

/**
 * Lists a CAR file, verifying it first (exporter's `ls`): an encrypted tree
 * by its real names and plaintext sizes when an identity here opens the
 * root's names, else as stored (and `onStored` says why).
 */
export async function * lsCar (carPath: string, options: LsOptions = {}): AsyncGenerator<Entry> {
  const car = await openCarFile(carPath)
  try {
    const decrypter = options.decrypt === false || !await isEncryptedRoot(car.root, car.get)
      ? undefined
      : await openable(car.root, car.get, options)
    yield * (decrypter === undefined ? ls(car) : listDecrypted(car.get, car.root, car.root.toString(), decrypter))
  } finally {
    await car.close()
  }
}

/** The identities, if they open the encrypted `root`'s names (a file's header is read only as it is listed: no key is needed for its size). */
async function openable (root: CID, load: (cid: CID) => Promise<Uint8Array>, options: LsOptions): Promise<Decrypter | undefined> {
  try {
    const decrypter = await decrypterOf(options.decrypter, root)
    const node = decodeNode(root, await load(root))
    if (node.type === 'directory' || node.type === 'hamt-sharded-directory') await readDirectory(node, load, decrypter)
    return decrypter
  } catch (err) {
    if (!isCairnError(err) || err.code !== 'ERR_NOT_A_RECIPIENT') throw err
    options.onStored?.(err)
    return undefined
  }
}
