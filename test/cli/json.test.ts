/**
 * docs/json.md against the real outputs: every command documented there is
 * run with --json and its output must have the documented shape — the same
 * keys (`key?` may be absent, `"*"` allows more), the same JSON types, and
 * for lists and streamed lines the shape of each element.
 */
import test, { type ExecutionContext } from 'ava'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cairn, tempDir } from '../helpers/cli.js'
import { makeDeal } from '../../src/client/deal.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { Repo } from '../../src/repo/repo.js'
import { startIndexerCli, startProviderCli } from '../helpers/provider.js'
import { dataSetProvider } from '../pdp/fixtures.js'
import { testDatabase } from '../helpers/postgres.js'

const DOC = fileURLToPath(new URL('../../../docs/json.md', import.meta.url))

interface Shape { command: string, mode: 'document' | 'per line' | 'last line', example: unknown }

async function shapes (): Promise<Map<string, Shape>> {
  const text = await readFile(DOC, 'utf8')
  const out = new Map<string, Shape>()
  for (const m of text.matchAll(/```json (cairn [a-z -]+?)(?: \((per line|last line)\))?\n([\s\S]*?)```/g)) {
    const command = m[1] as string
    out.set(command, { command, mode: (m[2] as Shape['mode'] | undefined) ?? 'document', example: JSON.parse(m[3] as string) })
  }
  return out
}

class Interrupt extends Error {}

/** A deal of `root` stopped once accepted (as by Ctrl-C there), made in the client repo `dir`: its id. */
async function interruptedDeal (dir: string, root: string, url: string): Promise<string> {
  const repo = await Repo.open(dir)
  try {
    const ledger = await LevelLedger.open(await repo.db(), repo.identity)
    await makeDeal({ repo, ledger, onProgress: (_url, p) => { if (p.phase === 'accepted') throw new Interrupt() } }, root, url, { duration: 3 * 86400 })
      .catch((err) => { if (!(err instanceof Interrupt)) throw err })
    for await (const e of ledger.log({ kind: 'deal-proposed', limit: 1 })) return String(e.fields.deal)
    throw new Error('no deal was proposed')
  } finally {
    await repo.close()
  }
}

const kind = (v: unknown): string => v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v

/** Where `actual` departs from the documented `shape`, as paths; [] when it fits. */
function misfits (shape: unknown, actual: unknown, path = '$'): string[] {
  if (shape === null) return actual === null || typeof actual === 'string' ? [] : [`${path}: expected null or a string, got ${kind(actual)}`]
  if (kind(shape) !== kind(actual)) return [`${path}: expected ${kind(shape)}, got ${kind(actual)}`]
  if (Array.isArray(shape)) {
    if (shape.length === 0) return []
    return (actual as unknown[]).flatMap((item, i) => misfits(shape[0], item, `${path}[${i}]`))
  }
  if (typeof shape !== 'object') return []
  const doc = shape as Record<string, unknown>
  const got = actual as Record<string, unknown>
  const problems: string[] = []
  const known = new Set<string>()
  for (const [key, value] of Object.entries(doc)) {
    if (key === '*') continue
    const optional = key.endsWith('?')
    const name = optional ? key.slice(0, -1) : key
    known.add(name)
    if (!(name in got)) { if (!optional) problems.push(`${path}.${name}: missing`); continue }
    problems.push(...misfits(value, got[name], `${path}.${name}`))
  }
  for (const [key, value] of Object.entries(got)) {
    if (known.has(key)) continue
    if (!('*' in doc)) { problems.push(`${path}.${key}: not in docs/json.md`); continue }
    if (typeof doc['*'] === 'number' && typeof value !== 'number') problems.push(`${path}.${key}: expected number, got ${kind(value)}`)
  }
  return problems
}

function check (t: ExecutionContext, docs: Map<string, Shape>, command: string, stdout: string, checked: Set<string>): unknown[] {
  const shape = docs.get(command)
  if (shape === undefined) { t.fail(`docs/json.md has no shape for ${command}`); return [] }
  const lines = stdout.trim().split('\n').filter(l => l !== '')
  const values = lines.map(l => JSON.parse(l) as unknown)
  if (shape.mode === 'document') t.is(values.length, 1, `${command} prints one document`)
  const subject = shape.mode === 'last line' ? values.slice(-1) : shape.mode === 'per line' ? values : values.slice(0, 1)
  t.true(subject.length > 0, `${command} printed something`)
  for (const value of subject) t.deepEqual(misfits(shape.example, value), [], `${command}: ${JSON.stringify(value).slice(0, 300)}`)
  checked.add(command)
  return values
}

test('every command documented in docs/json.md prints that shape', async t => {
  t.timeout(300_000)
  const docs = await shapes()
  const checked = new Set<string>()
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const run = async (command: string, args: string[], expectCode = 0): Promise<unknown[]> => {
    const r = await cairn(['--json', ...args], { timeoutMs: 120_000 })
    t.is(r.code, expectCode, `${args.join(' ')}: ${r.stderr}`)
    return check(t, docs, command, r.stdout, checked)
  }

  const demo = await run('cairn demo', ['demo'])
  t.true((demo[0] as { ok: boolean }).ok)

  const P = join(tmp.path, 'provider')
  const C = join(tmp.path, 'client')
  await run('cairn init', ['--repo', P, 'init'])
  await run('cairn init', ['--repo', C, 'init'])
  const [clientId] = await run('cairn id', ['--repo', C, 'id']) as Array<{ ageRecipient: string }>
  await run('cairn id --age-identity', ['--repo', C, 'id', '--age-identity'])
  const [providerId] = await run('cairn id', ['--repo', P, 'id']) as Array<{ ageRecipient: string }>
  await run('cairn provider config', ['--repo', P, 'provider', 'config', '--capacity', '1GiB'])
  const provider = await startProviderCli(P)
  try {
    check(t, docs, 'cairn provider start', JSON.stringify(provider.started), checked)
    const sample = join(tmp.path, 'sample')
    await mkdir(join(sample, 'sub'), { recursive: true })
    await writeFile(join(sample, 'a.txt'), 'hello\n')
    await writeFile(join(sample, 'sub', 'b.bin'), randomBytes(1_300_000))
    const [added] = await run('cairn add', ['--repo', C, 'add', sample]) as Array<{ root: string }>
    const root = added?.root as string
    const car = join(tmp.path, 'sample.car')
    await run('cairn pack', ['pack', sample, '-o', car])
    await run('cairn piece', ['piece', car])
    await run('cairn ls', ['ls', car])
    await run('cairn unpack', ['unpack', car, '-o', join(tmp.path, 'unpacked')])
    // encrypted (docs/encryption.md): add, pack for a recipient, unpack decrypting, share
    const [sealed] = await run('cairn add', ['--repo', C, 'add', '--encrypt', sample]) as Array<{ root: string, encrypted: boolean }>
    t.true(sealed?.encrypted)
    const sealedCar = join(tmp.path, 'sealed.car')
    const [packed] = await run('cairn pack', ['pack', '--recipient', clientId?.ageRecipient as string, sample, '-o', sealedCar]) as Array<{ encrypted: boolean }>
    t.true(packed?.encrypted)
    const [opened] = await run('cairn unpack', ['--repo', C, 'unpack', sealedCar, '-o', join(tmp.path, 'opened')]) as Array<{ decrypted: boolean }>
    t.true(opened?.decrypted)
    await run('cairn share', ['--repo', C, 'share', sealed?.root as string, '--to', providerId?.ageRecipient as string])
    const [gotSealed] = await run('cairn get', ['--repo', C, 'get', sealed?.root as string, '-o', join(tmp.path, 'got-sealed')]) as Array<{ decrypted: boolean }>
    t.true(gotSealed?.decrypted)
    await run('cairn ask', ['ask', provider.url])
    await run('cairn providers add', ['--repo', C, 'providers', 'add', provider.url])
    await run('cairn providers ls', ['--repo', C, 'providers', 'ls'])
    const [deal] = await run('cairn deal', ['--repo', C, 'deal', root, '--provider', provider.url, '--duration', '3d']) as Array<{ id: string }>
    const id = deal?.id as string
    await run('cairn deals', ['--repo', C, 'deals'])
    await run('cairn deals show', ['--repo', C, 'deals', 'show', id])
    await run('cairn audit', ['--repo', C, 'audit', id])
    await run('cairn watch', ['--repo', C, 'watch', '--once'])
    await run('cairn get', ['--repo', C, 'get', root, '--provider', provider.url, '-o', join(tmp.path, 'got')])
    const fromProvider = await run('cairn get', ['get', root, '--provider', provider.url, '--car', join(tmp.path, 'got.car')]) as Array<{ car: boolean }>
    t.true(fromProvider[0]?.car)
    // an interrupted deal taken on again, and another cancelled (docs/protocol.md "Cancelling a deal")
    const resumed = await interruptedDeal(C, root, provider.url)
    t.is((await run('cairn deal --resume', ['--repo', C, 'deal', '--resume', resumed]) as Array<{ id: string }>)[0]?.id, resumed)
    const cancelled = await interruptedDeal(C, root, provider.url)
    t.like((await run('cairn deals cancel', ['--repo', C, 'deals', 'cancel', cancelled]))[0], { id: cancelled, told: true })
    await run('cairn ledger log', ['--repo', C, 'ledger', 'log'])
    await run('cairn ledger verify', ['--repo', C, 'ledger', 'verify'])
    await run('cairn ledger balance', ['--repo', C, 'ledger', 'balance'])
    await run('cairn ledger witness', ['--repo', C, 'ledger', 'witness'])
    // the provider's ledger, exported through the running provider, checked against the heads the client saw
    const exported = join(tmp.path, 'provider-ledger.ndjson')
    const ex = await cairn(['--repo', P, 'ledger', 'export', '-o', exported])
    t.is(ex.code, 0, ex.stderr)
    const [against] = await run('cairn ledger verify --against', ['--repo', C, 'ledger', 'verify', '--against', exported]) as Array<{ against: { checked: number } }>
    t.true((against?.against.checked ?? 0) > 0)
    await run('cairn provider status', ['--repo', P, 'provider', 'status'])
    await run('cairn provider deals', ['--repo', P, 'provider', 'deals'])
    await run('cairn providers rm', ['--repo', C, 'providers', 'rm', provider.url])
    // content routing (docs/routing.md): an indexer, and the client's routers
    const I = join(tmp.path, 'indexer')
    await run('cairn init', ['--repo', I, 'init'])
    const indexer = await startIndexerCli(I)
    try {
      check(t, docs, 'cairn indexer start', JSON.stringify(indexer.started), checked)
      await run('cairn routers add', ['--repo', C, 'routers', 'add', indexer.url])
      const [routers] = await run('cairn routers ls', ['--repo', C, 'routers', 'ls']) as Array<Array<{ url: string }>>
      t.deepEqual(routers?.map(r => r.url), [indexer.url])
      await run('cairn routers rm', ['--repo', C, 'routers', 'rm', indexer.url])
    } finally {
      t.is(await indexer.stop(), 0)
    }
    // a PDP data set audited from the command line (docs/pdp.md "Proving data sets")
    const set = await dataSetProvider()
    try {
      await run('cairn audit --data-set', ['--repo', C, 'audit', '--data-set', String(set.dataSetId), '--provider', set.url])
    } finally {
      await set.close()
    }
    await run('cairn error', ['--repo', C, 'deals', 'show', 'bafyreigdmqpykrgxyaxtlafqpqhzrb7qy2rh75nldvfd4tucqmlkmhzcqu'], 4)
  } finally {
    t.is(await provider.stop(), 0)
  }
  // a cluster (docs/cluster.md): one node on a database of its own, the cluster's status, the node drained
  const database = await testDatabase()
  t.teardown(database.cleanup)
  const node = await startProviderCli(P, ['--db', database.url, '--node', 'n1'])
  try {
    await run('cairn cluster status', ['--repo', C, 'cluster', 'status', '--db', database.url])
    await run('cairn cluster drain', ['--repo', C, 'cluster', 'drain', 'n1', '--db', database.url])
  } finally {
    t.is(await node.stop(), 0)
  }
  t.deepEqual([...docs.keys()].filter(c => !checked.has(c)), [], 'every shape in docs/json.md was checked against a real output')
})
