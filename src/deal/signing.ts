/** Moved to src/protocol/signing.ts; this re-export keeps older import paths building. */
export * from '../protocol/signing.js'
