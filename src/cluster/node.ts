/**
 * One node of a cluster: what `cairn provider start --db postgres://…` adds to
 * a provider (docs/cluster.md "Running a cluster"). The node
 *
 * - connects to the cluster's database, applies its migrations, and checks
 *   that it signs with the cluster's identity (`ERR_CLUSTER_IDENTITY`
 *   otherwise: two keys on one chain would make a ledger nobody can verify);
 * - keeps the provider's state (ledger, deals, block and piece indexes) in the
 *   database through the state store, and piece bytes in its own repo;
 * - records which node holds which piece (`cluster/piece-locations`), and
 *   reads a piece it lacks from a node that has it, over the internal
 *   endpoint (src/cluster/pieces.ts), keeping the copy it checked;
 * - registers in `cluster_machines`, heartbeats, and runs the cluster's tasks:
 *   copy, scrub, gc and drain (src/cluster/work.ts).
 *
 * The nodes' shared secret for the internal endpoint is derived from the
 * identity they share, so a cluster needs no second secret to hand out: an
 * Ed25519 signature is deterministic (RFC 8032), so every node holding the key
 * signs a fixed, domain-separated message to the same bytes, and only they can.
 */
import { createHash } from 'node:crypto'
import { CairnError } from '../errors.js'
import { Db, redact } from '../postgres/db.js'
import { migrate } from '../postgres/migrate.js'
import { StateLedger } from '../ledger/state.js'
import type { Signer } from '../protocol/signing.js'
import { PgStore } from '../state/pg.js'
import type { StateStore } from '../state/interface.js'
import { locks, spaces } from '../state/spaces.js'
import { ClusterAuth } from './auth.js'

/** What signs the derivation of the cluster secret: never a message cairn signs otherwise (those start with a tag). */
const SECRET_LABEL = new TextEncoder().encode('cairn/cluster-secret/v1: the HMAC key of a cluster\'s internal endpoint')

/** The cluster secret of an identity (see the top of this file). */
export function clusterSecretOf (identity: Signer): Uint8Array {
  return new Uint8Array(createHash('sha256').update(identity.sign(SECRET_LABEL)).digest())
}

export interface ClusterState {
  db: Db
  state: StateStore
  ledger: StateLedger
  secret: Uint8Array
  auth: ClusterAuth
  close (): Promise<void>
}

/**
 * Connects to the cluster's database, migrates it, checks (or, for the first
 * node, records) the cluster's identity, and opens the shared ledger.
 */
export async function openClusterState (url: string, identity: Signer, options: { onEvent?: (event: string, fields?: Record<string, unknown>) => void } = {}): Promise<ClusterState> {
  const db = await Db.connect({ url, max: 16, onIdleError: (err) => { options.onEvent?.('db-idle-error', { code: err.code, message: err.message }) } })
  try {
    await migrate(db)
    const state = new PgStore(db)
    await checkIdentity(state, identity.did, db.where)
    const ledger = await StateLedger.openOn(state, identity)
    const secret = clusterSecretOf(identity)
    return { db, state, ledger, secret, auth: new ClusterAuth(secret), close: async () => { await ledger.flush(); await db.close() } }
  } catch (err) {
    await db.close()
    throw err
  }
}

/** ERR_CLUSTER_IDENTITY unless the cluster at `where` signs with `did`; the first node records its own. */
export async function checkIdentity (state: StateStore, did: string, where: string): Promise<void> {
  const recorded = await state.transaction(async (tx) => {
    await tx.lock(locks.clusterIdentity)
    const bytes = await tx.get(spaces.clusterMeta, 'identity')
    if (bytes !== undefined) return new TextDecoder().decode(bytes)
    tx.put(spaces.clusterMeta, 'identity', new TextEncoder().encode(did))
    return did
  })
  if (recorded !== did) {
    throw new CairnError('ERR_CLUSTER_IDENTITY',
      `this node signs as ${did}, but the cluster in ${redact(where)} is ${recorded}: every node of a cluster needs the same identity.key`,
      { details: { node: did, cluster: recorded } })
  }
}

/** Nodes whose piece stores hold `piece`, by name. */
export async function pieceLocations (state: StateStore, piece: string): Promise<string[]> {
  const out: string[] = []
  for await (const [key] of state.iterate(spaces.pieceLocations, { gt: `${piece}/`, lt: `${piece}/~` })) out.push(key.slice(piece.length + 1))
  return out
}

export function locationKey (piece: string, node: string): string {
  return `${piece}/${node}`
}
