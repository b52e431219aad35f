/**
 * `cairn deal <cid> [--provider URL]… [--replicas N] [--duration 180d]
 * [--max-price P] [--challenges K] [--proving-period 24h] [--label L]`
 * (README "Client", docs/protocol.md): propose the piece holding `<cid>` to each provider,
 * upload it with a progress bar, wait until the provider has verified and
 * stored it. Prints one deal id per provider (--json: one object per line).
 * `cairn deal --resume <id>` takes an interrupted deal on from where it stopped.
 */
import { CairnError, isCairnError } from '../errors.js'
import { AddressBook } from '../client/address-book.js'
import { DEFAULT_MAX_PRICE, localPiece, makeDeal, resumeDeal, type DealProgress, type DealResult, type DealTerms } from '../client/deal.js'
import { LevelLedger } from '../ledger/level.js'
import { reputationsFromLedger } from '../reputation/ledger.js'
import { place } from '../reputation/placement.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { Output, parseIntegerFlag, type GlobalOptions, type Progress } from './output.js'
import { parseDuration } from '../config/values.js'
import { replicaPlan } from '../client/replicas.js'
import { namedRecipients, type EncryptionFlags } from './encryption-options.js'

interface DealOptions extends GlobalOptions, EncryptionFlags {
  /** true with --distinct, false with --no-distinct, unset: distinct for encrypted content and more than one replica */
  distinct?: boolean
  provider?: string[]
  replicas?: string
  duration?: string
  maxPrice?: string
  challenges?: string
  provingPeriod?: string
  label?: string
  startDelay?: string
  resume?: string
}

export function termsFrom (options: DealOptions): DealTerms {
  if (options.maxPrice !== undefined && !/^\d+$/.test(options.maxPrice.trim())) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--max-price must be a whole number of base units per GiB per day, got ${JSON.stringify(options.maxPrice)}`)
  }
  const label = options.label ?? ''
  if (Buffer.byteLength(label) > 256) throw new CairnError('ERR_INVALID_ARGUMENT', `--label is ${Buffer.byteLength(label)} bytes; at most 256 bytes are allowed`)
  return {
    duration: parseDuration(options.duration, '--duration', 180 * 86400),
    maxPrice: options.maxPrice === undefined ? undefined : BigInt(options.maxPrice.trim()),
    challenges: parseIntegerFlag(options.challenges, '--challenges', 'ERR_INVALID_ARGUMENT', 1, 1024),
    provingPeriod: options.provingPeriod === undefined ? undefined : parseDuration(options.provingPeriod, '--proving-period', 86400),
    label,
    startDelay: options.startDelay === undefined ? undefined : options.startDelay.trim() === '0' ? 0 : parseDuration(options.startDelay, '--start-delay', 0)
  }
}

export default async function deal (args: string[], options: DealOptions): Promise<void> {
  if (options.resume !== undefined) {
    if (args[0] !== undefined) throw new CairnError('ERR_USAGE', '--resume takes a deal id and no CID: cairn deal --resume <id>')
    if ((options.provider?.length ?? 0) > 1) throw new CairnError('ERR_USAGE', '--resume takes at most one --provider: the node of the deal\'s provider to resume it at')
    await resume(options.resume, options)
    return
  }
  const root = args[0]
  if (root === undefined) throw new CairnError('ERR_USAGE', 'expected the root CID of content added with `cairn add` (or --resume <deal id>)')
  const out = new Output(options)
  const terms = termsFrom(options)
  const replicas = parseIntegerFlag(options.replicas, '--replicas', 'ERR_INVALID_ARGUMENT', 1, 64) ?? 1
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    let urls = options.provider ?? []
    const reasons = new Map<string, string>()
    if (urls.length === 0) {
      // no provider named: the best distinct hosts in the address book by reputation, then price, within --max-price (README "Reputation, placement and repair")
      const book = await new AddressBook(await repo.db()).list()
      const reps = await reputationsFromLedger(ledger)
      const { record } = await localPiece(repo, root)
      const placement = place(book.map(e => ({ id: e.did, url: e.url, pricePerGiBDay: e.ask.payload.pricePerGiBDay, freeCapacity: e.ask.payload.freeCapacity, reputation: reps.get(e.did) })),
        { replicas, maxPrice: terms.maxPrice ?? DEFAULT_MAX_PRICE, pieceSize: BigInt(record.paddedSize) })
      for (const c of placement.chosen) {
        const url = c.candidate.url as string
        urls.push(url)
        reasons.set(url, c.reason)
        if (!out.json && !out.quiet) out.line(null, () => `chose ${url} (${c.candidate.id}): ${c.reason}`)
      }
      if (urls.length === 0) throw new CairnError('ERR_NOT_FOUND', 'no provider to propose to: pass --provider URL or add one with `cairn providers add <url>`')
      if (urls.length < replicas) out.warn(`only ${urls.length} of ${replicas} replicas can be placed: the address book has no more providers within --max-price ${terms.maxPrice ?? DEFAULT_MAX_PRICE}`)
    }
    urls = [...new Set(urls)]
    const named = await namedRecipients(options)
    const replicaFor = await replicaPlan(repo, root, (await localPiece(repo, root)).record, { encrypt: options.encrypt === true || named.length > 0, named, distinct: options.distinct, count: urls.length, onEncrypt: (n) => out.info(`encrypting a replica of ${root} for ${n} recipient${n === 1 ? '' : 's'}`) })

    const results: DealResult[] = []
    let firstError: unknown
    for (const [i, url] of urls.entries()) {
      const upload = uploadBar(out)
      try {
        const { root: dealt, replica } = await replicaFor(i)
        const result = await makeDeal({ repo, ledger, onProgress: upload.onProgress }, dealt, url, terms, replica)
        results.push(result)
        const reason = reasons.get(url)
        out.line(reason === undefined ? dealJSON(result) : { ...dealJSON(result), placement: reason }, () => out.quiet ? result.id : `deal ${result.id} active at ${result.url} (${result.provider})${result.root === root ? '' : `, replica ${result.root}`}`)
      } catch (err) {
        upload.done()
        // the first failure is reported (and sets the exit status) once all providers were tried; later ones here
        if (firstError !== undefined) {
          const code = isCairnError(err) ? err.code : 'ERR_INTERNAL'
          process.stderr.write(`error ${code}: ${url}: ${(err as Error).message}\n`)
        }
        firstError ??= err
      }
    }
    if (firstError !== undefined) throw firstError
  } finally {
    await repo.close()
  }
}

/** A progress bar for a deal's upload, from the first uploaded bytes until the provider verifies them. */
function uploadBar (out: Output): { onProgress: (provider: string, p: DealProgress) => void, done: () => void } {
  let bar: Progress | undefined
  const done = (): void => { bar?.done(); bar = undefined }
  return {
    onProgress: (provider, p) => {
      if (p.phase === 'uploading') {
        bar ??= out.progress(`uploading to ${provider}`, p.total)
        bar.update(p.bytes ?? 0)
      } else if (p.phase === 'waiting') done()
    },
    done
  }
}

async function resume (id: string, options: DealOptions): Promise<void> {
  const out = new Output(options)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    const upload = uploadBar(out)
    const result = await resumeDeal({ repo, ledger, onProgress: upload.onProgress }, id, options.provider?.[0]).finally(() => upload.done())
    out.line(dealJSON(result), () => out.quiet ? result.id : `deal ${result.id} active at ${result.url} (${result.provider})`)
  } finally {
    await repo.close()
  }
}

/** docs/json.md: sizes as numbers of bytes, times as ISO 8601, money as a decimal string. */
export function dealJSON (d: DealResult): Record<string, unknown> {
  return {
    id: d.id,
    state: d.state,
    provider: d.provider,
    url: d.url,
    root: d.root,
    pieceCid: d.pieceCid,
    pieceSize: Number(d.pieceSize),
    payloadSize: Number(d.payloadSize),
    pricePerGiBDay: d.pricePerGiBDay.toString(),
    start: new Date(d.start * 1000).toISOString(),
    end: new Date(d.end * 1000).toISOString(),
    ...(d.replicaOf === undefined ? {} : { replicaOf: d.replicaOf })
  }
}
