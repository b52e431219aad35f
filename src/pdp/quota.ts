/**
 * The park quota (docs/pdp.md "Parked pieces"): parked bytes per client and in
 * total may not pass their limits, counting both what is stored and what
 * uploads in flight have received so far. An upload grows its reservation
 * chunk by chunk, so a streaming upload of unknown length is stopped with a
 * coded 429 the moment it would pass a limit, and concurrent uploads cannot
 * overshoot together.
 */
import { CairnError } from '../errors.js'

export interface QuotaLimits {
  /** parked bytes in total */
  total: bigint
  /** parked bytes of one client (an Ethereum address, else the remote IP address) */
  perClient: bigint
}

export class ParkQuota {
  /** bytes of stored parked pieces, per client; mirrors the `pdp!usage!` counters */
  private readonly stored = new Map<string, bigint>()
  private storedTotal = 0n
  private readonly inFlight = new Map<string, bigint>()
  private inFlightTotal = 0n

  constructor (readonly limits: QuotaLimits) {}

  /** Sets what a client has stored (read back from the counters at start). */
  load (client: string, bytes: bigint): void {
    this.storedTotal += bytes - (this.stored.get(client) ?? 0n)
    if (bytes === 0n) this.stored.delete(client)
    else this.stored.set(client, bytes)
  }

  storedBy (client: string): bigint { return this.stored.get(client) ?? 0n }
  get total (): bigint { return this.storedTotal }

  /** Counts `delta` (negative when a piece goes) against a client's stored bytes, once its batch has committed. */
  settle (client: string, delta: bigint): void {
    this.load(client, this.storedBy(client) + delta)
  }

  /** Throws ERR_PARK_QUOTA_CLIENT or ERR_PARK_QUOTA unless `bytes` more could be parked for `client` now. */
  check (client: string, bytes: number | bigint): void {
    const n = BigInt(bytes)
    const clientAfter = this.storedBy(client) + (this.inFlight.get(client) ?? 0n) + n
    if (clientAfter > this.limits.perClient) {
      throw new CairnError('ERR_PARK_QUOTA_CLIENT', `parking ${n} more bytes would take ${client} to ${clientAfter} bytes; the per-client park quota is ${this.limits.perClient} bytes`, { details: { client, limit: this.limits.perClient.toString() } })
    }
    const totalAfter = this.storedTotal + this.inFlightTotal + n
    if (totalAfter > this.limits.total) {
      throw new CairnError('ERR_PARK_QUOTA', `parking ${n} more bytes would take this provider to ${totalAfter} parked bytes; its park quota is ${this.limits.total} bytes`, { details: { limit: this.limits.total.toString() } })
    }
  }

  /** A reservation an upload grows as its bytes arrive and releases when it ends, stored or not. */
  reserve (client: string): Reservation {
    let held = 0n
    let released = false
    const move = (delta: bigint): void => {
      const next = (this.inFlight.get(client) ?? 0n) + delta
      if (next === 0n) this.inFlight.delete(client)
      else this.inFlight.set(client, next)
      this.inFlightTotal += delta
      held += delta
    }
    return {
      grow: (bytes: number | bigint) => {
        if (released) return
        this.check(client, bytes)
        move(BigInt(bytes))
      },
      release: () => {
        if (released) return
        released = true
        move(-held)
      }
    }
  }
}

export interface Reservation {
  /** Adds `bytes` to the reservation; ERR_PARK_QUOTA_CLIENT or ERR_PARK_QUOTA when a limit would be passed. */
  grow (bytes: number | bigint): void
  release (): void
}
