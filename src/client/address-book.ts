/**
 * The client's address book (README "Client", `cairn providers`): providers
 * known by URL and `did:key`, each with the last signed ask it gave and when
 * it was last seen. Kept in the repo's LevelDB, sublevel `client/providers`,
 * keyed by did; records are DAG-CBOR so the signed ask stays verifiable.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CairnError } from '../errors.js'
import { verifyAsk } from '../protocol/ask.js'
import type { SignedAsk } from '../protocol/interface.js'
import type { Database } from '../repo/repo.js'
import { normaliseUrl, ProviderClient } from './provider-client.js'

export interface ProviderEntry {
  url: string
  did: string
  ask: SignedAsk
  /** unix ms */
  added: number
  /** unix ms of the last verified ask */
  lastSeen: number
}

export class AddressBook {
  private readonly sub

  constructor (db: Database) {
    this.sub = db.sublevel<string, Uint8Array>(['client', 'providers'], { valueEncoding: 'view' })
  }

  /** Fetches and verifies the provider's signed ask, then records it (replacing an older record of the same did). */
  async add (url: string, client: ProviderClient = new ProviderClient(url)): Promise<ProviderEntry> {
    const ask = await client.ask()
    const did = ask.payload.provider
    const existing = await this.get(did)
    const entry: ProviderEntry = { url: client.url, did, ask, added: existing?.added ?? Date.now(), lastSeen: Date.now() }
    await this.put(entry)
    return entry
  }

  /** Records a freshly verified ask for a provider already reached. */
  async seen (url: string, ask: SignedAsk): Promise<ProviderEntry> {
    const did = ask.payload.provider
    const existing = await this.get(did)
    const entry: ProviderEntry = { url: normaliseUrl(url), did, ask, added: existing?.added ?? Date.now(), lastSeen: Date.now() }
    await this.put(entry)
    return entry
  }

  private async put (entry: ProviderEntry): Promise<void> {
    // an entry found under another did at the same URL is stale: the provider was re-initialised
    for (const other of await this.list()) {
      if (other.url === entry.url && other.did !== entry.did) await this.sub.del(other.did)
    }
    await this.sub.put(entry.did, dagCbor.encode(entry))
  }

  async get (did: string): Promise<ProviderEntry | undefined> {
    const bytes = await this.sub.get(did)
    return bytes === undefined ? undefined : decode(bytes)
  }

  /** A provider by did or URL. */
  async find (key: string): Promise<ProviderEntry | undefined> {
    if (key.startsWith('did:')) return await this.get(key)
    const url = normaliseUrl(key)
    return (await this.list()).find(e => e.url === url)
  }

  async list (): Promise<ProviderEntry[]> {
    const out: ProviderEntry[] = []
    for await (const value of this.sub.values()) out.push(decode(value))
    return out
  }

  /** Removes a provider by did or URL; ERR_NOT_FOUND when it is not in the book. */
  async remove (key: string): Promise<ProviderEntry> {
    const entry = await this.find(key)
    if (entry === undefined) throw new CairnError('ERR_NOT_FOUND', `no provider ${key} in the address book`)
    await this.sub.del(entry.did)
    return entry
  }
}

function decode (bytes: Uint8Array): ProviderEntry {
  const value = dagCbor.decode(bytes) as ProviderEntry
  // a record read from disk is checked again: the ask must still verify for its did
  let ask: SignedAsk
  try {
    ask = verifyAsk(value.ask)
  } catch (err) {
    throw new CairnError('ERR_REPO_CORRUPT', `address book entry ${String(value.did)} does not hold a valid signed ask: ${(err as Error).message}`)
  }
  if (ask.payload.provider !== value.did) throw new CairnError('ERR_REPO_CORRUPT', `address book entry ${value.did} holds an ask by ${ask.payload.provider}`)
  return { url: value.url, did: value.did, ask, added: Number(value.added), lastSeen: Number(value.lastSeen) }
}
