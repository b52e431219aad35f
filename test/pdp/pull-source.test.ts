/**
 * Which addresses a pull may reach (src/pdp/pull-source.ts): the special
 * ranges refused by default, every address of a name checked, and the
 * connection pinned to the address checked. No network: literal addresses
 * and a resolver of the test's own.
 */
import test from 'ava'
import type { LookupAddress } from 'node:dns'
import { isCairnError } from '../../src/errors.js'
import { checkSource, forbiddenRange, pinnedLookup } from '../../src/pdp/pull-source.js'
import { rejectsCode } from '../helpers/errors.js'

const code = (err: unknown): string => isCairnError(err) ? err.code : String(err)

test('loopback, private, link-local, unspecified, multicast and other special addresses are forbidden; public ones are not', t => {
  const forbidden = ['127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '0.1.2.3',
    '224.0.0.251', '239.255.255.250', '255.255.255.255', '198.18.0.1', '192.0.2.1',
    '::1', '::', 'fe80::1', 'febf::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2001:db8::1']
  for (const address of forbidden) t.not(forbiddenRange(address), undefined, address)
  const allowed = ['1.1.1.1', '8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '169.255.0.1', '198.41.0.4', '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', 'fec0::1']
  for (const address of allowed) t.is(forbiddenRange(address), undefined, address)
  t.regex(forbiddenRange('169.254.169.254') ?? '', /link-local/)
  t.regex(forbiddenRange('fd00::1') ?? '', /unique local/)
})

test('checkSource refuses a name with any forbidden address, allows everything with policy any, and reports names that do not resolve', async t => {
  const table: Record<string, LookupAddress[]> = {
    'public.test': [{ address: '198.41.0.4', family: 4 }, { address: '2001:503:ba3e::2:30', family: 6 }],
    'mixed.test': [{ address: '198.41.0.4', family: 4 }, { address: 'fd00::5', family: 6 }],
    'empty.test': []
  }
  const resolve = async (host: string): Promise<LookupAddress[]> => {
    const found = table[host]
    if (found === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    return found
  }
  t.deepEqual(await checkSource('http://public.test/piece/x', 'public', resolve), { address: '198.41.0.4', family: 4 })
  t.deepEqual(await checkSource('https://[2001:4860:4860::8888]:8443/piece/x', 'public', resolve), { address: '2001:4860:4860::8888', family: 6 })
  await t.throwsAsync(checkSource('http://mixed.test/piece/x', 'public', resolve), { code: 'ERR_PULL_SOURCE_FORBIDDEN', message: /fd00::5/ })
  await rejectsCode(t, checkSource('http://[::1]:7470/piece/x', 'public', resolve), 'ERR_PULL_SOURCE_FORBIDDEN')
  t.deepEqual(await checkSource('http://mixed.test/piece/x', 'any', resolve), { address: '198.41.0.4', family: 4 })
  t.deepEqual(await checkSource('http://127.0.0.1:9/piece/x', 'any', resolve), { address: '127.0.0.1', family: 4 })
  await t.throwsAsync(checkSource('http://missing.test/piece/x', 'any', resolve), { code: 'ERR_PULL_FAILED', message: /ENOTFOUND/ })
  await rejectsCode(t, checkSource('http://empty.test/piece/x', 'any', resolve), 'ERR_PULL_FAILED')
  // the machine's own resolver, on a name every machine has: loopback
  const err = await checkSource('http://localhost:9/piece/x', 'public').catch((e: unknown) => e)
  t.is(code(err), 'ERR_PULL_SOURCE_FORBIDDEN')
})

test('the pinned lookup answers every name with the checked address, in both of net.connect\'s forms', async t => {
  const lookup = pinnedLookup({ address: '198.41.0.4', family: 4 })
  const one = await new Promise<[string, number]>((resolve, reject) => {
    lookup('elsewhere.test', {}, (err, address, family) => { err === null ? resolve([address as string, family as number]) : reject(err) })
  })
  t.deepEqual(one, ['198.41.0.4', 4])
  const all = await new Promise<unknown>((resolve, reject) => {
    lookup('elsewhere.test', { all: true }, (err, addresses) => { err === null ? resolve(addresses) : reject(err) })
  })
  t.deepEqual(all, [{ address: '198.41.0.4', family: 4 }])
})
