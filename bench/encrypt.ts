/**
 * `cairn add --encrypt` beside plaintext `cairn add` on the same input, in the
 * same run (target: ≥ 85 % of plaintext throughput, peak RSS flat in the input
 * size; docs/encryption.md). One declared pair: the runs alternate, each in a
 * fresh repo, and the ratio is the median of the pair ratios (encrypted ÷
 * plaintext) with its range. `--encrypt-pairs N` sets its number of pairs
 * (default: `--pairs`).
 */
import { join } from 'node:path'
import type { Pair } from './pairs.js'
import type { SizeContext } from './plan.js'
import { addCommand } from './content.js'

export async function encryptPairs (ctx: SizeContext): Promise<{ pairs: Pair[] }> {
  const { work, input, size, label } = ctx
  const own = ctx.opt('--encrypt-pairs')
  const pairs = own === undefined ? undefined : Number(own)
  if (pairs !== undefined && (!Number.isSafeInteger(pairs) || pairs < 1)) throw new TypeError(`--encrypt-pairs must be a whole number ≥ 1, got ${own}`)
  return {
    pairs: [{
      name: `add --encrypt ${label}`,
      what: 'wall time of the whole command in its own process; MiB/s of the input file; the ratio is encrypted ÷ plaintext (target ≥ 0.85)',
      input: `${label} of AES-CTR bytes, one file, to the repo's own age recipient`,
      ...(pairs === undefined ? {} : { pairs }),
      cairn: addCommand(join(work, 'encrypt-repo'), input, size, undefined, ['--encrypt'], 'cairn add --encrypt'),
      peer: addCommand(join(work, 'plain-repo'), input, size, undefined, [], 'cairn add (plaintext)')
    }]
  }
}
