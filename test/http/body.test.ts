/** The one bounded body reader (src/http/body.ts): whole bodies, streamed ones, and the limit's two checks. */
import test from 'ava'
import { CairnError } from '../../src/errors.js'
import { boundedChunks, readBounded } from '../../src/http/body.js'
import { rejectsCode } from '../helpers/errors.js'

async function * chunks (...sizes: number[]): AsyncGenerator<Uint8Array> {
  for (const [i, size] of sizes.entries()) yield new Uint8Array(size).fill(i + 1)
}

const tooLarge = (declared?: number): CairnError => new CairnError('ERR_PAYLOAD_TOO_LARGE', declared === undefined ? 'over' : `declared ${declared}`)

test('a body up to the limit is read whole, in order, with its progress', async t => {
  const seen: number[] = []
  const bytes = await readBounded(chunks(3, 0, 4), { limit: 7, tooLarge, progress: (n) => seen.push(n) })
  t.deepEqual([...bytes], [1, 1, 1, 3, 3, 3, 3])
  t.deepEqual(seen, [3, 3, 7])
})

test('one byte over the limit fails with the caller\'s code, and the source is not read further', async t => {
  let pulled = 0
  async function * counted (): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 100; i++) { pulled++; yield new Uint8Array(4) }
  }
  const err = await rejectsCode(t, readBounded(counted(), { limit: 7, tooLarge }), 'ERR_PAYLOAD_TOO_LARGE')
  t.is(err?.message, 'over')
  t.is(pulled, 2)
})

test('a declared length over the limit fails before a byte is read', async t => {
  async function * untouchable (): AsyncGenerator<Uint8Array> { throw new Error('read') }
  const err = await rejectsCode(t, readBounded(untouchable(), { limit: 10, declared: '11', tooLarge }), 'ERR_PAYLOAD_TOO_LARGE')
  t.is(err?.message, 'declared 11')
  // a declared length within the limit is no promise: the bytes are still counted
  await rejectsCode(t, readBounded(chunks(8, 8), { limit: 10, declared: 5, tooLarge }), 'ERR_PAYLOAD_TOO_LARGE')
})

test('boundedChunks passes chunks on as they come and fails at the chunk that passes the limit', async t => {
  const got: number[] = []
  await rejectsCode(t, (async () => { for await (const c of boundedChunks(chunks(2, 2, 2), { limit: 5, tooLarge })) got.push(c.length) })(), 'ERR_PAYLOAD_TOO_LARGE')
  t.deepEqual(got, [2, 2])
})
