/**
 * An in-process provider on 127.0.0.1:0 in a temporary repo (the provider's own
 * deal service and server factory), a client repo beside it, and small sample
 * trees. Everything is removed by `cleanup`.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelLedger } from '../../src/ledger/level.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import type { ProviderTerms } from '../../src/provider/terms.js'
import { createProviderServer, type HttpService } from '../../src/provider/server.js'
import { Repo } from '../../src/repo/repo.js'
import { PieceStore } from '../../src/store/pieces.js'
import { testTerms } from '../provider/fixtures.js'

export interface Node {
  repo: Repo
  ledger: LevelLedger
}

export interface World {
  dir: string
  provider: Node & { url: string, service: HttpService, terms: ProviderTerms }
  client: Node
  cleanup: () => Promise<void>
}

export async function world (overrides: Partial<ProviderTerms> = {}): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-client-test-'))
  const providerRepo = await Repo.init(join(dir, 'provider'))
  const db = await providerRepo.db()
  const providerLedger = await LevelLedger.open(db, providerRepo.identity)
  // client tests use day-long proving periods and deals up to 540 days
  const terms = testTerms({ maxDuration: 540 * 86400, provingPeriod: 86400, ...overrides })
  const node = new ProviderDeals(db, providerLedger, new PieceStore(providerRepo.piecesDir, providerRepo.tmpDir), providerRepo.identity, terms)
  const service = createProviderServer({ deals: node, blocks: node, pieces: node, log: process.env.CAIRN_TEST_LOG === undefined ? () => {} : (e, f) => { console.error(e, f) } })
  const url = await service.listen('127.0.0.1', 0)
  terms.endpoint = url
  const clientRepo = await Repo.init(join(dir, 'client'))
  const clientLedger = await LevelLedger.open(await clientRepo.db(), clientRepo.identity)
  return {
    dir,
    provider: { repo: providerRepo, ledger: providerLedger, url, service, terms },
    client: { repo: clientRepo, ledger: clientLedger },
    cleanup: async () => {
      await service.close()
      await providerRepo.close()
      await clientRepo.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A tree with nesting, a unicode name, an empty directory and a multi-chunk file. */
export async function sampleTree (dir: string, bigBytes = 2 * 1024 * 1024 + 777): Promise<string> {
  await mkdir(join(dir, 'docs', 'deep'), { recursive: true })
  await mkdir(join(dir, 'empty'), { recursive: true })
  await writeFile(join(dir, 'hello.txt'), 'hello\n')
  await writeFile(join(dir, 'docs', 'deep', 'naïve ☕.txt'), 'unicode\n')
  await writeFile(join(dir, 'big.bin'), randomBytes(bigBytes))
  return dir
}

/**
 * A stand-in provider that forwards to `upstream` and changes the response
 * body: `mode` 'corrupt' flips one byte at `at`, 'truncate' cuts the body there.
 */
export async function tamperingProxy (upstream: string, mode: 'corrupt' | 'truncate', at = 300_000): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const response = await fetch(upstream + (req.url ?? '/'), { method: req.method, headers: { accept: req.headers.accept ?? '*/*' } })
      const headers: Record<string, string> = {}
      response.headers.forEach((v, k) => { if (k !== 'content-length') headers[k] = v })
      res.writeHead(response.status, headers)
      let offset = 0
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        const bytes = Buffer.from(chunk)
        if (offset <= at && at < offset + bytes.length) {
          if (mode === 'truncate') { res.end(bytes.subarray(0, at - offset)); res.destroy(); return }
          bytes[at - offset] ^= 0xff
        }
        offset += bytes.length
        res.write(bytes)
      }
      res.end()
    })().catch(() => res.destroy())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { url, close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) } }
}

/** A tree as {relative path: base64 content}, directories as "name/": for byte-identity checks. */
export async function tree (dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      out[`${prefix}${entry.name}/`] = ''
      Object.assign(out, await tree(path, `${prefix}${entry.name}/`))
    } else {
      out[prefix + entry.name] = (await readFile(path)).toString('base64')
    }
  }
  return out
}
