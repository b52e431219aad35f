/** Moved to src/protocol/auth.ts; this re-export keeps older import paths building. */
export * from '../protocol/auth.js'
