/**
 * The real binary, as a user runs it: two repos, a provider process on
 * 127.0.0.1:0, `add` → `deal` → active on both sides → `get` byte-identical,
 * `ledger verify` on both repos; a provider sending corrupt bytes is passed
 * over; a deal under the provider's price exits 5 with ERR_PRICE_TOO_LOW.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { BIN, cairn, tempDir } from '../helpers/cli.js'
import { sampleTree, tamperingProxy, tree } from '../client/helpers.js'

test('add → deal → active on both sides → get byte-identical; failover; price rejection; ledgers verify', async (t) => {
  const dir = await tempDir('cairn-e2e-')
  const providerRepo = join(dir.path, 'provider')
  const clientRepo = join(dir.path, 'client')
  const freshRepo = join(dir.path, 'fresh')
  try {
    for (const repo of [providerRepo, clientRepo, freshRepo]) t.is((await cairn(['init', '--repo', repo])).code, 0)
    const child = spawn(process.execPath, [BIN, 'provider', 'start', '--repo', providerRepo, '--listen', '127.0.0.1:0', '--price', '40', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    const killer = setTimeout(() => child.kill('SIGKILL'), 240_000)
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d
          if (out.includes('\n')) resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { url: string }).url)
        })
        child.on('close', () => reject(new Error(`provider exited early: ${stderr}`)))
      })

      const sample = await sampleTree(join(dir.path, 'sample'))
      const added = await cairn(['add', '--repo', clientRepo, sample, '--json'])
      t.is(added.code, 0, added.stderr)
      const root = (JSON.parse(added.stdout) as { root: string }).root

      const book = await cairn(['providers', 'add', url, '--repo', clientRepo, '--json'])
      t.is(book.code, 0, book.stderr)
      const ls = await cairn(['providers', 'ls', '--repo', clientRepo, '--json'])
      const listed = JSON.parse(ls.stdout) as Array<{ url: string, did: string, ask: { pricePerGiBDay: string } }>
      t.is(listed.length, 1)
      t.is(listed[0]?.ask.pricePerGiBDay, '40')
      const ask = await cairn(['ask', url])
      t.is(ask.code, 0)
      t.regex(ask.stdout, /40 per GiB per day/)

      const deal = await cairn(['deal', root, '--repo', clientRepo, '--provider', url, '--duration', '30d', '--label', 'e2e', '--json'])
      t.is(deal.code, 0, deal.stderr)
      const made = JSON.parse(deal.stdout) as { id: string, state: string, provider: string }
      t.is(made.state, 'active')
      t.is(made.provider, listed[0]?.did)

      const clientDeals = JSON.parse((await cairn(['deals', '--repo', clientRepo, '--state', 'active', '--json'])).stdout) as Array<{ id: string, state: string, nextAudit?: string }>
      t.deepEqual(clientDeals.map(d => [d.id, d.state, d.nextAudit]), [[made.id, 'active', 'now']])
      const shown = await cairn(['deals', 'show', made.id, '--repo', clientRepo])
      t.regex(shown.stdout, /state\s+active/)
      const providerDeals = await cairn(['provider', 'deals', '--repo', providerRepo, '--json'])
      t.is(providerDeals.code, 0, providerDeals.stderr)
      t.deepEqual((JSON.parse(providerDeals.stdout) as Array<{ id: string, state: string }>).map(d => [d.id, d.state]), [[made.id, 'active']])

      // a fresh repo has no copy and no deal: it must use the named providers, the corrupt one first
      const corrupt = await tamperingProxy(url, 'corrupt')
      try {
        const got = await cairn(['get', root, '--repo', freshRepo, '--provider', corrupt.url, '--provider', url, '-o', join(dir.path, 'out'), '--json'])
        t.is(got.code, 0, got.stderr)
        t.regex(got.stderr, /ERR_BLOCK_MISMATCH/)
        const result = JSON.parse(got.stdout) as { source: { location: string }, failed: Array<{ code: string }> }
        t.is(result.source.location, url)
        t.deepEqual(result.failed.map(f => f.code), ['ERR_BLOCK_MISMATCH'])
        t.deepEqual(await tree(join(dir.path, 'out')), await tree(sample))
        const bad = await cairn(['get', root, '--repo', freshRepo, '--provider', corrupt.url, '-o', join(dir.path, 'bad')])
        t.is(bad.code, 3)
        t.regex(bad.stderr, /error ERR_BLOCK_MISMATCH/)
      } finally {
        await corrupt.close()
      }
      // the client finds the provider through its deal
      const viaDeal = await cairn(['get', `${root}/docs`, '--repo', clientRepo, '-o', join(dir.path, 'docs')])
      t.is(viaDeal.code, 0, viaDeal.stderr)
      t.deepEqual(await tree(join(dir.path, 'docs')), await tree(join(sample, 'docs')))

      const cheap = await cairn(['deal', root, '--repo', clientRepo, '--provider', url, '--max-price', '10'])
      t.is(cheap.code, 5)
      t.regex(cheap.stderr, /error ERR_PRICE_TOO_LOW: offered 10 per GiB per day, provider asks at least 40/)
      const rejected = JSON.parse((await cairn(['deals', '--repo', clientRepo, '--state', 'rejected', '--json'])).stdout) as unknown[]
      t.is(rejected.length, 1)

      child.kill('SIGTERM')
      t.is(await exited, 0, stderr)
    } finally {
      clearTimeout(killer)
      child.kill('SIGKILL')
    }
    for (const repo of [clientRepo, providerRepo]) {
      const verified = await cairn(['ledger', 'verify', '--repo', repo, '--json'])
      t.is(verified.code, 0, verified.stderr)
      t.true((JSON.parse(verified.stdout) as { ok: boolean }).ok)
    }
  } finally {
    await dir.cleanup()
  }
})

test('cairn demo exits 0: deal active, proof passed, an identical copy', async (t) => {
  const run = await cairn(['demo', '--json'], { timeoutMs: 60_000 })
  t.is(run.code, 0, run.stderr)
  const summary = JSON.parse(run.stdout) as { ok: boolean, deal: { state: string }, audit: { outcome: string }, retrieved: { identical: boolean }, ledgers: { client: string[], provider: string[] }, kept: string | null }
  t.true(summary.ok)
  t.is(summary.deal.state, 'active')
  t.is(summary.audit.outcome, 'passed')
  t.true(summary.retrieved.identical)
  const kinds = (lines: string[]): string[] => lines.map(l => l.trim().split(/\s+/)[1] as string)
  t.deepEqual(kinds(summary.ledgers.client).slice(0, 5), ['deal-proposed', 'deal-accepted', 'deal-active', 'challenge-issued', 'proof-passed'])
  t.deepEqual(kinds(summary.ledgers.provider).slice(0, 2), ['deal-accepted', 'deal-active'])
  t.is(summary.kept, null)
})
