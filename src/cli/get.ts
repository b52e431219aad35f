/**
 * `cairn get <cid>[/path] [-o out] [--car out.car] [--provider URL]…` (SPEC §2
 * Content): from the local repo, else the providers holding deals for the
 * root, else those named, else — when none is named — the providers the
 * configured delegated routers know (docs/routing.md); every block verified, the DAG complete, before
 * anything appears at the output (a whole DAG is written into a hidden
 * sibling as it streams and renamed into place). A provider that fails or
 * sends wrong bytes is reported on stderr and the next one tried. `--car -`
 * writes the CAR to stdout once all of it is verified (bytes already in a pipe
 * cannot be taken back), and the summary to stderr, as `pack -o -` does.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CairnError, isCairnError } from '../errors.js'
import { get as retrieve, parseTarget, sourcesFor, type Source } from '../client/retrieve.js'
import { LevelLedger } from '../ledger/level.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { RouterBook } from '../routing/routers.js'
import { routedSources } from '../routing/sources.js'
import { decrypterFrom, type DecryptionFlags } from './encryption-options.js'
import { Output, toJSON, writeToStdout, type GlobalOptions, type Progress } from './output.js'

interface GetOptions extends GlobalOptions, DecryptionFlags {
  output?: string
  car?: string
  provider?: string[]
  router?: string[]
  force?: boolean
}

export default async function get (args: string[], options: GetOptions): Promise<void> {
  const arg = args[0]
  if (arg === undefined) throw new CairnError('ERR_USAGE', 'expected <cid>[/path]')
  if (options.output !== undefined && options.car !== undefined) throw new CairnError('ERR_USAGE', '-o and --car exclude each other: write the files or the CAR')
  const out = new Output(options)
  const target = parseTarget(arg)
  const named = options.provider ?? []
  const decrypter = await decrypterFrom(options, resolveRepoPath(options.repo))
  let repo: Repo | undefined
  let spool: { tmpDir: string }
  let sources: Source[]
  try {
    repo = await Repo.open(resolveRepoPath(options.repo))
    spool = repo
    sources = await sourcesFor(repo, await LevelLedger.open(await repo.db(), repo.identity), target.root, named)
  } catch (err) {
    await repo?.close()
    // retrieving from named providers or routers needs no repo of one's own (as with ipfs-car or lassie)
    if (!isCairnError(err) || err.code !== 'ERR_REPO_NOT_FOUND' || (named.length === 0 && (options.router ?? []).length === 0)) throw err
    repo = undefined
    spool = { tmpDir: await mkdtemp(join(tmpdir(), 'cairn-get-')) }
    sources = await sourcesFor(undefined, undefined, target.root, named)
  }
  try {
    // content routing: only when no provider was named and the repo does not hold the DAG
    if (named.length === 0 && !sources.some(s => s.kind === 'local')) {
      const routers = options.router ?? (repo === undefined ? [] : (await new RouterBook(await repo.db()).list()).map(r => r.url))
      const known = new Set(sources.map(s => s.location))
      const routed = await routedSources(routers, target.root, { onRouterError: (router, err) => out.warn(`router ${router} failed with ${err.code}: ${err.message}`) })
      sources.push(...routed.filter(s => !known.has(s.location)))
    }
    let bar: Progress | undefined
    const toStdout = options.car === '-'
    const car = toStdout ? join(spool.tmpDir, `get-stdout-${randomBytes(8).toString('hex')}.car`) : options.car
    const result = await retrieve(spool, target, sources, { output: options.output, car, force: options.force, decrypt: options.decrypt, decrypter }, {
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
    if (toStdout) {
      try {
        await writeToStdout(createReadStream(result.output, { highWaterMark: 1 << 20 }))
      } finally {
        await rm(result.output, { force: true })
      }
      // stdout carries the CAR
      const summary = { root: result.root, path: result.path, cid: result.cid, output: '-', car: true, source: result.source, failed: result.failed }
      if (!out.quiet) process.stderr.write((out.json ? toJSON(summary) : `wrote the verified CAR of ${result.cid} to stdout (from ${from})`) + '\n')
      return
    }
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
      bytes: result.unpacked?.bytes,
      decrypted: result.unpacked?.decrypted
    }, () => out.quiet
      ? result.output
      : result.car
        ? `wrote the verified CAR of ${result.cid} to ${result.output} (from ${from})`
        : `retrieved ${result.cid} from ${from} to ${result.output}: ${result.unpacked?.files ?? 0} file(s), ${result.unpacked?.bytes ?? 0} bytes, every block verified${result.unpacked?.decrypted === true ? ', decrypted' : ''}`)
  } finally {
    if (repo !== undefined) await repo.close()
    else await rm(spool.tmpDir, { recursive: true, force: true })
  }
}
