// Builds the optional native CommP addon (run by the root package's "install"
// script). A failed build must not fail the install: cairn then uses its
// portable JavaScript engine and says so once at run time.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const target = join(here, 'build', 'Release', 'cairn_commp.node')

if (process.env.CAIRN_SKIP_NATIVE === '1') {
  console.error('cairn: CAIRN_SKIP_NATIVE=1, not building the native CommP addon')
  process.exit(0)
}

// Headers: prefer the running node's own (no download), as node-gyp's --nodedir
const prefix = dirname(dirname(process.execPath))
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` }
}

const attempts = []

// 1. node-gyp: npm exposes its bundled copy to lifecycle scripts
const gyp = process.env.npm_config_node_gyp ?? join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
if (existsSync(gyp)) {
  const r = run(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])])
  attempts.push(['node-gyp', r])
}

// 2. the C compiler directly: Node-API symbols resolve against the node binary at load time
if (!existsSync(target) && nodedir) {
  mkdirSync(dirname(target), { recursive: true })
  const cc = process.env.CC ?? 'cc'
  const r = run(cc, ['-O3', '-std=c11', '-fPIC', '-shared', '-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=cairn_commp',
    `-I${join(nodedir, 'include', 'node')}`, 'commp.c', '-o', target])
  attempts.push([cc, r])
}

if (existsSync(target)) {
  console.error('cairn: built the native CommP addon')
} else {
  console.error('cairn: could not build the native CommP addon; CommP will use the slower portable engine')
  for (const [what, r] of attempts) console.error(`  ${what}: ${r.out.trim().split('\n').slice(-3).join(' | ')}`)
}
