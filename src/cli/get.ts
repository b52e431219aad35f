/**
 * `cairn get <cid>[/path] [-o out] [--car out.car] [--provider URL]…` (README
 * "Content"): from the local repo, else the providers holding deals for the
 * root, else those named, else — when none is named — the providers the
 * configured delegated routers know (docs/routing.md); every block verified, the DAG complete, before
 * anything appears at the output (a whole DAG is written into a hidden
 * sibling as it streams and renamed into place). A provider that fails or
 * sends wrong bytes is reported on stderr and the next one tried.
 *
 * `-o -` writes the file's bytes and `--car -` the verified CAR to stdout, as
 * `pack -o -` does, and the result then goes to stderr. `-o -` is verified
 * whole in a spool first, so a failure never leaves a script half a file;
 * `--car -` of a provider's depth-first CAR streams, each block let out once
 * verified, so a failure ends it at the last verified block (README "Client").
 */
import { createReadStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CairnError, isCairnError } from '../errors.js'
import { get as retrieve, parseTarget, sourcesFor, type Source } from '../client/retrieve.js'
import { release, removeTempsOnSignal, tempName, track } from '../fs/temp.js'
import { resolveRepoPath } from '../repo/repo.js'
import { routedSources } from '../routing/sources.js'
import { decrypterFrom, type DecryptionFlags } from './encryption-options.js'
import { Output, parseMillis, type GlobalOptions, type Progress } from './output.js'
import { withReads } from './reads.js'

interface GetOptions extends GlobalOptions, DecryptionFlags {
  output?: string
  car?: string
  provider?: string[]
  router?: string[]
  force?: boolean
  timeout?: string
}

export default async function get (args: string[], options: GetOptions): Promise<void> {
  const arg = args[0]
  if (arg === undefined) throw new CairnError('ERR_USAGE', 'expected <cid>[/path]')
  if (options.output !== undefined && options.car !== undefined) throw new CairnError('ERR_USAGE', '-o and --car exclude each other: write the files or the CAR')
  removeTempsOnSignal()
  const toStdout = options.output === '-' || options.car === '-'
  // stdout carries the data: the result goes to stderr, as `pack -o -` does
  const out = new Output(options, toStdout ? process.stderr : process.stdout)
  const target = parseTarget(arg)
  // no byte from a provider for --timeout, or a slower average than the floor after it, moves on to the next
  const timeout = parseMillis(options.timeout, '--timeout', 30_000)
  const client = { bodyTimeoutMs: timeout, headersTimeoutMs: timeout }
  const named = options.provider ?? []
  const repoPath = resolveRepoPath(options.repo)
  const decrypter = await decrypterFrom(options, repoPath)
  let routers = options.router ?? []
  let spool: { tmpDir: string }
  let scratch: string | undefined
  let sources: Source[]
  try {
    // the repo's own pieces, deals and routers, read from it or through the node that holds it
    sources = await withReads(repoPath, async (reads) => {
      if (options.router === undefined) routers = (await reads.routers()).map(r => r.url)
      return await reads.sources({ root: target.root.toString(), named })
    })
    spool = { tmpDir: join(repoPath, 'tmp') }
  } catch (err) {
    // retrieving from named providers or routers needs no repo of one's own (as with ipfs-car or lassie)
    if (!isCairnError(err) || err.code !== 'ERR_REPO_NOT_FOUND' || (named.length === 0 && routers.length === 0)) throw err
    scratch = track(await mkdtemp(join(tmpdir(), 'cairn-get-')))
    spool = { tmpDir: scratch }
    sources = await sourcesFor(undefined, undefined, target.root, named)
  }
  // stdout: the verified result is written into the spool first, then copied out
  const staged = toStdout ? track(join(spool.tmpDir, tempName('stdout'))) : undefined
  try {
    // content routing: only when no provider was named and the repo does not hold the DAG
    if (named.length === 0 && !sources.some(s => s.kind === 'local')) {
      const known = new Set(sources.map(s => s.location))
      const routed = await routedSources(routers, target.root, { onRouterError: (router, err) => out.warn(`router ${router} failed with ${err.code}: ${err.message}`) })
      sources.push(...routed.filter(s => !known.has(s.location)))
    }
    let bar: Progress | undefined
    const result = await retrieve(spool, target, sources, {
      output: options.car === undefined ? staged ?? options.output : undefined,
      car: options.car === undefined ? undefined : staged ?? options.car,
      // the whole DAG's CAR from a provider goes to stdout as it is verified
      carStream: options.car === '-' ? process.stdout : undefined,
      force: options.force,
      decrypt: options.decrypt,
      decrypter,
      client
    }, {
      onBytes: (source, n, total) => {
        bar ??= out.progress(`fetching from ${source.location}`, total)
        bar.update(n)
      },
      onFailover: (source, err, next) => {
        bar?.done()
        bar = undefined
        out.warn(`${source.kind === 'local' ? 'the local repo' : source.location} failed with ${err.code}: ${err.message}${next === undefined ? '' : `; trying ${next.location}`}`)
      }
    })
    bar?.done()
    if (staged !== undefined && result.streamed !== true) {
      if (!(await stat(staged)).isFile()) {
        throw new CairnError('ERR_NOT_A_FILE', `${result.cid} is a directory; -o - writes one file's bytes (use --car - for the CAR, or -o <dir>)`)
      }
      // large reads: the copy out runs at pipe speed, not at 64 KiB a turn
      await pipeline(createReadStream(staged, { highWaterMark: 1 << 20 }), process.stdout, { end: false })
    }
    const from = result.source.kind === 'local' ? 'the local repo' : result.source.location
    const output = staged === undefined ? result.output : '-'
    out.result({
      root: result.root,
      path: result.path,
      cid: result.cid,
      output,
      car: result.car,
      source: result.source,
      failed: result.failed,
      files: result.unpacked?.files,
      directories: result.unpacked?.directories,
      bytes: result.unpacked?.bytes,
      decrypted: result.unpacked?.decrypted
    }, () => out.quiet
      ? (staged === undefined ? output : '')
      : result.car
        ? `wrote the verified CAR of ${result.cid} to ${output === '-' ? 'stdout' : output} (from ${from})`
        : `retrieved ${result.cid} from ${from} to ${output === '-' ? 'stdout' : output}: ${result.unpacked?.files ?? 0} file(s), ${result.unpacked?.bytes ?? 0} bytes, every block verified${result.unpacked?.decrypted === true ? ', decrypted' : ''}`)
  } finally {
    if (staged !== undefined) { await rm(staged, { recursive: true, force: true }); release(staged) }
    if (scratch !== undefined) { await rm(scratch, { recursive: true, force: true }); release(scratch) }
  }
}
