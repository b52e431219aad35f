/**
 * A real provider announcing to a real indexer: the deal's upload makes its
 * blocks findable by CID (the onDealActive seam), a deal that ends is
 * withdrawn (the onDealEnded seam), one that stops being served (failed by
 * start-up recovery because its piece is gone) is withdrawn by the
 * reconciliation at the next start, and `provider start`
 * refuses announce flags that cannot work.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ProviderDealsOptions } from '../../src/provider/context.js'
import { startProviderNode, type ProviderNode } from '../../src/provider/node.js'
import { Repo } from '../../src/repo/repo.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { announceProvider } from '../../src/routing/announce-provider.js'
import { LevelIndexStore } from '../../src/routing/level-index.js'
import { multiaddrFromUrl } from '../../src/routing/multiaddr.js'
import { peerIdFromPublicKey } from '../../src/routing/peer-id.js'
import { createIndexerServer } from '../../src/routing/server.js'
import { testTerms } from '../provider/fixtures.js'
import { cairn } from '../helpers/cli.js'
import { MiB, payload, randomBytes, storeUnderDeal } from '../interop/world.js'

/** An indexer on its own repo in a new temporary folder; `closeIndexer` removes the folder. */
async function indexerIn (prefix: string): Promise<{ dir: string, store: LevelIndexStore, indexerUrl: string, closeIndexer: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const indexerRepo = await Repo.init(join(dir, 'indexer'))
  const store = await LevelIndexStore.open(await indexerRepo.db())
  const indexer = createIndexerServer({ store, log: () => {} })
  const indexerUrl = await indexer.listen('127.0.0.1', 0)
  return {
    dir,
    store,
    indexerUrl,
    closeIndexer: async () => {
      await indexer.close()
      await store.close()
      await indexerRepo.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

test('a deal made with an announcing provider is found at the indexer by its root and leaves; withdrawn when the deal ends (onDealEnded) or is no longer served', async (t) => {
  const { dir, store, indexerUrl, closeIndexer } = await indexerIn('cairn-routing-provider-')
  const repo = await Repo.init(join(dir, 'provider'))
  let provider: ProviderNode | undefined
  try {
    provider = await startProviderNode(repo, testTerms())
    let announcer = await announceProvider(provider, { indexers: [indexerUrl], initialBackoffMs: 10 })
    const file = await payload([{ content: randomBytes(2 * MiB + 100, 5) }], { chunkSize: MiB, maxLinks: 1024 })
    const client = identityFromSecret(generateSecretKey())
    const deal = await storeUnderDeal(provider.url, repo.identity.did, client, file, 1n)
    await announcer.settled(AbortSignal.timeout(30_000))
    const ask = async (cid: string): Promise<Array<{ Schema: string, ID: string, Addrs: string[], Protocols: string[] }>> =>
      ((await (await fetch(`${indexerUrl}/routing/v1/providers/${cid}`)).json()) as { Providers: Array<{ Schema: string, ID: string, Addrs: string[], Protocols: string[] }> }).Providers
    for (const cid of [file.root.toString(), file.order[1] as string, file.order.at(-1) as string]) {
      t.deepEqual(await ask(cid), [{ Schema: 'peer', ID: peerIdFromPublicKey(repo.identity.publicKey), Addrs: [multiaddrFromUrl(provider.url)], Protocols: ['transport-ipfs-gateway-http'] }], cid)
    }
    // a second deal, ended through the deal service's onDealEnded seam (what deal expiry calls)
    const other = await payload([{ content: randomBytes(300_000, 6) }], { chunkSize: MiB, maxLinks: 1024 })
    const otherDeal = await storeUnderDeal(provider.url, repo.identity.did, client, other, 2n)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await ask(other.root.toString())).length, 1)
    const seams = (provider.node as unknown as { c: { options: ProviderDealsOptions } }).c.options
    seams.onDealEnded?.(otherDeal)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.deepEqual(await ask(other.root.toString()), [])
    t.is((await ask(file.root.toString())).length, 1)

    const piece = (await provider.ledger.deal(deal))?.pieceCid?.toString() ?? ''
    await provider.close()
    provider = undefined

    // the piece is lost while the provider is down: recovery fails the deal at start, reconciliation withdraws it
    await rm(join(repo.piecesDir, `${piece}.car`))
    provider = await startProviderNode(repo, testTerms(), { recover: true })
    announcer = await announceProvider(provider, { indexers: [indexerUrl], initialBackoffMs: 10 })
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is((await provider.node.deals({ state: 'failed' }))[0]?.id, deal)
    t.deepEqual(await ask(file.root.toString()), [])
    // and the indexer knows the provider at its new address
    t.deepEqual((await store.provider(peerIdFromPublicKey(repo.identity.publicKey)))?.addresses, [multiaddrFromUrl(provider.url)])
  } finally {
    await provider?.close()
    await repo.close()
    await closeIndexer()
  }
})

test('a deal past its end is withdrawn when the lifecycle expires it; one that ended while the provider was down, at its next start', async (t) => {
  const { dir, indexerUrl, closeIndexer } = await indexerIn('cairn-routing-expiry-')
  const repo = await Repo.init(join(dir, 'provider'))
  const clock = { now: Math.floor(Date.now() / 1000) }
  const start = async (): Promise<ProviderNode> => await startProviderNode(repo, testTerms(), { now: () => clock.now, lifecycle: { tickMs: 3_600_000 } })
  let provider: ProviderNode | undefined
  try {
    provider = await start()
    let announcer = await announceProvider(provider, { indexers: [indexerUrl], initialBackoffMs: 10 })
    const client = identityFromSecret(generateSecretKey())
    // storeUnderDeal makes deals that end a day from now
    const first = await payload([{ content: randomBytes(300_000, 7) }], { chunkSize: MiB, maxLinks: 1024 })
    const firstDeal = await storeUnderDeal(provider.url, repo.identity.did, client, first, 1n)
    await announcer.settled(AbortSignal.timeout(30_000))
    const providers = async (cid: string): Promise<number> =>
      ((await (await fetch(`${indexerUrl}/routing/v1/providers/${cid}`)).json()) as { Providers: unknown[] }).Providers.length
    t.is(await providers(first.root.toString()), 1)
    clock.now += 86400 + 10
    t.deepEqual((await provider.lifecycle!.tick()).expired, [firstDeal])
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is(await providers(first.root.toString()), 0, 'withdrawn once the deal expired')
    t.is(await providers(first.order.at(-1) as string), 0)

    // back to now, for a proposal that starts now
    clock.now = Math.floor(Date.now() / 1000)
    const second = await payload([{ content: randomBytes(300_000, 8) }], { chunkSize: MiB, maxLinks: 1024 })
    const secondDeal = await storeUnderDeal(provider.url, repo.identity.did, client, second, 2n)
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is(await providers(second.root.toString()), 1)
    await provider.lifecycle!.stop()
    await provider.close()
    // the deal's end passes while the provider is down; the new node's first tick expires it before the announcer listens
    clock.now = Math.floor(Date.now() / 1000) + 2 * 86400 + 10
    provider = await start()
    announcer = await announceProvider(provider, { indexers: [indexerUrl], initialBackoffMs: 10 })
    for (let i = 0; i < 200 && (await provider.ledger.deal(secondDeal))?.state !== 'expired'; i++) await new Promise(resolve => setTimeout(resolve, 20))
    t.is((await provider.ledger.deal(secondDeal))?.state, 'expired')
    await announcer.settled(AbortSignal.timeout(30_000))
    t.is(await providers(second.root.toString()), 0, 'withdrawn after the restart')
  } finally {
    await provider?.close()
    await repo.close()
    await closeIndexer()
  }
})

test('CLI: provider start refuses announce flags that cannot work, with their codes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-routing-cli-'))
  try {
    const repo = join(dir, 'p')
    t.is((await cairn(['--repo', repo, 'init'])).code, 0)
    const wildcard = await cairn(['--repo', repo, 'provider', 'start', '--listen', '0.0.0.0:0', '--announce-to', 'http://127.0.0.1:9'])
    t.is(wildcard.code, 2)
    t.regex(wildcard.stderr, /ERR_INVALID_ARGUMENT: .*--announce-address/)
    const alone = await cairn(['--repo', repo, 'provider', 'start', '--listen', '127.0.0.1:0', '--announce-address', 'http://provider.example'])
    t.is(alone.code, 2)
    t.regex(alone.stderr, /ERR_USAGE/)
    const badIndexer = await cairn(['--repo', repo, 'provider', 'start', '--listen', '127.0.0.1:0', '--announce-to', 'indexer.example'])
    t.is(badIndexer.code, 2)
    t.regex(badIndexer.stderr, /ERR_INVALID_ARGUMENT/)
    const badAddress = await cairn(['--repo', repo, 'provider', 'start', '--listen', '127.0.0.1:0', '--announce-to', 'http://127.0.0.1:9', '--announce-address', '/ip4/1.2.3.4/tcp/4001'])
    t.is(badAddress.code, 2)
    t.regex(badAddress.stderr, /ERR_INVALID_MULTIADDR/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
