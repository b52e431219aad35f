/**
 * `cairn get <cid>[/path] [-o out] [--car out.car] [--provider URL]…` (SPEC §2
 * Content): from the local repo, else the providers holding deals for the
 * root, else those named; every block verified, the DAG complete, before a
 * file is written. A provider that fails or sends wrong bytes is reported on
 * stderr and the next one tried.
 */
import { CairnError } from '../errors.js'
import { get as retrieve, parseTarget, sourcesFor } from '../client/retrieve.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { Output, type GlobalOptions, type Progress } from './output.js'

interface GetOptions extends GlobalOptions {
  output?: string
  car?: string
  provider?: string[]
  force?: boolean
}

export default async function get (args: string[], options: GetOptions): Promise<void> {
  const arg = args[0]
  if (arg === undefined) throw new CairnError('ERR_USAGE', 'expected <cid>[/path]')
  if (options.output !== undefined && options.car !== undefined) throw new CairnError('ERR_USAGE', '-o and --car exclude each other: write the files or the CAR')
  const out = new Output(options)
  const target = parseTarget(arg)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    const sources = await sourcesFor(repo, ledger, target.root, options.provider ?? [])
    let bar: Progress | undefined
    const result = await retrieve(repo, target, sources, { output: options.output, car: options.car, force: options.force }, {
      onBytes: (source, n) => {
        bar ??= out.progress(`fetching from ${source.location}`)
        bar.update(n)
      },
      onFailover: (source, err, next) => {
        bar?.done()
        bar = undefined
        out.warn(`${source.kind === 'local' ? 'the local repo' : source.location} failed with ${err.code}: ${err.message}${next === undefined ? '' : `; trying ${next.location}`}`)
      }
    })
    bar?.done()
    const from = result.source.kind === 'local' ? 'the local repo' : result.source.location
    out.result({
      root: result.root,
      path: result.path,
      cid: result.cid,
      output: result.output,
      car: result.car,
      source: result.source,
      failed: result.failed,
      files: result.unpacked?.files,
      directories: result.unpacked?.directories,
      bytes: result.unpacked?.bytes
    }, () => out.quiet
      ? result.output
      : result.car
        ? `wrote the verified CAR of ${result.cid} to ${result.output} (from ${from})`
        : `retrieved ${result.cid} from ${from} to ${result.output}: ${result.unpacked?.files ?? 0} file(s), ${result.unpacked?.bytes ?? 0} bytes, every block verified`)
  } finally {
    await repo.close()
  }
}
