/** Moved to src/protocol/proof-request.ts; this re-export keeps older import paths building. */
export * from '../protocol/proof-request.js'
