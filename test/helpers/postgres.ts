/**
 * A PostgreSQL database for a test file. With CAIRN_TEST_PG_URL set, a fresh
 * database is created on that server; without it the test process starts a
 * throwaway server of its own (initdb in a temporary directory, loopback only,
 * a free port), which stops when the process ends — also when it is killed,
 * through a small watchdog.
 *
 * The throwaway server runs without fsync: tests check logic, not durability.
 * `durable: true` (benches) keeps PostgreSQL's defaults — fsync, synchronous
 * commit — on a server of its own, or on CAIRN_BENCH_PG_URL when that is set
 * (never on CAIRN_TEST_PG_URL, which CI runs without fsync).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, readdirSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

export interface TestDatabase {
  /** postgres://… of a database nobody else uses */
  url: string
  /** drops the database (the throwaway server stops by itself when the process ends) */
  cleanup (): Promise<void>
}

interface Server { url: URL }

const servers = new Map<string, Promise<Server>>()
let counter = 0

/** A fresh, empty database on the CI server or on this process's own throwaway server. */
export async function testDatabase (options: { durable?: boolean } = {}): Promise<TestDatabase> {
  const given = options.durable === true ? process.env.CAIRN_BENCH_PG_URL : process.env.CAIRN_TEST_PG_URL
  const kind = given !== undefined && given !== '' ? `given ${given}` : options.durable === true ? 'durable' : 'fast'
  let server = servers.get(kind)
  if (server === undefined) {
    server = kind.startsWith('given') ? Promise.resolve({ url: new URL(given as string) }) : startServer(kind === 'durable')
    servers.set(kind, server)
  }
  const admin = (await server).url
  const name = `cairn_test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`
  await adminQuery(admin, `CREATE DATABASE ${name}`)
  const url = new URL(admin)
  url.pathname = '/' + name
  return {
    url: url.toString(),
    async cleanup () {
      await adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    }
  }
}

async function adminQuery (url: URL, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** The newest PostgreSQL server binaries Debian installed, or CAIRN_PG_BIN. */
export function postgresBinDir (): string {
  const chosen = process.env.CAIRN_PG_BIN
  if (chosen !== undefined && chosen !== '') return chosen
  const root = '/usr/lib/postgresql'
  const versions = existsSync(root) ? readdirSync(root).filter(v => existsSync(join(root, v, 'bin', 'initdb'))) : []
  versions.sort((a, b) => Number(b) - Number(a))
  if (versions.length === 0) {
    throw new Error('no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: install Debian\'s postgresql package, or set CAIRN_TEST_PG_URL to a server the tests may create databases on')
  }
  return join(root, versions[0] as string, 'bin')
}

/** initdb and pg_ctl refuse to run as root: as root, the server runs as the `postgres` user. */
function asServerUser (command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]
}

function run (command: string, args: string[], timeoutMs: number): void {
  const [cmd, argv] = asServerUser(command, args)
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs })
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.error?.message ?? `exit ${String(r.status ?? r.signal)}`}): ${r.stderr ?? ''}${r.stdout ?? ''}`)
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => { typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')) })
    })
  })
}

async function startServer (durable: boolean): Promise<Server> {
  const bin = postgresBinDir()
  const dir = await mkdtemp(join(tmpdir(), 'cairn-pg-'))
  const data = join(dir, 'data')
  await mkdir(data, { mode: 0o700 })
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
    chownSync(data, uid, gid)
  }
  run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], 120_000)
  const pgCtl = join(bin, 'pg_ctl')
  const settings = ['-c listen_addresses=127.0.0.1', `-k ${data}`, '-c max_connections=200', '-c shared_buffers=32MB']
  if (!durable) settings.push('-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off')
  let lastError: unknown
  // a port found free may be taken before the server binds it: try a few
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    try {
      run(pgCtl, ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} ${settings.join(' ')}`, 'start'], 90_000)
    } catch (err) {
      lastError = err
      continue
    }
    stopWhenDone(pgCtl, data, dir)
    return { url: new URL(`postgres://postgres@127.0.0.1:${port}/postgres`) }
  }
  rmSync(dir, { recursive: true, force: true })
  throw lastError
}

/**
 * Stops the server when this process exits. A process killed outright runs no
 * exit hook, so a detached shell also waits for this process to disappear
 * (polling once a second) and then stops the server and removes its files.
 */
function stopWhenDone (pgCtl: string, data: string, dir: string): void {
  const [cmd, argv] = asServerUser(pgCtl, ['-D', data, '-m', 'immediate', 'stop'])
  const stop = [cmd, ...argv].map(a => `'${a.replace(/'/g, "'\\''")}'`).join(' ')
  const watchdog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; ${stop} >/dev/null 2>&1; rm -rf '${dir}'`], {
    detached: true, stdio: 'ignore'
  })
  watchdog.unref()
  process.once('exit', () => {
    spawnSync(cmd, argv, { stdio: 'ignore', timeout: 30_000 })
    rmSync(dir, { recursive: true, force: true })
  })
}
