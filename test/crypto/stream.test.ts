/**
 * The age payload (STREAM over node:crypto's ChaCha20-Poly1305) against
 * age-encryption's own STREAM, byte for byte, and its refusals.
 */
import test from 'ava'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { CHUNK, NONCE, PayloadOpener, seal as sealChunk, payloadKey, payloadRange, PayloadSealer, payloadSize, plaintextSize, SEALED } from '../../src/crypto/stream.js'
import { libraryStream } from './helpers.js'

async function throughLibrary (stream: TransformStream<Uint8Array, Uint8Array>, input: Uint8Array): Promise<Buffer> {
  const out: Uint8Array[] = []
  const writer = stream.writable.getWriter()
  const reading = (async () => { for await (const chunk of stream.readable as unknown as AsyncIterable<Uint8Array>) out.push(chunk) })()
  // fed in odd pieces, as a file arrives
  for (let at = 0; at < input.length; at += 10_007) await writer.write(input.subarray(at, at + 10_007))
  await writer.close()
  await reading
  return Buffer.concat(out)
}

function seal (fileKey: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, piece = 4099): Buffer {
  const sealer = new PayloadSealer(payloadKey(fileKey, nonce), nonce)
  const parts: Uint8Array[] = []
  for (let at = 0; at < plaintext.length; at += piece) parts.push(...sealer.update(plaintext.subarray(at, at + piece)))
  parts.push(...sealer.final())
  return Buffer.concat(parts)
}

const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 1_048_576 + 5]

for (const size of sizes) {
  test(`payload of ${size} bytes equals age-encryption's STREAM and opens with it`, async t => {
    const { encryptSTREAM, decryptSTREAM } = await libraryStream()
    const fileKey = randomBytes(16)
    const nonce = randomBytes(NONCE)
    const plaintext = randomBytes(size)
    const ours = seal(fileKey, nonce, plaintext)
    t.is(ours.length, payloadSize(size))
    t.deepEqual(ours.subarray(0, NONCE), nonce)
    const key = payloadKey(fileKey, nonce)
    t.deepEqual(ours.subarray(NONCE), await throughLibrary(encryptSTREAM(key), plaintext))
    t.deepEqual(await throughLibrary(decryptSTREAM(key), ours.subarray(NONCE)), plaintext)
    t.is(plaintextSize(ours.length - NONCE), size)
    const opener = new PayloadOpener(fileKey)
    const parts: Buffer[] = []
    for (let at = 0; at < ours.length; at += 3001) parts.push(...opener.update(ours.subarray(at, at + 3001)))
    parts.push(...opener.final())
    t.deepEqual(Buffer.concat(parts), plaintext)
  })
}

test('any payload range made on its own equals that slice of the whole payload (the importer\'s second pass)', async t => {
  const fileKey = randomBytes(16)
  const nonce = randomBytes(NONCE)
  await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: 5 * CHUNK }), fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 0, max: 2 ** 31 }), async (size, a, b) => {
    const plaintext = randomBytes(size)
    const whole = seal(fileKey, nonce, plaintext)
    const from = a % whole.length
    const length = b % (whole.length - from + 1)
    const into = Buffer.alloc(length)
    await payloadRange(payloadKey(fileKey, nonce), nonce, size, from, length, into, async (buffer, n, position) => {
      const slice = plaintext.subarray(position, position + n)
      buffer.set(slice)
      return slice.length
    })
    t.deepEqual(into, whole.subarray(from, from + length))
  }), { numRuns: 60 })
})

test('with the first pass\'s tags, a range re-sealed from other plaintext is ERR_FILE_CHANGED; from the same, it passes', async t => {
  const fileKey = randomBytes(16)
  const nonce = randomBytes(NONCE)
  const key = payloadKey(fileKey, nonce)
  const plaintext = randomBytes(5 * CHUNK + 100)
  const tags = Buffer.alloc(6 * 16)
  const sealer = new PayloadSealer(key, nonce, tags)
  const whole = Buffer.concat([...sealer.update(plaintext), ...sealer.final()])
  const readFrom = (source: Buffer) => async (buffer: Uint8Array, n: number, position: number): Promise<number> => {
    const slice = source.subarray(position, position + n)
    buffer.set(slice)
    return slice.length
  }
  const into = Buffer.alloc(3 * SEALED)
  await payloadRange(key, nonce, plaintext.length, NONCE + 100, into.length, into, readFrom(plaintext), tags)
  t.deepEqual(into, whole.subarray(NONCE + 100, NONCE + 100 + into.length))
  const edited = Buffer.from(plaintext)
  edited[2 * CHUNK + 7] ^= 1
  const err = await t.throwsAsync(payloadRange(key, nonce, plaintext.length, NONCE + 100, into.length, into, readFrom(edited), tags))
  t.is((err as { code?: string }).code, 'ERR_FILE_CHANGED')
  // a change outside the range is not looked at
  await payloadRange(key, nonce, plaintext.length, NONCE, SEALED, into, readFrom(edited), tags)
})

test('a range over a plaintext that got shorter is ERR_FILE_CHANGED', async t => {
  const nonce = randomBytes(NONCE)
  const key = payloadKey(randomBytes(16), nonce)
  const err = await t.throwsAsync(payloadRange(key, nonce, 3 * CHUNK, NONCE, SEALED, Buffer.alloc(SEALED), async () => 10))
  t.is((err as { code?: string }).code, 'ERR_FILE_CHANGED')
})

function open (fileKey: Uint8Array, payload: Uint8Array): Buffer {
  const opener = new PayloadOpener(fileKey)
  return Buffer.concat([...opener.update(payload), ...opener.final()])
}

test('a payload altered, cut at a chunk boundary, cut short or extended is ERR_DECRYPTION_FAILED', t => {
  const fileKey = randomBytes(16)
  const nonce = randomBytes(NONCE)
  const payload = seal(fileKey, nonce, randomBytes(3 * CHUNK))
  t.is(open(fileKey, payload).length, 3 * CHUNK)
  const flipped = Buffer.from(payload)
  flipped[NONCE + SEALED + 5] ^= 1
  const cases: Array<[string, Buffer]> = [
    ['a flipped bit', flipped],
    ['the last chunk dropped', payload.subarray(0, NONCE + 2 * SEALED)],
    ['a short tail', payload.subarray(0, payload.length - 1)],
    ['an extra byte', Buffer.concat([payload, Buffer.of(0)])],
    ['no chunk at all', payload.subarray(0, NONCE)],
    ['not even a nonce', payload.subarray(0, 3)]
  ]
  for (const [what, bytes] of cases) {
    const err = t.throws(() => open(fileKey, bytes), undefined, what)
    t.is((err as { code?: string }).code, 'ERR_DECRYPTION_FAILED', what)
  }
  // the wrong key
  const err = t.throws(() => open(randomBytes(16), payload))
  t.is((err as { code?: string }).code, 'ERR_DECRYPTION_FAILED')
})

test('an empty last chunk after a full one is refused, as the age format says', t => {
  const fileKey = randomBytes(16)
  const nonce = randomBytes(NONCE)
  const key = payloadKey(fileKey, nonce)
  // what a sloppy writer makes of exactly one chunk of plaintext: the chunk not marked last, then an empty last one
  const payload = Buffer.concat([nonce, ...sealChunk(key, 0, false, randomBytes(CHUNK)), ...sealChunk(key, 1, true, new Uint8Array())])
  const err = t.throws(() => open(fileKey, payload))
  t.is((err as { code?: string }).code, 'ERR_DECRYPTION_FAILED')
})

test('sizes: payloadSize and plaintextSize agree, and impossible ciphertext sizes are undefined', t => {
  for (const size of [0, 1, CHUNK, CHUNK + 1, 10 * CHUNK]) t.is(plaintextSize(payloadSize(size) - NONCE), size)
  t.is(plaintextSize(15), undefined)
  t.is(plaintextSize(SEALED + 10), undefined)
  t.is(plaintextSize(0), undefined)
})
