/**
 * The bench's one place of alternation and summary (bench/pairs.ts): runs
 * alternate cairn, peer, cairn, peer; medians and ranges are those of the
 * runs; a wrong answer stops the bench. No timing is asserted.
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { percentile, spread } from '../../bench/measure.js'
import { runPair, sameAnswer, type Command } from '../../bench/pairs.js'
import { tempDir } from '../helpers/cli.js'

test('spread: median of odd and even counts, with min and max', t => {
  t.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3 })
  t.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4 })
  t.deepEqual(spread([7]), { median: 7, min: 7, max: 7 })
  t.throws(() => spread([]), { instanceOf: RangeError })
})

test('percentile: nearest rank', t => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i)
  t.is(percentile(values, 0.5), 50)
  t.is(percentile(values, 0.99), 99)
  t.is(percentile(values, 1), 100)
  t.is(percentile([5], 0.99), 5)
})

test('runPair warms each side up once, alternates cairn and peer, and summarises each side and the per-pair ratios', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const order = join(dir.path, 'order')
  let n = 0
  const side = (tool: string): Command => ({
    tool,
    cmd: process.execPath,
    args: ['-e', `require('fs').appendFileSync(${JSON.stringify(order)}, ${JSON.stringify(tool + '\n')}); process.stdout.write('same')`],
    bytes: 1 << 20,
    after: async () => ({ seen: ++n })
  })
  const r = await runPair({ name: 'x', what: 'w', input: 'i', cairn: side('a'), peer: side('b') }, 3)
  // one unmeasured run of each side, then the three pairs
  t.is(await readFile(order, 'utf8'), 'a\nb\na\nb\na\nb\na\nb\n')
  t.is(r.pairs, 3)
  t.is(r.cairn.runs.length, 3)
  t.is(r.peer?.runs.length, 3)
  // the after hooks ran after every run, in order, the warm-up's too (1 and 2, not counted): cairn saw 3, 5, 7 and the peer 4, 6, 8
  t.deepEqual(r.cairn.runs.map(f => f.notes?.seen), [3, 5, 7])
  t.deepEqual(r.cairn.notes?.seen, { median: 5, min: 3, max: 7 })
  t.deepEqual(r.peer?.notes?.seen, { median: 6, min: 4, max: 8 })
  t.deepEqual(r.ratios, r.cairn.runs.map((f, i) => f.mibPerSec / (r.peer?.runs[i]?.mibPerSec ?? NaN)))
  t.deepEqual(r.ratio, spread(r.ratios ?? []))
  t.deepEqual(r.cairn.mibPerSec, spread(r.cairn.runs.map(f => f.mibPerSec)))
  t.is(r.cairn.output, 'same')
})

test('runPair without a peer repeats cairn alone; a failing command or check stops it', async t => {
  const ok: Command = { tool: 'a', cmd: process.execPath, args: ['-e', 'process.stdout.write("1")'], bytes: 10 }
  const alone = await runPair({ name: 'x', what: 'w', input: 'i', cairn: ok }, 2)
  t.is(alone.cairn.runs.length, 2)
  t.is(alone.peer, undefined)
  t.is(alone.ratio, undefined)
  await t.throwsAsync(runPair({ name: 'x', what: 'w', input: 'i', cairn: { ...ok, args: ['-e', 'process.exit(3)'] } }, 1), { message: /exited 3/ })
  let i = 0
  const answers = sameAnswer('roots', () => String(i++))
  await t.throwsAsync(runPair({ name: 'x', what: 'w', input: 'i', cairn: { ...ok, after: answers }, peer: { ...ok, tool: 'b', after: answers } }, 1), { message: /roots: b answered 1, a answered 0/ })
  await t.throwsAsync(runPair({ name: 'x', what: 'w', input: 'i', cairn: ok }, 0), { instanceOf: RangeError })
})
