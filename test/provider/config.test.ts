/**
 * `provider start` settings: one table (src/provider/options.ts) declares the
 * flags and reads config.json; flags override the file; impossible settings
 * are refused before anything starts, a port in use with ERR_ADDRESS_IN_USE.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { providerOptions, settingsFrom } from '../../src/provider/options.js'
import { termsFrom } from '../../src/cli/provider.js'
import { DEFAULT_MAX_START_DELAY, DEFAULT_RETENTION_GRACE, DEFAULT_UPLOAD_WINDOW } from '../../src/provider/terms.js'
import { DEFAULT_PROOF_RATE } from '../../src/provider/proof-requests.js'
import { defaultLimits } from '../../src/provider/server.js'
import { BIN, cairn, tempDir } from '../helpers/cli.js'

async function initRepo (t: { teardown: (fn: () => Promise<void>) => void }): Promise<{ dir: string, repo: string }> {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const repo = join(tmp.path, 'repo')
  const r = await cairn(['--repo', repo, 'init'])
  if (r.code !== 0) throw new Error(r.stderr)
  return { dir: tmp.path, repo }
}

async function configure (repo: string, provider: Record<string, unknown>): Promise<void> {
  const file = join(repo, 'config.json')
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
  await writeFile(file, JSON.stringify({ ...config, provider }, null, 2))
}

test('each table entry is the camelCase of its flag, so commander and config.json use one name', t => {
  for (const [name, o] of Object.entries(providerOptions)) {
    const flag = (o.flag.split(' ')[0] as string).replace(/^--/, '').replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
    t.is(flag, name)
    if (o.default !== undefined) t.notThrows(() => o.parse(o.default as string, o.flag), `the default of ${o.flag} parses`)
    else t.true(o.arity !== 'one', `${o.flag} has a default or is optional`)
  }
})

test('provider start refuses settings that cannot work, before starting', async t => {
  const { repo } = await initRepo(t)
  const refused: Array<[string[], string]> = [
    [['--challenges', '0'], 'ERR_INVALID_ARGUMENT'],
    [['--challenges', '1025'], 'ERR_INVALID_ARGUMENT'],
    [['--max-piece-size', '3MiB'], 'ERR_INVALID_ARGUMENT'],
    [['--min-piece-size', '100'], 'ERR_INVALID_ARGUMENT'],
    [['--min-piece-size', '1GiB', '--max-piece-size', '1MiB'], 'ERR_INVALID_ARGUMENT'],
    [['--capacity', '0'], 'ERR_INVALID_ARGUMENT'],
    [['--proving-period', '30d', '--max-duration', '7d'], 'ERR_INVALID_ARGUMENT'],
    [['--listen', 'localhost'], 'ERR_INVALID_ARGUMENT'],
    [['--price', '1.5'], 'ERR_INVALID_ARGUMENT']
  ]
  for (const [flags, code] of refused) {
    const r = await cairn(['--repo', repo, 'provider', 'start', ...flags], { timeoutMs: 20_000 })
    t.is(r.code, 2, `${flags.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, new RegExp(`^error ${code}: `), flags.join(' '))
  }
})

test('provider start on a port in use exits 5 with ERR_ADDRESS_IN_USE', async t => {
  const { repo } = await initRepo(t)
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as { port: number }).port
  const r = await cairn(['--repo', repo, 'provider', 'start', '--listen', `127.0.0.1:${port}`], { timeoutMs: 20_000 })
  t.is(r.code, 5, r.stderr)
  t.regex(r.stderr, /^error ERR_ADDRESS_IN_USE: 127\.0\.0\.1:\d+ is already in use/m)
  t.notRegex(r.stderr, /\n\s+at /)
})

test('config.json holds provider options, flags override it, provider config prints the effective settings', async t => {
  const { dir, repo } = await initRepo(t)
  await configure(repo, { price: '77', capacity: '1GiB', maxPieceSize: 1048576, provingPeriod: '1h' })
  const shown = await cairn(['--repo', repo, '--json', 'provider', 'config', '--price', '99'])
  t.is(shown.code, 0, shown.stderr)
  const c = JSON.parse(shown.stdout) as { file: string, provider: Record<string, unknown>, sources: Record<string, string> }
  t.is(c.file, join(repo, 'config.json'))
  t.like(c.provider, { price: '99', capacity: 1 << 30, maxPieceSize: 1 << 20, provingPeriod: 3600, challenges: 16, listen: '127.0.0.1:7470' })
  t.like(c.sources, { price: 'flag', capacity: 'config', maxPieceSize: 'config', challenges: 'default' })

  // what config prints is a config file provider start takes back
  const other = join(dir, 'other.json')
  await writeFile(other, JSON.stringify({ provider: { ...c.provider, listen: '127.0.0.1:0', price: '55' } }))
  const again = await cairn(['--repo', repo, '--json', 'provider', 'config', '--config', other])
  t.is(again.code, 0, again.stderr)
  t.like((JSON.parse(again.stdout) as { provider: Record<string, unknown> }).provider, { price: '55', capacity: 1 << 30, listen: '127.0.0.1:0' })

  const child = spawn(process.execPath, [BIN, '--repo', repo, '--json', 'provider', 'start', '--config', other], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n'))) })
      child.on('close', () => reject(new Error('provider exited early')))
    })
    const { url } = JSON.parse(line) as { url: string }
    const ask = dagJson.decode(new Uint8Array(await (await fetch(`${url}/v1/ask`)).arrayBuffer())) as { payload: { pricePerGiBDay: bigint, maxPieceSize: bigint, provingPeriod: number } }
    t.is(BigInt(ask.payload.pricePerGiBDay), 55n)
    t.is(Number(ask.payload.maxPieceSize), 1 << 20)
    t.is(ask.payload.provingPeriod, 3600)
    child.kill('SIGTERM')
    t.is(await exited, 0)
  } finally {
    clearTimeout(killer)
    child.kill('SIGKILL')
  }
})

test('a config file with an unknown option, a bad value or a wrong path is a coded error', async t => {
  const { dir, repo } = await initRepo(t)
  await configure(repo, { pricee: '1' })
  const unknown = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /^error ERR_UNKNOWN_FIELD: "provider\.pricee"/m)
  await configure(repo, { challenges: 0 })
  const bad = await cairn(['--repo', repo, 'provider', 'start'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /^error ERR_INVALID_ARGUMENT: provider\.challenges in .*config\.json must be a whole number from 1 to 1024/m)
  const missing = await cairn(['--repo', repo, 'provider', 'config', '--config', join(dir, 'nope.json')])
  t.is(missing.code, 4)
  t.regex(missing.stderr, /^error ERR_PATH_NOT_FOUND: /m)
  await writeFile(join(dir, 'broken.json'), '{ provider: ')
  const broken = await cairn(['--repo', repo, 'provider', 'config', '--config', join(dir, 'broken.json')])
  t.is(broken.code, 2)
  t.regex(broken.stderr, /^error ERR_INVALID_JSON: /m)
})

test('the PDP and routing options are rows of the table: config.json holds them, flags override, provider config prints them', async t => {
  const { dir, repo } = await initRepo(t)
  await configure(repo, {
    payee: '0xABCDEF0123456789ABCDEF0123456789ABCDEF01',
    parkQuota: '1GiB',
    announceTo: ['http://indexer.example:7480/'],
    announceAddress: 'http://provider.example:7470'
  })
  const shown = await cairn(['--repo', repo, '--json', 'provider', 'config', '--park-ttl', '2h', '--announce-to', 'http://a.example:7480', '--announce-to', 'http://b.example:7480'])
  t.is(shown.code, 0, shown.stderr)
  const c = JSON.parse(shown.stdout) as { provider: Record<string, unknown>, sources: Record<string, string> }
  t.like(c.provider, { payee: '0xabcdef0123456789abcdef0123456789abcdef01', parkQuota: 1 << 30, parkTtl: 7200, chainId: 314159, parkQuotaPerClient: 8 * 2 ** 30 })
  t.deepEqual(c.provider.announceTo, ['http://a.example:7480', 'http://b.example:7480'])
  t.deepEqual(c.provider.announceAddress, ['/dns/provider.example/tcp/7470/http'])
  t.like(c.sources, { payee: 'config', parkQuota: 'config', parkTtl: 'flag', announceTo: 'flag', announceAddress: 'config', chainId: 'default' })

  // what config prints (payee null when unset, the lists as arrays) is a config file provider config takes back
  const other = join(dir, 'other.json')
  await writeFile(other, JSON.stringify({ provider: { ...c.provider, payee: null } }))
  const again = await cairn(['--repo', repo, '--json', 'provider', 'config', '--config', other])
  t.is(again.code, 0, again.stderr)
  const back = JSON.parse(again.stdout) as { provider: Record<string, unknown> }
  t.deepEqual(back.provider, { ...c.provider, payee: null })

  // the combination is checked wherever the values came from
  await configure(repo, { announceAddress: 'http://provider.example:7470' })
  const alone = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(alone.code, 2)
  t.regex(alone.stderr, /^error ERR_USAGE: --announce-address says where clients reach the provider; it needs --announce-to/m)
  await configure(repo, { announceTo: 'http://indexer.example:7480', listen: '0.0.0.0:7470' })
  const wildcard = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(wildcard.code, 2)
  t.regex(wildcard.stderr, /^error ERR_INVALID_ARGUMENT: --listen 0\.0\.0\.0:7470 is a wildcard address .*--announce-address/m)
})

test('the deal lifecycle and connection caps are rows of the table, their defaults those of the deal service and the server', t => {
  const { settings } = settingsFrom({})
  t.like(termsFrom(settings), { uploadWindow: DEFAULT_UPLOAD_WINDOW, maxStartDelay: DEFAULT_MAX_START_DELAY, retentionGrace: DEFAULT_RETENTION_GRACE })
  t.is(settings.maxConnections, defaultLimits.maxConnections)
  t.is(settings.maxConnectionsPerPeer, defaultLimits.maxConnectionsPerPeer)
  t.is(settings.proofBurst, DEFAULT_PROOF_RATE.burst)
  t.is(settingsFrom({ proofBurst: '64' }).settings.proofBurst, 64)
  t.is((t.throws(() => settingsFrom({ proofBurst: '0' })) as { code?: string } | undefined)?.code, 'ERR_INVALID_ARGUMENT')
  const given = settingsFrom({ uploadWindow: '10m', maxStartDelay: '2d', retentionGrace: '0', maxConnections: '64', maxConnectionsPerPeer: '8' }).settings
  t.like(termsFrom(given), { uploadWindow: 600, maxStartDelay: 2 * 86400, retentionGrace: 0 })
  t.like(given, { maxConnections: 64, maxConnectionsPerPeer: 8 })
  // a grace of 0 removes a piece at once; an upload window or start delay of 0 would refuse every deal
  for (const [name, value] of [['uploadWindow', '0'], ['maxStartDelay', '0s'], ['maxConnections', '0'], ['maxConnectionsPerPeer', 'many']] as const) {
    t.is((t.throws(() => settingsFrom({ [name]: value })) as { code?: string } | undefined)?.code, 'ERR_INVALID_ARGUMENT', `${name} ${value}`)
  }
})

test('config.json holds the lifecycle settings (a grace of 0 included) and provider config prints them back', async t => {
  const { repo } = await initRepo(t)
  await configure(repo, { uploadWindow: '30m', retentionGrace: 0, maxConnectionsPerPeer: 16 })
  const shown = await cairn(['--repo', repo, '--json', 'provider', 'config', '--max-start-delay', '1d'])
  t.is(shown.code, 0, shown.stderr)
  const c = JSON.parse(shown.stdout) as { provider: Record<string, unknown>, sources: Record<string, string> }
  t.like(c.provider, { uploadWindow: 1800, retentionGrace: 0, maxStartDelay: 86400, maxConnectionsPerPeer: 16, maxConnections: 4096 })
  t.like(c.sources, { uploadWindow: 'config', retentionGrace: 'config', maxStartDelay: 'flag', maxConnections: 'default' })
})

test('config.json: a list for a one-value option, null for a required one, or a bad PDP value is a coded error naming the file', async t => {
  const { repo } = await initRepo(t)
  await configure(repo, { price: ['1', '2'] })
  const list = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(list.code, 2)
  t.regex(list.stderr, /^error ERR_INVALID_ARGUMENT: "provider\.price" in .*config\.json must be a string or a whole number/m)
  await configure(repo, { capacity: null })
  const missing = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(missing.code, 2)
  t.regex(missing.stderr, /^error ERR_INVALID_ARGUMENT: "provider\.capacity"/m)
  await configure(repo, { chainId: 0 })
  const chain = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(chain.code, 2)
  t.regex(chain.stderr, /^error ERR_INVALID_ARGUMENT: provider\.chainId in .*config\.json must be a positive chain id/m)
  await configure(repo, { announceTo: ['ftp://indexer.example'] })
  const scheme = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(scheme.code, 2)
  t.regex(scheme.stderr, /^error ERR_INVALID_ARGUMENT: a URL for provider\.announceTo in .*must be http or https/m)
})

test('--hash-on-read is a switch: off by default, on as a flag or true in config.json, shown in --help; another value is a coded error', async t => {
  const { repo } = await initRepo(t)
  const settingsOf = async (...flags: string[]): Promise<{ provider: Record<string, unknown>, sources: Record<string, string> }> => {
    const shown = await cairn(['--repo', repo, '--json', 'provider', 'config', ...flags])
    t.is(shown.code, 0, shown.stderr)
    return JSON.parse(shown.stdout) as { provider: Record<string, unknown>, sources: Record<string, string> }
  }
  const byDefault = await settingsOf()
  t.is(byDefault.provider.hashOnRead, false)
  t.is(byDefault.sources.hashOnRead, 'default')
  const flagged = await settingsOf('--hash-on-read')
  t.is(flagged.provider.hashOnRead, true)
  t.is(flagged.sources.hashOnRead, 'flag')
  // what `provider config --json` prints, config.json takes back
  await configure(repo, { hashOnRead: true })
  const configured = await settingsOf()
  t.is(configured.provider.hashOnRead, true)
  t.is(configured.sources.hashOnRead, 'config')
  await configure(repo, { hashOnRead: 'yes' })
  const bad = await cairn(['--repo', repo, 'provider', 'config'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /^error ERR_INVALID_ARGUMENT: provider\.hashOnRead in .*config\.json is true or false, got "yes"/m)
  const help = await cairn(['provider', 'start', '--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /--hash-on-read\s+re-hash every raw leaf/)
  t.notRegex(help.stdout, /--hash-on-read <|re-hash every raw leaf[^-]*default: false/)
})
