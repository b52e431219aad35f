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

const withHashMany = native.addon?.sha256x16 !== undefined ? test : test.skip
if (native.addon !== undefined && native.addon.sha256x16 === undefined) console.warn('engines.test: no AVX-512 here, sha256x16 is not offered and its test is skipped')

withHashMany('sha256x16: the SHA-256 of 1…16 messages of one length at once, as node:crypto gives them', async t => {
  const hashMany = native.addon?.sha256x16 as NonNullable<NonNullable<typeof native.addon>['sha256x16']>
  // every padding case: empty, short, 55/56 (one last block or two), 63/64/65, a few blocks, 1 MiB
  for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 1024 * 1024]) {
    for (const count of [1, 7, 16]) {
      const messages = Array.from({ length: count }, () => randomBytes(length))
      const digests = await hashMany(messages)
      t.is(digests.byteLength, 32 * count)
      messages.forEach((message, i) => {
        t.deepEqual(Buffer.from(digests.subarray(32 * i, 32 * i + 32)), createHash('sha256').update(message).digest(), `length ${length}, message ${i} of ${count}`)
      })
    }
  }
  // views into larger buffers at odd offsets
  const big = randomBytes(16 * 5000 + 3)
  const views = Array.from({ length: 16 }, (_, i) => big.subarray(3 + i * 5000, 3 + i * 5000 + 4999))
  const digests = await hashMany(views)
  views.forEach((view, i) => t.deepEqual(Buffer.from(digests.subarray(32 * i, 32 * i + 32)), createHash('sha256').update(view).digest()))
  t.throws(() => { void hashMany([]) }, { instanceOf: RangeError })
  t.throws(() => { void hashMany(Array.from({ length: 17 }, () => new Uint8Array(1))) }, { instanceOf: RangeError })
  t.throws(() => { void hashMany([new Uint8Array(3), new Uint8Array(4)]) }, { instanceOf: RangeError })
  t.throws(() => { void hashMany('nope' as unknown as Uint8Array[]) }, { instanceOf: TypeError })
})
