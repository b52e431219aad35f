/**
 * Every CommP engine against the oracle, including the native addon's paths
 * this machine would not take on its own: SHA-NI alone (AVX-512 switched
 * off) and portable C (both off). CI can force any engine for the whole suite with
 * CAIRN_COMMP_ENGINE=portable|workers|native.
 */
import test from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Piece } from '@web3-storage/data-segment'
import { availableEngines } from '../../proofs/engines.js'
import { loadNative } from '../../proofs/native.js'
import { randomBytes } from './helpers.js'

const index = fileURLToPath(new URL('../../proofs/index.js', import.meta.url))

const native = loadNative()
// CI builds the addon (npm ci), so there its absence is a failure; elsewhere the tests that need it
// are reported as skipped, not passed
const requireNative = process.env.CI === 'true'
const withNative = native.addon !== undefined || requireNative ? test : test.skip
if (native.addon === undefined && !requireNative) console.warn(`engines.test: native addon unavailable, its tests are skipped: ${native.reason ?? ''}`)

withNative('the native addon built here (npm install builds it)', t => {
  const { addon, reason } = native
  t.not(addon, undefined, `native addon unavailable: ${reason ?? ''}`)
  t.is(typeof addon?.rootSync, 'function')
  t.log(`SHA-NI in use: ${String(addon?.shaNi)}, AVX-512: ${String(addon?.avx512)}`)
})

const paths: Array<[string, Record<string, string>]> = [
  ['SHA-NI without AVX-512', { CAIRN_COMMP_NO_AVX512: '1' }],
  ['portable C (neither)', { CAIRN_COMMP_NO_AVX512: '1', CAIRN_COMMP_NO_SHANI: '1' }]
]
for (const [name, flags] of paths) {
  withNative(`native addon, ${name}, equals data-segment`, t => {
    t.true(availableEngines().includes('native'), 'the native engine is offered when its addon loads')
    const sizes = [0, 1, 127, 128, 5000, 127 * 8192 + 1, 2 * 1024 * 1024 + 3]
    const script = `
    import { pieceOf } from ${JSON.stringify(index)}
    import { readFileSync } from 'node:fs'
    const data = readFileSync(0)
    const out = []
    let offset = 0
    for (const size of ${JSON.stringify(sizes)}) {
      out.push((await pieceOf(data.subarray(offset, offset + size), { engine: 'native' })).cid.toString())
      offset += size
    }
    console.log(JSON.stringify(out))`
    const payloads = sizes.map(size => randomBytes(size))
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      input: Buffer.concat(payloads),
      env: { ...process.env, ...flags },
      maxBuffer: 1 << 20
    })
    const cids = JSON.parse(stdout.toString()) as string[]
    payloads.forEach((bytes, i) => t.is(cids[i], Piece.fromPayload(bytes).link.toString(), `size ${sizes[i]}`))
  })
}

test('without the addon, auto warns once on stderr and still hashes correctly', t => {
  const script = `
    import { pieceOf } from ${JSON.stringify(index)}
    const a = await pieceOf((function * () { yield new Uint8Array(3 << 20).fill(7) })())
    const b = await pieceOf((function * () { yield new Uint8Array(5).fill(1) })())
    console.log(JSON.stringify([a.cid.toString(), b.cid.toString()]))`
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, CAIRN_COMMP_ADDON: '/nonexistent/cairn_commp.node', CAIRN_COMMP_ENGINE: '' },
    encoding: 'utf8'
  })
  t.is(result.status, 0, result.stderr)
  const warnings = result.stderr.split('\n').filter(line => line.includes('CAIRN_COMMP_PORTABLE'))
  t.is(warnings.length, 1, result.stderr)
  const [a, b] = JSON.parse(result.stdout) as string[]
  t.is(a, Piece.fromPayload(new Uint8Array(3 << 20).fill(7)).link.toString())
  t.is(b, Piece.fromPayload(new Uint8Array(5).fill(1)).link.toString())
})

const nativeModule = fileURLToPath(new URL('../../proofs/native.js', import.meta.url))

/**
 * sha256x16 in a child process with `env` (the addon picks its engine once, at load): the
 * messages are the stdin after 3 bytes (so they are views at odd offsets), `count` of
 * `length` bytes per case, one after another; the child answers with the engine, each case's
 * digests in hex, and what each bad call threw.
 */
function hashManyIn (env: Record<string, string>, cases: Array<{ length: number, count: number }>, input: Uint8Array): { engine?: string, offered: boolean, digests: string[], errors: string[] } {
  const script = `
    import { loadNative } from ${JSON.stringify(nativeModule)}
    import { readFileSync } from 'node:fs'
    const { addon } = loadNative()
    const hashMany = addon?.sha256x16
    const out = { engine: addon?.sha256x16Engine, offered: typeof hashMany === 'function', digests: [], errors: [] }
    if (out.offered) {
      const data = readFileSync(0)
      let offset = 3
      for (const { length, count } of ${JSON.stringify(cases)}) {
        const messages = []
        for (let i = 0; i < count; i++, offset += length) messages.push(data.subarray(offset, offset + length))
        out.digests.push(Buffer.from(await hashMany(messages)).toString('hex'))
      }
      const bad = [[], Array.from({ length: 17 }, () => new Uint8Array(1)), [new Uint8Array(3), new Uint8Array(4)], 'nope', [new Uint8Array(2), [1, 2]]]
      for (const args of bad) {
        try { await hashMany(args); out.errors.push('none') } catch (err) { out.errors.push(err.constructor.name + ': ' + err.message) }
      }
    }
    console.log(JSON.stringify(out))`
  // the addon takes a switch as set whatever its value, so the child has only the ones asked for
  const inherited = { ...process.env }
  delete inherited.CAIRN_COMMP_NO_AVX512
  delete inherited.CAIRN_COMMP_NO_SHANI
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    input,
    env: { ...inherited, ...env },
    maxBuffer: 1 << 20,
    encoding: 'utf8'
  })
  if (result.status !== 0) throw new Error(`sha256x16 child failed: ${result.stderr}`)
  return JSON.parse(result.stdout) as ReturnType<typeof hashManyIn>
}

const hashEngines: Array<[engine: 'avx512' | 'sha-ni', flags: Record<string, string>, here: boolean]> = [
  ['avx512', {}, native.addon?.avx512 === true],
  ['sha-ni', { CAIRN_COMMP_NO_AVX512: '1' }, native.addon?.shaNi === true]
]
for (const [engine, flags, here] of hashEngines) {
  if (native.addon !== undefined && !here) console.warn(`engines.test: no ${engine} here, its sha256x16 test is skipped`)
  const run = here ? test : test.skip
  run(`sha256x16 with ${engine}: the SHA-256 of 1…16 messages of one length, as node:crypto gives them; the same errors`, t => {
    // every padding case: empty, short, 55/56 (one last block or two), 63/64/65, 119/120, a few blocks, 1 MiB, random
    const random = Array.from({ length: 3 }, () => 1 + Math.floor(Math.random() * 200_000))
    const cases = [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 1024 * 1024, ...random].flatMap(length => [1, 7, 16].map(count => ({ length, count })))
    const messages = cases.map(({ length, count }) => Array.from({ length: count }, () => randomBytes(length)))
    const answer = hashManyIn(flags, cases, Buffer.concat([randomBytes(3), ...messages.flat()]))
    t.true(answer.offered, `sha256x16 offered with ${JSON.stringify(flags)}`)
    t.is(answer.engine, engine)
    t.is(answer.digests.length, cases.length)
    cases.forEach(({ length, count }, c) => {
      const expected = Buffer.concat(messages[c]?.map(m => createHash('sha256').update(m).digest()) ?? []).toString('hex')
      t.is(answer.digests[c], expected, `length ${length}, ${count} messages`)
    })
    t.deepEqual(answer.errors, [
      'RangeError: sha256x16: 1 to 16 messages',
      'RangeError: sha256x16: 1 to 16 messages',
      'RangeError: sha256x16: messages of one length',
      'TypeError: sha256x16(messages: Uint8Array[])',
      'TypeError: expected a Uint8Array'
    ])
  })
}

withNative('sha256x16 is not offered with neither AVX-512 nor SHA-NI', t => {
  const answer = hashManyIn({ CAIRN_COMMP_NO_AVX512: '1', CAIRN_COMMP_NO_SHANI: '1' }, [], new Uint8Array(0))
  t.false(answer.offered)
  t.is(answer.engine, undefined)
})
