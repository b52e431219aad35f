/**
 * Loads the optional native CommP addon (proofs/native/commp.c, built by the
 * package's install script). Absent or broken, it is simply not used.
 */
import { createRequire } from 'node:module'
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
}

let cached: { addon?: NativeAddon, reason?: string } | undefined

/** The addon, or the reason it could not be loaded. */
export function loadNative (): { addon?: NativeAddon, reason?: string } {
  if (cached !== undefined) return cached
  const require = createRequire(import.meta.url)
  // compiled: dist/proofs/native.js; from source: proofs/native.ts
  const override = process.env.CAIRN_COMMP_ADDON
  const candidates = override !== undefined ? [pathToFileURL(override)] : [
    new URL('../../proofs/native/build/Release/cairn_commp.node', import.meta.url),
    new URL('./native/build/Release/cairn_commp.node', import.meta.url)
  ]
  let reason = override !== undefined ? `no addon at CAIRN_COMMP_ADDON=${override}` : 'addon not built (npm install builds it; see proofs/native/build.mjs)'
  for (const url of candidates) {
    try {
      const addon = require(fileURLToPath(url)) as NativeAddon
      if (typeof addon.rootSync === 'function' && typeof addon.root === 'function') {
        cached = { addon }
        return cached
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'MODULE_NOT_FOUND') reason = `addon failed to load: ${(err as Error).message}`
    }
  }
  cached = { reason }
  return cached
}
