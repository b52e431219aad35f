/**
 * Helpers for the encryption tests: age identities from age-encryption, the
 * `age` command from Debian's package as the interop peer, age-encryption's
 * own STREAM as the oracle for payload bytes, and ipfs-unixfs-importer with a
 * chunker that gives an age header its own leaf, as cairn lays files out.
 */
import { execFile } from 'node:child_process'
import { lstatSync, readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { importer } from 'ipfs-unixfs-importer'
import type { ImportCandidate, ImporterOptions } from 'ipfs-unixfs-importer'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { headerLength } from '../../src/crypto/header.js'
import { parseRecipient, type Recipient } from '../../src/crypto/keys.js'
import type { Profile } from '../../src/unixfs/profile.js'

export const run = promisify(execFile)

export async function newIdentity (): Promise<{ identity: string, recipient: Recipient }> {
  const identity = await generateX25519Identity()
  return { identity, recipient: await parseRecipient(await identityToRecipient(identity)) }
}

/**
 * The `age` command (Debian's package, 1.1.1 here). `npm test` installs it (test/prereqs.sh, as root);
 * a machine without it fails these tests rather than skipping them.
 */
export async function age (args: string[], input?: Uint8Array): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    const child = execFile('age', args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
        reject(new Error(missing ? 'the age command is missing: apt-get install -y age (npm test\'s pretest step does as root)' : `age ${args.join(' ')} failed: ${String(stderr)}`))
      } else {
        resolve(stdout)
      }
    })
    child.stdin?.end(input)
  })
}

/** age-encryption's STREAM (its lower-level stream.js), loaded as src/crypto/age-lib.ts loads its siblings. */
export async function libraryStream (): Promise<{ encryptSTREAM: (key: Uint8Array) => TransformStream<Uint8Array, Uint8Array>, decryptSTREAM: (key: Uint8Array) => TransformStream<Uint8Array, Uint8Array> }> {
  return await import(new URL('./stream.js', import.meta.resolve('age-encryption')).href)
}

/** Cuts an age file as cairn does: the header alone, then the rest in `chunkSize` pieces. */
export function ageChunker (chunkSize: number) {
  return async function * (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const parts: Uint8Array[] = []
    for await (const part of source) parts.push(part)
    const all = Buffer.concat(parts)
    const header = headerLength(all)
    if (header === undefined) throw new Error('not an age file')
    yield all.subarray(0, header)
    for (let at = header; at < all.length; at += chunkSize) yield all.subarray(at, Math.min(all.length, at + chunkSize))
  }
}

function * candidates (abs: string, rel: string): Generator<ImportCandidate> {
  const stats = lstatSync(abs)
  if (stats.isFile()) {
    yield { path: rel, content: readFileSync(abs) }
    return
  }
  const names = readdirSync(abs).sort()
  if (names.length === 0) yield { path: rel }
  for (const name of names) yield * candidates(join(abs, name), `${rel}/${name}`)
}

/** The root ipfs-unixfs-importer 17 gives for a tree of age files (as `unpack --no-decrypt` writes it), cut by ageChunker. */
export async function oracleEncryptedRoot (path: string, profile: Profile = 'unixfs-v1-2025', chunkSize = profile === 'unixfs-v1-2025' ? 1048576 : 262144): Promise<string> {
  const opts: ImporterOptions = { profile, chunker: ageChunker(chunkSize), layout: balanced({ maxChildrenPerNode: profile === 'unixfs-v1-2025' ? 1024 : 174 }) }
  const blockstore = { put: async (cid: unknown) => cid }
  let last: { cid: { toString: () => string } } | undefined
  for await (const entry of importer([...candidates(path, basename(path))], blockstore as never, opts)) last = entry
  if (last === undefined) throw new Error('oracle imported nothing')
  return last.cid.toString()
}
