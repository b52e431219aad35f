/** `cairn unpack <file.car> -o <dir> [--force]`: verify every block and write the files. */
import { CairnError } from '../errors.js'
import { removeTempsOnSignal } from '../fs/temp.js'
import { unpackCar } from '../crypto/unpack.js'
import { resolveRepoPath } from '../repo/repo.js'
import { decrypterFrom, type DecryptionFlags } from './encryption-options.js'
import { Output, type GlobalOptions } from './output.js'

interface UnpackOptions extends GlobalOptions, DecryptionFlags {
  output?: string
  force?: boolean
}

export default async function unpack (args: string[], options: UnpackOptions): Promise<void> {
  const out = new Output(options)
  const car = args[0]
  if (car === undefined) throw new CairnError('ERR_USAGE', 'expected a CAR file')
  if (options.output === undefined || options.output === '') throw new CairnError('ERR_USAGE', 'missing -o/--output: the target directory')
  removeTempsOnSignal()
  const decrypter = await decrypterFrom(options, resolveRepoPath(options.repo))
  const result = await unpackCar(car, options.output, { force: options.force === true, decrypt: options.decrypt, decrypter })
  out.result({ ...result, root: result.root.toString() }, () => out.quiet
    ? result.output
    : `unpacked ${result.decrypted ? 'and decrypted ' : ''}${result.root.toString()} to ${result.output}: ${result.files} file(s), ${result.directories} director${result.directories === 1 ? 'y' : 'ies'}, ${result.bytes} bytes`)
}
