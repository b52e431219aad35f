/**
 * Read-only commands beside a running node: while `cairn watch` or `cairn
 * provider start` holds the repo's LevelDB, `ledger log|verify|export|balance|witness`
 * (and `verify --against` a counterparty's export),
 * `deals`, `deals show`, `providers ls`, `routers ls`, `ls <cid>` (an
 * encrypted tree by its real names, with the repo's age identity) and `get`
 * answer through the node's loopback admin API, and `id` from the repo's
 * files, with the same JSON as from the repo itself; commands that write
 * still get ERR_REPO_LOCKED.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, cairn } from '../helpers/cli.js'
import { startIndexerCli, startProviderCli } from '../helpers/provider.js'

async function waitFor (file: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await stat(file).then(() => true, () => false)) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${file} never appeared`)
}

const READS = (root: string, deal: string, sealed: string): string[][] => [
  ['ledger', 'log'],
  ['ledger', 'verify'],
  ['ledger', 'balance'],
  ['ledger', 'witness'],
  ['deals'],
  ['deals', 'show', deal],
  ['providers', 'ls'],
  ['routers', 'ls'],
  ['id'],
  ['ls', root],
  ['ls', sealed]
]

/** The JSON of each read command, with fields that change by the second left out. */
async function readAll (repo: string, root: string, deal: string, sealed: string): Promise<unknown[]> {
  const out: unknown[] = []
  for (const args of READS(root, deal, sealed)) {
    const r = await cairn(['--repo', repo, '--json', ...args])
    if (r.code !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`)
    out.push(r.stdout.trim().split('\n').map(l => JSON.parse(l, (k, v) => k === 'nextAudit' || k === 'lastSeen' ? undefined : v)))
  }
  return out
}

test('beside cairn watch and cairn provider start, read commands answer through the admin API; writes are refused', async t => {
  const kept = await cairn(['demo', '--keep', '--json'], { timeoutMs: 120_000 })
  t.is(kept.code, 0, kept.stderr)
  const demo = JSON.parse(kept.stdout) as { kept: string, root: string, deal: { id: string } }
  t.teardown(async () => { await rm(demo.kept, { recursive: true, force: true }) })
  const client = join(demo.kept, 'client')
  // an encrypted copy of the same files, and a router, so that ls and routers ls have something to show
  const sealed = await cairn(['--repo', client, 'add', '-Q', '--encrypt', join(demo.kept, 'sample')])
  t.is(sealed.code, 0, sealed.stderr)
  const sealedRoot = sealed.stdout.trim()
  const indexerRepo = join(demo.kept, 'indexer')
  t.is((await cairn(['--repo', indexerRepo, 'init'])).code, 0)
  const indexer = await startIndexerCli(indexerRepo)
  try {
    const added = await cairn(['--repo', client, 'routers', 'add', indexer.url])
    t.is(added.code, 0, added.stderr)
  } finally {
    t.is(await indexer.stop(), 0)
  }
  const direct = await readAll(client, demo.root, demo.deal.id, sealedRoot)
  // the encrypted tree is listed by its real names and sizes: the plaintext tree's entries under another root
  const relative = (entries: unknown, root: string): unknown[] => (entries as Array<{ path: string, size: number, type: string }>)
    .map(e => ({ path: e.path.slice(root.length), size: e.size, type: e.type }))
    .sort((a, b) => a.path.localeCompare(b.path))
  t.deepEqual(relative(direct[10], sealedRoot), relative(direct[9], demo.root))
  t.deepEqual((direct[7] as Array<Array<{ url: string }>>)[0]?.map(r => r.url), [indexer.url])
  // the demo's provider ledger, for verify --against: the client witnessed its heads
  const providerExport = join(demo.kept, 'provider-ledger.ndjson')
  t.is((await cairn(['--repo', join(demo.kept, 'provider'), 'ledger', 'export', '-o', providerExport])).code, 0)
  const againstDirect = await cairn(['--repo', client, '--json', 'ledger', 'verify', '--against', providerExport])
  t.is(againstDirect.code, 0, againstDirect.stderr)
  t.true((JSON.parse(againstDirect.stdout) as { against: { checked: number } }).against.checked > 0)

  const watch = spawn(process.execPath, [BIN, '--repo', client, 'watch', '--tick', '1s', '--timeout', '1s', '--retries', '0'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CAIRN_REPO: '' } })
  let watchErr = ''
  watch.stderr.setEncoding('utf8').on('data', (d: string) => { watchErr += d })
  const watchExit = new Promise<number | null>((resolve) => watch.on('close', (code) => resolve(code)))
  const killer = setTimeout(() => watch.kill('SIGKILL'), 120_000)
  try {
    await waitFor(join(client, 'admin.json'))
    const locked = await cairn(['--repo', client, 'add', join(demo.kept, 'sample')])
    t.is(locked.code, 5, 'a write command still needs the repo itself')
    t.regex(locked.stderr, /^error ERR_REPO_LOCKED: /m)

    t.deepEqual(await readAll(client, demo.root, demo.deal.id, sealedRoot), direct)
    const against = await cairn(['--repo', client, '--json', 'ledger', 'verify', '--against', providerExport])
    t.is(against.code, 0, against.stderr)
    t.deepEqual(JSON.parse(against.stdout), JSON.parse(againstDirect.stdout))
    const exported = join(demo.kept, 'export.ndjson')
    const ex = await cairn(['--repo', client, 'ledger', 'export', '-o', exported])
    t.is(ex.code, 0, ex.stderr)
    t.is((await readFile(exported, 'utf8')).trim().split('\n').length, (direct[0] as unknown[]).length)
    const got = await cairn(['--repo', client, 'get', demo.root, '-o', join(demo.kept, 'got')])
    t.is(got.code, 0, got.stderr)
    t.regex(got.stdout, /from the local repo/)
    const status = await cairn(['--repo', client, 'provider', 'status'])
    t.is(status.code, 4)
    t.regex(status.stderr, /ERR_PROVIDER_NOT_RUNNING/)
  } finally {
    watch.kill('SIGINT')
    t.is(await watchExit, 0, watchErr)
    clearTimeout(killer)
  }
  await t.throwsAsync(stat(join(client, 'admin.json')))

  const providerRepo = join(demo.kept, 'provider')
  const verifiedDirect = await cairn(['--repo', providerRepo, '--json', 'ledger', 'verify'])
  t.is(verifiedDirect.code, 0, verifiedDirect.stderr)
  const balanceDirect = await cairn(['--repo', providerRepo, '--json', 'ledger', 'balance'])
  const provider = await startProviderCli(providerRepo)
  try {
    const verified = await cairn(['--repo', providerRepo, '--json', 'ledger', 'verify'])
    t.is(verified.code, 0, verified.stderr)
    t.deepEqual(JSON.parse(verified.stdout), JSON.parse(verifiedDirect.stdout))
    const balance = await cairn(['--repo', providerRepo, '--json', 'ledger', 'balance'])
    t.is(balance.code, 0, balance.stderr)
    t.deepEqual(JSON.parse(balance.stdout), JSON.parse(balanceDirect.stdout))
    const log = await cairn(['--repo', providerRepo, 'ledger', 'log', '--kind', 'deal-accepted'])
    t.is(log.code, 0, log.stderr)
    t.is(log.stdout.trim().split('\n').length, 1)
  } finally {
    t.is(await provider.stop(), 0)
  }
})
