/**
 * Disk faults during an upload, injected through the piece store's test-only
 * fault hooks (src/store/pieces.ts `StoreFaults`) and by failing the ledger's
 * batch: ENOSPC gives ERR_NO_SPACE (507), EIO gives ERR_IO (500), a failed
 * ledger write a coded 5xx — and in every case nothing is left half-written:
 * no temporary file, no piece, no index entry, the deal still `accepted`, and
 * the same upload succeeds once the disk is healthy again.
 */
import test from 'ava'
import { readdir } from 'node:fs/promises'
import type { LevelLedger } from '../../src/ledger/level.js'
import type { StoreFaults } from '../../src/store/pieces.js'
import { destroy, errorCode, makeDeal, payload, scale, summarize, uploadPiece, world } from './helpers.js'

function sysError (code: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected`) as NodeJS.ErrnoException
  err.code = code
  err.errno = code === 'ENOSPC' ? -28 : -5
  return err
}

interface Fault { name: string, errno: 'ENOSPC' | 'EIO', at: 'write' | 'sync' | 'commit', offset?: number, expect: string, status: number }

const offsets = Array.from({ length: scale(4, 16) }, (_, i) => i * 1500)
const faults: Fault[] = []
for (const errno of ['ENOSPC', 'EIO'] as const) {
  const expect = errno === 'ENOSPC' ? 'ERR_NO_SPACE' : 'ERR_IO'
  const status = errno === 'ENOSPC' ? 507 : 500
  for (const offset of offsets) faults.push({ name: `${errno} on a write at byte ≥ ${offset}`, errno, at: 'write', offset, expect, status })
  faults.push({ name: `${errno} on fsync`, errno, at: 'sync', expect, status })
  faults.push({ name: `${errno} on rename into the store`, errno, at: 'commit', expect, status })
}

for (const [i, fault] of faults.entries()) {
  test(`${fault.name} → ${fault.expect}, nothing half-written, retry succeeds`, async (t) => {
    let armed = true
    const hooks: StoreFaults = {
      write: (offset, length) => { if (armed && fault.at === 'write' && offset + length > (fault.offset ?? 0)) throw sysError(fault.errno) },
      sync: () => { if (armed && fault.at === 'sync') throw sysError(fault.errno) },
      commit: () => { if (armed && fault.at === 'commit') throw sysError(fault.errno) }
    }
    const w = await world({ faults: hooks })
    try {
      const p = await payload(100 + i, 6000)
      const deal = await makeDeal(w.url, w.client, w.repo.identity.did, p, 1n)
      const res = await uploadPiece(w.url, w.client, deal, p.car)
      t.is(res.status, fault.status)
      t.is(await errorCode(res), fault.expect)
      t.deepEqual(await readdir(w.repo.tmpDir), [])
      t.deepEqual(await readdir(w.repo.piecesDir), [])
      t.is((await w.ledger.deal(deal))?.state, 'accepted')
      t.is((await fetch(`${w.url}/ipfs/${p.root.toString()}?format=raw`)).status, 404)
      armed = false
      const retry = await uploadPiece(w.url, w.client, deal, p.car)
      t.is(retry.status, 200, await retry.clone().text())
      t.is((await w.ledger.deal(deal))?.state, 'active')
      await w.ledger.verify()
      await summarize({ area: 'disk', what: fault.name, injected: 1, outcome: `rejected ${fault.expect} (${fault.status}); nothing left; retry stored`, lost: 0 })
    } finally {
      await destroy(w)
    }
  })
}

test('the ledger batch failing after the rename removes the renamed piece; the deal stays accepted', async (t) => {
  const w = await world()
  try {
    const p = await payload(200)
    const deal = await makeDeal(w.url, w.client, w.repo.identity.did, p, 1n)
    const ledger = w.ledger as LevelLedger & { append: LevelLedger['append'] }
    const append = ledger.append.bind(ledger)
    let failNext = true
    ledger.append = async (kind, fields, extra) => {
      if (kind === 'deal-active' && failNext) { failNext = false; throw sysError('EIO') }
      return await append(kind, fields, extra)
    }
    const res = await uploadPiece(w.url, w.client, deal, p.car)
    t.is(res.status, 500)
    t.is(await errorCode(res), 'ERR_INTERNAL')
    t.deepEqual(await readdir(w.repo.piecesDir), [])
    t.deepEqual(await readdir(w.repo.tmpDir), [])
    t.is((await w.ledger.deal(deal))?.state, 'accepted')
    const retry = await uploadPiece(w.url, w.client, deal, p.car)
    t.is(retry.status, 200)
    await w.ledger.verify()
    await summarize({ area: 'disk', what: 'ledger batch fails after the piece is renamed in', injected: 1, outcome: 'rejected ERR_INTERNAL (500); renamed piece removed; retry stored', lost: 0 })
  } finally {
    await destroy(w)
  }
})
