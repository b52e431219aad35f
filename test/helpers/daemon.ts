/** A long-running `cairn` command (an indexer, a provider) as its own process, for CLI tests. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { BIN } from './cli.js'

/** A long-running `cairn` command; resolves once it printed its first line (the URL it listens on). */
export async function daemon (args: string[]): Promise<{ child: ChildProcess, line: string, stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CAIRN_REPO: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { err += d })
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no output from cairn ${args.join(' ')}: ${err}`)) }, 30_000)
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d
      if (out.includes('\n')) { clearTimeout(timer); resolve(out.slice(0, out.indexOf('\n'))) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`cairn ${args.join(' ')} exited ${String(code)}: ${err}`)) })
  })
  return {
    child,
    line,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode
      const exited = once(child, 'exit')
      child.kill('SIGINT')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const [code] = await exited as [number | null]
      clearTimeout(timer)
      return code
    }
  }
}
