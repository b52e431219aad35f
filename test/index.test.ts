/**
 * The library surface as a script sees it: imported by the package's own
 * name, so `exports["."]` must name a module that exists, and the pieces of
 * `add`, `pack` and `piece` must work together from it alone.
 */
import test from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarReader } from '@ipld/car'
import { Piece } from '@web3-storage/data-segment'

test('the package name resolves to src/index.ts, and a file goes from planImport through carStream to a piece CID', async t => {
  const cairn = await import('cairn-storage')
  t.is(typeof cairn.ProviderClient, 'function')
  t.is(typeof cairn.auditDeal, 'function')
  t.is(cairn.exitStatusOf('ERR_UNREACHABLE'), 5)
  t.true(new cairn.CairnError('ERR_NOT_FOUND', 'x') instanceof Error)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-index-'))
  try {
    const file = join(dir, 'hello.txt')
    await writeFile(file, 'hello from the library surface\n')
    const plan = await cairn.planImport([file])
    const chunks: Uint8Array[] = []
    for await (const chunk of cairn.carStream(plan)) chunks.push(chunk)
    const car = new Uint8Array(Buffer.concat(chunks))
    // the CAR is read back with the reference implementation, not with cairn's own reader
    const reader = await CarReader.fromBytes(car)
    t.deepEqual((await reader.getRoots()).map(String), [plan.root.toString()])
    t.truthy(await reader.get(plan.root))
    const piece = await cairn.pieceOf(car)
    t.is(piece.cid.toString(), Piece.fromPayload(car).link.toString(), 'the piece CID data-segment computes')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
