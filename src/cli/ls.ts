/**
 * `cairn ls <cid|file.car>`: the entries of a DAG (CID, size, path), every
 * block verified; an encrypted tree by its real names and plaintext sizes
 * when an identity here opens it (docs/encryption.md), else as stored.
 */
import { stat } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { lsCar } from '../crypto/unpack.js'
import { resolveRepoPath } from '../repo/repo.js'
import { decrypterFrom, type DecryptionFlags } from './encryption-options.js'
import { Output, type GlobalOptions } from './output.js'
import { withReads } from './reads.js'

interface LsOptions extends GlobalOptions, DecryptionFlags {}

export default async function ls (args: string[], options: LsOptions): Promise<void> {
  const out = new Output(options)
  const arg = args[0]
  if (arg === undefined) throw new CairnError('ERR_USAGE', 'expected a CID or a CAR file')
  const decrypter = await decrypterFrom(options, resolveRepoPath(options.repo))
  const info = await stat(arg).catch(() => undefined)
  const carPath = info?.isFile() === true ? arg : await carOfRoot(arg, options)
  const onStored = (err: CairnError): void => out.warn(`${err.message}; listed as stored (entries by number)`)
  for await (const entry of lsCar(carPath, { decrypt: options.decrypt, decrypter, onStored })) {
    out.line({ cid: entry.cid.toString(), size: entry.size, path: entry.path, type: entry.type },
      () => out.quiet ? entry.path : `${entry.cid.toString()}\t${entry.type === 'directory' ? '-' : entry.size}\t${entry.path}${entry.type === 'directory' ? '/' : ''}`)
  }
}

/** The piece in the local repo holding the DAG of a root CID. */
async function carOfRoot (arg: string, options: GlobalOptions): Promise<string> {
  let cid: CID
  try {
    cid = CID.parse(arg)
  } catch {
    throw new CairnError('ERR_PATH_NOT_FOUND', `${arg} is neither a file nor a CID`)
  }
  const piece = await withReads(resolveRepoPath(options.repo), async (reads) => await reads.rootPiece({ root: cid.toString() }))
  if (piece === null) throw new CairnError('ERR_NOT_FOUND', `${arg} is not the root of any piece in the repo`)
  return piece
}
