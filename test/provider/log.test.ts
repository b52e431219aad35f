/**
 * Structured logs (src/provider/log.ts): pino behind the `(event, fields)`
 * Logger; `--log-format json` writes one JSON object per line with the level,
 * an ISO time and the fields an operator needs (deal, client, pieceCid,
 * pieceSize, bytes, ms, status), and successful retrievals at info.
 */
import test from 'ava'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createLogger } from '../../src/provider/log.js'
import { cairn, tempDir } from '../helpers/cli.js'
import { startProviderCli } from '../helpers/provider.js'

function collect (): { lines: string[], write: (line: string) => void } {
  const lines: string[] = []
  return { lines, write: (line: string) => { lines.push(line) } }
}

test('json: one object per line with level, ISO time, event and fields; levels filter; reserved names kept apart', t => {
  const sink = collect()
  const log = createLogger({ format: 'json', level: 'info', destination: sink })
  log('upload-stored', { deal: 'bafyX', bytes: 4096, ms: 12, status: 200, amount: 10n ** 30n })
  log('request-aborted', { path: '/ipfs/x' })
  log('request-rejected', { code: 'ERR_BAD_REQUEST', time: 5 })
  log('custom', { level: 'error', msg: 'x' })
  t.is(sink.lines.length, 3, 'request-aborted is debug, below info')
  const [stored, rejected, custom] = sink.lines.map(l => { t.true(l.endsWith('\n')); t.is(l.trim().split('\n').length, 1); return JSON.parse(l) as Record<string, unknown> })
  t.like(stored, { level: 'info', event: 'upload-stored', deal: 'bafyX', bytes: 4096, ms: 12, status: 200 })
  t.regex(String(stored?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.is(stored?.pid, process.pid)
  t.true(sink.lines[0]?.includes('"amount":1000000000000000000000000000000'), 'bigints exact')
  t.like(rejected, { level: 'warn', event: 'request-rejected', time_: 5 })
  t.like(custom, { level: 'error', event: 'custom', msg_: 'x' })
})

test('a failed lifecycle tick is an error: deals stay unexpired and pieces unremoved until one succeeds', t => {
  const sink = collect()
  createLogger({ format: 'json', level: 'warn', destination: sink })('lifecycle-error', { code: 'ERR_IO', message: 'disk gone' })
  t.like(JSON.parse(sink.lines[0] ?? '{}'), { level: 'error', event: 'lifecycle-error', code: 'ERR_IO' })
})

test('text: the same record as one readable line', t => {
  const sink = collect()
  const log = createLogger({ format: 'text', level: 'debug', destination: sink })
  log('deal-accepted', { deal: 'bafyD', label: 'two words', status: 201 })
  log('request-aborted', {})
  t.is(sink.lines.length, 2)
  t.regex(sink.lines[0] ?? '', /^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}deal-accepted deal=bafyD label="two words" status=201\n$/)
  t.regex(sink.lines[1] ?? '', / debug request-aborted\n$/)
})

test('provider start --log-format json: a deal, its upload and a retrieval each log one line with the operator fields', async t => {
  const tmp = await tempDir()
  t.teardown(tmp.cleanup)
  const providerRepo = join(tmp.path, 'provider')
  const clientRepo = join(tmp.path, 'client')
  t.is((await cairn(['--repo', providerRepo, 'init'])).code, 0)
  t.is((await cairn(['--repo', clientRepo, 'init'])).code, 0)
  const provider = await startProviderCli(providerRepo, ['--log-format', 'json'])
  try {
    const file = join(tmp.path, 'f.bin')
    await writeFile(file, randomBytes(300_000))
    const added = await cairn(['--repo', clientRepo, '--json', 'add', file])
    const { root } = JSON.parse(added.stdout) as { root: string }
    const dealt = await cairn(['--repo', clientRepo, '--json', 'deal', root, '--provider', provider.url, '--duration', '2d'])
    t.is(dealt.code, 0, dealt.stderr)
    t.truthy((JSON.parse(dealt.stdout.trim().split('\n').at(-1) as string) as { id?: string }).id, 'the deal has an id')
    const got = await cairn(['get', root, '--provider', provider.url, '-o', join(tmp.path, 'got.bin')])
    t.is(got.code, 0, got.stderr)
  } finally {
    t.is(await provider.stop(), 0)
  }
  const lines = provider.log().trim().split('\n')
  const records = lines.map(l => JSON.parse(l) as Record<string, unknown>)
  for (const r of records) {
    t.is(typeof r.level, 'string')
    t.regex(String(r.time), /Z$/)
    t.is(typeof r.event, 'string')
  }
  const client = (JSON.parse((await cairn(['--repo', clientRepo, '--json', 'id'])).stdout) as { did: string }).did
  const accepted = records.find(r => r.event === 'deal-accepted')
  t.like(accepted, { level: 'info', client, status: 201 })
  t.regex(String(accepted?.pieceCid), /^bafkzcib/)
  t.is(typeof accepted?.pieceSize, 'number')
  t.is(typeof accepted?.ms, 'number')
  const stored = records.find(r => r.event === 'upload-stored')
  t.like(stored, { level: 'info', deal: accepted?.deal, client, pieceCid: accepted?.pieceCid, pieceSize: accepted?.pieceSize, status: 200 })
  t.is(typeof stored?.bytes, 'number')
  const retrieval = records.find(r => r.event === 'retrieval')
  t.like(retrieval, { level: 'info', kind: 'car', status: 200 })
  t.true((retrieval?.bytes as number) > 300_000)
  t.truthy(records.find(r => r.event === 'provider-stopped'))
})
