/**
 * Shared by the hardening suite: a real provider (LevelDB ledger, piece
 * store) on 127.0.0.1:0 in-process or as a `cairn provider start` child
 * process, small DFS CAR payloads, signed proposals and uploads, and the run
 * summary every test adds to (rendered into docs/reliability.md by report.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagJSON from '@ipld/dag-json'
import type { CID } from 'multiformats/cid'
import type { Proposal } from '../../src/protocol/interface.js'
import { signProposal } from '../../src/protocol/proposal.js'
import { signProofRequest } from '../../src/protocol/proof-request.js'
import { randomBytes } from 'node:crypto'
import { CID as CIDClass } from 'multiformats/cid'
import type { Signer } from '../../src/protocol/signing.js'
import { LevelLedger } from '../../src/ledger/level.js'
import { uploadAuthorization } from '../../src/protocol/auth.js'
import { ProviderDeals } from '../../src/provider/deals.js'
import type { ProviderDealsOptions } from '../../src/provider/context.js'
import { createProviderServer, type HttpService, type ServerLimits } from '../../src/provider/server.js'
import { generateSecretKey, identityFromSecret } from '../../src/repo/identity.js'
import { Repo } from '../../src/repo/repo.js'
import { PieceStore, type StoreFaults } from '../../src/store/pieces.js'
import { BIN } from '../helpers/cli.js'
import { bytesOf, dfsPiece, importInto, MemoryBlocks, testTerms } from '../provider/fixtures.js'

/** `CAIRN_SOAK=1` runs the long version (npm run test:soak). */
export const SOAK = process.env.CAIRN_SOAK === '1'
export const scale = (ci: number, soak: number): number => SOAK ? soak : ci

// ---------------------------------------------------------------- summary

export interface SummaryRow {
  /** malformed | fuzz | crash | disk | hostile | attack */
  area: string
  what: string
  /** times injected in this run */
  injected: number
  /** outcome as observed (e.g. "rejected ERR_CAR_TRUNCATED", "survived") */
  outcome: string
  /** bytes of acknowledged data lost (always asserted 0) */
  lost?: number
  ms?: number
}

/** One file per ava run (all test files of a run share the ava parent process). */
export function summaryPath (): string {
  return process.env.CAIRN_HARDENING_SUMMARY ?? join(tmpdir(), `cairn-hardening-${process.ppid}.jsonl`)
}

/** The commit the run tested, with `+` when the working tree differed from it. */
let runCommit: string | undefined
function commitOfRun (): string {
  if (runCommit !== undefined) return runCommit
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
    runCommit = head + (dirty ? '+' : '')
  } catch {
    runCommit = 'unknown'
  }
  return runCommit
}

export async function summarize (row: SummaryRow): Promise<void> {
  await appendFile(summaryPath(), JSON.stringify({ ...row, soak: SOAK, commit: commitOfRun(), at: new Date().toISOString() }) + '\n')
}

// ---------------------------------------------------------------- payloads

export interface Payload { root: CID, car: Uint8Array, pieceCid: CID, pieceSize: bigint, blocks: MemoryBlocks }

/** A DFS-ordered CARv1 of a small UnixFS directory (a few blocks), and its piece. */
export async function payload (seed: number, size = 3000): Promise<Payload> {
  const blocks = new MemoryBlocks()
  const root = await importInto(blocks, [
    { path: 'd/a.bin', content: bytesOf(size, seed) },
    { path: 'd/b.txt', content: new TextEncoder().encode(`seed ${seed}\n`) }
  ], { chunkSize: 1024 })
  return { root, ...await carOf(root, blocks), blocks }
}

export async function carOf (root: CID, blocks: MemoryBlocks): Promise<{ car: Uint8Array, pieceCid: CID, pieceSize: bigint }> {
  const { car, pieceCid, pieceSize } = await dfsPiece(root, blocks)
  return { car, pieceCid, pieceSize }
}

export function proposalOf (client: Signer, provider: string, p: Pick<Payload, 'pieceCid' | 'pieceSize' | 'root' | 'car'>, nonce: bigint, overrides: Partial<Proposal> = {}): Proposal {
  const now = Math.floor(Date.now() / 1000)
  return {
    pieceCid: p.pieceCid,
    pieceSize: p.pieceSize,
    payloadCid: p.root,
    payloadSize: BigInt(p.car.length),
    client: client.did,
    provider,
    label: 'hardening',
    // an hour to upload in, however often a crash test restarts the provider (the upload is due by the start)
    start: now + 3600,
    end: now + 3600 + 86400,
    pricePerGiBDay: 40n,
    providerCollateral: 0n,
    clientCollateral: 0n,
    // the CLI provider's default proving period (src/cli/provider.ts)
    provingPeriod: 86400,
    challenges: 16,
    nonce,
    head: null,
    ...overrides
  }
}

export async function postJSON (url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
  return await fetch(url, { method: 'POST', headers, body })
}

/** The DAG-JSON body of a proof request for `dealId` signed by `client` (docs/protocol.md "Proof requests"). */
export function proofRequestBody (client: Signer, dealId: string, count: number, at = Math.floor(Date.now() / 1000)): string {
  return dagJSON.stringify(signProofRequest(client, { dealId: CIDClass.parse(dealId), seed: new Uint8Array(randomBytes(32)), count, at, head: null }))
}

/** Proposes and returns the accepted deal id, or throws with the refusal. */
export async function makeDeal (url: string, client: Signer, provider: string, p: Payload, nonce: bigint, overrides: Partial<Proposal> = {}): Promise<string> {
  const res = await postJSON(`${url}/v1/deals`, dagJSON.stringify(signProposal(client, proposalOf(client, provider, p, nonce, overrides))))
  const text = await res.text()
  if (res.status !== 201) throw new Error(`proposal refused (${res.status}): ${text}`)
  return (dagJSON.parse(text) as { payload: { dealId: CID } }).payload.dealId.toString()
}

export async function uploadPiece (url: string, client: Signer, dealId: string, body: Uint8Array): Promise<Response> {
  return await fetch(`${url}/v1/deals/${dealId}/piece`, { method: 'PUT', body, headers: { authorization: uploadAuthorization(client, dealId) } })
}

export async function errorCode (res: Response): Promise<string> {
  const text = await res.text()
  try {
    return (JSON.parse(text) as { error: { code: string } }).error.code
  } catch {
    return `HTTP ${res.status}: ${text.slice(0, 80)}`
  }
}

export function newClient (): ReturnType<typeof identityFromSecret> {
  return identityFromSecret(generateSecretKey())
}

// ---------------------------------------------------------------- in-process provider

export interface World {
  dir: string
  repo: Repo
  ledger: LevelLedger
  store: PieceStore
  service: HttpService
  url: string
  node: ProviderDeals
  client: ReturnType<typeof identityFromSecret>
  close: () => Promise<void>
}

export const terms = testTerms({ endpoint: 'http://127.0.0.1:1', capacity: 1n << 36n })

export async function world (options: { faults?: StoreFaults, limits?: Partial<ServerLimits>, deals?: ProviderDealsOptions, dir?: string } = {}): Promise<World> {
  const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'cairn-hardening-'))
  const repo = options.dir === undefined ? await Repo.init(join(dir, 'repo')) : await Repo.open(join(dir, 'repo'))
  const db = await repo.db()
  const ledger = await LevelLedger.open(db, repo.identity)
  const store = new PieceStore(repo.piecesDir, repo.tmpDir, options.faults)
  const node = new ProviderDeals(db, ledger, store, repo.identity, terms, undefined, options.deals)
  const service = createProviderServer({ deals: node, blocks: node, pieces: node, log: () => {}, limits: options.limits })
  const url = await service.listen('127.0.0.1', 0)
  let closed = false
  return {
    dir,
    repo,
    ledger,
    store,
    service,
    url,
    node,
    client: newClient(),
    close: async () => {
      if (closed) return
      closed = true
      await service.close()
      await repo.close()
    }
  }
}

export async function destroy (w: World): Promise<void> {
  await w.close()
  await rm(w.dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------- provider process

export interface ProviderProcess {
  child: ChildProcess
  url: string
  pid: number
  stderr: () => string
  /** resolves with the exit code (null when killed by a signal) */
  exited: Promise<number | null>
  kill: () => Promise<void>
}

/** `cairn provider start` on 127.0.0.1:0; resolves once it printed its URL. */
export async function startProviderProcess (repo: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ProviderProcess> {
  const child = spawn(process.execPath, [BIN, 'provider', 'start', '--repo', repo, '--listen', '127.0.0.1:0', '--price', '40', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CAIRN_REPO: '', ...env }
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-20_000) })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const killer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000)
  killer.unref()
  void exited.then(() => clearTimeout(killer))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`provider did not start in ${timeoutMs} ms: ${stderr}`)) }, timeoutMs)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) { clearTimeout(timer); resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { url: string }).url) }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`provider exited (${String(code)}) before listening: ${stderr}`)) })
  })
  return {
    child,
    url,
    pid: child.pid as number,
    stderr: () => stderr,
    exited,
    kill: async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited }
  }
}

/** Peak resident set of a process, in bytes (VmHWM in /proc/<pid>/status). */
export async function peakRss (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return m === null ? 0 : Number(m[1]) * 1024
}
