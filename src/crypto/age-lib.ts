/**
 * age-encryption (the reference TypeScript implementation of age,
 * https://github.com/FiloSottile/typage) and the parts of it that are not in
 * its package exports.
 *
 * Its public API (Encrypter, Decrypter) draws a fresh file key for every file
 * it encrypts. cairn needs two things that API cannot do:
 * - `cairn share` rewrites a file's header for a new recipient set while the
 *   payload stays: that means wrapping an *existing* file key, which only the
 *   library's lower-level modules do (`X25519Recipient.wrapFileKey`,
 *   `encodeHeaderNoMAC`, `encodeHeader`);
 * - the importer reads a file twice (hash, then write the CAR) and both passes
 *   must give the same ciphertext, so the file key and nonce are drawn once
 *   per file and kept (see stream.ts for the payload).
 * The package's `exports` names only its index, so those modules are loaded by
 * URL from the installed package, beside its index. The version is pinned
 * exactly in package.json, and test/crypto checks what is built with them
 * against the library's Decrypter and against the `age` command.
 */
import { CairnError } from '../errors.js'

/** A section of an age header (age-encryption.org/v1, "Header"). */
export interface Stanza {
  readonly args: string[]
  readonly body: Uint8Array
}

interface RecipientsModule {
  X25519Recipient: new (recipient: string) => { wrapFileKey: (fileKey: Uint8Array) => Promise<Stanza[]> }
}

interface FormatModule {
  encodeHeaderNoMAC: (stanzas: Stanza[]) => Uint8Array
  encodeHeader: (stanzas: Stanza[], mac: Uint8Array) => Uint8Array
}

export interface AgeLowLevel {
  recipients: RecipientsModule
  format: FormatModule
}

let loading: Promise<AgeLowLevel> | undefined

/** The lower-level modules of age-encryption, loaded once. */
export async function ageLowLevel (): Promise<AgeLowLevel> {
  loading ??= load()
  return await loading
}

async function load (): Promise<AgeLowLevel> {
  const index = import.meta.resolve('age-encryption')
  const recipients = await import(new URL('./recipients.js', index).href) as Partial<RecipientsModule>
  const format = await import(new URL('./format.js', index).href) as Partial<FormatModule>
  if (typeof recipients.X25519Recipient !== 'function' || typeof format.encodeHeader !== 'function' || typeof format.encodeHeaderNoMAC !== 'function') {
    throw new CairnError('ERR_INTERNAL', 'the installed age-encryption lacks X25519Recipient or encodeHeader; reinstall the version pinned in package.json')
  }
  return { recipients: recipients as RecipientsModule, format: format as FormatModule }
}
