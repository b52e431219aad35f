/**
 * Chooses the subtree engine: the native addon when it loaded, else worker
 * threads running the portable JS, else JS on the calling thread.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { portableEngine, portableRootSync, type SubtreeEngine } from './engine.js'
import { loadNative } from './native.js'

export type EngineChoice = 'auto' | 'native' | 'workers' | 'portable' | 'portable-if-auto'

let nativeEngine: SubtreeEngine | undefined
let workersEngine: SubtreeEngine | undefined
let warned = false

function native (): SubtreeEngine | undefined {
  if (nativeEngine !== undefined) return nativeEngine
  const { addon } = loadNative()
  if (addon === undefined) return undefined
  nativeEngine = {
    name: 'native',
    rootSync: (src, offset, quads) => addon.rootSync(src, offset, quads),
    root: async (chunk, quads) => await addon.root(chunk, quads),
    layer: addon.layers === true ? async (chunk, quads, region) => await addon.root(chunk, quads, region) : undefined,
    // one chunk per libuv pool thread that has a core to run on
    parallelism: Math.max(1, Math.min(availableParallelism(), Number(process.env.UV_THREADPOOL_SIZE ?? 4)))
  }
  return nativeEngine
}

class WorkerPool {
  readonly #workers: Array<{ worker: Worker, busy: number }> = []
  readonly #jobs = new Map<number, { resolve: (root: Uint8Array) => void, reject: (err: Error) => void, slot: { worker: Worker, busy: number } }>()
  #next = 0

  constructor (size: number) {
    for (let i = 0; i < size; i++) {
      // the parent's --input-type/--eval flags would make the worker refuse its own file
      const execArgv = process.execArgv.filter((arg, i, all) => !/^(--input-type|--eval|-e$|-p$|--print)/.test(arg) && !['-e', '--eval', '-p', '--print'].includes(all[i - 1]))
      const worker = new Worker(new URL('./commp-worker.js', import.meta.url), { execArgv })
      const slot = { worker, busy: 0 }
      worker.unref()
      worker.on('message', (msg: { id: number, root?: Uint8Array, error?: string }) => {
        const job = this.#jobs.get(msg.id)
        if (job === undefined) return
        this.#jobs.delete(msg.id)
        if (--job.slot.busy === 0) job.slot.worker.unref()
        if (msg.root !== undefined) job.resolve(msg.root)
        else job.reject(new Error(`CommP worker failed: ${msg.error ?? 'unknown error'}`))
      })
      worker.on('error', (err) => {
        for (const [id, job] of this.#jobs) {
          if (job.slot === slot) { this.#jobs.delete(id); job.reject(err) }
        }
      })
      this.#workers.push(slot)
    }
  }

  get size (): number { return this.#workers.length }

  async run (bytes: Uint8Array, quads: number): Promise<Uint8Array> {
    // least busy worker
    const slot = this.#workers.reduce((a, b) => (b.busy < a.busy ? b : a))
    const id = this.#next++
    return await new Promise<Uint8Array>((resolve, reject) => {
      this.#jobs.set(id, { resolve, reject, slot })
      if (slot.busy++ === 0) slot.worker.ref()
      const shared = bytes.buffer instanceof SharedArrayBuffer
      slot.worker.postMessage({ id, bytes: shared ? bytes : bytes.slice(), quads })
    })
  }
}

function workers (): SubtreeEngine {
  if (workersEngine !== undefined) return workersEngine
  // one core stays with the event loop: with a worker per core the main thread was starved
  // (stalls of 100–190 ms, and slower overall, on the 2-vCPU machine; docs/performance.md).
  // CAIRN_COMMP_WORKERS overrides.
  const wanted = Number.parseInt(process.env.CAIRN_COMMP_WORKERS ?? '', 10)
  const pool = new WorkerPool(Number.isInteger(wanted) && wanted > 0 ? wanted : Math.max(1, availableParallelism() - 1))
  workersEngine = {
    name: 'workers',
    rootSync: portableRootSync,
    root: async (chunk, quads) => await pool.run(chunk, quads),
    allocChunk: (size) => new Uint8Array(new SharedArrayBuffer(size)),
    parallelism: pool.size
  }
  return workersEngine
}

function warnPortable (reason: string): void {
  if (warned) return
  warned = true
  process.emitWarning(`native CommP addon unavailable (${reason}); using the portable engine, which is several times slower`, { code: 'CAIRN_COMMP_PORTABLE' })
}

/**
 * 'auto' picks native, else workers (warning once on stderr). The
 * environment variable CAIRN_COMMP_ENGINE (native | workers | portable)
 * overrides 'auto', so tests and CI can force the portable path.
 * 'portable-if-auto' is what pieceOf uses for small inputs, where threads
 * cost more than they save.
 */
export function selectEngine (choice: EngineChoice): SubtreeEngine {
  const forced = process.env.CAIRN_COMMP_ENGINE
  if ((choice === 'auto' || choice === 'portable-if-auto') && forced !== undefined && forced !== '' && forced !== 'auto') {
    if (forced !== 'native' && forced !== 'workers' && forced !== 'portable') throw new TypeError(`CAIRN_COMMP_ENGINE must be native, workers or portable, got '${forced}'`)
    choice = forced
  }
  switch (choice) {
    case 'portable':
      return portableEngine
    case 'portable-if-auto':
      return native() ?? portableEngine
    case 'native': {
      const engine = native()
      if (engine === undefined) throw new Error(`native CommP engine requested but ${loadNative().reason ?? 'unavailable'}`)
      return engine
    }
    case 'workers':
      return workers()
    case 'auto': {
      const engine = native()
      if (engine !== undefined) return engine
      warnPortable(loadNative().reason ?? 'unknown reason')
      return workers()
    }
    default:
      throw new TypeError(`unknown CommP engine '${String(choice)}'`)
  }
}

/** False when CAIRN_COMMP_ENGINE forces a JS engine, so the JS paths get tested. */
export function nativeAllowed (): boolean {
  const forced = process.env.CAIRN_COMMP_ENGINE
  return forced !== 'portable' && forced !== 'workers'
}

/** Engines that work on this machine, for tests and benchmarks. */
export function availableEngines (): Array<'portable' | 'workers' | 'native'> {
  return native() !== undefined ? ['portable', 'workers', 'native'] : ['portable', 'workers']
}
