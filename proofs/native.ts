/**
 * Loads the optional native CommP addon (proofs/native/commp.c). A clone's
 * `npm ci` and `npm pack` build it; an installed package, whose install
 * scripts npm 11 skips, builds it here on first use with the C compiler and
 * the running node's own headers (never the network), into the package when
 * that is writable, else into the user's cache. Absent or broken, it is
 * simply not used and the caller falls back to the portable engine.
 *
 * Environment: CAIRN_COMMP_ADDON names one addon file to load (nothing else
 * is tried); CAIRN_NATIVE_BUILD=0 never builds on first use; CAIRN_CACHE_DIR
 * moves the cache (default $XDG_CACHE_HOME/cairn or ~/.cache/cairn).
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export interface NativeAddon {
  rootSync: (bytes: Uint8Array, offset: number, quads: number) => Uint8Array
  /** the root, or with `region` (older builds ignore it) the roots of each run of `region` quads */
  root: (bytes: Uint8Array, quads: number, region?: number) => Promise<Uint8Array>
  /** true when root() honours `region` */
  layers?: boolean
  /** next layer up of consecutive 32-byte nodes; an odd last node pairs with `zeroRight` (absent in older builds) */
  layerSync?: (nodes: Uint8Array, zeroRight: Uint8Array) => Uint8Array
  /** true when the SHA extensions are in use */
  shaNi: boolean
  /** true when sixteen nodes are hashed at once with AVX-512 (absent in older builds) */
  avx512?: boolean
  /**
   * SHA-256 of 1…16 messages of one length, digests concatenated in order, on the libuv
   * pool: with AVX-512 sixteen at once, else with SHA-NI one after another (absent with
   * neither, or in older builds)
   */
  sha256x16?: (messages: Uint8Array[]) => Promise<Uint8Array>
  /** the engine `sha256x16` uses, present with it (absent in older builds) */
  sha256x16Engine?: 'avx512' | 'sha-ni'
}

let cached: { addon?: NativeAddon, reason?: string, built?: string } | undefined

const ADDON = 'cairn_commp.node'

/** The package's own copy (compiled: dist/proofs/native.js; from source: proofs/native.ts). */
function packageCandidates (): URL[] {
  return [
    new URL(`../../proofs/native/build/Release/${ADDON}`, import.meta.url),
    new URL(`./native/build/Release/${ADDON}`, import.meta.url)
  ]
}

/** Where a first-use build goes when the package directory is not writable. */
export function nativeCacheFile (): string {
  const base = process.env.CAIRN_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cairn')
  // Node-API 8 is ABI-stable across Node versions: one build per platform and architecture
  return join(base, 'native', `${process.platform}-${process.arch}-napi8`, ADDON)
}

function buildScript (): string | undefined {
  for (const url of [new URL('../../proofs/native/build.mjs', import.meta.url), new URL('./native/build.mjs', import.meta.url)]) {
    const path = fileURLToPath(url)
    if (existsSync(path)) return path
  }
  return undefined
}

function writable (dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** Builds the addon once, where it may go; the path built, or undefined. */
function buildOnFirstUse (): string | undefined {
  if (process.env.CAIRN_NATIVE_BUILD === '0') return undefined
  const script = buildScript()
  if (script === undefined) return undefined
  const own = fileURLToPath(packageCandidates()[0] as URL)
  const target = writable(dirname(own)) ? own : nativeCacheFile()
  if (!writable(dirname(target))) return undefined
  process.stderr.write('cairn: building the native CommP addon for this machine (first use, a few seconds)\n')
  spawnSync(process.execPath, [script, '--cc-only', '--quiet', '--out', target], { stdio: 'ignore', timeout: 120_000 })
  return existsSync(target) ? target : undefined
}

/** The addon, or the reason it could not be loaded. */
export function loadNative (): { addon?: NativeAddon, reason?: string } {
  if (cached !== undefined) return cached
  const require = createRequire(import.meta.url)
  const override = process.env.CAIRN_COMMP_ADDON
  const candidates = override !== undefined ? [pathToFileURL(override)] : [...packageCandidates(), pathToFileURL(nativeCacheFile())]
  let reason = override !== undefined ? `no addon at CAIRN_COMMP_ADDON=${override}` : 'addon not built and no C compiler to build it (see proofs/native/build.mjs)'
  const attempt = (url: URL): NativeAddon | undefined => {
    try {
      const addon = require(fileURLToPath(url)) as NativeAddon
      if (typeof addon.rootSync === 'function' && typeof addon.root === 'function') return addon
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // e.g. an addon packed on another platform: built again below
      if (code !== 'MODULE_NOT_FOUND') reason = `addon failed to load: ${(err as Error).message}`
    }
    return undefined
  }
  for (const url of candidates) {
    const addon = attempt(url)
    if (addon !== undefined) {
      cached = { addon }
      return cached
    }
  }
  if (override === undefined) {
    const built = buildOnFirstUse()
    const addon = built === undefined ? undefined : attempt(pathToFileURL(built))
    if (addon !== undefined) {
      cached = { addon, built }
      return cached
    }
  }
  cached = { reason }
  return cached
}
