/**
 * `cairn demo [--keep]` (README "Content"): the whole product in a few seconds on
 * loopback. A provider runs in this process on 127.0.0.1 (port 0) in a
 * temporary repo; a client in another temporary repo adds a sample directory,
 * makes a deal, waits for it to be active, audits it with a proof of
 * storage, retrieves the content back from
 * the provider (verified block by block), compares it byte for byte, and
 * prints both ledgers. The server is always stopped; the temporary directory
 * is removed unless --keep.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, lstat } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { CairnError, codes, type ErrorCode } from '../errors.js'
import { AddressBook } from '../client/address-book.js'
import { auditDeal, loadDeal, verifyProofEntry } from '../client/audit.js'
import { addToRepo } from '../client/content.js'
import { makeDeal } from '../client/deal.js'
import { get, parseTarget } from '../client/retrieve.js'
import type { Ledger, LedgerEntry } from '../ledger/interface.js'
import { LevelLedger } from '../ledger/level.js'
import { providerTerms } from '../provider/terms.js'
import { startProviderNode, type ProviderNode } from '../provider/node.js'
import { Repo } from '../repo/repo.js'
import { formatBytes, Output, type GlobalOptions } from './output.js'

interface DemoOptions extends GlobalOptions {
  keep?: boolean
}

export default async function demo (_args: string[], options: DemoOptions): Promise<void> {
  const out = new Output(options)
  const say = (line: string): void => { if (!out.json && !out.quiet) process.stdout.write(line + '\n') }
  const started = performance.now()
  const base = await mkdtemp(join(tmpdir(), 'cairn-demo-'))
  let node: ProviderNode | undefined
  const repos: Repo[] = []
  // Ctrl-C mid-demo: remove the temporary repos, then let the signal end the process as it would have
  const interrupted = (signal: NodeJS.Signals): void => {
    if (options.keep !== true) rmSync(base, { recursive: true, force: true })
    process.kill(process.pid, signal)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    // the provider: its own repo, ledger and piece store, serving on loopback
    const providerRepo = await Repo.init(join(base, 'provider'))
    repos.push(providerRepo)
    // a price large enough that one proven day of a 4 MiB piece earns a visible amount
    const terms = providerTerms({ pricePerGiBDay: 1_000_000n, maxPieceSize: 1n << 30n, capacity: 10n << 30n })
    const events: string[] = []
    node = await startProviderNode(providerRepo, terms, { log: (event) => { events.push(event) } })
    const { url, ledger: providerLedger } = node
    say(`provider  ${providerRepo.identity.did}\n          listening on ${url} (repo ${providerRepo.path})`)

    // the client and its sample directory
    const clientRepo = await Repo.init(join(base, 'client'))
    repos.push(clientRepo)
    const clientLedger = await LevelLedger.open(await clientRepo.db(), clientRepo.identity)
    say(`client    ${clientRepo.identity.did}`)
    const sample = join(base, 'sample')
    await writeSample(sample)
    const added = await addToRepo(clientRepo, [sample])
    say(`\nadd       ${added.files} files, ${formatBytes(added.bytes)} from ${sample}\n          root  ${added.root}\n          piece ${added.piece.cid} (${formatBytes(Number(added.piece.size))} padded)`)

    const provider = await new AddressBook(await clientRepo.db()).add(url)
    say(`\nask       ${provider.ask.payload.pricePerGiBDay} per GiB per day, ${formatBytes(Number(provider.ask.payload.freeCapacity))} free, signature verified`)
    const deal = await makeDeal({
      repo: clientRepo,
      ledger: clientLedger,
      pollIntervalMs: 100,
      activeTimeoutMs: 30_000,
      onProgress: (_url, p) => {
        if (p.phase === 'accepted') say('deal      proposed and accepted (signed by both sides)')
        if (p.phase === 'active') say('          piece uploaded, verified and stored by the provider')
      }
    }, added.root, url, { duration: 30 * 86400, label: 'cairn demo', maxPrice: terms.pricePerGiBDay })
    say(`          deal ${deal.id} is active`)

    // a proof of storage (docs/protocol.md "Proofs"): random challenges into the piece's CommP tree, checked against the piece CID alone
    const audit = await auditDeal({ ledger: clientLedger, db: await clientRepo.db(), signer: clientRepo.identity }, await loadDeal(clientLedger, deal.id), { timeoutMs: 15_000, retries: 1, backoffMs: 200 })
    if (audit.outcome !== 'passed') {
      const code = audit.code !== undefined && Object.hasOwn(codes, audit.code) ? audit.code as ErrorCode : 'ERR_PROOF_MISSED'
      throw new CairnError(code, `the demo provider's proof ${audit.outcome}: ${audit.message ?? ''}`)
    }
    say(`
audit     ${audit.count} challenges answered, proof verified against the piece CID in ${audit.ms} ms${audit.settlement === undefined ? '' : `; ${audit.settlement.kind} ${audit.settlement.amount}`}`)

    // retrieve from the provider, not the local repo: that is the point
    const retrieved = join(base, 'retrieved')
    const got = await get(clientRepo, parseTarget(added.root), [{ kind: 'provider', location: url, reason: 'deal' }], { output: retrieved })
    say(`\nget       ${got.unpacked?.files ?? 0} files, ${formatBytes(got.unpacked?.bytes ?? 0)} from ${url}, every block verified`)
    const compared = await compareTrees(sample, retrieved)
    say(`compare   ${compared.files} files and ${compared.directories} directories identical, byte for byte`)

    const ledgers = {
      client: await shortLog(clientLedger),
      provider: await shortLog(providerLedger)
    }
    say('\nclient ledger')
    for (const line of ledgers.client) say(`  ${line}`)
    say('provider ledger')
    for (const line of ledgers.provider) say(`  ${line}`)
    const clientCheck = await clientLedger.verify({ verifyEntry: verifyProofEntry })
    const providerCheck = await providerLedger.verify()
    say(`ledgers   verified: client ${clientCheck.entries} entries, provider ${providerCheck.entries} entries`)
    const seconds = (performance.now() - started) / 1000
    say(`\ndone in ${seconds.toFixed(1)} s${options.keep === true ? `; kept ${base}` : ''}`)

    if (out.json || out.quiet) {
      out.result({
        ok: true,
        provider: { did: providerRepo.identity.did, url },
        client: { did: clientRepo.identity.did },
        root: added.root,
        pieceCid: added.piece.cid,
        pieceCidV1: added.piece.cidV1,
        pieceSize: Number(added.piece.size),
        payloadSize: added.piece.payloadSize,
        deal: { id: deal.id, state: deal.state },
        audit: { outcome: audit.outcome, challenges: audit.count, ms: audit.ms },
        retrieved: { files: got.unpacked?.files, bytes: got.unpacked?.bytes, identical: true },
        ledgers,
        seconds: Number(seconds.toFixed(3)),
        kept: options.keep === true ? base : null
      }, () => deal.id)
    }
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
    await node?.close()
    for (const repo of repos) await repo.close()
    if (options.keep !== true) await rm(base, { recursive: true, force: true })
  }
}

/** A small tree that exercises the importer: nesting, a unicode name, an empty directory, a multi-chunk file. */
async function writeSample (dir: string): Promise<void> {
  await mkdir(join(dir, 'notes', '2024'), { recursive: true })
  await mkdir(join(dir, 'empty'), { recursive: true })
  await writeFile(join(dir, 'README.txt'), 'This directory was stored and retrieved by cairn demo.\n')
  await writeFile(join(dir, 'notes', 'todo.md'), '# todo\n\n- make a deal\n- retrieve it\n- compare\n')
  await writeFile(join(dir, 'notes', '2024', 'café ☕ naïve.txt'), 'Unicode names survive the round trip: ☕ ✓\n')
  // ~3 MiB: several 1 MiB chunks under a balanced file node
  await writeFile(join(dir, 'data.bin'), randomBytes(3 * 1024 * 1024 + 12345))
}

/** Compares two trees entry by entry and byte for byte; throws on the first difference. */
async function compareTrees (a: string, b: string): Promise<{ files: number, directories: number }> {
  const count = { files: 0, directories: 0 }
  async function walk (x: string, y: string): Promise<void> {
    const [sx, sy] = await Promise.all([lstat(x), lstat(y).catch(() => undefined)])
    const where = relative(a, x) || '.'
    if (sy === undefined) throw differ(`${where} is missing from the retrieved copy`)
    if (sx.isDirectory()) {
      if (!sy.isDirectory()) throw differ(`${where} is a directory in the original only`)
      const [ex, ey] = await Promise.all([readdir(x), readdir(y)])
      if (ex.sort().join('\0') !== ey.sort().join('\0')) throw differ(`${where} lists [${ex.join(', ')}] but the copy lists [${ey.join(', ')}]`)
      count.directories++
      for (const name of ex) await walk(join(x, name), join(y, name))
      return
    }
    const [hx, hy] = await Promise.all([digest(x), digest(y)])
    if (hx !== hy) throw differ(`${where} differs from the original`)
    count.files++
  }
  await walk(a, b)
  return count
}

async function digest (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

function differ (message: string): CairnError {
  return new CairnError('ERR_DAG_INVALID', `retrieved content does not match: ${message}`)
}

/** `cairn ledger log`-style short lines, oldest first. */
async function shortLog (ledger: Ledger): Promise<string[]> {
  const entries: LedgerEntry[] = []
  for await (const entry of ledger.log()) entries.push(entry)
  return entries.reverse().map(e => {
    const f = e.fields
    const extra = [
      f.deal !== undefined ? `deal=${shorten(String(f.deal))}` : '',
      typeof f.provider === 'string' && e.signer !== f.provider ? `provider=${shorten(f.provider)}` : '',
      typeof f.client === 'string' && e.signer !== f.client ? `client=${shorten(f.client)}` : '',
      f.pieceCid !== undefined ? `piece=${shorten(String(f.pieceCid))}` : '',
      typeof f.blocks === 'number' ? `blocks=${f.blocks}` : '',
      typeof f.code === 'string' ? `code=${f.code}` : '',
      typeof f.amount === 'bigint' || typeof f.amount === 'number' ? `amount=${f.amount}` : ''
    ].filter(s => s !== '').join(' ')
    return `${String(e.seq).padStart(3)}  ${e.kind.padEnd(16)} ${extra}`
  })
}

function shorten (text: string): string {
  return text.length > 24 ? `${text.slice(0, 14)}…${text.slice(-6)}` : text
}
