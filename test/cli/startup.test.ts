/**
 * Start-up cost: a command loads the modules it uses, not every dependency of
 * the tree. Each run records the modules Node loads (an ESM load hook, set
 * through NODE_OPTIONS) and checks that the heavy ones a local command never
 * needs — the HTTP client, age, the provider's metrics and logger — stay unloaded.
 */
import test from 'ava'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cairn, tempDir } from '../helpers/cli.js'

const hooks = "export async function load (url, context, next) { process.stderr.write('loaded-module ' + url + '\\n'); return await next(url, context) }"
const register = `import { register } from 'node:module'; register(${JSON.stringify('data:text/javascript,' + encodeURIComponent(hooks))})`
const NODE_OPTIONS = `--import=data:text/javascript,${encodeURIComponent(register)}`

const HEAVY = ['undici', 'age-encryption', 'prom-client', 'pino', '@noble/post-quantum']

function heavyLoaded (stderr: string): string[] {
  const loaded = stderr.split('\n').filter(line => line.startsWith('loaded-module ')).map(line => line.slice('loaded-module '.length))
  return HEAVY.filter(name => loaded.some(url => url.includes(`/node_modules/${name}/`)))
}

test('add and get of a local file load neither undici, age, prom-client nor pino', async t => {
  const dir = await tempDir()
  t.teardown(dir.cleanup)
  const env = { CAIRN_REPO: join(dir.path, 'repo') }
  t.is((await cairn(['init'], { env })).code, 0)
  await writeFile(join(dir.path, 'a.txt'), 'hello start-up\n')
  const add = await cairn(['add', '-Q', join(dir.path, 'a.txt')], { env: { ...env, NODE_OPTIONS } })
  t.is(add.code, 0, add.stderr)
  t.true(add.stderr.includes('loaded-module '), 'the load hook ran')
  t.deepEqual(heavyLoaded(add.stderr), [])
  const get = await cairn(['get', add.stdout.trim(), '-o', join(dir.path, 'out.txt')], { env: { ...env, NODE_OPTIONS } })
  t.is(get.code, 0, get.stderr)
  t.deepEqual(heavyLoaded(get.stderr), [])
  // and the hook sees them when they are used: an encrypted add loads age
  const encrypted = await cairn(['add', '-Q', '--encrypt', join(dir.path, 'a.txt')], { env: { ...env, NODE_OPTIONS } })
  t.is(encrypted.code, 0, encrypted.stderr)
  t.true(heavyLoaded(encrypted.stderr).includes('age-encryption'))
})
