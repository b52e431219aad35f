/**
 * The address book and the `providers`, `ask`, `deals` and `get` commands'
 * refusals, against an in-process provider on 127.0.0.1:0.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AddressBook } from '../../src/client/address-book.js'
import { get, parseTarget, sourcesFor } from '../../src/client/retrieve.js'
import { Repo } from '../../src/repo/repo.js'
import { cairn } from '../helpers/cli.js'
import { world } from './helpers.js'

test('providers add verifies and keeps the ask; ls lists it; rm by did or URL; unknown is ERR_NOT_FOUND', async (t) => {
  const w = await world()
  try {
    const book = new AddressBook(await w.client.repo.db())
    const entry = await book.add(w.provider.url + '/')
    t.is(entry.url, w.provider.url)
    t.is(entry.did, w.provider.repo.identity.did)
    t.is(entry.ask.payload.pricePerGiBDay, 40n)
    t.true(entry.lastSeen >= entry.added)
    // adding again refreshes, never duplicates
    await book.add(w.provider.url)
    t.is((await book.list()).length, 1)
    t.is((await book.find(w.provider.url))?.did, entry.did)
    t.is((await book.remove(entry.did)).url, w.provider.url)
    t.deepEqual(await book.list(), [])
    await book.add(w.provider.url)
    t.is((await book.remove(w.provider.url)).did, entry.did)
    const err = await t.throwsAsync(book.remove(w.provider.url))
    t.is((err as { code?: string }).code, 'ERR_NOT_FOUND')
  } finally {
    await w.cleanup()
  }
})

test('CLI: providers and ask through the binary; refusals carry their codes and exit statuses', async (t) => {
  const w = await world()
  const repo = join(w.dir, 'cli-client')
  try {
    t.is((await cairn(['init', '--repo', repo])).code, 0)
    const added = await cairn(['providers', 'add', w.provider.url, '--repo', repo])
    t.is(added.code, 0, added.stderr)
    t.regex(added.stdout, /40 per GiB per day/)
    const ls = await cairn(['providers', 'ls', '--repo', repo])
    t.regex(ls.stdout, /price\/GiB\/day/)
    t.true(ls.stdout.includes(w.provider.url))
    const ask = await cairn(['ask', w.provider.url, '--json'])
    t.is((JSON.parse(ask.stdout) as { ask: { provider: string } }).ask.provider, w.provider.repo.identity.did)

    const down = await cairn(['ask', 'http://127.0.0.1:9'])
    t.is(down.code, 5)
    t.regex(down.stderr, /error ERR_UNREACHABLE/)
    const badUrl = await cairn(['providers', 'add', 'ftp://nope', '--repo', repo])
    t.is(badUrl.code, 2)
    const missing = await cairn(['providers', 'rm', 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', '--repo', repo])
    t.is(missing.code, 4)
    t.regex(missing.stderr, /ERR_NOT_FOUND/)
    // no --provider: the address book chooses
    await writeFile(join(w.dir, 'note.txt'), 'stored through the address book\n')
    const root = (await cairn(['add', join(w.dir, 'note.txt'), '-Q', '--repo', repo])).stdout.trim()
    const chosen = await cairn(['deal', root, '--repo', repo, '--json'])
    t.is(chosen.code, 0, chosen.stderr)
    t.is((JSON.parse(chosen.stdout) as { url: string }).url, w.provider.url)
    // retrieving from a named provider needs no repo
    const bare = await cairn(['get', root, '--repo', join(w.dir, 'no-repo'), '--provider', w.provider.url, '-o', join(w.dir, 'note-copy.txt')])
    t.is(bare.code, 0, bare.stderr)
    t.is(await readFile(join(w.dir, 'note-copy.txt'), 'utf8'), 'stored through the address book\n')
    const tooMany = await cairn(['deal', root, '--repo', repo, '--max-price', '1'])
    t.is(tooMany.code, 4, tooMany.stderr)
    const removed = await cairn(['providers', 'rm', w.provider.url, '--repo', repo])
    t.is(removed.code, 0, removed.stderr)

    const noDeal = await cairn(['deals', 'show', 'bafyreihqobxes6w2ggxdzggete55febpztyfkmvqyw65htksuqzq7b4zc4', '--repo', repo])
    t.is(noDeal.code, 4)
    t.regex(noDeal.stderr, /ERR_DEAL_NOT_FOUND/)
    const badState = await cairn(['deals', '--state', 'sleeping', '--repo', repo])
    t.is(badState.code, 2)
    t.is((JSON.parse((await cairn(['deals', '--repo', repo, '--json'])).stdout) as unknown[]).length, 1)

    const notAdded = await cairn(['deal', 'bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q', '--repo', repo, '--provider', w.provider.url])
    t.is(notAdded.code, 4)
    const badDuration = await cairn(['deal', 'bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q', '--repo', repo, '--duration', 'forever'])
    t.is(badDuration.code, 2)
    const nowhere = await cairn(['get', 'bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q', '--repo', repo])
    t.is(nowhere.code, 4)
    t.regex(nowhere.stderr, /--provider/)
    const notACid = await cairn(['get', 'hello', '--repo', repo])
    t.is(notACid.code, 2)
    // the provider holds no deal for it: its gateway says not found
    const unknown = await cairn(['get', 'bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q', '--repo', repo, '--provider', w.provider.url, '-o', join(w.dir, 'x')])
    t.is(unknown.code, 4, unknown.stderr)
  } finally {
    await w.cleanup()
  }
})

test('get: no sources is ERR_NOT_FOUND; sources put the repo first, then deals, then the named ones, without repeats', async (t) => {
  const w = await world()
  try {
    const repo: Repo = w.client.repo
    const target = parseTarget('/ipfs/bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q')
    const err = await t.throwsAsync(get(repo, target, [], {}))
    t.is((err as { code?: string }).code, 'ERR_NOT_FOUND')
    const sources = await sourcesFor(repo, w.client.ledger, target.root, [w.provider.url, w.provider.url + '/'])
    t.deepEqual(sources.map(s => [s.kind, s.reason]), [['provider', 'named']])
    t.is(t.throws(() => parseTarget('bafkreiey5jxe6ilpf62lnh77tm5ejbbmhbugzjuf6p2v3remlu73ced34q/../x'))?.['code' as 'message'], 'ERR_INVALID_ARGUMENT')
  } finally {
    await w.cleanup()
  }
})

test('CLI: deal with two providers, one refusing the price: the other deal is printed, the refusal reported once, exit 5', async (t) => {
  const cheap = await world()
  const dear = await world({ pricePerGiBDay: 100n })
  const repo = join(cheap.dir, 'cli-client')
  try {
    t.is((await cairn(['init', '--repo', repo])).code, 0)
    await writeFile(join(cheap.dir, 'note.txt'), 'two providers\n')
    const root = (await cairn(['add', join(cheap.dir, 'note.txt'), '-Q', '--repo', repo])).stdout.trim()
    const run = await cairn(['deal', root, '--repo', repo, '--provider', cheap.provider.url, '--provider', dear.provider.url, '--max-price', '50', '--json'])
    t.is(run.code, 5)
    const lines = run.stdout.trim().split('\n').map(l => JSON.parse(l) as { url?: string, state?: string, error?: { code: string } })
    t.is(lines[0]?.url, cheap.provider.url)
    t.is(lines[0]?.state, 'active')
    t.is(lines[1]?.error?.code, 'ERR_PRICE_TOO_LOW')
    t.is(run.stderr.match(/ERR_PRICE_TOO_LOW/g)?.length, 1)
  } finally {
    await cheap.cleanup()
    await dear.cleanup()
  }
})
