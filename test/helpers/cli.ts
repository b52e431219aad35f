/** Runs the real `cairn` binary, as a user or a script would. */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../../bin/cairn.js', import.meta.url))

export interface RunResult { code: number, stdout: string, stderr: string, stdoutBytes: Buffer, signal: NodeJS.Signals | null }

export async function cairn (args: string[], options: { env?: Record<string, string>, input?: Uint8Array | string, timeoutMs?: number, cwd?: string } = {}): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, CAIRN_REPO: '', ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe']
    })
    const stdout: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout.push(d) })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const bytes = Buffer.concat(stdout)
      resolve({ code: code ?? (signal !== null ? 128 : 1), stdout: bytes.toString('utf8'), stderr, stdoutBytes: bytes, signal })
    })
    child.stdin.end(options.input)
  })
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir (prefix = 'cairn-test-'): Promise<{ path: string, cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return { path, cleanup: async () => { await rm(path, { recursive: true, force: true }) } }
}
