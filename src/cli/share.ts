/**
 * `cairn share <root|file.car> --to age1… [--to …] [--recipients-file F]`:
 * a new root for the same encrypted tree, readable by the node itself and
 * the recipients named (docs/encryption.md). Each age file's header is
 * rewritten; its payload, and so every payload block, stays. The new piece is
 * stored in the repo, ready to deal like any other. Those who could read the
 * old root still can: access once given cannot be taken back from a copy
 * already fetched.
 */
import { stat } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { storePlan } from '../client/content.js'
import { repoAgeIdentity, uniqueRecipients } from '../crypto/keys.js'
import { shareTree } from '../crypto/share.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { findRoot } from '../store/roots.js'
import { decrypterFrom, namedRecipients, type DecryptionFlags } from './encryption-options.js'
import { Output, type GlobalOptions } from './output.js'

interface ShareOptions extends GlobalOptions, DecryptionFlags {
  to?: string[]
  recipientsFile?: string[]
}

export default async function share (args: string[], options: ShareOptions): Promise<void> {
  const out = new Output(options)
  const arg = args[0]
  if (arg === undefined) throw new CairnError('ERR_USAGE', 'expected the root CID (or CAR file) of an encrypted tree')
  const named = await namedRecipients(options)
  if (named.length === 0) throw new CairnError('ERR_USAGE', 'name who to share with: --to age1… (repeatable) or --recipients-file FILE')
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    const source = await sourceOf(repo, arg)
    const decrypter = await (await decrypterFrom(options, repo.path))()
    if (decrypter === undefined) throw new CairnError('ERR_NOT_A_RECIPIENT', 'no age identity to open the headers with')
    const recipients = uniqueRecipients([(await repoAgeIdentity(repo.path)).recipient, ...named])
    const plan = await shareTree(source, decrypter, recipients)
    const added = await storePlan(repo, plan)
    // docs/json.md: the piece as add prints it
    const result = {
      root: added.root,
      from: arg,
      pieceCid: added.piece.cid,
      pieceCidV1: added.piece.cidV1,
      pieceSize: Number(added.piece.size),
      payloadSize: added.piece.payloadSize,
      recipients,
      headers: plan.headers,
      files: plan.files
    }
    out.result(result, () => out.quiet
      ? added.root
      : `shared ${added.root}\n  from ${arg}, for ${recipients.length} recipient(s): ${plan.headers} age header(s) rewritten, every payload block unchanged\npiece ${added.piece.cid}\n      ${added.piece.cidV1} (v1)`)
  } finally {
    await repo.close()
  }
}

/** The CAR holding `arg`: the repo's piece for a root CID, or a CAR file. */
async function sourceOf (repo: Repo, arg: string): Promise<string> {
  let root: CID | undefined
  try {
    root = CID.parse(arg)
  } catch {}
  if (root === undefined) {
    if (await stat(arg).then(s => s.isFile(), () => false)) return arg
    throw new CairnError('ERR_INVALID_CID', `${JSON.stringify(arg)} is neither a CID nor a CAR file`)
  }
  const db = await repo.db()
  const record = await findRoot(db, root.toV1().toString()) ?? await findRoot(db, root.toString())
  if (record === undefined) throw new CairnError('ERR_NOT_FOUND', `${arg} is not in this repo (share works on the node's own copy: cairn get ${arg} --car FILE, then share FILE)`)
  return new PieceStore(repo.piecesDir, repo.tmpDir).path(record.piece)
}
