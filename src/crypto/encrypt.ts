/**
 * Encrypted imports: each file becomes an age file (age-encryption.org/v1,
 * X25519 recipients, ChaCha20-Poly1305 STREAM in 64 KiB chunks) laid out as
 * docs/encryption.md describes, names kept in encrypted manifests.
 *
 * `encryptTree` draws a fresh file key and nonce for every file each time it
 * runs, so two calls on the same input give two DAGs that share no block:
 * what a replica needs to be a copy of its own.
 */
import { randomBytes } from 'node:crypto'
import { CairnError } from '../errors.js'
import { planImport, type ContentEncryption, type FileEncryption, type ImportOptions, type ImportPlan } from '../unixfs/importer.js'
import { newFileKey, writeHeader } from './header.js'
import { uniqueRecipients, type Recipient } from './keys.js'
import { encodeManifest, MANIFEST_NAME, ordinalName } from './names.js'
import { payloadWriter, sealedRange } from './sealing.js'
import { chunkCount, NONCE, payloadKey, payloadSize, TAG } from './stream.js'

/** One file's age encryption with a key and nonce of its own, as the importer needs it. */
export async function encryptFile (recipients: readonly Recipient[], size: number): Promise<FileEncryption> {
  const fileKey = newFileKey()
  const nonce = randomBytes(NONCE)
  const header = await writeHeader(fileKey, recipients)
  const key = payloadKey(fileKey, nonce)
  // the first pass keeps each chunk's tag (16 bytes per 64 KiB), by which the second checks what it re-seals
  const tags = Buffer.alloc(chunkCount(size) * TAG)
  return {
    header,
    payloadSize: payloadSize(size),
    seal: sink => payloadWriter(key, nonce, size, tags, sink),
    range: async (offset, length, into, read) => { await sealedRange(key, nonce, size, offset, length, into, read, tags) },
    sealRange: async (offset, length, into, read) => { await sealedRange(key, nonce, size, offset, length, into, read) }
  }
}

/** An age encryption for the importer, with the recipients it encrypts to (kept so a replica can be encrypted to the same people). */
export interface AgeContentEncryption extends ContentEncryption {
  readonly recipients: readonly Recipient[]
}

/** The importer's encryption for `recipients` (at least one). */
export function ageEncryption (recipients: readonly Recipient[]): AgeContentEncryption {
  const to = uniqueRecipients(recipients)
  if (to.length === 0) throw new CairnError('ERR_INVALID_RECIPIENT', 'encryption needs at least one recipient')
  return {
    recipients: to,
    file: async size => await encryptFile(to, size),
    manifestName: MANIFEST_NAME,
    ordinalName,
    manifest: (entries, symlinks) => encodeManifest({ entries, symlinks })
  }
}

/** Plans an encrypted import of `paths` for `recipients`: a fresh encryption, a DAG of its own, every call. */
export async function encryptTree (paths: string[], recipients: readonly Recipient[], options: Omit<ImportOptions, 'encryption'> = {}): Promise<ImportPlan> {
  return await planImport(paths, { ...options, encryption: ageEncryption(recipients) })
}
