/** `provider start`'s PDP options (docs/pdp.md), rows of the option table: defaults, parsing, and a coded refusal for each bad value. */
import test from 'ava'
import { pdpOptionsFrom } from '../../src/cli/provider.js'
import { CALIBRATION } from '../../src/pdp/eip712.js'
import { PDP_DEFAULTS } from '../../src/pdp/mount.js'
import { PULL_DEFAULTS } from '../../src/pdp/pull.js'
import { settingsFrom, type RawOptions } from '../../src/provider/options.js'
import { throwsCode } from '../helpers/errors.js'

const pdp = (given: RawOptions): ReturnType<typeof pdpOptionsFrom> => pdpOptionsFrom(settingsFrom(given).settings)

test('defaults: no payee, the calibration domain, 24 h TTL, 64 GiB and 8 GiB quotas (the table agrees with PDP_DEFAULTS)', t => {
  const { payee, pdp: options } = pdp({})
  t.is(payee, undefined)
  t.deepEqual(options.domain, { chainId: 314159n, verifyingContract: CALIBRATION.fwssAddress.toLowerCase() })
  t.is(options.parkTtl, 86400)
  t.is(options.parkQuota, 64n << 30n)
  t.is(options.parkQuotaPerClient, 8n << 30n)
  t.is(options.parkTtl, PDP_DEFAULTS.parkTtl)
  t.is(options.parkQuota, PDP_DEFAULTS.parkQuota)
  t.is(options.parkQuotaPerClient, PDP_DEFAULTS.parkQuotaPerClient)
  // pulls reach public addresses only unless the operator says otherwise
  t.is(options.pull?.sources, 'public')
  t.is(options.pull?.sources, PULL_DEFAULTS.sources)
})

test('values are parsed: payee and contract lower-cased, durations and sizes with units', t => {
  const { payee, pdp: options } = pdp({ payee: '0xABCDEF0123456789ABCDEF0123456789ABCDEF01', chainId: '314', fwssAddress: '0x' + 'AA'.repeat(20), parkTtl: '2h', parkQuota: '1GiB', parkQuotaPerClient: '3584KiB' })
  t.is(payee, '0xabcdef0123456789abcdef0123456789abcdef01')
  t.deepEqual(options.domain, { chainId: 314n, verifyingContract: '0x' + 'aa'.repeat(20) })
  t.is(options.parkTtl, 7200)
  t.is(options.parkQuota, 1n << 30n)
  t.is(options.parkQuotaPerClient, 3584n * 1024n)
  t.is(pdp({ pullSources: 'any' }).pdp.pull?.sources, 'any')
})

test('bad values are ERR_INVALID_ARGUMENT', t => {
  const bad: RawOptions[] = [{ payee: '0x12' }, { payee: 'alice' }, { chainId: 'calibration' }, { chainId: '0' }, { fwssAddress: '0x' }, { parkTtl: 'soon' }, { parkQuota: 'lots' }, { parkQuotaPerClient: '-1' }, { pullSources: 'private' }, { pullSources: '' }]
  for (const given of bad) {
    throwsCode(t, () => pdp(given), 'ERR_INVALID_ARGUMENT', JSON.stringify(given))
  }
})
