/**
 * The nodes of a cluster, as Curio's harmony keeps them: each running node
 * has a row in `cluster_machines` and refreshes its heartbeat; a node silent
 * for `deadAfterMs` is dead, and whichever node notices deletes its row. That
 * frees every task the dead node held (`cluster_tasks.owner` is ON DELETE SET
 * NULL), so its work is taken up by the others.
 *
 * Heartbeats and deadlines are the database's clock (now()), so nodes whose
 * clocks disagree still agree on who is dead. A node that was declared dead
 * while it was in fact alive (a long pause, a network partition) finds its
 * row gone at its next heartbeat and registers again under a new id: tasks
 * it was running are no longer its own (src/cluster/tasks.ts checks).
 */
import { CairnError } from '../errors.js'
import type { Db } from '../postgres/db.js'

export const DEFAULT_DEAD_AFTER_MS = 60_000

export type EventLog = (event: string, fields?: Record<string, unknown>) => void

export interface MachineOptions {
  /** unique in the cluster; a node started again under the same name replaces its old row */
  name: string
  /** where other nodes reach this one (its listener), e.g. http://10.0.0.2:7470 */
  address: string
  /** silence after which a node is dead (default 60 s) */
  deadAfterMs?: number
  /** how often this node heartbeats and looks for dead nodes (default a quarter of deadAfterMs) */
  heartbeatMs?: number
  onEvent?: EventLog
}

export interface MachineInfo {
  id: number
  name: string
  address: string
  startedAt: Date
  heartbeatAt: Date
  /** ms since the last heartbeat, by the database's clock */
  silentMs: number
}

function checkPositive (value: number, label: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new CairnError('ERR_INVALID_ARGUMENT', `${label} must be a positive number of milliseconds, got ${value}`)
  return value
}

export class Machine {
  private currentId = 0
  private timer: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined
  private stopped = false
  readonly deadAfterMs: number
  readonly heartbeatMs: number
  private readonly onEvent: EventLog

  private constructor (private readonly db: Db, readonly name: string, readonly address: string, options: MachineOptions) {
    this.deadAfterMs = checkPositive(options.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS, 'dead-after')
    this.heartbeatMs = checkPositive(options.heartbeatMs ?? this.deadAfterMs / 4, 'the heartbeat interval')
    if (this.heartbeatMs >= this.deadAfterMs) {
      throw new CairnError('ERR_INVALID_ARGUMENT', `the heartbeat interval (${this.heartbeatMs} ms) must be shorter than dead-after (${this.deadAfterMs} ms)`)
    }
    this.onEvent = options.onEvent ?? (() => {})
  }

  /** Registers this node (replacing an earlier row of the same name) and starts heartbeating. */
  static async register (db: Db, options: MachineOptions): Promise<Machine> {
    if (options.name.length === 0 || options.name.length > 200) throw new CairnError('ERR_INVALID_ARGUMENT', `a node name has 1 to 200 characters, got ${options.name.length}`)
    const machine = new Machine(db, options.name, options.address, options)
    await machine.insert()
    await machine.reapDead()
    machine.schedule()
    return machine
  }

  /** The id this node's row has now; it changes if the node had to register again. */
  get id (): number { return this.currentId }

  private async insert (): Promise<void> {
    this.currentId = await this.db.transaction(async (q) => {
      // an earlier run under this name is over: its row goes, and with it its claims
      await q.query('DELETE FROM cluster_machines WHERE name = $1', [this.name])
      const { rows } = await q.query<{ id: string }>('INSERT INTO cluster_machines (name, address) VALUES ($1, $2) RETURNING id', [this.name, this.address])
      return Number(rows[0]?.id)
    })
    this.onEvent('machine-registered', { id: this.currentId, name: this.name })
  }

  /**
   * Refreshes the heartbeat; registers again when the row is gone (another
   * node declared this one dead). Returns false in that case.
   */
  async heartbeat (): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE cluster_machines SET heartbeat_at = now() WHERE id = $1', [this.currentId])
    if (rowCount === 1) return true
    const old = this.currentId
    await this.insert()
    this.onEvent('machine-reregistered', { name: this.name, was: old, id: this.currentId })
    return false
  }

  /** Deletes every other node silent for longer than this node's dead-after; returns their names. */
  async reapDead (): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string, name: string }>(
      "DELETE FROM cluster_machines WHERE id <> $1 AND heartbeat_at < now() - $2 * interval '1 millisecond' RETURNING id, name",
      [this.currentId, this.deadAfterMs])
    for (const row of rows) this.onEvent('machine-dead', { id: Number(row.id), name: row.name, deadAfterMs: this.deadAfterMs })
    return rows.map(r => r.name)
  }

  private schedule (): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.beating = (async () => {
        try {
          await this.heartbeat()
          await this.reapDead()
        } catch (err) {
          // the database may be away for a while; the next beat tries again
          this.onEvent('heartbeat-failed', { code: (err as CairnError).code, message: (err as Error).message })
        } finally {
          this.beating = undefined
          this.schedule()
        }
      })()
    }, this.heartbeatMs)
    this.timer.unref()
  }

  /** Stops heartbeating and deletes this node's row (freeing any task it still holds). */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.beating
    await this.db.query('DELETE FROM cluster_machines WHERE id = $1', [this.currentId])
    this.onEvent('machine-stopped', { id: this.currentId, name: this.name })
  }

  /**
   * Stops heartbeating without a word, as a node that hangs would: for tests
   * of what the other nodes do about it.
   */
  silence (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }
}

/** Every registered node with its last heartbeat, by name. */
export async function listMachines (db: Db): Promise<MachineInfo[]> {
  const { rows } = await db.query<{ id: string, name: string, address: string, started_at: Date, heartbeat_at: Date, silent_ms: number }>(
    'SELECT id, name, address, started_at, heartbeat_at, (extract(epoch FROM now() - heartbeat_at) * 1000)::float8 AS silent_ms FROM cluster_machines ORDER BY name')
  return rows.map(r => ({ id: Number(r.id), name: r.name, address: r.address, startedAt: r.started_at, heartbeatAt: r.heartbeat_at, silentMs: r.silent_ms }))
}
