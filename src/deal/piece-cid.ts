/** Moved to src/protocol/piece-cid.ts; this re-export keeps older import paths building. */
export * from '../protocol/piece-cid.js'
