/** Long-running processes of the bench: providers and servers that print their URL. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { BIN } from './plan.js'

export interface Served { url: string, child: ChildProcess, pid: number }

/** Starts a Node script that prints one JSON line naming its URL. */
export async function serve (args: string[]): Promise<Served> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) {
    const { url } = JSON.parse(line) as { url: string }
    if (child.pid === undefined) break
    return { url: url.replace(/\/$/, ''), child, pid: child.pid }
  }
  throw new Error(`${args.join(' ')} printed no URL`)
}

/** `cairn provider start` on a repo, on a free loopback port, taking pieces up to 64 GiB. */
export async function startProvider (repo: string, extra: string[] = []): Promise<Served> {
  return await serve([BIN, '--repo', repo, '--json', 'provider', 'start', '--listen', '127.0.0.1:0', '--price', '1', '--max-piece-size', '64GiB', '--capacity', '1TiB', ...extra])
}

export async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const closed = once(child, 'close')
  child.kill('SIGTERM')
  await closed
}

/** A provider's event-loop gauges (`/metrics`, since its start), ms. */
export async function eventLoop (url: string): Promise<{ maxMs: number, p99Ms: number }> {
  const metrics = await (await fetch(`${url}/metrics`)).text()
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN) * 1000
  return { maxMs: gauge('cairn_event_loop_delay_max_seconds'), p99Ms: gauge('cairn_event_loop_delay_p99_seconds') }
}
