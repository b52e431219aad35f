/**
 * The repo: one directory holding a node's identity, configuration, LevelDB
 * (ledger and indexes share it, so an entry and the indexes it changes commit in
 * one batch) and piece store.
 *
 *   config.json       version, did, defaults
 *   identity.key      Ed25519 secret key, base64, mode 0600
 *   age.key           X25519 age identity (age-keygen's format), mode 0600; made
 *                     on first use in repos older than encryption
 *   db/               LevelDB: ledger, deal and block indexes
 *   pieces/           one CARv1 per piece, named <pieceCid>.car
 *   tmp/              partial writes; emptied whenever the repo is opened
 */
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { Level } from 'level'
import { CairnError, fromSystemError } from '../errors.js'
import { writeFileAtomic, fsyncDir } from '../fs/atomic.js'
import { writerGone } from '../fs/temp.js'
import { generateSecretKey, identityFromSecret, type Identity } from './identity.js'
import { repoAgeIdentity } from '../crypto/keys.js'

export const REPO_VERSION = 1

export interface RepoConfig {
  version: number
  did: string
  created: string
}

export function resolveRepoPath (option?: string): string {
  const chosen = option ?? process.env.CAIRN_REPO
  return resolve(chosen !== undefined && chosen !== '' ? chosen : join(homedir(), '.cairn'))
}

export type Database = Level<string, Uint8Array>

export class Repo {
  private database: Database | undefined

  private constructor (readonly path: string, readonly config: RepoConfig, readonly identity: Identity) {}

  get piecesDir (): string { return join(this.path, 'pieces') }
  get tmpDir (): string { return join(this.path, 'tmp') }
  get dbDir (): string { return join(this.path, 'db') }

  piecePath (pieceCid: string): string {
    if (!/^[a-z0-9]+$/.test(pieceCid)) throw new CairnError('ERR_INVALID_CID', `not a piece CID: ${pieceCid}`)
    return join(this.piecesDir, `${pieceCid}.car`)
  }

  static async init (path: string): Promise<Repo> {
    try {
      const existing = await stat(join(path, 'config.json')).catch(() => undefined)
      if (existing !== undefined) throw new CairnError('ERR_REPO_EXISTS', `a repo already exists at ${path}; refusing to overwrite it`)
      await mkdir(path, { recursive: true, mode: 0o700 })
      for (const dir of ['pieces', 'tmp', 'db']) await mkdir(join(path, dir), { recursive: true })
      const secret = generateSecretKey()
      const identity = identityFromSecret(secret)
      await writeFileAtomic(join(path, 'identity.key'), Buffer.from(secret).toString('base64') + '\n', 0o600)
      await repoAgeIdentity(path)
      const config: RepoConfig = { version: REPO_VERSION, did: identity.did, created: new Date().toISOString() }
      // config.json is written last: its presence marks a complete repo
      await writeFileAtomic(join(path, 'config.json'), JSON.stringify(config, null, 2) + '\n')
      await fsyncDir(path)
      const repo = new Repo(path, config, identity)
      const db = await repo.db()
      await db.close()
      repo.database = undefined
      return repo
    } catch (err) {
      throw fromSystemError(err, path)
    }
  }

  static async open (path: string): Promise<Repo> {
    let config: RepoConfig
    let secretText: string
    try {
      config = JSON.parse(await readFile(join(path, 'config.json'), 'utf8'))
      secretText = await readFile(join(path, 'identity.key'), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CairnError('ERR_REPO_NOT_FOUND', `no cairn repo at ${path} (run \`cairn init\` or pass --repo)`)
      }
      if (err instanceof SyntaxError) throw new CairnError('ERR_REPO_CORRUPT', `config.json in ${path} is not valid JSON`)
      throw fromSystemError(err, path)
    }
    if (config.version !== REPO_VERSION) {
      throw new CairnError('ERR_REPO_CORRUPT', `repo version ${String(config.version)} is not supported (expected ${REPO_VERSION})`)
    }
    const identity = identityFromSecret(Buffer.from(secretText.trim(), 'base64'))
    if (identity.did !== config.did) {
      throw new CairnError('ERR_REPO_CORRUPT', `identity.key does not match the did in config.json (${config.did})`)
    }
    const repo = new Repo(path, config, identity)
    await repo.cleanTmp()
    return repo
  }

  /**
   * Leftovers of interrupted writes are never valid data. Files a live process
   * is writing (a running provider's upload, another command's spool) are not
   * leftovers: their names carry their writer's pid (src/fs/temp.ts).
   */
  private async cleanTmp (): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true })
    for (const name of await readdir(this.tmpDir)) {
      if (writerGone(name)) await rm(join(this.tmpDir, name), { recursive: true, force: true })
    }
    await mkdir(this.piecesDir, { recursive: true })
    for (const name of await readdir(this.piecesDir)) {
      if (name.startsWith('.') && name.endsWith('.tmp') && writerGone(name)) await rm(join(this.piecesDir, name), { force: true })
    }
  }

  /** The repo's LevelDB, opened on first use. Only one process may hold it. */
  async db (): Promise<Database> {
    if (this.database !== undefined) return this.database
    const db = new Level<string, Uint8Array>(this.dbDir, { valueEncoding: 'view' })
    try {
      await db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new CairnError('ERR_REPO_LOCKED', `the repo at ${this.path} is in use by a running node; use its admin API or stop it first`)
      }
      throw new CairnError('ERR_REPO_CORRUPT', `cannot open the repo database at ${this.dbDir}: ${(err as Error).message}`, { cause: err })
    }
    this.database = db
    return db
  }

  async close (): Promise<void> {
    await this.database?.close()
    this.database = undefined
  }
}
