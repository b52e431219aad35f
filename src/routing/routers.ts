/**
 * The client's delegated routers (`cairn routers add|ls|rm`): base URLs of
 * Delegated Routing V1 servers — a cairn indexer, or any other — that `cairn
 * get` asks who provides a CID. Kept in the repo's LevelDB, sublevel
 * `client/routers`, keyed by URL.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CairnError } from '../errors.js'
import { normaliseUrl } from '../client/provider-client.js'
import type { Database } from '../repo/repo.js'

export interface RouterEntry {
  url: string
  /** unix ms */
  added: number
}

export class RouterBook {
  private readonly sub

  constructor (db: Database) {
    this.sub = db.sublevel<string, Uint8Array>(['client', 'routers'], { valueEncoding: 'view' })
  }

  /** Records a router (again: its `added` time is kept). */
  async add (url: string): Promise<RouterEntry> {
    const normal = normaliseUrl(url)
    const existing = await this.sub.get(normal)
    const entry: RouterEntry = existing === undefined ? { url: normal, added: Date.now() } : decode(existing)
    await this.sub.put(normal, dagCbor.encode(entry))
    return entry
  }

  async list (): Promise<RouterEntry[]> {
    const out: RouterEntry[] = []
    for await (const value of this.sub.values()) out.push(decode(value))
    return out.sort((a, b) => a.added - b.added)
  }

  /** Forgets a router; ERR_NOT_FOUND when it is not configured. */
  async remove (url: string): Promise<RouterEntry> {
    const normal = normaliseUrl(url)
    const existing = await this.sub.get(normal)
    if (existing === undefined) throw new CairnError('ERR_NOT_FOUND', `no router ${normal} is configured`)
    await this.sub.del(normal)
    return decode(existing)
  }
}

function decode (bytes: Uint8Array): RouterEntry {
  const value = dagCbor.decode(bytes) as Partial<RouterEntry>
  if (typeof value.url !== 'string' || typeof value.added !== 'number') throw new CairnError('ERR_REPO_CORRUPT', 'a router entry in the repo is not {url, added}')
  return { url: value.url, added: value.added }
}
