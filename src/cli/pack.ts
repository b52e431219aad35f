/** `cairn pack <path…> -o out.car|-`: the piece CAR of files or directories, written atomically. */
import { open, rm } from 'node:fs/promises'
import { CairnError, fromSystemError } from '../errors.js'
import { commitFile, tempPathFor } from '../fs/atomic.js'
import { carStream, planImport } from '../unixfs/importer.js'
import { importOptionsFrom, type ContentFlags } from './content-options.js'
import { encryptionFrom, type EncryptionFlags } from './encryption-options.js'
import { resolveRepoPath } from '../repo/repo.js'
import { Output, writeToStdout, type GlobalOptions } from './output.js'

interface PackOptions extends GlobalOptions, ContentFlags, EncryptionFlags {
  output?: string
}

export default async function pack (args: Array<string | string[]>, options: PackOptions): Promise<void> {
  // commander passes a variadic argument as one array
  const paths = args.flat()
  const out = new Output(options)
  const output = options.output
  if (output === undefined || output === '') throw new CairnError('ERR_USAGE', 'missing -o/--output: a CAR file, or - for stdout')
  const importOptions = importOptionsFrom(options)
  const encryption = await encryptionFrom(options, resolveRepoPath(options.repo))
  const plan = await planImport(paths, { ...importOptions, encryption })
  const root = plan.root.toString()
  const bar = out.progress('packing', plan.carSize)
  let done = 0
  const car = carStream(plan, { onBytes: n => { done += n; bar.update(done) } })
  try {
    if (output === '-') {
      await writeToStdout(car)
    } else {
      await writeAtomic(output, car)
    }
  } finally {
    bar.done()
  }
  const result = { root, bytes: plan.bytes, car: output, carSize: plan.carSize, encrypted: encryption !== undefined }
  if (output === '-') {
    // stdout carries the CAR; the root goes to stderr, as ipfs-car does
    if (!out.quiet) process.stderr.write((options.json === true ? JSON.stringify(result) : root) + '\n')
  } else {
    out.result(result, () => root)
  }
}

async function writeAtomic (target: string, source: AsyncIterable<Uint8Array>): Promise<void> {
  const temp = tempPathFor(target)
  try {
    const handle = await open(temp, 'wx', 0o644)
    try {
      for await (const chunk of source) await handle.write(chunk)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await commitFile(temp, target)
  } catch (err) {
    await rm(temp, { force: true })
    throw err instanceof CairnError ? err : fromSystemError(err, target)
  }
}
