/** `provider start`'s PDP flags (docs/pdp.md): defaults, parsing, and a coded refusal for each bad value. */
import test from 'ava'
import { pdpOptionsFrom } from '../../src/cli/provider.js'
import { CALIBRATION } from '../../src/pdp/eip712.js'
import { PDP_DEFAULTS } from '../../src/pdp/mount.js'

test('defaults: no payee, the calibration domain, 24 h TTL, 64 GiB and 8 GiB quotas', t => {
  const { payee, pdp } = pdpOptionsFrom({})
  t.is(payee, undefined)
  t.deepEqual(pdp.domain, { chainId: 314159n, verifyingContract: CALIBRATION.fwssAddress.toLowerCase() })
  t.is(pdp.parkTtl, 86400)
  t.is(pdp.parkQuota, 64n << 30n)
  t.is(pdp.parkQuotaPerClient, 8n << 30n)
  t.is(PDP_DEFAULTS.parkTtl, 86400)
})

test('values are parsed: payee and contract lower-cased, durations and sizes with units', t => {
  const { payee, pdp } = pdpOptionsFrom({ payee: '0xABCDEF0123456789ABCDEF0123456789ABCDEF01', chainId: '314', fwssAddress: '0x' + 'AA'.repeat(20), parkTtl: '2h', parkQuota: '1GiB', parkQuotaPerClient: '3584KiB' })
  t.is(payee, '0xabcdef0123456789abcdef0123456789abcdef01')
  t.deepEqual(pdp.domain, { chainId: 314n, verifyingContract: '0x' + 'aa'.repeat(20) })
  t.is(pdp.parkTtl, 7200)
  t.is(pdp.parkQuota, 1n << 30n)
  t.is(pdp.parkQuotaPerClient, 3584n * 1024n)
})

test('bad values are ERR_INVALID_ARGUMENT', t => {
  for (const bad of [{ payee: '0x12' }, { payee: 'alice' }, { chainId: 'calibration' }, { chainId: '0' }, { fwssAddress: '0x' }, { parkTtl: 'soon' }, { parkQuota: 'lots' }, { parkQuotaPerClient: '-1' }]) {
    t.throws(() => pdpOptionsFrom(bad), { code: 'ERR_INVALID_ARGUMENT' } as never, JSON.stringify(bad))
  }
})
