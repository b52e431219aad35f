/** A real `cairn provider start` process on loopback, as an operator runs it. */
import { spawn } from 'node:child_process'
import { BIN } from './cli.js'

export interface RunningProvider {
  /** the line `provider start --json` printed */
  started: Record<string, unknown>
  url: string
  admin: string
  did: string
  /** stderr so far (the provider's log) */
  log (): string
  /** SIGTERM, then the exit status */
  stop (): Promise<number | null>
}

export async function startProviderCli (repo: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunningProvider> {
  const child = spawn(process.execPath, [BIN, '--repo', repo, '--json', 'provider', 'start', '--listen', '127.0.0.1:0', ...args], {
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
    void exited.then(() => reject(new Error(`provider exited early: ${stderr}`)))
  })
  const started = JSON.parse(line) as { url: string, admin: string, did: string }
  return {
    ...started,
    started,
    log: () => stderr,
    stop: async () => {
      child.kill('SIGTERM')
      const code = await exited
      clearTimeout(killer)
      return code
    }
  }
}
