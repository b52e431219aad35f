// Builds the optional native CommP addon. Run by `npm ci` in a clone (the root
// package's install script), by `npm pack` (prepack, so the tarball carries an
// addon for the packing machine's platform), and by cairn itself on first use
// where an installed package has none that loads (npm 11 skips the install
// scripts of installed packages). A failed build never fails anything: cairn
// then uses its portable JavaScript engine and says so once at run time.
//
//   node build.mjs [--out FILE] [--cc-only] [--quiet]
//
// --out      where the addon goes (default build/Release/cairn_commp.node here)
// --cc-only  only the C compiler with the running node's own headers: never
//            node-gyp, which may try to download headers (first use must not
//            reach the network)
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const flag = (name) => args.includes(name)
const outAt = args.indexOf('--out')
const defaultTarget = join(here, 'build', 'Release', 'cairn_commp.node')
const target = outAt >= 0 && args[outAt + 1] !== undefined ? resolve(args[outAt + 1]) : defaultTarget
const say = (line) => { if (!flag('--quiet')) console.error(line) }

if (process.env.CAIRN_SKIP_NATIVE === '1') {
  say('cairn: CAIRN_SKIP_NATIVE=1, not building the native CommP addon')
  process.exit(0)
}

// Headers: prefer the running node's own (no download), as node-gyp's --nodedir
const prefix = dirname(dirname(process.execPath))
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined

function run (cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: here, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}` }
}

const attempts = []
let built = false

// 1. node-gyp: npm exposes its bundled copy to lifecycle scripts
const gyp = process.env.npm_config_node_gyp ?? join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
if (!flag('--cc-only') && target === defaultTarget && existsSync(gyp)) {
  const r = run(process.execPath, [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])])
  attempts.push(['node-gyp', r])
  built = r.ok && existsSync(target)
}

// 2. the C compiler directly: Node-API symbols resolve against the node binary at load time.
// Written beside the target and renamed, so a concurrent loader never sees half a file.
if (!built && nodedir) {
  mkdirSync(dirname(target), { recursive: true })
  const partial = `${target}.${process.pid}.tmp`
  const cc = process.env.CC ?? 'cc'
  const r = run(cc, ['-O3', '-std=c11', '-fPIC', '-shared', '-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=cairn_commp',
    `-I${join(nodedir, 'include', 'node')}`, join(here, 'commp.c'), '-o', partial])
  if (r.ok) renameSync(partial, target)
  else rmSync(partial, { force: true })
  built = r.ok
  attempts.push([cc, r])
}
if (nodedir === undefined) attempts.push(['headers', { out: `no Node.js headers under ${prefix}/include/node` }])

if (built) {
  say(`cairn: built the native CommP addon (${target})`)
} else {
  say('cairn: could not build the native CommP addon; CommP will use the slower portable engine')
  for (const [what, r] of attempts) say(`  ${what}: ${r.out.trim().split('\n').slice(-3).join(' | ')}`)
}
