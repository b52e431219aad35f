/**
 * Alerts from `cairn watch`: one message when an incident opens and one when
 * it resolves, to a command (`--alert-exec`) and/or a webhook
 * (`--alert-webhook`). The JSON shape is documented in docs/monitoring.md;
 * fields are only ever added, never renamed (`version` changes if they must).
 */

/** Where an incident comes from. */
export type AlertSource = 'audit' | 'anomaly' | 'forecast' | 'expiry' | 'repair'

export interface Alert {
  version: 1
  /** 'open' when the incident starts, 'resolved' when it ends; each is sent once per incident */
  event: 'open' | 'resolved'
  /** stable across restarts and both events of an incident: receivers dedupe on (id, event) */
  id: string
  source: AlertSource
  /** audit: failed | missed; anomaly: spike | drift | rate; forecast: below-threshold; expiry: expiring; repair: unrepaired */
  kind: string
  /** the provider (did:key), when the incident is about one */
  provider?: string
  deal?: string
  piece?: string
  summary: string
  /** ISO 8601 */
  startedAt: string
  endedAt?: string
  /** why it ended (resolved only) */
  resolution?: string
  /** when this message was made, ISO 8601 */
  at: string
  evidence: Record<string, unknown>
}

/** Something an alert is delivered to. A delivery that fails is logged by the caller; it never stops watch. */
export interface AlertSink {
  /** for log lines: `exec`, `webhook https://…` */
  readonly name: string
  deliver: (alert: Alert) => Promise<void>
}

export type AlertLog = (level: 'info' | 'warn', message: string) => void
