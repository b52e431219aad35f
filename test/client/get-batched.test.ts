/**
 * `cairn get` to a file hashes a streamed DAG's raw leaves sixteen at a time
 * off the main thread where the native addon offers `sha256x16` (with AVX-512,
 * or with SHA-NI alone: CAIRN_COMMP_NO_AVX512), and one by one on the main
 * thread without it: the same file every way, and a leaf
 * corrupted in the middle of a batch fails the get (exit 3) with nothing
 * written at the target.
 */
import test from 'ava'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as raw from 'multiformats/codecs/raw'
import { addToRepo } from '../../src/client/content.js'
import { makeDeal } from '../../src/client/deal.js'
import { readCar } from '../../src/car/index.js'
import { cairn } from '../helpers/cli.js'
import { deterministicBytes } from '../unixfs/helpers.js'
import { tamperingProxy, world } from './helpers.js'

test('cairn get of a file of 24 leaves of 1 MiB and a short one, with the addon, with its SHA-NI engine only, and without: the same bytes; a leaf corrupted mid-batch exits 3 with ERR_BLOCK_MISMATCH and writes nothing', async (t) => {
  const w = await world()
  try {
    const input = join(w.dir, 'big.bin')
    const content = deterministicBytes(24 * 1024 * 1024 + 5, 'get-batched')
    await writeFile(input, content)
    const added = await addToRepo(w.client.repo, [input], { chunkSize: 1024 * 1024 })
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const car = await readFile(join(w.client.repo.piecesDir, `${added.piece.cid}.car`))
    const leaves = []
    for await (const block of readCar((async function * () { yield car })())) if (block.cid.code === raw.code) leaves.push(block)
    t.is(leaves.length, 25)
    // the fifth leaf of the second batch of sixteen
    const proxy = await tamperingProxy(w.provider.url, 'corrupt', leaves[20].blockOffset + 1000)
    try {
      const repo = join(w.dir, 'fetcher')
      for (const [name, env] of [['addon', {}], ['SHA-NI only', { CAIRN_COMMP_NO_AVX512: '1' }], ['no addon', { CAIRN_COMMP_ADDON: join(w.dir, 'missing.node'), CAIRN_NATIVE_BUILD: '0' }]] as const) {
        const out = join(w.dir, `out-${name.replace(' ', '-')}`)
        const good = await cairn(['--repo', repo, '--json', 'get', added.root, '--provider', w.provider.url, '-o', out], { cwd: w.dir, env })
        t.is(good.code, 0, good.stderr)
        t.true((await readFile(out)).equals(content), name)

        const badOut = join(w.dir, `bad-${name.replace(' ', '-')}`)
        const bad = await cairn(['--repo', repo, 'get', added.root, '--provider', proxy.url, '-o', badOut], { cwd: w.dir, env })
        t.is(bad.code, 3, `${name}: ${bad.stderr} ${bad.stdout}`)
        t.regex(bad.stderr, /ERR_BLOCK_MISMATCH/, name)
        // neither the target nor a temporary sibling of it is left
        t.false((await readdir(w.dir)).some(f => f.includes(`bad-${name.replace(' ', '-')}`)), name)
      }
    } finally {
      await proxy.close()
    }
  } finally {
    await w.cleanup()
  }
})

test('cairn get of a file whose 1 MiB leaves repeat: each leaf lent from the body\'s slabs is written once and given back, a repeat gets a copy; the same bytes', async (t) => {
  const w = await world()
  try {
    const input = join(w.dir, 'repeats.bin')
    const MiB = 1024 * 1024
    const same = deterministicBytes(MiB, 'repeated leaf')
    // the repeated leaf first, then again right after and far later, between unique ones: dups=n sends it once
    const parts = Array.from({ length: 40 }, (_, i) => [0, 1, 5, 17, 18, 39].includes(i) ? same : deterministicBytes(MiB, `unique ${i}`))
    const content = Buffer.concat([...parts, deterministicBytes(12345, 'tail')])
    await writeFile(input, content)
    const added = await addToRepo(w.client.repo, [input], { chunkSize: MiB })
    await makeDeal({ repo: w.client.repo, ledger: w.client.ledger }, added.root, w.provider.url, { duration: 86400 * 3 })
    const out = join(w.dir, 'out-repeats')
    const got = await cairn(['--repo', join(w.dir, 'fetcher'), '--json', 'get', added.root, '--provider', w.provider.url, '-o', out], { cwd: w.dir })
    t.is(got.code, 0, got.stderr)
    t.true((await readFile(out)).equals(content))
  } finally {
    await w.cleanup()
  }
})
