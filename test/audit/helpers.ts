/**
 * Providers on 127.0.0.1:0 in temporary repos (the real deal service with its
 * layer caches), a client repo, and deals made through the client's deal flow,
 * so audits run against exactly what a user would have.
 */
import type { PdpOptions } from '../../src/pdp/mount.js'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { loadDeal, type AuditContext, type AuditDeal } from '../../src/client/audit.js'
import { LevelLedger } from '../../src/ledger/level.js'
import type { StateLedger } from '../../src/ledger/state.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import type { ProviderDealsOptions } from '../../src/provider/context.js'
import { providerTerms, type ProviderTerms } from '../../src/provider/terms.js'
import type { HttpService } from '../../src/provider/server.js'
import { startProviderNode } from '../../src/provider/node.js'
import type { Database } from '../../src/repo/repo.js'
import { Repo } from '../../src/repo/repo.js'
import { PieceStore } from '../../src/store/pieces.js'
import type { SignedProofRequest } from '../../src/protocol/interface.js'
import { signProofRequest } from '../../src/protocol/proof-request.js'
import type { Signer } from '../../src/protocol/signing.js'

export interface TestProvider {
  repo: Repo
  ledger: StateLedger
  node: ProviderDeals
  store: PieceStore
  service: HttpService
  url: string
  terms: ProviderTerms
}

export interface World {
  dir: string
  providers: TestProvider[]
  client: { repo: Repo, ledger: LevelLedger, db: Database }
  ctx: AuditContext
  /** a deal for a fresh sample of `bytes` random bytes with provider `i`, through to active */
  deal: (i: number, options?: DealOptions) => Promise<AuditDeal>
  cleanup: () => Promise<void>
}

export interface DealOptions { bytes?: number, duration?: number, provingPeriod?: number, challenges?: number }

/** Proof requests per deal the test providers take: audits here come much faster than once a period. */
export const TEST_PROOF_RATE = { burst: 1000, perSecond: 100 }

export const TERMS: Omit<ProviderTerms, 'endpoint'> = providerTerms({
  // a price high enough that a few KiB for a few seconds earn whole base units
  pricePerGiBDay: 10n ** 15n,
  collateralPerGiB: 10n ** 11n,
  maxPieceSize: 1n << 30n,
  capacity: 1n << 32n,
  provingPeriod: 2,
  challenges: 1024
})

export async function world (count = 1, options: { terms?: Partial<ProviderTerms>, prover?: ProviderDealsOptions, pdp?: PdpOptions } = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-audit-test-'))
  const providers: TestProvider[] = []
  for (let i = 0; i < count; i++) {
    const repo = await Repo.init(join(dir, `provider-${i}`))
    const terms: ProviderTerms = { endpoint: '', ...TERMS, ...options.terms }
    const { ledger, node, store, service, url } = await startProviderNode(repo, terms, { deals: { proofRate: TEST_PROOF_RATE, ...options.prover }, ...(options.pdp === undefined ? {} : { pdp: options.pdp }) })
    providers.push({ repo, ledger, node, store, service, url, terms })
  }
  const clientRepo = await Repo.init(join(dir, 'client'))
  const clientDb = await clientRepo.db()
  const clientLedger = await LevelLedger.open(clientDb, clientRepo.identity)
  let samples = 0
  const deal = async (i: number, o: DealOptions = {}): Promise<AuditDeal> => {
    const p = providers[i] as TestProvider
    const sample = join(dir, `sample-${samples++}`)
    await mkdir(sample, { recursive: true })
    await writeFile(join(sample, 'data.bin'), randomBytes(o.bytes ?? 3000))
    const added = await addToRepo(clientRepo, [sample])
    const made = await makeDeal({ repo: clientRepo, ledger: clientLedger, pollIntervalMs: 20 }, added.root, p.url, { duration: o.duration ?? 86400, provingPeriod: o.provingPeriod, challenges: o.challenges ?? 64, maxPrice: p.terms.pricePerGiBDay, startDelay: 0 })
    return await loadDeal(clientLedger, made.id)
  }
  return {
    dir,
    providers,
    client: { repo: clientRepo, ledger: clientLedger, db: clientDb },
    ctx: { ledger: clientLedger, db: clientDb, signer: clientRepo.identity },
    deal,
    cleanup: async () => {
      for (const p of providers) {
        await p.service.close()
        await p.repo.close()
      }
      await clientRepo.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Entries of one kind (all kinds when unset), oldest first. */
export async function entries (ledger: LevelLedger, kind?: string, deal?: string): Promise<Array<{ kind: string, fields: Record<string, unknown> }>> {
  const out: Array<{ kind: string, fields: Record<string, unknown> }> = []
  for await (const e of ledger.log({ deal })) if (kind === undefined || e.kind === kind) out.unshift({ kind: e.kind, fields: e.fields })
  return out
}

export function seed (): Uint8Array { return new Uint8Array(randomBytes(32)) }

/** A proof request for `deal` signed by `signer` (the deal's client unless given), as the audit sends it. */
export function proofRequest (w: World, deal: AuditDeal, count: number, options: { seed?: Uint8Array, signer?: Signer, at?: number } = {}): SignedProofRequest {
  return signProofRequest(options.signer ?? w.client.repo.identity, { dealId: deal.id, seed: options.seed ?? seed(), count, at: options.at ?? Math.floor(Date.now() / 1000), head: w.client.ledger.head() })
}
