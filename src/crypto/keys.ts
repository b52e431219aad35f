/**
 * age keys as cairn handles them: X25519 recipients (`age1…`), identities
 * (`AGE-SECRET-KEY-1…`) read from files in the format `age-keygen` writes
 * (https://github.com/C2SP/C2SP/blob/main/age.md, "X25519 recipients"), and
 * the node's own identity, kept in the repo as `age.key` (mode 0600) beside
 * the Ed25519 `identity.key`.
 */
import { link, open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Decrypter } from 'age-encryption'
import { CairnError, fromSystemError } from '../errors.js'
import { fsyncDir, tempPathFor } from '../fs/atomic.js'
import { ageLowLevel } from './age-lib.js'

declare const recipientBrand: unique symbol
/** An X25519 age recipient, `age1…`, checked. */
export type Recipient = string & { readonly [recipientBrand]: true }

// age-encryption (with its post-quantum and cipher modules) loads only when a key is used:
// every command opens a repo, few of them encrypt or decrypt
const age = async (): Promise<typeof import('age-encryption')> => await import('age-encryption')

/** The repo file holding the node's age identity. */
export const AGE_KEY_FILE = 'age.key'

/** Checks one `age1…` recipient, or ERR_INVALID_RECIPIENT naming where it came from. */
export async function parseRecipient (text: string, where = 'recipient'): Promise<Recipient> {
  const value = text.trim()
  const { recipients } = await ageLowLevel()
  try {
    // the library's own parser: bech32, HRP "age", 32 bytes
    // eslint-disable-next-line no-new -- the constructor is the library's parser; only its refusal is wanted
    new recipients.X25519Recipient(value)
  } catch {
    const hint = value.startsWith('age1pq1') || value.startsWith('age1tag')
      ? ' (only X25519 recipients, age1… from age-keygen, are supported)'
      : value.startsWith('ssh-') ? ' (SSH keys are not supported; use an age1… recipient)' : ''
    throw new CairnError('ERR_INVALID_RECIPIENT', `${where} is not an age X25519 recipient: ${JSON.stringify(value.slice(0, 80))}${hint}`)
  }
  return value as Recipient
}

/** The lines of an age recipients or identity file that carry a key: not blank, not `#` comments. */
function keyLines (text: string): Array<{ line: number, value: string }> {
  return text.split(/\r?\n/).map((value, i) => ({ line: i + 1, value: value.trim() })).filter(l => l.value !== '' && !l.value.startsWith('#'))
}

/** The recipients of a file in age's `-R` format: one per line, `#` comments and blank lines ignored. */
export async function readRecipientsFile (path: string): Promise<Recipient[]> {
  const text = await readText(path)
  const out: Recipient[] = []
  for (const { line, value } of keyLines(text)) out.push(await parseRecipient(value, `${path} line ${line}`))
  if (out.length === 0) throw new CairnError('ERR_INVALID_RECIPIENT', `${path} names no recipient`)
  return out
}

/** Recipients without repeats, in first-seen order. */
export function uniqueRecipients (recipients: Iterable<Recipient>): Recipient[] {
  return [...new Set(recipients)]
}

/**
 * The X25519 identities of an age identity file (`age-keygen` output, or
 * what `cairn id --age-identity` prints), or ERR_INVALID_IDENTITY.
 */
export async function parseIdentities (text: string, where: string): Promise<string[]> {
  const out: string[] = []
  for (const { line, value } of keyLines(text)) {
    if (!value.startsWith('AGE-SECRET-KEY-1')) {
      throw new CairnError('ERR_INVALID_IDENTITY', `${where} line ${line} is not an age X25519 identity (AGE-SECRET-KEY-1…)`)
    }
    try {
      await (await age()).identityToRecipient(value)
    } catch {
      throw new CairnError('ERR_INVALID_IDENTITY', `${where} line ${line} is not a valid age identity (bad bech32 or length)`)
    }
    out.push(value)
  }
  if (out.length === 0) throw new CairnError('ERR_INVALID_IDENTITY', `${where} holds no age identity`)
  return out
}

export async function readIdentityFile (path: string): Promise<string[]> {
  return await parseIdentities(await readText(path), path)
}

async function readText (path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw fromSystemError(err, path)
  }
}

/** The identities a node decrypts with: age-encryption's Decrypter holding each. */
export async function decrypterFor (identities: readonly string[]): Promise<Decrypter> {
  const { Decrypter } = await age()
  const decrypter = new Decrypter()
  for (const identity of identities) decrypter.addIdentity(identity)
  return decrypter
}

export interface AgeIdentity {
  /** AGE-SECRET-KEY-1… */
  readonly identity: string
  /** age1… */
  readonly recipient: Recipient
  /** the file as kept in the repo, in age-keygen's format */
  readonly file: string
}

function identityFile (identity: string, recipient: string): string {
  return `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`
}

/**
 * The node's age identity in the repo at `repoPath`, created on first use
 * (repos made before encryption existed have none). Creation is atomic and
 * never replaces an identity another process created meanwhile: the new file
 * is linked into place, which fails if one is already there, and then that
 * one is used — data encrypted to a key that was then overwritten would be lost.
 */
export async function repoAgeIdentity (repoPath: string): Promise<AgeIdentity> {
  const target = join(repoPath, AGE_KEY_FILE)
  const existing = await readAgeKey(target)
  if (existing !== undefined) return existing
  const identity = await (await age()).generateX25519Identity()
  const recipient = await (await age()).identityToRecipient(identity) as Recipient
  const temp = tempPathFor(target)
  try {
    const handle = await open(temp, 'wx', 0o600)
    try {
      await handle.writeFile(identityFile(identity, recipient))
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(temp, target)
      await fsyncDir(repoPath)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  } catch (err) {
    throw fromSystemError(err, target)
  } finally {
    await rm(temp, { force: true })
  }
  const made = await readAgeKey(target)
  if (made === undefined) throw new CairnError('ERR_REPO_CORRUPT', `${target} vanished while it was being created`)
  return made
}

async function readAgeKey (path: string): Promise<AgeIdentity | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fromSystemError(err, path)
  }
  let identities: string[]
  try {
    identities = await parseIdentities(text, path)
  } catch (err) {
    throw new CairnError('ERR_REPO_CORRUPT', `the repo's age identity is damaged: ${(err as Error).message}`, { cause: err })
  }
  if (identities.length !== 1) throw new CairnError('ERR_REPO_CORRUPT', `${path} should hold one age identity, found ${identities.length}`)
  const identity = identities[0]
  return { identity, recipient: await (await age()).identityToRecipient(identity) as Recipient, file: text }
}
