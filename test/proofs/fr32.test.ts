/**
 * Fr32 padding, node hash, zero subtrees and the streaming tree, against
 * @web3-storage/data-segment's Fr32, Proof.computeNode and ZeroComm.
 */
import test from 'ava'
import fc from 'fast-check'
import { Fr32, Proof, ZeroComm } from '@web3-storage/data-segment'
import { padQuads, unpadQuads, hashNode, zeroRoot, TreeStack, heightFor, paddingFor } from '../../proofs/index.js'
import { randomBytes } from './helpers.js'

test('padQuads equals data-segment Fr32.pad; unpadQuads inverts it', t => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), quads => {
    const src = randomBytes(quads * 127)
    const out = new Uint8Array(quads * 128)
    padQuads(src, 0, quads, out, 0)
    const expected = Fr32.pad(src)
    const back = new Uint8Array(quads * 127)
    unpadQuads(out, 0, quads, back, 0)
    return Buffer.from(out).equals(Buffer.from(expected.subarray(0, quads * 128))) && Buffer.from(back).equals(Buffer.from(src))
  }), { numRuns: 100 })
  t.pass()
})

test('every Fr32 word has its top two bits clear', t => {
  const out = new Uint8Array(128 * 8)
  padQuads(new Uint8Array(127 * 8).fill(0xff), 0, 8, out, 0)
  for (let w = 31; w < out.length; w += 32) t.is(out[w] & 0xc0, 0)
})

test('hashNode equals data-segment Proof.computeNode', t => {
  for (let i = 0; i < 200; i++) {
    const left = randomBytes(32)
    const right = randomBytes(32)
    t.deepEqual(hashNode(left, right), Uint8Array.from(Proof.computeNode(left, right)))
  }
})

test('zero subtree roots equal data-segment ZeroComm', t => {
  for (let level = 0; level < 64; level++) t.deepEqual(zeroRoot(level), Uint8Array.from(ZeroComm.fromLevel(level)))
  t.throws(() => zeroRoot(-1), { instanceOf: RangeError })
})

test('TreeStack refuses a misaligned subtree and a tree too low', t => {
  const tree = new TreeStack()
  tree.push(0, new Uint8Array(32))
  t.throws(() => tree.push(1, new Uint8Array(32)), { instanceOf: RangeError })
  tree.push(0, new Uint8Array(32))
  tree.push(1, zeroRoot(1))
  t.throws(() => tree.root(1), { instanceOf: RangeError })
  t.deepEqual(tree.root(2), zeroRoot(2))
  t.deepEqual(tree.root(5), zeroRoot(5))
})

test('sizes follow FRC-0069', t => {
  t.is(paddingFor(0n), 127n)
  t.is(heightFor(0n), 2)
  t.is(paddingFor(127n), 0n)
  t.is(paddingFor(128n), 126n)
  t.is(heightFor(128n), 3)
  t.is(paddingFor(256n), 252n)
  t.is(paddingFor(512n), 504n)
  t.is(heightFor(32n * 2n ** 30n * 127n / 128n), 30)
})
