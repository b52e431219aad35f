/**
 * The state store conformance suite, written once and run by every backend
 * (abstract-level's `suite({ test, factory })` pattern): test/state/level.test.ts
 * and test/state/pg.test.ts. What one backend does, the other must do alike —
 * key order, ranges, atomic batches, transactions that see their own writes,
 * undo of a part, locks that order read-modify-writes.
 *
 * `factory` may hand out stores over the same data: every test writes only to
 * spaces named for it alone.
 */
import type { TestFn } from 'ava'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { Range, StateStore } from '../../src/state/interface.js'
import { namedLock, testSpace, type Space } from '../../src/state/spaces.js'
import { appendChained, ChainAppender, readChain } from './chain.js'

export interface SuiteOptions {
  test: TestFn
  factory: () => Promise<StateStore>
  /** the backend's name in test titles */
  name: string
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined): string | undefined => b === undefined ? undefined : new TextDecoder().decode(b)
/** Keys sorted as UTF-8 bytes, the order both backends must give. */
const byteOrder = (keys: string[]): string[] => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))

let counter = 0
function fresh (kind: 'sublevel' | 'prefix' = 'sublevel'): Space {
  return testSpace(`s${++counter}-${randomBytes(4).toString('hex')}`, kind)
}

async function all (iterable: AsyncIterable<[string, Uint8Array]>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const [k, v] of iterable) out.push([k, dec(v) as string])
  return out
}

/** Keys that tell byte order from UTF-16 order and from naive number order. */
const KEYS = ['a', 'b', 'a/b', 'a0', 'aa', '10', '9', 'é', 'z', '\uFFFD', '😀', '~', 'A', 'a\u0001', '0000000000000012']

export function suite ({ test, factory, name }: SuiteOptions): void {
  const title = (text: string): string => `${name}: ${text}`

  test(title('a missing key reads as undefined; a put reads back byte for byte'), async (t) => {
    const store = await factory()
    const space = fresh()
    t.is(await store.get(space, 'nothing'), undefined)
    const values = [new Uint8Array(0), new Uint8Array([0, 255, 0, 1]), randomBytes(1 << 20)]
    await store.batch(values.map((value, i) => ({ type: 'put', space, key: `k${i}`, value })))
    for (const [i, value] of values.entries()) {
      const back = await store.get(space, `k${i}`)
      t.true(back instanceof Uint8Array)
      t.deepEqual(Buffer.from(back as Uint8Array), Buffer.from(value))
    }
  })

  test(title('prefetched keys read as stored, missing ones as undefined; the transaction\'s own writes win over them'), async (t) => {
    const store = await factory()
    const space = fresh()
    const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
    await store.batch([{ type: 'put', space, key: 'a', value: bytes('A') }, { type: 'put', space, key: 'b', value: bytes('B') }])
    const read = await store.transaction(async (tx) => {
      tx.put(space, 'b', bytes('b2'))
      await tx.prefetch(space, ['a', 'b', 'missing', 'a'])
      const first = [await tx.get(space, 'a'), await tx.get(space, 'b'), await tx.get(space, 'missing')]
      tx.put(space, 'a', bytes('a2'))
      tx.del(space, 'b')
      await tx.atomically(async () => { tx.put(space, 'missing', bytes('M')) })
      return [...first, await tx.get(space, 'a'), await tx.get(space, 'b'), await tx.get(space, 'missing')]
    })
    t.deepEqual(read.map(v => v === undefined ? undefined : Buffer.from(v).toString()), ['A', 'b2', undefined, 'a2', undefined, 'M'])
    t.is(Buffer.from(await store.get(space, 'missing') as Uint8Array).toString(), 'M')
  })

  test(title('keys walk in UTF-8 byte order, both ways, in sublevel and prefix spaces alike'), async (t) => {
    const store = await factory()
    for (const space of [fresh('sublevel'), fresh('prefix')]) {
      await store.batch(KEYS.map(key => ({ type: 'put', space, key, value: enc(`v-${key}`) })))
      const order = byteOrder(KEYS)
      t.deepEqual((await all(store.iterate(space))).map(([k]) => k), order)
      t.deepEqual((await all(store.iterate(space, { reverse: true }))).map(([k]) => k), [...order].reverse())
      t.deepEqual(await all(store.iterate(space, { limit: 2 })), order.slice(0, 2).map(k => [k, `v-${k}`]))
    }
  })

  test(title('ranges: gt, gte, lt, lte, limit and reverse as abstract-level takes them'), async (t) => {
    const store = await factory()
    const space = fresh('prefix')
    const keys = Array.from({ length: 600 }, (_, i) => `key/${i.toString().padStart(4, '0')}`)
    await store.batch(keys.map(key => ({ type: 'put', space, key, value: enc(key) })))
    const keysOf = async (range: Range): Promise<string[]> => (await all(store.iterate(space, range))).map(([k]) => k)
    t.deepEqual(await keysOf({ gte: 'key/0100', lt: 'key/0103' }), ['key/0100', 'key/0101', 'key/0102'])
    t.deepEqual(await keysOf({ gt: 'key/0100', lte: 'key/0103' }), ['key/0101', 'key/0102', 'key/0103'])
    t.deepEqual(await keysOf({ gt: 'key/0100', lte: 'key/0103', reverse: true, limit: 2 }), ['key/0103', 'key/0102'])
    t.deepEqual(await keysOf({ gte: 'key/0598' }), ['key/0598', 'key/0599'])
    t.deepEqual(await keysOf({ lt: 'key/0002' }), ['key/0000', 'key/0001'])
    t.deepEqual(await keysOf({ gt: 'key/9' }), [])
    t.deepEqual(await keysOf({ limit: 0 }), [])
    t.deepEqual(await keysOf({}), keys, 'a walk longer than one page')
    t.deepEqual(await keysOf({ reverse: true, limit: 300 }), keys.slice(300).reverse())
  })

  test(title('spaces are separate, whatever their keys'), async (t) => {
    const store = await factory()
    const a = fresh('prefix')
    const b = fresh('sublevel')
    await store.batch([{ type: 'put', space: a, key: 'same', value: enc('in a') }, { type: 'put', space: b, key: 'same', value: enc('in b') }])
    t.is(dec(await store.get(a, 'same')), 'in a')
    t.is(dec(await store.get(b, 'same')), 'in b')
    t.deepEqual(await all(store.iterate(a)), [['same', 'in a']])
    await store.batch([{ type: 'del', space: a, key: 'same' }])
    t.is(await store.get(a, 'same'), undefined)
    t.is(dec(await store.get(b, 'same')), 'in b')
  })

  test(title('a batch writes all its ops in order, later ops on a key winning; a bad op writes nothing'), async (t) => {
    const store = await factory()
    const space = fresh()
    await store.batch([{ type: 'put', space, key: 'x', value: enc('1') }, { type: 'put', space, key: 'y', value: enc('1') }])
    await store.batch([
      { type: 'put', space, key: 'x', value: enc('2') },
      { type: 'del', space, key: 'y' },
      { type: 'put', space, key: 'z', value: enc('first') },
      { type: 'put', space, key: 'z', value: enc('second') }
    ])
    t.deepEqual(await all(store.iterate(space)), [['x', '2'], ['z', 'second']])
    await t.throwsAsync(store.batch([{ type: 'put', space, key: 'w', value: enc('w') }, { type: 'put', space, key: '', value: enc('') }]), { instanceOf: RangeError })
    await t.throwsAsync(async () => { await store.batch([{ type: 'put', space, key: 'w', value: enc('w') }, { type: 'put', space, key: 'v', value: 'text' as unknown as Uint8Array }]) }, { instanceOf: TypeError })
    t.is(await store.get(space, 'w'), undefined)
  })

  test(title('keys and values are checked: empty or ill-formed keys, non-byte values, bad ranges'), async (t) => {
    const store = await factory()
    const space = fresh()
    await t.throwsAsync(store.get(space, ''), { instanceOf: RangeError })
    await t.throwsAsync(store.get(space, 'broken \uD800 surrogate'), { instanceOf: RangeError })
    await t.throwsAsync(store.get(space, 7 as unknown as string), { instanceOf: TypeError })
    await t.throwsAsync(all(store.iterate(space, { limit: -1 })), { instanceOf: RangeError })
    await t.throwsAsync(store.transaction(async (tx) => { tx.put(space, 'k', [1, 2] as unknown as Uint8Array) }), { instanceOf: TypeError })
  })

  test(title('a transaction reads its own writes, merged into walks, and commits them together'), async (t) => {
    const store = await factory()
    const space = fresh('prefix')
    await store.batch(['a', 'b', 'c', 'd'].map(key => ({ type: 'put' as const, space, key, value: enc(`stored ${key}`) })))
    const seen = await store.transaction(async (tx) => {
      tx.put(space, 'b', enc('new b'))
      tx.del(space, 'c')
      tx.put(space, 'bb', enc('new bb'))
      tx.put(space, 'e', enc('new e'))
      tx.del(space, 'never-stored')
      return {
        b: dec(await tx.get(space, 'b')),
        c: await tx.get(space, 'c'),
        all: await all(tx.iterate(space)),
        reversed: (await all(tx.iterate(space, { reverse: true, limit: 3 }))).map(([k]) => k),
        window: (await all(tx.iterate(space, { gt: 'a', lt: 'd', limit: 2 }))).map(([k]) => k),
        outside: dec(await store.get(space, 'b'))
      }
    })
    t.is(seen.b, 'new b')
    t.is(seen.c, undefined)
    t.deepEqual(seen.all, [['a', 'stored a'], ['b', 'new b'], ['bb', 'new bb'], ['d', 'stored d'], ['e', 'new e']])
    t.deepEqual(seen.reversed, ['e', 'd', 'bb'])
    t.deepEqual(seen.window, ['b', 'bb'])
    t.is(seen.outside, 'stored b', 'nothing is visible outside before commit')
    t.deepEqual(await all(store.iterate(space)), seen.all)
  })

  test(title('a transaction whose function throws writes nothing, and its error comes back as it was'), async (t) => {
    const store = await factory()
    const space = fresh()
    const boom = new Error('caller gives up')
    const err = await t.throwsAsync(store.transaction(async (tx) => {
      tx.put(space, 'k', enc('v'))
      throw boom
    }))
    t.is(err, boom)
    t.is(await store.get(space, 'k'), undefined)
  })

  test(title('atomically undoes only the writes of a part that fails, also overwrites and deletes'), async (t) => {
    const store = await factory()
    const space = fresh()
    await store.batch([{ type: 'put', space, key: 'kept', value: enc('stored') }, { type: 'put', space, key: 'gone', value: enc('stored') }])
    await store.transaction(async (tx) => {
      tx.put(space, 'first', enc('1'))
      await tx.atomically(async () => { tx.put(space, 'second', enc('2')) })
      await t.throwsAsync(tx.atomically(async () => {
        tx.put(space, 'first', enc('overwritten'))
        tx.del(space, 'kept')
        tx.put(space, 'third', enc('3'))
        await tx.atomically(async () => { tx.put(space, 'inner', enc('i')) })
        throw new Error('this entry is bad')
      }), { message: 'this entry is bad' })
      await t.throwsAsync(tx.atomically(async () => {
        tx.del(space, 'gone')
        tx.put(space, 'gone', enc('replaced'))
        throw new Error('so is this one')
      }))
      t.deepEqual(await all(tx.iterate(space)), [['first', '1'], ['gone', 'stored'], ['kept', 'stored'], ['second', '2']])
    })
    t.deepEqual(await all(store.iterate(space)), [['first', '1'], ['gone', 'stored'], ['kept', 'stored'], ['second', '2']])
  })

  test(title('a transaction used after it ended, or started inside another, is a programmer mistake'), async (t) => {
    const store = await factory()
    const space = fresh()
    let leaked: Parameters<Parameters<StateStore['transaction']>[0]>[0] | undefined
    await store.transaction(async (tx) => { leaked = tx })
    t.throws(() => leaked?.put(space, 'late', enc('x')), { instanceOf: TypeError })
    await t.throwsAsync(store.transaction(async () => await store.transaction(async () => 1)), { instanceOf: TypeError })
  })

  test(title('transactions that take the same lock never lose an update'), async (t) => {
    const store = await factory()
    const space = fresh()
    const lock = namedLock(`counter-${randomBytes(4).toString('hex')}`)
    const increments = 24
    await Promise.all(Array.from({ length: increments }, async () => {
      await store.transaction(async (tx) => {
        await tx.lock(lock)
        const n = Number(dec(await tx.get(space, 'n')) ?? '0')
        // give the other transactions every chance to interleave
        await new Promise(resolve => setImmediate(resolve))
        tx.put(space, 'n', enc(String(n + 1)))
      })
    }))
    t.is(dec(await store.get(space, 'n')), String(increments))
  })

  test(title('concurrent chained appends under the head lock form one gapless chain'), async (t) => {
    const store = await factory()
    const space = fresh()
    const lock = namedLock(`chain-${randomBytes(4).toString('hex')}`)
    const appender = new ChainAppender(store, space, lock, 16)
    const payloads = Array.from({ length: 200 }, (_, i) => `p${i}`)
    // two appenders on one store stand for two callers that do not share a queue
    const other = new ChainAppender(store, space, lock, 7)
    const seqs = await Promise.all(payloads.map(async (p, i) => await (i % 2 === 0 ? appender : other).append(p)))
    t.deepEqual([...seqs].sort((a, b) => a - b), payloads.map((_, i) => i + 1))
    const chain = await readChain(store, space)
    t.deepEqual(chain.map(l => l.payload).sort(), [...payloads].sort())
    t.deepEqual(await appendChained(store, space, lock, ['last']), [201])
  })

  test(title('an upload-sized transaction: 4,100 puts with reads, then 4,100 deletes'), async (t) => {
    const store = await factory()
    const space = fresh('prefix')
    const keys = Array.from({ length: 4100 }, (_, i) => `bafy${i.toString(36).padStart(8, '0')}`)
    await store.transaction(async (tx) => {
      for (const [i, key] of keys.entries()) tx.put(space, key, enc(`{"piece":"p","offset":${i}}`))
      t.is(dec(await tx.get(space, keys[4099] as string)), '{"piece":"p","offset":4099}')
    })
    t.is((await all(store.iterate(space))).length, 4100)
    await store.transaction(async (tx) => { for (const key of keys) tx.del(space, key) })
    t.deepEqual(await all(store.iterate(space)), [])
  })

  test(title('walks inside a transaction agree with a model of stored data plus the transaction\'s writes'), async (t) => {
    const store = await factory()
    const alphabet = ['a', 'b', 'c', 'é', '😀', '\uFFFD']
    const key = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 3 }).map(cs => cs.join(''))
    const op = fc.record({ del: fc.boolean(), key, value: fc.string({ maxLength: 4 }) })
    const bound = fc.option(key, { nil: undefined })
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 12 }), fc.array(op, { maxLength: 12 }), bound, bound, fc.boolean(), fc.option(fc.nat(6), { nil: undefined }), async (stored, written, low, high, reverse, limit) => {
      const space = fresh()
      const model = new Map<string, string>()
      await store.batch(stored.map(o => o.del ? { type: 'del' as const, space, key: o.key } : { type: 'put' as const, space, key: o.key, value: enc(o.value) }))
      for (const o of stored) o.del ? model.delete(o.key) : model.set(o.key, o.value)
      const range: Range = { gte: low, lt: high, reverse, limit }
      const got = await store.transaction(async (tx) => {
        for (const o of written) o.del ? tx.del(space, o.key) : tx.put(space, o.key, enc(o.value))
        return await all(tx.iterate(space, range))
      })
      for (const o of written) o.del ? model.delete(o.key) : model.set(o.key, o.value)
      let expected = byteOrder([...model.keys()])
        .filter(k => (low === undefined || Buffer.compare(Buffer.from(k), Buffer.from(low)) >= 0) && (high === undefined || Buffer.compare(Buffer.from(k), Buffer.from(high)) < 0))
      if (reverse) expected.reverse()
      if (limit !== undefined) expected = expected.slice(0, limit)
      t.deepEqual(got, expected.map(k => [k, model.get(k) as string]))
      t.deepEqual(await all(store.iterate(space, range)), got, 'and the committed data walks the same')
    }), { numRuns: 40 })
  })
}
