/**
 * The encryption flags of `add` and `pack` (docs/encryption.md), and the
 * decryption flags of `get`, `unpack` and `share`: `--encrypt`,
 * `--recipient age1…` (repeatable) and `--recipients-file FILE` (repeatable;
 * age's `-R` format). Naming a recipient implies `--encrypt`, as `age -r`
 * does. The node's own age recipient is always one of them when there is a
 * repo, so what it stores it can read back.
 */
import { CairnError, isCairnError } from '../errors.js'
import type { Decrypter } from 'age-encryption'
import { decrypterFor, parseRecipient, readIdentityFile, readRecipientsFile, repoAgeIdentity, uniqueRecipients, type Recipient } from '../crypto/keys.js'
import type { AgeContentEncryption } from '../crypto/encrypt.js'
import { Repo } from '../repo/repo.js'

export interface EncryptionFlags {
  encrypt?: boolean
  recipient?: string[]
  recipientsFile?: string[]
}

/** The recipients named by the flags, checked, before any input is read. */
export async function namedRecipients (flags: { recipient?: string[], recipientsFile?: string[], to?: string[] }): Promise<Recipient[]> {
  const out: Recipient[] = []
  for (const r of [...flags.recipient ?? [], ...flags.to ?? []]) out.push(await parseRecipient(r))
  for (const file of flags.recipientsFile ?? []) out.push(...await readRecipientsFile(file))
  return out
}

/**
 * The importer's encryption for these flags, or undefined when they ask for
 * none. `repo` is the node's repo if one is open; otherwise the one at
 * `repoPath` is used for its recipient when it exists.
 */
export async function encryptionFrom (flags: EncryptionFlags, repo: Repo | string): Promise<AgeContentEncryption | undefined> {
  const named = await namedRecipients(flags)
  if (flags.encrypt !== true && named.length === 0) return undefined
  let own: Recipient | undefined
  try {
    own = (await repoAgeIdentity(typeof repo === 'string' ? (await Repo.open(repo)).path : repo.path)).recipient
  } catch (err) {
    if (!isCairnError(err) || err.code !== 'ERR_REPO_NOT_FOUND') throw err
    if (named.length === 0) throw new CairnError('ERR_USAGE', `--encrypt needs a recipient: there is no repo at ${String(repo)} to encrypt to; name one with --recipient age1… or --recipients-file`)
  }
  // the encrypting importer (age headers, STREAM sealing, its worker pool) loads only when asked for
  const { ageEncryption } = await import('../crypto/encrypt.js')
  return ageEncryption(uniqueRecipients(own === undefined ? named : [own, ...named]))
}

export interface DecryptionFlags {
  /** age identity files (repeatable) */
  identity?: string[]
  /** false with --no-decrypt */
  decrypt?: boolean
}

/**
 * The identities `get`, `unpack` and `share` decrypt with: those in the
 * `--identity` files (read now, so a bad file fails before any work) and the
 * repo's own (read, or made, only when something encrypted turns up).
 */
export async function decrypterFrom (flags: DecryptionFlags, repoPath: string): Promise<() => Promise<Decrypter | undefined>> {
  const named: string[] = []
  for (const file of flags.identity ?? []) named.push(...await readIdentityFile(file))
  return async () => {
    const identities = [...named]
    try {
      identities.push((await repoAgeIdentity((await Repo.open(repoPath)).path)).identity)
    } catch (err) {
      if (!isCairnError(err) || err.code !== 'ERR_REPO_NOT_FOUND') throw err
    }
    return identities.length === 0 ? undefined : await decrypterFor(identities)
  }
}
