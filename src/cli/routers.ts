/**
 * `cairn routers add <url> | ls | rm <url>`: the delegated routers `cairn get`
 * asks for providers when none is named (docs/routing.md). `add` first asks
 * the router for a CID, so a URL that is not a Delegated Routing V1 server is
 * refused.
 */
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import { normaliseUrl } from '../client/provider-client.js'
import { Repo, resolveRepoPath } from '../repo/repo.js'
import { findProviders } from '../routing/http-client.js'
import { RouterBook } from '../routing/routers.js'
import { Output, type GlobalOptions } from './output.js'
import { table } from './providers.js'
import { withReads } from './reads.js'
import type { RouterRow } from './views.js'

/** The empty identity CID (`bafkqaaa`): any router can answer for it without holding anything. */
const PROBE = CID.parse('bafkqaaa')

const verbs: Record<string, (book: RouterBook, out: Output, args: string[]) => Promise<void>> = { add, rm }

export default async function routers (args: string[], options: GlobalOptions): Promise<void> {
  const [verb, ...rest] = args
  const out = new Output(options)
  // reading works beside a running node too (src/cli/reads.ts); add and rm need the repo itself
  if (verb === 'ls') return await ls(out, await withReads(resolveRepoPath(options.repo), async (reads) => await reads.routers()))
  const run = verbs[verb ?? '']
  if (run === undefined) throw new CairnError('ERR_USAGE', `unknown routers command ${JSON.stringify(verb)}; expected add, ls or rm`)
  const repo = await Repo.open(resolveRepoPath(options.repo))
  try {
    await run(new RouterBook(await repo.db()), out, rest)
  } finally {
    await repo.close()
  }
}

async function add (book: RouterBook, out: Output, args: string[]): Promise<void> {
  const url = args[0]
  if (url === undefined) throw new CairnError('ERR_USAGE', 'expected the router URL, e.g. cairn routers add http://127.0.0.1:7480')
  await findProviders(normaliseUrl(url), PROBE, { signal: AbortSignal.timeout(15_000) })
  const entry = await book.add(url)
  out.result({ url: entry.url, added: new Date(entry.added).toISOString() }, () => out.quiet ? entry.url : `added router ${entry.url}`)
}

async function ls (out: Output, list: RouterRow[]): Promise<void> {
  out.result(list, () => {
    if (list.length === 0) return out.quiet ? '' : 'no routers; add one with `cairn routers add <url>`'
    if (out.quiet) return list.map(e => e.url).join('\n')
    return table(['url', 'added'], list.map(e => [e.url, e.added]))
  })
}

async function rm (book: RouterBook, out: Output, args: string[]): Promise<void> {
  const url = args[0]
  if (url === undefined) throw new CairnError('ERR_USAGE', 'expected the URL of the router to remove')
  const entry = await book.remove(url)
  out.result({ removed: entry.url }, () => out.quiet ? '' : `removed router ${entry.url}`)
}
