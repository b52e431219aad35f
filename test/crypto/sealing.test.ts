/**
 * Sealing on the seal pool's worker gives the bytes and tags sealing on the
 * calling thread gives (stream.ts, itself checked against age-encryption).
 */
import test from 'ava'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { payloadWriter, sealedRange } from '../../src/crypto/sealing.js'
import { CHUNK, chunkCount, NONCE, payloadKey, PayloadSealer, SEALED } from '../../src/crypto/stream.js'
import { rejectsCode } from '../helpers/errors.js'

function inline (key: Buffer, nonce: Buffer, plaintext: Buffer): { payload: Buffer, tags: Buffer } {
  const tags = Buffer.alloc(chunkCount(plaintext.length) * 16)
  const sealer = new PayloadSealer(key, nonce, tags)
  return { payload: Buffer.concat([...sealer.update(plaintext), ...sealer.final()]), tags }
}

async function pooled (key: Buffer, nonce: Buffer, plaintext: Buffer, piece: number): Promise<{ payload: Buffer, tags: Buffer }> {
  const tags = Buffer.alloc(chunkCount(plaintext.length) * 16)
  const parts: Buffer[] = []
  const writer = payloadWriter(key, nonce, plaintext.length, tags, bytes => parts.push(Buffer.from(bytes)))
  const scratch = Buffer.alloc(piece)
  for (let at = 0; at < plaintext.length; at += piece) {
    // the writer must have copied each piece before it resolves: the buffer is overwritten next time
    const n = plaintext.copy(scratch, 0, at, at + piece)
    await writer.update(scratch.subarray(0, n))
    scratch.fill(0xee)
  }
  await writer.final()
  return { payload: Buffer.concat(parts), tags }
}

for (const chunks of [8, 31, 32, 33, 64, 97]) {
  for (const extra of [0, 1, CHUNK - 1]) {
    test(`${chunks} chunks + ${extra} bytes: the worker seals what the calling thread seals`, async t => {
      const key = payloadKey(randomBytes(16), randomBytes(NONCE))
      const nonce = randomBytes(NONCE)
      const plaintext = randomBytes(chunks * CHUNK + extra)
      const want = inline(key, nonce, plaintext)
      for (const piece of [4 * 1024 * 1024, 100_003]) {
        const got = await pooled(key, nonce, plaintext, piece)
        t.true(got.payload.equals(want.payload), `piece ${piece}`)
        t.true(got.tags.equals(want.tags), `piece ${piece}`)
      }
    })
  }
}

test('ranges sealed on the worker equal those sealed inline, and changed plaintext is ERR_FILE_CHANGED', async t => {
  const key = payloadKey(randomBytes(16), randomBytes(NONCE))
  const nonce = randomBytes(NONCE)
  const plaintext = randomBytes(40 * CHUNK + 12345)
  const { payload, tags } = inline(key, nonce, plaintext)
  const readFrom = (source: Buffer) => async (buffer: Uint8Array, n: number, position: number): Promise<number> => {
    const slice = source.subarray(position, position + n)
    buffer.set(slice)
    return slice.length
  }
  await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: payload.length - 1 }), fc.integer({ min: 1, max: 34 * SEALED }), async (from, want) => {
    const length = Math.min(want, payload.length - from)
    const into = Buffer.alloc(length)
    await sealedRange(key, nonce, plaintext.length, from, length, into, readFrom(plaintext), tags)
    t.true(into.equals(payload.subarray(from, from + length)))
  }), { numRuns: 80 })
  const edited = Buffer.from(plaintext)
  edited[5 * CHUNK] ^= 1
  await rejectsCode(t, sealedRange(key, nonce, plaintext.length, NONCE, 16 * SEALED, Buffer.alloc(16 * SEALED), readFrom(edited), tags), 'ERR_FILE_CHANGED')
  await rejectsCode(t, sealedRange(key, nonce, plaintext.length, NONCE, 16 * SEALED, Buffer.alloc(16 * SEALED), async () => 5, tags), 'ERR_FILE_CHANGED')
})

test('a writer abandoned after a failure gives its slot back: later writers still get slots', async t => {
  const key = payloadKey(randomBytes(16), randomBytes(NONCE))
  const nonce = randomBytes(NONCE)
  const size = 40 * CHUNK
  for (let i = 0; i < 10; i++) {
    const writer = payloadWriter(key, nonce, size, Buffer.alloc(40 * 16), () => {})
    await writer.update(randomBytes(CHUNK))
    writer.abort()
  }
  const plaintext = randomBytes(size)
  const finished = pooled(key, nonce, plaintext, CHUNK * 3).then(() => 'finished')
  const stuck = new Promise<string>(resolve => { setTimeout(resolve, 20_000, 'stuck').unref() })
  t.is(await Promise.race([finished, stuck]), 'finished')
})
