/**
 * Work shared by the nodes of a cluster, in the manner of Curio's harmonytask
 * (docs/cluster.md): tasks are rows of `cluster_tasks`; a node claims a few
 * at a time with ONE statement,
 *
 *   UPDATE cluster_tasks SET owner = me … WHERE id IN
 *     (SELECT id … WHERE owner IS NULL … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …
 *
 * so two nodes never claim the same task: the inner SELECT locks what it
 * picks and skips what another claim has locked, and under READ COMMITTED a
 * row claimed meanwhile no longer passes `owner IS NULL` when it is re-checked.
 * A claim carries the claimant's machine id, and a machine's row going (it
 * died, src/cluster/machines.ts) sets the owner of its tasks back to NULL.
 *
 * Each run ends in one row of `cluster_task_history`: done (the task row is
 * deleted), failed (retried after an exponential back-off with jitter, or
 * given up after max_attempts), stopped (its node shut down; the attempt does
 * not count) or lost (the task was no longer this node's when the run ended).
 * Outcomes are recorded in groups — every run that ends while a record is
 * being written joins the next — because each commit waits for the WAL flush.
 *
 * A handler must be idempotent (a node may die after the work and before the
 * record) and should call `stillOwned()` / `assertOwned()` before side effects.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError } from '../errors.js'
import type { Db, Queryable } from '../postgres/db.js'
import type { EventLog, Machine } from './machines.js'

export interface Task {
  id: number
  type: string
  payload: unknown
  /** 1 for the first run */
  attempt: number
}

export interface TaskContext extends Task {
  /** aborted when the engine stops (after its grace period) */
  signal: AbortSignal
  /** whether this node still owns the task: check before a side effect */
  stillOwned (): Promise<boolean>
  /** ERR_TASK_NOT_OWNED unless this node still owns the task */
  assertOwned (): Promise<void>
}

export type TaskHandler = (task: TaskContext) => Promise<void>

export interface TaskTypeOptions {
  /** runs after which a failing task is given up (default 5) */
  maxAttempts?: number
  /** back-off after the first failure, doubled after each next one (default 1 s) */
  backoffMs?: number
  /** longest back-off (default 10 min) */
  maxBackoffMs?: number
}

export interface AddTaskOptions {
  /** at most one live task per key: adding another while one exists adds nothing */
  dedupe?: string
  /** runs after which the task is given up (default 5) */
  maxAttempts?: number
  /** not before this many ms from now */
  delayMs?: number
}

export interface TaskEngineOptions {
  /** handlers running at once on this node (default 4) */
  workers?: number
  /** wait between claims when nothing was there to claim, ms (default 1 s; ±20 % jitter) */
  pollMs?: number
  /** how long stop() lets running handlers finish before aborting their signal, ms (default 30 s) */
  graceMs?: number
  onEvent?: EventLog
}

export const DEFAULT_MAX_ATTEMPTS = 5
/** Outcomes waiting for their record, past which a node claims nothing more (a slow database slows the claims). */
const MAX_UNRECORDED = 256
const TYPE_NAME = /^[a-z][a-z0-9-]{0,63}$/

function checkType (type: string): string {
  if (!TYPE_NAME.test(type)) throw new CairnError('ERR_INVALID_ARGUMENT', `a task type is 1 to 64 of a-z, 0-9 and -, starting with a letter; got ${JSON.stringify(type)}`)
  return type
}

function checkAttempts (n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new CairnError('ERR_INVALID_ARGUMENT', `max attempts must be a whole number ≥ 1, got ${n}`)
  return n
}

/**
 * Adds a task; returns its id, or undefined when a live task with the same
 * dedupe key exists. `q` may be a transaction, so that the task commits with
 * the state that needs it.
 */
export async function addTask (q: Queryable, type: string, payload: unknown = {}, options: AddTaskOptions = {}): Promise<number | undefined> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO cluster_tasks (type, payload, dedupe, max_attempts, retry_at)
     VALUES ($1, $2::jsonb, $3, $4, now() + $5 * interval '1 millisecond')
     ON CONFLICT (dedupe) DO NOTHING RETURNING id`,
    [checkType(type), JSON.stringify(payload), options.dedupe ?? null, checkAttempts(options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS), options.delayMs ?? 0])
  return rows[0] === undefined ? undefined : Number(rows[0].id)
}

/** Adds many tasks of one type in one statement; returns their ids in order. */
export async function addTasks (q: Queryable, type: string, payloads: unknown[], options: Pick<AddTaskOptions, 'maxAttempts'> = {}): Promise<number[]> {
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO cluster_tasks (type, payload, max_attempts)
     SELECT $1, p, $3 FROM unnest($2::jsonb[]) WITH ORDINALITY AS u(p, n) ORDER BY n RETURNING id`,
    [checkType(type), payloads.map(p => JSON.stringify(p)), checkAttempts(options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)])
  return rows.map(r => Number(r.id))
}

interface Claimed extends Task { owner: number, claimedAt: Date }

type Outcome =
  | { kind: 'done' }
  | { kind: 'failed', error: string, delayMs: number }
  | { kind: 'stopped' }

interface Pending { task: Claimed, outcome: Outcome, resolve: (result: 'done' | 'failed' | 'stopped' | 'lost') => void, reject: (err: unknown) => void }

interface Registered { handler: TaskHandler, backoffMs: number, maxBackoffMs: number }

export class TaskEngine {
  private readonly types = new Map<string, Registered>()
  private readonly running = new Map<number, { controller: AbortController, done: Promise<void> }>()
  private readonly workers: number
  private readonly pollMs: number
  private readonly graceMs: number
  private readonly onEvent: EventLog
  private loop: Promise<void> | undefined
  private stopping = false
  private wake: () => void = () => {}
  private pending: Pending[] = []
  private recording: Promise<void> | undefined
  /** runs ended whose outcome is not yet written: no claims beyond MAX_UNRECORDED */
  private unrecorded = 0

  constructor (private readonly db: Db, private readonly machine: Machine, options: TaskEngineOptions = {}) {
    this.workers = options.workers ?? 4
    if (!Number.isInteger(this.workers) || this.workers < 1) throw new CairnError('ERR_INVALID_ARGUMENT', `workers must be a whole number ≥ 1, got ${this.workers}`)
    this.pollMs = options.pollMs ?? 1000
    this.graceMs = options.graceMs ?? 30_000
    this.onEvent = options.onEvent ?? (() => {})
  }

  /** This node runs tasks of `type` with `handler`. One handler per type. */
  registerTaskType (type: string, handler: TaskHandler, options: TaskTypeOptions = {}): void {
    checkType(type)
    if (this.types.has(type)) throw new TypeError(`task type ${type} already has a handler`)
    this.types.set(type, { handler, backoffMs: options.backoffMs ?? 1000, maxBackoffMs: options.maxBackoffMs ?? 600_000 })
  }

  /** Starts claiming tasks of the registered types. */
  start (): void {
    if (this.loop !== undefined) throw new TypeError('the task engine is already running')
    this.loop = this.claimLoop()
  }

  /**
   * Claims no more; lets running handlers finish for the grace period, then
   * aborts their signals; resolves when every run is recorded.
   */
  async stop (): Promise<void> {
    this.stopping = true
    this.wake()
    await this.loop
    const runs = [...this.running.values()]
    const grace = sleep(this.graceMs, undefined, { ref: false }).then(() => 'grace' as const)
    if (await Promise.race([Promise.all(runs.map(r => r.done)).then(() => 'done' as const), grace]) === 'grace') {
      for (const run of runs) run.controller.abort(new CairnError('ERR_SHUTTING_DOWN', 'the node is stopping'))
    }
    await Promise.all(runs.map(r => r.done))
    while (this.recording !== undefined) await this.recording
  }

  private async claimLoop (): Promise<void> {
    let failures = 0
    while (!this.stopping) {
      const free = this.unrecorded >= MAX_UNRECORDED ? 0 : this.workers - this.running.size
      let claimed: Claimed[] = []
      if (free > 0 && this.types.size > 0) {
        try {
          claimed = await this.claim(free)
          failures = 0
        } catch (err) {
          failures++
          this.onEvent('task-claim-failed', { code: (err as CairnError).code, message: (err as Error).message })
          if ((err as CairnError).details?.sqlstate === '23503') {
            // our machine row is gone (declared dead): register again before the next claim
            await this.machine.heartbeat().catch(() => {})
          }
        }
      }
      for (const task of claimed) this.run(task)
      if (this.stopping) break
      // more may be waiting when the claim filled every free worker: go on once one is free
      const full = claimed.length > 0 && claimed.length === free
      const idle = full ? undefined : this.pollMs * (0.8 + 0.4 * Math.random()) * Math.min(2 ** failures, 16)
      await new Promise<void>((resolve) => {
        const timer = idle === undefined ? undefined : setTimeout(resolve, idle)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  private async claim (n: number): Promise<Claimed[]> {
    const owner = this.machine.id
    // a claim lost in a database crash only makes the task claimable again (its run then
    // records "lost"), so the claim need not wait for the WAL flush; outcomes do wait
    const rows = await this.db.transaction(async (q) => {
      return (await q.query<{ id: string, type: string, payload: unknown, attempts: number, claimed_at: Date }>(
        `UPDATE cluster_tasks SET owner = $1, claimed_at = now(), attempts = attempts + 1
         WHERE id IN (
           SELECT id FROM cluster_tasks
           WHERE owner IS NULL AND given_up_at IS NULL AND retry_at <= now() AND type = ANY($2::text[])
           ORDER BY retry_at, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED)
         RETURNING id, type, payload, attempts, claimed_at`,
        [owner, [...this.types.keys()], n])).rows
    }, { synchronousCommit: false })
    return rows.map(r => ({ id: Number(r.id), type: r.type, payload: r.payload, attempt: r.attempts, owner, claimedAt: r.claimed_at }))
  }

  private async owns (task: Claimed): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM cluster_tasks WHERE id = $1 AND owner = $2', [task.id, task.owner])
    return rowCount === 1
  }

  private run (task: Claimed): void {
    const registered = this.types.get(task.type) as Registered
    const controller = new AbortController()
    const context: TaskContext = {
      id: task.id,
      type: task.type,
      payload: task.payload,
      attempt: task.attempt,
      signal: controller.signal,
      stillOwned: async () => await this.owns(task),
      assertOwned: async () => {
        if (!await this.owns(task)) throw new CairnError('ERR_TASK_NOT_OWNED', `task ${task.id} (${task.type}) is no longer this node's: another node may be running it`)
      }
    }
    const entry = { controller, done: Promise.resolve() }
    this.running.set(task.id, entry)
    entry.done = (async () => {
      let outcome: Outcome
      try {
        await registered.handler(context)
        outcome = { kind: 'done' }
      } catch (err) {
        if (controller.signal.aborted && this.stopping) {
          outcome = { kind: 'stopped' }
        } else {
          const cap = Math.min(registered.maxBackoffMs, registered.backoffMs * 2 ** (task.attempt - 1))
          // equal jitter: at least half the back-off, so retries of many tasks spread out but never come early
          outcome = { kind: 'failed', error: `${(err as CairnError).code ?? (err as Error).name}: ${(err as Error).message}`, delayMs: cap / 2 + Math.random() * cap / 2 }
        }
      }
      // the worker is free for the next task while the outcome is written (with others, in one commit)
      this.running.delete(task.id)
      this.unrecorded++
      this.wake()
      try {
        const result = await this.record(task, outcome)
        this.onEvent('task-ended', { id: task.id, type: task.type, attempt: task.attempt, result })
      } catch (err) {
        // the row stays claimed by this node; when the node goes, the task is freed
        this.onEvent('task-record-failed', { id: task.id, type: task.type, code: (err as CairnError).code, message: (err as Error).message })
      } finally {
        this.unrecorded--
        this.wake()
      }
    })()
  }

  private async record (task: Claimed, outcome: Outcome): Promise<'done' | 'failed' | 'stopped' | 'lost'> {
    return await new Promise((resolve, reject) => {
      this.pending.push({ task, outcome, resolve, reject })
      this.recording ??= this.drainRecords()
    })
  }

  private async drainRecords (): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, 256)
        let results: Map<number, 'done' | 'failed' | 'stopped'>
        try {
          results = await this.writeOutcomes(group)
        } catch (err) {
          for (const p of group) p.reject(err)
          continue
        }
        for (const p of group) p.resolve(results.get(p.task.id) ?? 'lost')
      }
    } finally {
      this.recording = undefined
    }
  }

  /** One transaction for a group of ended runs: each task's row changed only if it is still this node's, and its history row. */
  private async writeOutcomes (group: Pending[]): Promise<Map<number, 'done' | 'failed' | 'stopped'>> {
    const name = this.machine.name
    const history = 'INSERT INTO cluster_task_history (task_id, type, machine_id, machine_name, attempt, started_at, ended_at, result, error)'
    return await this.db.transaction(async (q) => {
      const results = new Map<number, 'done' | 'failed' | 'stopped'>()
      const byOwner = new Map<number, Pending[]>()
      for (const p of group) byOwner.set(p.task.owner, [...(byOwner.get(p.task.owner) ?? []), p])
      for (const [owner, items] of byOwner) {
        const done = items.filter(p => p.outcome.kind === 'done').map(p => p.task.id)
        if (done.length > 0) {
          const { rows } = await q.query<{ task_id: string }>(
            `WITH gone AS (DELETE FROM cluster_tasks WHERE owner = $1 AND id = ANY($2::bigint[]) RETURNING id, type, attempts, claimed_at)
             ${history} SELECT id, type, $1, $3, attempts, claimed_at, now(), 'done', NULL FROM gone RETURNING task_id`, [owner, done, name])
          for (const r of rows) results.set(Number(r.task_id), 'done')
        }
        const failed = items.filter(p => p.outcome.kind === 'failed')
        if (failed.length > 0) {
          const outcomes = failed.map(p => p.outcome as Extract<Outcome, { kind: 'failed' }>)
          const { rows } = await q.query<{ task_id: string }>(
            `WITH f AS (
               UPDATE cluster_tasks t SET owner = NULL, last_error = u.error,
                 retry_at = now() + u.delay * interval '1 millisecond',
                 given_up_at = CASE WHEN t.attempts >= t.max_attempts THEN now() END
               FROM unnest($2::bigint[], $3::float8[], $4::text[]) AS u(id, delay, error)
               WHERE t.id = u.id AND t.owner = $1
               RETURNING t.id, t.type, t.attempts, t.claimed_at, u.error)
             ${history} SELECT id, type, $1, $5, attempts, claimed_at, now(), 'failed', error FROM f RETURNING task_id`,
            [owner, failed.map(p => p.task.id), outcomes.map(o => o.delayMs), outcomes.map(o => o.error.slice(0, 2000)), name])
          for (const r of rows) results.set(Number(r.task_id), 'failed')
        }
        const stopped = items.filter(p => p.outcome.kind === 'stopped').map(p => p.task.id)
        if (stopped.length > 0) {
          const { rows } = await q.query<{ task_id: string }>(
            `WITH s AS (UPDATE cluster_tasks SET owner = NULL, attempts = attempts - 1 WHERE owner = $1 AND id = ANY($2::bigint[]) RETURNING id, type, attempts, claimed_at)
             ${history} SELECT id, type, $1, $3, attempts + 1, claimed_at, now(), 'stopped', NULL FROM s RETURNING task_id`, [owner, stopped, name])
          for (const r of rows) results.set(Number(r.task_id), 'stopped')
        }
      }
      const lost = group.filter(p => !results.has(p.task.id))
      if (lost.length > 0) {
        await q.query(`${history} SELECT u.id, u.type, u.owner, $4, u.attempt, u.started, now(), 'lost', 'the task was no longer this node''s when the run ended'
          FROM unnest($1::bigint[], $2::text[], $3::bigint[], $5::int[], $6::timestamptz[]) AS u(id, type, owner, attempt, started)`,
        [lost.map(p => p.task.id), lost.map(p => p.task.type), lost.map(p => p.task.owner), name, lost.map(p => p.task.attempt), lost.map(p => p.task.claimedAt)])
      }
      return results
    })
  }
}
