/**
 * Distinct replicas (docs/encryption.md "Distinct replicas"): each replica of
 * encrypted content is an encryption of its own — fresh file keys and nonces,
 * so its own blocks, DAG, CAR and piece CID. A provider cannot answer its
 * audits from another replica's bytes, so colluding providers must each keep
 * a copy (with identical replicas one copy serves them all, and `/piece` of
 * one provider serves another's challenges).
 *
 * A replica is made from the plaintext, which the client reads back from any
 * copy it can decrypt (its own piece, or a healthy replica's during a repair):
 * the tree is written, decrypted, into the repo's `tmp/` and encrypted again.
 * Plaintext content cannot have distinct replicas: whatever is re-laid out
 * from the same bytes (another chunking, another order) can be rebuilt by a
 * provider holding one plaintext copy, on demand, as fast as the client made it.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Decrypter } from 'age-encryption'
import type { CID } from 'multiformats/cid'
import { openCarFile } from '../car/index.js'
import { CairnError } from '../errors.js'
import { encryptTree } from '../crypto/encrypt.js'
import { decrypterFor, repoAgeIdentity, uniqueRecipients, type Recipient } from '../crypto/keys.js'
import { isEncryptedRoot } from '../crypto/layout.js'
import { unpackCar } from '../crypto/unpack.js'
import { release, track } from '../fs/temp.js'
import type { EntryOf, Ledger } from '../ledger/interface.js'
import type { Repo } from '../repo/repo.js'
import { PieceStore } from '../store/pieces.js'
import type { RootRecord } from '../store/roots.js'
import { storePlan, type Added } from './content.js'

/** What a deal of a distinct replica records (`deal-proposed`): the root it is a replica of, and who can read it. */
export interface ReplicaRecord {
  /** the root the user dealt: every replica of it decrypts to the same tree */
  replicaOf: string
  /** the age recipients each replica (and a repair's new one) is encrypted to */
  recipients: string[]
}

/** Whether the CAR at `carPath` holds an encrypted tree (docs/encryption.md "Reading it back"). */
export async function isEncryptedCar (carPath: string): Promise<boolean> {
  const car = await openCarFile(carPath)
  try {
    return await isEncryptedRoot(car.root, car.get)
  } finally {
    await car.close()
  }
}

/** The piece file of a root recorded in this repo. */
export function piecePath (repo: Repo, piece: string): string {
  return new PieceStore(repo.piecesDir, repo.tmpDir).path(piece)
}

/** The node's own age identities, which every replica it makes is also encrypted to. */
async function ownDecrypter (repo: Repo): Promise<{ decrypter: Decrypter, recipient: Recipient }> {
  const own = await repoAgeIdentity(repo.path)
  return { decrypter: await decrypterFor([own.identity]), recipient: own.recipient }
}

/**
 * The recipients replicas of a root are encrypted to: the node itself, those
 * recorded when the root was added (`add --encrypt`), and those named now.
 */
export async function replicaRecipients (repo: Repo, recorded: readonly string[] | undefined, named: readonly Recipient[]): Promise<Recipient[]> {
  const { recipient } = await ownDecrypter(repo)
  return uniqueRecipients([recipient, ...(recorded ?? []) as Recipient[], ...named])
}

/**
 * A fresh encryption of the tree in the CAR at `carPath` (decrypted first when
 * it is encrypted), for `recipients`, stored in the repo as a replica of
 * `replicaOf`. Nothing of the plaintext stays behind in `tmp/`.
 */
export async function distinctReplica (repo: Repo, carPath: string, replicaOf: string, recipients: readonly Recipient[]): Promise<Added> {
  if (recipients.length === 0) throw new CairnError('ERR_INVALID_RECIPIENT', 'a distinct replica needs at least one recipient')
  const { decrypter } = await ownDecrypter(repo)
  const dir = track(await mkdtemp(join(repo.tmpDir, 'replica-')))
  try {
    const plain = join(dir, 'content')
    await unpackCar(carPath, plain, { decrypter })
    // hidden: every name of the tree is kept, as it was added
    const plan = await encryptTree([plain], recipients, { hidden: true })
    const added = await storePlan(repo, plan, { recipients: [...recipients], replicaOf })
    return added
  } finally {
    await rm(dir, { recursive: true, force: true })
    release(dir)
  }
}

/** The replica record of a deal, from its `deal-proposed` entry; undefined for a deal of identical replicas. */
export async function replicaRecordOf (ledger: Ledger, deal: CID | string): Promise<ReplicaRecord | undefined> {
  for await (const entry of ledger.log({ deal, kind: 'deal-proposed', limit: 1 })) {
    const { replicaOf, recipients } = (entry as EntryOf<'deal-proposed'>).fields
    if (replicaOf !== undefined && recipients !== undefined) return { replicaOf, recipients }
  }
  return undefined
}

export interface ReplicaPlanOptions {
  /** --encrypt (or a recipient named) */
  encrypt: boolean
  /** recipients named for the deal, beside the node's own and those recorded with the root */
  named: readonly Recipient[]
  /** --distinct / --no-distinct; unset: distinct when the content is encrypted and count > 1 */
  distinct?: boolean
  /** how many replicas (providers) */
  count: number
  /** told before each encryption, with the number of recipients */
  onEncrypt?: (recipients: number) => void
}

/**
 * Which root each replica deals (docs/encryption.md "Distinct replicas"):
 * - distinct (the default for encrypted content, or --encrypt, and more than
 *   one replica): every replica its own encryption; an encrypted root is the
 *   first replica itself;
 * - --encrypt with --no-distinct or one replica: one encryption for all;
 * - otherwise the root as it is.
 * Encryptions are made when their deal's turn comes.
 */
export async function replicaPlan (repo: Repo, root: string, record: RootRecord, options: ReplicaPlanOptions): Promise<(i: number) => Promise<{ root: string, replica?: ReplicaRecord }>> {
  const { encrypt, named, count } = options
  const carPath = piecePath(repo, record.piece)
  const encrypted = await isEncryptedCar(carPath)
  const distinct = options.distinct ?? ((encrypt || encrypted) && count > 1)
  if (distinct && !encrypt && !encrypted) {
    throw new CairnError('ERR_DISTINCT_NEEDS_ENCRYPTION', `${root} is plaintext: its replicas cannot be distinct, as a provider holding one plaintext copy can rebuild any other layout of it on demand; add --encrypt (each replica then its own encryption) or leave out --distinct`)
  }
  if (!distinct && !encrypt) return async () => ({ root })
  const recipients = await replicaRecipients(repo, record.recipients, named)
  const replica: ReplicaRecord = { replicaOf: root, recipients }
  const fresh = async (): Promise<string> => {
    options.onEncrypt?.(recipients.length)
    return (await distinctReplica(repo, carPath, root, recipients)).root
  }
  if (!distinct) {
    // one encryption (or the encrypted root itself), the same piece at every provider
    let shared: Promise<string> | undefined
    return async () => encrypted ? { root } : { root: await (shared ??= fresh()), replica }
  }
  return async (i) => ({ root: encrypted && i === 0 ? root : await fresh(), replica })
}
