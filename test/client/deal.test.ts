/**
 * The client's deal flow and verified retrieval against a real provider
 * (its deal service and server) in this process on 127.0.0.1:0.
 */
import test from 'ava'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { AddressBook } from '../../src/client/address-book.js'
import { addToRepo } from '../../src/client/content.js'
import { defaultStartDelay, makeDeal } from '../../src/client/deal.js'
import { ProviderClient } from '../../src/client/provider-client.js'
import { get, parseTarget, sourcesFor } from '../../src/client/retrieve.js'
import { sampleTree, tamperingProxy, tree, world } from './helpers.js'

test('deal: proposed, accepted, uploaded, active on both sides; both ledgers verify', async (t) => {
  const w = await world()
  try {
    const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'))])
    const phases: string[] = []
    const deal = await makeDeal({ repo: w.client.repo, ledger: w.client.ledger, onProgress: (_u, p) => { if (p.phase !== 'uploading') phases.push(p.phase) } },
      added.root, w.provider.url, { duration: 10 * 86400, label: 'test' })
    t.deepEqual(phases, ['ask', 'proposed', 'accepted', 'waiting', 'active'])
    t.is(deal.state, 'active')
    t.is(deal.pieceCid, added.piece.cid)
    t.is(deal.pricePerGiBDay, 40n)
    t.is((await w.client.ledger.deal(deal.id))?.state, 'active')
    t.is((await w.provider.ledger.deal(deal.id))?.state, 'active')
    const kinds: string[] = []
    for await (const e of w.client.ledger.log()) kinds.unshift(e.kind)
    t.deepEqual(kinds, ['deal-proposed', 'deal-accepted', 'deal-active'])
    t.is((await w.client.ledger.verify()).entries, 3)
    t.is((await w.provider.ledger.verify()).entries, 2)
    // the stored piece is served back by piece CID, with ranges
    const client = new ProviderClient(w.provider.url)
    const local = await readFile(join(w.client.repo.piecesDir, `${added.piece.cid}.car`))
    const chunks: Uint8Array[] = []
    for await (const chunk of await client.piece(added.piece.cid, { start: 100, end: 1099 })) chunks.push(chunk)
    t.deepEqual(Buffer.concat(chunks), local.subarray(100, 1100))
    const missing = await t.throwsAsync(client.piece('bafkzcibe4gkt2eniupfj3imez7zuboxu5w563dcfdsfo4qrplvpy2dodrkdmhpxbce'))
    t.is((missing as { code?: string }).code, 'ERR_PIECE_NOT_FOUND')
    // the deal taught the address book the provider
    const book = await new AddressBook(await w.client.repo.db()).list()
    t.is(book.length, 1)
    t.is(book[0]?.url, w.provider.url)
  } finally {
    await w.cleanup()
  }
})

test('deal: a price under the ask is rejected with ERR_PRICE_TOO_LOW and recorded as deal-rejected', async (t) => {
  const w = await world()
  try {
    const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'), 1000)])
    const err = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 2, maxPrice: 10n }))
    t.is((err as { code?: string }).code, 'ERR_PRICE_TOO_LOW')
    t.regex(err?.message ?? '', /offered 10 per GiB per day, provider asks at least 40/)
    const entries = []
    for await (const e of w.client.ledger.log()) entries.push(e)
    t.is(entries[0]?.kind, 'deal-rejected')
    t.is(entries[0]?.fields.code, 'ERR_PRICE_TOO_LOW')
    t.is((await w.client.ledger.deal(String(entries[0]?.fields.deal)))?.state, 'rejected')
  } finally {
    await w.cleanup()
  }
})

test('deal: content not in the repo is ERR_NOT_FOUND; an unreachable provider is ERR_UNREACHABLE', async (t) => {
  const w = await world()
  try {
    const err = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, 'bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q', w.provider.url, { duration: 86400 }))
    t.is((err as { code?: string }).code, 'ERR_NOT_FOUND')
    const added = await addToRepo(w.client.repo, [await sampleTree(join(w.dir, 'sample'), 10)])
    await w.provider.service.close()
    const down = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 }))
    t.is((down as { code?: string }).code, 'ERR_UNREACHABLE')
  } finally {
    await w.cleanup()
  }
})

test('get: from the provider holding the deal, a sub-path, and as a CAR; byte-identical', async (t) => {
  const w = await world()
  try {
    const sample = await sampleTree(join(w.dir, 'sample'))
    const added = await addToRepo(w.client.repo, [sample])
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const target = parseTarget(added.root)
    const sources = await sourcesFor(w.client.repo, w.client.ledger, target.root, [])
    t.deepEqual(sources.map(s => s.reason), ['repo', 'deal'])
    const remote = sources.filter(s => s.kind === 'provider')
    const result = await get(w.client.repo, target, remote, { output: join(w.dir, 'out') })
    t.is(result.source.location, w.provider.url)
    t.deepEqual(await tree(join(w.dir, 'out')), await tree(sample))

    const file = await get(w.client.repo, parseTarget(`${added.root}/docs/deep/naïve ☕.txt`), remote, { output: join(w.dir, 'one.txt') })
    t.is(await readFile(file.output, 'utf8'), 'unicode\n')

    const local = await get(w.client.repo, target, sources.slice(0, 1), { car: join(w.dir, 'x.car') })
    t.true(local.car)
    t.is((await readFile(local.output)).length, added.piece.payloadSize)
    const exists = await t.throwsAsync(get(w.client.repo, target, remote, { output: join(w.dir, 'out') }))
    t.is((exists as { code?: string }).code, 'ERR_TARGET_EXISTS')
  } finally {
    await w.cleanup()
  }
})

test('get: wrong bytes from one provider are ERR_BLOCK_MISMATCH, a cut-off stream fails too, and the next provider serves', async (t) => {
  const w = await world()
  const corrupt = await tamperingProxy(w.provider.url, 'corrupt')
  const truncated = await tamperingProxy(w.provider.url, 'truncate')
  try {
    const sample = await sampleTree(join(w.dir, 'sample'))
    const added = await addToRepo(w.client.repo, [sample])
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const failovers: string[] = []
    const result = await get(w.client.repo, parseTarget(added.root), [
      { kind: 'provider', location: corrupt.url, reason: 'named' },
      { kind: 'provider', location: truncated.url, reason: 'named' },
      { kind: 'provider', location: w.provider.url, reason: 'named' }
    ], { output: join(w.dir, 'out') }, { onFailover: (s, err) => failovers.push(`${s.location} ${err.code}`) })
    t.is(result.source.location, w.provider.url)
    t.is(result.failed[0]?.code, 'ERR_BLOCK_MISMATCH')
    t.true(['ERR_CAR_TRUNCATED', 'ERR_UNREACHABLE'].includes(result.failed[1]?.code ?? ''), result.failed[1]?.code)
    t.is(failovers.length, 2)
    t.deepEqual(await tree(join(w.dir, 'out')), await tree(sample))
    // nothing spooled is left behind
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])

    const only = await t.throwsAsync(get(w.client.repo, parseTarget(added.root), [{ kind: 'provider', location: corrupt.url, reason: 'named' }], { output: join(w.dir, 'out2') }))
    t.is((only as { code?: string }).code, 'ERR_BLOCK_MISMATCH')
    t.deepEqual(await readdir(w.dir).then(names => names.filter(n => n.startsWith('out2') || n.startsWith('.out2'))), [])
  } finally {
    await corrupt.close()
    await truncated.close()
    await w.cleanup()
  }
})

test('a damaged local piece: get falls over to the provider; a new deal fails at the provider\'s verification and is recorded deal-failed', async (t) => {
  const w = await world()
  try {
    const sample = await sampleTree(join(w.dir, 'sample'))
    const added = await addToRepo(w.client.repo, [sample])
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const piecePath = join(w.client.repo.piecesDir, `${added.piece.cid}.car`)
    const { open } = await import('node:fs/promises')
    const handle = await open(piecePath, 'r+')
    const one = Buffer.alloc(1)
    await handle.read(one, 0, 1, 1_000_000)
    one[0] = (one[0] as number) ^ 0xff
    await handle.write(one, 0, 1, 1_000_000)
    await handle.close()

    const target = parseTarget(added.root)
    const sources = await sourcesFor(w.client.repo, w.client.ledger, target.root, [])
    t.is(sources[0]?.kind, 'local')
    const result = await get(w.client.repo, target, sources, { output: join(w.dir, 'out') })
    t.is(result.source.location, w.provider.url)
    t.is(result.failed[0]?.code, 'ERR_BLOCK_MISMATCH')
    t.deepEqual(await tree(join(w.dir, 'out')), await tree(sample))
    const asCar = await get(w.client.repo, target, sources, { car: join(w.dir, 'copy.car') })
    t.is(asCar.source.location, w.provider.url)
    t.is(asCar.failed[0]?.code, 'ERR_BLOCK_MISMATCH')

    const err = await t.throwsAsync(makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 }))
    t.is((err as { code?: string }).code, 'ERR_BLOCK_MISMATCH', err?.message)
    const latest = []
    for await (const e of w.client.ledger.log({ limit: 1 })) latest.push(e)
    t.is(latest[0]?.kind, 'deal-failed')
    t.is(latest[0]?.fields.code, 'ERR_BLOCK_MISMATCH')
    t.is((await w.client.ledger.deal(String(latest[0]?.fields.deal)))?.state, 'failed')
    t.is((await w.provider.ledger.deal(String(latest[0]?.fields.deal)))?.state, 'accepted')
    await w.client.ledger.verify()
  } finally {
    await w.cleanup()
  }
})

test('get of a path asks the provider for that path only, through a HAMT-sharded directory; a missing path is ERR_PATH_NOT_FOUND', async (t) => {
  const w = await world()
  try {
    const { mkdir, writeFile } = await import('node:fs/promises')
    const big = join(w.dir, 'big')
    await mkdir(big)
    // 1200 links of ~270 bytes: over the 256 KiB directory block threshold, so the directory is sharded
    const name = (i: number): string => `entry-${String(i).padStart(5, '0')}-${'x'.repeat(220)}.txt`
    for (let i = 0; i < 1200; i += 100) {
      await Promise.all(Array.from({ length: 100 }, async (_, j) => { await writeFile(join(big, name(i + j)), `file ${i + j}\n`) }))
    }
    await writeFile(join(big, 'large.bin'), Buffer.alloc(2 << 20, 7))
    const added = await addToRepo(w.client.repo, [big])
    const { UnixFS } = await import('ipfs-unixfs')
    const dagPb = await import('@ipld/dag-pb')
    const { openCarFile } = await import('../../src/car/index.js')
    const car = await openCarFile(join(w.client.repo.piecesDir, `${added.piece.cid}.car`))
    t.is(UnixFS.unmarshal(dagPb.decode(await car.get(car.root)).Data as Uint8Array).type, 'hamt-sharded-directory')
    await car.close()
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const remote = [{ kind: 'provider' as const, location: w.provider.url, reason: 'named' as const }]
    let fetched = 0
    const one = await get(w.client.repo, parseTarget(`${added.root}/${name(1111)}`), remote, { output: join(w.dir, 'one.txt') }, { onBytes: (_s, n) => { fetched = n } })
    t.is(await readFile(one.output, 'utf8'), 'file 1111\n')
    t.true(fetched < added.piece.payloadSize / 4, `fetched ${fetched} of ${added.piece.payloadSize} bytes`)
    t.deepEqual(await readdir(w.client.repo.tmpDir), [])
    const missing = await t.throwsAsync(get(w.client.repo, parseTarget(`${added.root}/nope.txt`), remote, { output: join(w.dir, 'nope') }))
    t.is((missing as { code?: string }).code, 'ERR_PATH_NOT_FOUND')
    // the same path from the local piece
    const local = await get(w.client.repo, parseTarget(`${added.root}/${name(7)}`), await sourcesFor(w.client.repo, w.client.ledger, parseTarget(added.root).root, []), { output: join(w.dir, 'seven.txt') })
    t.is(local.source.kind, 'local')
    t.is(await readFile(local.output, 'utf8'), 'file 7\n')
  } finally {
    await w.cleanup()
  }
})

test('the default start leaves the upload time at 1 MiB/s: at once up to 60 MiB, later beyond', (t) => {
  t.is(defaultStartDelay(1000n), 0)
  t.is(defaultStartDelay(60n << 20n), 0)
  t.is(defaultStartDelay((60n << 20n) + 1n), 1)
  t.is(defaultStartDelay(1n << 30n), 1024 - 60)
})
