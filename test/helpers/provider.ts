/** Real long-running `cairn` processes on loopback (`provider start`, `indexer start`), as an operator runs them. */
import { spawn } from 'node:child_process'
import { BIN } from './cli.js'

export interface RunningCli {
  /** the first line the command printed with --json */
  started: Record<string, unknown>
  /** stderr so far (its log) */
  log (): string
  /** SIGTERM, then the exit status */
  stop (): Promise<number | null>
}

export interface RunningProvider extends RunningCli {
  url: string
  admin: string
  did: string
}

/** Runs `cairn --repo <repo> --json <args…>` until its first line is printed. */
export async function startCli (repo: string, args: string[], env: Record<string, string> = {}): Promise<RunningCli> {
  const child = spawn(process.execPath, [BIN, '--repo', repo, '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CAIRN_REPO: '', ...env }
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  const killer = setTimeout(() => child.kill('SIGKILL'), 240_000)
  killer.unref()
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    void exited.then(() => reject(new Error(`cairn ${args.join(' ')} exited early: ${stderr}`)))
  })
  return {
    started: JSON.parse(line) as Record<string, unknown>,
    log: () => stderr,
    stop: async () => {
      child.kill('SIGTERM')
      const code = await exited
      clearTimeout(killer)
      return code
    }
  }
}

export async function startProviderCli (repo: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunningProvider> {
  const running = await startCli(repo, ['provider', 'start', '--listen', '127.0.0.1:0', ...args], env)
  const { url, admin, did } = running.started as { url: string, admin: string, did: string }
  return { ...running, url, admin, did }
}

/** `cairn indexer start` on a free loopback port; `url` is where it listens. */
export async function startIndexerCli (repo: string): Promise<RunningCli & { url: string }> {
  const running = await startCli(repo, ['indexer', 'start', '--listen', '127.0.0.1:0'])
  return { ...running, url: (running.started as { url: string }).url }
}
