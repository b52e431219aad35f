/**
 * The provider's HTTP toolkit now lives in src/http/server.ts, shared by every
 * server of the project; this name stays as a re-export for the PDP and
 * cluster routes that still import it from here.
 */
export * from '../http/server.js'
