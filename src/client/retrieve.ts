/**
 * Verified retrieval (README "Content", `cairn get`): the local repo first, else the
 * providers holding deals for the root (from the client's ledger), else the
 * providers named. A provider's CAR (Trustless Gateway, dag-scope=all) is
 * verified as it streams: every block hashed against its CID and checked to
 * be linked from the root. The whole DAG into files is written while it
 * streams when the provider sends it in depth-first order without duplicates
 * (as asked), into a hidden sibling renamed into place once the DAG is
 * complete; otherwise (a path, `--car`, another order) the CAR is spooled
 * into the repo's tmp dir and must be complete before anything is written.
 * A provider that fails, stalls or sends wrong bytes is reported and the
 * next one is tried. An encrypted tree (docs/encryption.md) is decrypted as
 * it is written; from a provider it is spooled first, since its names are
 * known only once each directory's manifest has been read. A path inside an
 * encrypted tree names real names: each is looked up in its directory's
 * decrypted names, from the provider's blocks one at a time, and the path
 * as stored is fetched.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { copyFile, open, rename, rm, stat } from 'node:fs/promises'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import { join, resolve } from 'node:path'
import { CID } from 'multiformats/cid'
import { CairnError, fromSystemError, isCairnError } from '../errors.js'
import { DagVerifier, encodeFramePrefix, encodeHeader, openCarFile, passVerified, readCar, readCarHeader, type CarBlock, type ReadCarOptions } from '../car/index.js'
import { loadNative } from '../../proofs/native.js'
import { dealView } from '../ledger/deals.js'
import type { EntryOf, Ledger } from '../ledger/interface.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import { findRoot } from '../store/roots.js'
import type { Load } from '../unixfs/interface.js'
import { resolvePath as resolveUnixfsPath } from '../unixfs/reader.js'
import { isEncryptedDirectory, peekEncrypted } from '../crypto/layout.js'
import { storedPath } from '../crypto/tree.js'
import { decrypterOf, unpackCar, type DecryptingUnpackResult, type UnpackOptions } from '../crypto/unpack.js'
import { checkOutput, unpackStream, UnpackOutputError } from '../unixfs/unpack-stream.js'
import { release, tempName, tempPathFor, track } from '../fs/temp.js'
import { AddressBook } from './address-book.js'
import { ProviderClient, type ProviderClientOptions } from './provider-client.js'
import { isNetworkFailure, networkError } from '../http/errors.js'

export interface Target {
  root: CID
  /** path segments below the root */
  path: string[]
}

/** `<cid>[/path]`, or `/ipfs/<cid>[/path]`. */
export function parseTarget (value: string): Target {
  const parts = value.replace(/^\/?ipfs\//, '').split('/').filter(p => p !== '')
  const first = parts.shift()
  let root: CID
  try {
    root = CID.parse(first ?? '')
  } catch {
    throw new CairnError('ERR_INVALID_CID', `expected <cid>[/path], got ${JSON.stringify(value)}`)
  }
  let path: string[]
  try {
    path = parts.map(p => decodeURIComponent(p))
  } catch {
    throw new CairnError('ERR_INVALID_ARGUMENT', `the path is not valid percent-encoding: ${JSON.stringify(value)}`)
  }
  // checked after decoding: %2e%2e or %2F must not smuggle a segment that names a place outside the output
  for (const p of path) {
    if (p === '.' || p === '..' || p === '' || p.includes('/') || p.includes('\0')) throw new CairnError('ERR_INVALID_ARGUMENT', `path segments . and .. (or empty, or holding / or NUL) are not allowed: ${JSON.stringify(value)}`)
  }
  return { root, path }
}

export interface Source {
  kind: 'local' | 'provider'
  /** the piece file (local) or the provider's URL */
  location: string
  /** why this source was chosen */
  reason: 'repo' | 'deal' | 'named' | 'router'
  /** bytes of the whole DAG's CAR, when a deal recorded it (progress shows a total) */
  size?: number
  /** the root this source holds instead, a distinct replica of the one asked for (docs/encryption.md "Distinct replicas") */
  root?: string
}

function sameRoot (a: string, v1: string): boolean {
  try {
    return CID.parse(a).toV1().toString() === v1
  } catch {
    return false
  }
}

/** Where the DAG of `root` can be had, in the order to try them. */
export async function sourcesFor (repo: Repo | undefined, ledger: Ledger | undefined, root: CID, named: string[]): Promise<Source[]> {
  const sources: Source[] = []
  const db = await repo?.db()
  const record = repo === undefined || db === undefined ? undefined : await findRoot(db, root.toV1().toString()) ?? await findRoot(db, root.toString())
  if (repo !== undefined && record !== undefined) {
    const path = new PieceStore(repo.piecesDir, repo.tmpDir).path(record.piece)
    // a root record whose piece file is gone (deleted by hand) is no source
    if (await stat(path).then(s => s.isFile(), () => false)) sources.push({ kind: 'local', location: path, reason: 'repo' })
  }
  const seen = new Set<string>()
  if (ledger !== undefined && db !== undefined) {
    const want = root.toV1().toString()
    const book = new AddressBook(db)
    for await (const entry of ledger.log({ kind: 'deal-active' })) {
      const { deal, payloadCid: payload, replicaOf, provider } = (entry as EntryOf<'deal-active'>).fields
      if (payload === undefined) continue
      // a distinct replica holds its own encryption of the root asked for: fetched by its own root, decrypted alike
      const replica = replicaOf !== undefined && replicaOf !== payload.toString() && sameRoot(replicaOf, want)
      if (!replica && payload.toV1().toString() !== want) continue
      const view = await dealView(ledger, deal)
      if (view?.record.state !== 'active') continue
      // a provider that moved is found at the address its latest signed ask was fetched from
      const known = provider !== undefined ? await book.get(provider).catch(() => undefined) : undefined
      const endpoint = known?.url ?? view.endpoint
      if (endpoint === undefined || seen.has(endpoint)) continue
      seen.add(endpoint)
      const payloadSize = view.proposed?.fields.payloadSize
      const size = payloadSize === undefined ? undefined : Number(payloadSize)
      sources.push({ kind: 'provider', location: endpoint, reason: 'deal', ...(size === undefined ? {} : { size }), ...(replica ? { root: payload.toString() } : {}) })
    }
  }
  for (const url of named) {
    const normal = new ProviderClient(url).url
    if (seen.has(normal)) continue
    seen.add(normal)
    sources.push({ kind: 'provider', location: normal, reason: 'named' })
  }
  return sources
}

export interface FetchEvents {
  /** `total`: the whole CAR's size, when known and the whole DAG is fetched */
  onBytes?: (source: Source, bytes: number, total?: number) => void
  /** a source failed; `next` is the source tried next, if any */
  onFailover?: (source: Source, err: CairnError, next?: Source) => void
}

/**
 * Streams the provider's CAR of `root` (or of `root/path`) into `file`,
 * verifying every block and that each is linked from the root; for the whole
 * DAG also its completeness (below a path, the unpacker checks completeness
 * from the path's entry). Leaves nothing at `file` on failure.
 */
export async function fetchVerifiedCar (client: ProviderClient, root: CID, file: string, onBytes?: (n: number) => void, path: string[] = [], opened?: AsyncIterable<Uint8Array>): Promise<{ blocks: number, bytes: number }> {
  const out = createWriteStream(file, { flags: 'wx' })
  // a write still queued when the stream is destroyed on failure reports here; the failure itself is thrown below
  out.on('error', () => {})
  const verifier = new DagVerifier(root, { order: 'linked' })
  let bytes = 0
  let blocks = 0
  try {
    const body = opened ?? await client.car(root, { path })
    async function * counted (): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        bytes += chunk.length
        onBytes?.(bytes)
        if (!out.write(chunk)) await once(out, 'drain')
        yield chunk
      }
    }
    for await (const block of readCar(counted(), {
      onHeader: (header) => {
        const r = header.roots[0]
        if (r === undefined || !r.equals(root)) throw new CairnError('ERR_CAR_ROOT_MISSING', `the provider's CAR is rooted at ${String(r)}, not ${root.toString()}`)
      }
    })) {
      verifier.add(block.cid, block.bytes)
      blocks++
    }
    if (path.length === 0) verifier.finish()
    out.end()
    await once(out, 'finish')
    return { blocks, bytes }
  } catch (err) {
    out.destroy()
    await rm(file, { force: true })
    throw transferError(client, err, file)
  }
}

/** A failed transfer: the connection's failure as ERR_TIMEOUT / ERR_UNREACHABLE, anything else as the disk's. */
function transferError (client: ProviderClient, err: unknown, file: string): CairnError {
  if (isCairnError(err)) return err
  if (isNetworkFailure(err)) return networkError(err, `provider ${client.url}`)
  return fromSystemError(err, file)
}

/**
 * The body of the provider's CAR of `root` when it declares `order=dfs;
 * dups=n` (as asked), to verify as it streams, and its slabs when it was
 * read into pooled ones (src/http/slab-get.ts); with another order the body is
 * spooled to `spool` and verified whole, and undefined is returned. The
 * bytes read so far are told to `onBytes` either way. A failed request is a
 * transfer error naming `path`.
 */
async function dfsBody (client: ProviderClient, root: CID, spool: string, path: string, onBytes?: (n: number) => void): Promise<Pick<CarResponse, 'body' | 'slabs'> | undefined> {
  let response: CarResponse
  try {
    response = await client.carResponse(root)
  } catch (err) {
    throw transferError(client, err, path)
  }
  if (response.order === 'dfs' && response.dups === 'n') return { body: counted(response.body, onBytes), slabs: response.slabs }
  await fetchVerifiedCar(client, root, spool, onBytes, [], response.body)
  return undefined
}

type CarResponse = Awaited<ReturnType<ProviderClient['carResponse']>>

/**
 * The native addon's SHA-256 of sixteen leaves at a time on the libuv pool
 * (proofs/native/commp.c), where the addon and the CPU have it: a streamed
 * DAG's leaves are then hashed off the main thread, which keeps reading the
 * socket and writing meanwhile. With AVX-512 the sixteen go in vector lanes
 * at about twice OpenSSL's rate per core; where AVX-512 is missing, SHA-NI
 * hashes them one after another at about OpenSSL's rate, still off the main
 * thread. With neither every block is hashed on the main thread.
 */
function leafHasher (): ReadCarOptions['hashMany'] {
  return loadNative().addon?.sha256x16
}

async function * counted (body: AsyncIterable<Uint8Array>, onBytes?: (n: number) => void): AsyncGenerator<Uint8Array> {
  let bytes = 0
  for await (const chunk of body) {
    bytes += chunk.length
    onBytes?.(bytes)
    yield chunk
  }
}

/**
 * The whole DAG of `root` from a provider, written at `output` while it
 * streams: when the provider declares `order=dfs; dups=n` (as asked), each
 * block is verified against its CID and its place in the depth-first walk,
 * and file content goes to disk as it arrives, with no spool to write and
 * read back. Otherwise the body is spooled to `spool` and verified as before,
 * and `spooled` says so.
 */
async function fetchAndUnpack (client: ProviderClient, root: CID, output: string, spool: string, options: GetOptions, onBytes?: (n: number) => void): Promise<{ unpacked: DecryptingUnpackResult } | { spooled: true }> {
  const streamed = await dfsBody(client, root, spool, output, onBytes)
  if (streamed === undefined) return { spooled: true }
  const { body, slabs } = streamed
  const verifier = new DagVerifier(root, { order: 'dfs' })
  const hashMany = leafHasher()
  // raw leaves lent as views of the body's slabs (hashed there): stream offset of each, in stream order
  const lent = new Map<Uint8Array, number>()
  let through = 0
  // the slabs before the first lent leaf not yet on disk (or before every block yielded) are free
  const free = (): void => {
    const first = lent.values().next()
    slabs?.release(first.done === true ? through : first.value)
  }
  async function * verified (): AsyncGenerator<CarBlock> {
    for await (const block of readCar(body, {
      hashMany,
      leafViews: slabs !== undefined,
      onHeader: (header) => {
        const r = header.roots[0]
        if (r === undefined || !r.equals(root)) throw new CairnError('ERR_CAR_ROOT_MISSING', `the provider's CAR is rooted at ${String(r)}, not ${root.toString()}`)
      }
    })) {
      verifier.add(block.cid, block.bytes)
      if (slabs?.holds(block.bytes) === true) lent.set(block.bytes, block.blockOffset)
      through = block.blockOffset + block.length
      free()
      yield block
    }
    verifier.finish()
  }
  const lending = slabs === undefined ? undefined : { holds: (bytes: Uint8Array) => lent.has(bytes), done: (bytes: Uint8Array) => { lent.delete(bytes); free() } }
  try {
    let blocks: AsyncIterable<CarBlock> = verified()
    if (options.decrypt !== false) {
      const iterator = blocks[Symbol.asyncIterator]()
      const { maybe, peeked } = await peekEncrypted(root, iterator)
      const rest = { [Symbol.asyncIterator]: () => iterator }
      if (maybe) {
        await spoolBlocks(spool, root, peeked, rest, lending?.done)
        return { spooled: true }
      }
      blocks = (async function * () { yield * peeked; yield * rest })()
    }
    return { unpacked: { ...await unpackStream(blocks, root, output, { force: options.force, lent: lending }), decrypted: false } }
  } catch (err) {
    if (err instanceof UnpackOutputError) throw err
    throw transferError(client, err, output)
  }
}

/**
 * A failure after some of the CAR already went to `carStream`: no other
 * source can take back what was written, so it is final.
 */
class StreamedError extends Error {
  constructor (readonly error: CairnError) {
    super(error.message)
  }
}

/**
 * The whole DAG's CAR from a provider, written to `sink` while it streams
 * when the provider declares `order=dfs; dups=n` (as asked): the body's
 * bytes pass through (read into pooled slabs by src/http/slab-get.ts, where
 * the addon hashes the leaves off the main thread, `passVerified`), each let
 * out only once the block it holds is verified
 * (its hash, its place in the depth-first walk), so a failure leaves the
 * sink a prefix of the CAR ending at a verified block, and the error. With
 * another order the body is spooled to `spool` and verified whole first.
 */
async function streamVerifiedCar (client: ProviderClient, root: CID, sink: Writable, spool: string, onBytes?: (n: number) => void): Promise<'streamed' | 'spooled'> {
  const streamed = await dfsBody(client, root, spool, spool, onBytes)
  if (streamed === undefined) return 'spooled'
  const { body, slabs } = streamed
  let written = 0
  // the sink's failure (a closed pipe), seen between writes
  let failed: unknown
  const onError = (err: unknown): void => { failed ??= err }
  sink.on('error', onError)
  try {
    const batches = passVerified(body, {
      verifier: new DagVerifier(root, { order: 'dfs' }),
      hashMany: leafHasher(),
      slabs,
      onHeader: (header) => {
        const r = header.roots[0]
        if (r === undefined || !r.equals(root)) throw new CairnError('ERR_CAR_ROOT_MISSING', `the provider's CAR is rooted at ${String(r)}, not ${root.toString()}`)
      }
    })
    // settles once the last chunk given to the sink is written
    let flushed: Promise<void> = Promise.resolve()
    for await (const batch of batches) {
      if (failed !== undefined) throw failed
      sink.cork()
      let room = true
      for (const [i, chunk] of batch.entries()) {
        if (i < batch.length - 1) {
          room = sink.write(chunk)
        } else {
          // once written, the pooled slabs behind the batch are used again
          flushed = new Promise(resolve => { room = sink.write(chunk, (err) => { if (err == null) batch.written?.(); resolve() }) })
        }
        written += chunk.byteLength
      }
      sink.uncork()
      // the writes run behind the transfer, up to the sink's high-water mark (`once` rejects on the sink's error)
      if (!room) await once(sink, 'drain')
    }
    await flushed
    if (failed !== undefined) throw failed
    return 'streamed'
  } catch (err) {
    const e = err === failed ? fromSystemError(err, 'the output') : transferError(client, err, spool)
    throw written > 0 || err === failed ? new StreamedError(e) : e
  } finally {
    sink.off('error', onError)
  }
}

export interface GetOptions {
  /** how providers are read: `bodyTimeoutMs` (no byte for that long) and the rate floor (src/client/provider-client.ts) */
  client?: ProviderClientOptions
  /** write the file or directory here */
  output?: string
  /** or write the verified CAR here */
  car?: string
  /**
   * with `car`: a whole DAG from a provider sending it in depth-first order
   * goes to this stream (stdout) as it is verified, not to `car`; a failure
   * after the first byte is final (no other source is tried)
   */
  carStream?: Writable
  force?: boolean
  /** false: write an encrypted tree as stored */
  decrypt?: boolean
  /** the age identities an encrypted tree is decrypted with */
  decrypter?: UnpackOptions['decrypter']
}

/**
 * Writes verified blocks as a CAR at `file`, for an encrypted tree to be
 * unpacked from; `written` is told each block's bytes once they are written.
 */
async function spoolBlocks (file: string, root: CID, first: CarBlock[], rest: AsyncIterable<CarBlock>, written?: (bytes: Uint8Array) => void): Promise<void> {
  const out = createWriteStream(file, { flags: 'wx' })
  out.on('error', () => {})
  try {
    const put = async (bytes: Uint8Array, done?: () => void): Promise<void> => { if (!out.write(bytes, done === undefined ? undefined : (err) => { if (err == null) done() })) await once(out, 'drain') }
    await put(encodeHeader([root]))
    const frame = async (block: CarBlock): Promise<void> => {
      await put(encodeFramePrefix(block.cid, block.bytes.byteLength))
      await put(block.bytes, written === undefined ? undefined : () => written(block.bytes))
    }
    for (const block of first) await frame(block)
    for await (const block of rest) await frame(block)
    out.end()
    await once(out, 'finish')
  } catch (err) {
    out.destroy()
    await rm(file, { force: true })
    throw err
  }
}

export interface GetResult {
  root: string
  path: string
  cid: string
  source: Source
  output: string
  car: boolean
  /** the CAR went to `carStream` as it was verified */
  streamed?: boolean
  failed: Array<{ source: Source, code: string, message: string }>
  unpacked?: DecryptingUnpackResult
}

/** Retrieves `target` from the first source that gives a verified, complete DAG. */
export async function get (repo: Pick<Repo, 'tmpDir'>, target: Target, sources: Source[], options: GetOptions, events: FetchEvents = {}): Promise<GetResult> {
  if (sources.length === 0) {
    throw new CairnError('ERR_NOT_FOUND', `${target.root.toString()} is not in this repo, no provider holds a deal for it and no router knows a provider; name one with --provider, or add a router with \`cairn routers add\``)
  }
  const failed: GetResult['failed'] = []
  let lastError: CairnError | undefined
  // the whole DAG into files is written while it streams; refuse an existing target before fetching
  const streaming = options.car === undefined && target.path.length === 0
  const output = resolve(options.output ?? target.root.toString())
  if (streaming && sources.some(s => s.kind === 'provider')) await checkOutput(output, options)
  for (const [i, source] of sources.entries()) {
    // a distinct replica is fetched by its own root and written under the name of the one asked for
    const replica = source.root === undefined ? undefined : CID.parse(source.root)
    const asked = target
    const t: Target = replica === undefined ? target : { ...target, root: replica }
    const opts: GetOptions = replica === undefined ? options : { ...options, output: options.output ?? asked.path.at(-1) ?? asked.root.toString() }
    let car: string
    let spooled = false
    // the path as stored, once resolved from a provider's blocks; a local piece resolves it in write()
    let stored: string[] | undefined
    try {
      if (source.kind === 'local') {
        car = source.location
      } else {
        car = track(join(repo.tmpDir, tempName('get', '.car')))
        const client = new ProviderClient(source.location, options.client)
        const total = t.path.length === 0 ? source.size : undefined
        const onBytes = (n: number): void => events.onBytes?.(source, n, total)
        if (options.carStream !== undefined && t.path.length === 0) {
          if (await streamVerifiedCar(client, t.root, options.carStream, car, onBytes) === 'streamed') {
            release(car)
            return { root: asked.root.toString(), path: '', cid: t.root.toString(), output: '-', car: true, streamed: true, source, failed }
          }
        } else if (streaming) {
          const got = await fetchAndUnpack(client, t.root, output, car, opts, onBytes)
          if ('unpacked' in got) {
            return { root: asked.root.toString(), path: '', cid: t.root.toString(), output, car: false, unpacked: got.unpacked, source, failed }
          }
        } else {
          stored = await storedPathOf(t, async cid => await client.block(cid), opts)
          await fetchVerifiedCar(client, t.root, car, onBytes, stored)
        }
        spooled = true
      }
    } catch (err) {
      if (err instanceof StreamedError) throw err.error
      if (err instanceof UnpackOutputError) {
        // the content itself (every provider sends the same DAG) or the local disk: final,
        // unless it is the content failing verification and another source remains
        const next = sources[i + 1]
        if (next === undefined || err.error.exitStatus !== 3) throw err.error
        failed.push({ source, code: err.error.code, message: err.error.message })
        lastError = err.error
        events.onFailover?.(source, err.error, next)
        continue
      }
      const e = isCairnError(err) ? err : new CairnError('ERR_INTERNAL', (err as Error).message, { cause: err })
      failed.push({ source, code: e.code, message: e.message })
      lastError = e
      events.onFailover?.(source, e, sources[i + 1])
      continue
    }
    try {
      return { ...await write(repo, car, t, opts, spooled, stored), root: asked.root.toString(), source, failed }
    } catch (err) {
      // a damaged local piece, or a provider's CAR incomplete below a path, is one more
      // source that failed (the unpacker wrote nothing); anything else (target exists, disk full) is final
      const next = sources[i + 1]
      if (next === undefined || !isCairnError(err) || err.exitStatus !== 3) throw err
      failed.push({ source, code: err.code, message: err.message })
      lastError = err
      events.onFailover?.(source, err, next)
    } finally {
      if (spooled) { await rm(car, { force: true }); release(car) }
    }
  }
  // every source was tried and failed, each recording its error; with no source at all there is none
  throw lastError ?? new CairnError('ERR_NOT_FOUND', `no source to fetch ${target.root.toString()} from`)
}

async function write (repo: Pick<Repo, 'tmpDir'>, car: string, target: Target, options: GetOptions, spooled: boolean, stored?: string[]): Promise<Omit<GetResult, 'source' | 'failed'>> {
  const root = target.root.toString()
  let cid = target.root
  let source = car
  let rewritten: string | undefined
  try {
    if (target.path.length > 0) {
      cid = await resolvePath(car, target, options, stored)
      rewritten = track(join(repo.tmpDir, tempName('get', '.car')))
      await rerootCar(car, cid, rewritten)
      source = rewritten
    }
    const name = target.path.at(-1) ?? root
    if (options.car !== undefined) {
      const dest = resolve(options.car)
      if (source === car && !spooled) {
        // the repo's own piece file is verified like any other, and copied, never moved
        await (await openCarFile(source)).close()
        await copyFile(source, dest, options.force === true ? 0 : 1 /* COPYFILE_EXCL */).catch(err => { throw copyError(err, dest) })
      } else {
        await moveNew(source, dest, options.force === true)
        if (source === rewritten) rewritten = undefined
      }
      return { root, path: target.path.join('/'), cid: cid.toString(), output: dest, car: true }
    }
    const output = resolve(options.output ?? name)
    const unpacked = await unpackCar(source, output, { force: options.force, decrypt: options.decrypt, decrypter: options.decrypter })
    return { root, path: target.path.join('/'), cid: cid.toString(), output, car: false, unpacked }
  } finally {
    if (rewritten !== undefined) { await rm(rewritten, { force: true }); release(rewritten) }
  }
}

function copyError (err: unknown, dest: string): CairnError {
  if ((err as NodeJS.ErrnoException).code === 'EEXIST') return new CairnError('ERR_TARGET_EXISTS', `${dest} already exists; use --force to replace it`)
  return fromSystemError(err, dest)
}

async function moveNew (from: string, dest: string, force: boolean): Promise<void> {
  if (!force) {
    // claim the name first so an existing file is never replaced
    const handle = await open(dest, 'wx').catch(err => { throw copyError(err, dest) })
    await handle.close()
    // an empty placeholder until the rename: not to be left behind by an interrupted run
    track(dest)
  }
  try {
    await rename(from, dest)
    release(dest)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') {
      if (!force) await rm(dest, { force: true })
      throw fromSystemError(err, dest)
    }
    const tmp = tempPathFor(dest)
    await copyFile(from, tmp)
    await rename(tmp, dest)
    release(tmp)
  }
}

/**
 * The CID at `root/path` in a CAR holding at least the path's blocks, resolved
 * through UnixFS directories and HAMT shards by the one UnixFS resolver (the
 * CAR's blocks are verified against their CIDs first). The path is `stored`
 * when already resolved; otherwise it is resolved from the CAR's own blocks.
 */
async function resolvePath (file: string, target: Target, options: GetOptions, stored?: string[]): Promise<CID> {
  const car = await openCarFile(file, { complete: false })
  try {
    if (!car.has(target.root)) throw new CairnError('ERR_PATH_NOT_FOUND', `${target.root.toString()} is not a UnixFS directory, so it has no ${target.path.join('/')}`)
    const path = stored ?? await storedPathOf(target, car.get, options)
    const { terminal } = await resolveUnixfsPath({ cid: target.root, bytes: await car.get(target.root) }, path, car.get)
    return terminal.cid
  } finally {
    await car.close()
  }
}

/**
 * The path of `target` as stored: inside an encrypted tree (unless
 * `decrypt` is false) a path names real names, turned into the ordinals
 * they are stored under by the tree's decrypted names; elsewhere it is
 * stored as given. Reads only the blocks on the way.
 */
async function storedPathOf (target: Target, load: Load, options: GetOptions): Promise<string[]> {
  if (target.path.length === 0 || options.decrypt === false) return target.path
  const root = { cid: target.root, bytes: await load(target.root) }
  if (!await isEncryptedDirectory(root, load)) return target.path
  return await storedPath(root, target.path, load, await decrypterOf(options.decrypter, target.root))
}

/** The same blocks under a header naming `root`: the unpacker then writes that entry. */
async function rerootCar (car: string, root: CID, dest: string): Promise<void> {
  const input = createReadStream(car)
  const header = await readCarHeader(input as AsyncIterable<Uint8Array>).finally(() => input.destroy())
  const out = createWriteStream(dest, { flags: 'wx' })
  out.on('error', () => {})
  out.write(encodeHeader([root]))
  for await (const chunk of createReadStream(car, { start: header.length, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>) {
    if (!out.write(chunk)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}
