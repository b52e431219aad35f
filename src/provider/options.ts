/**
 * Every option of `cairn provider start`, in one table: its flag, help, the
 * default as a person would write it, and the helper that checks it. The same
 * table declares the command line (bin/cairn.js), reads the `provider` section
 * of config.json (or `--config FILE`), and prints `cairn provider config`.
 * Adding an option is one line here; its value arrives in `ProviderSettings`.
 *
 * Precedence: a flag given on the command line, else the config file, else
 * the default. Kept free of heavy imports: bin/cairn.js loads it at start-up.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CairnError } from '../errors.js'
import { parseAmount, parseChainId, parseChoice, parseCount, parseDuration, parseEthAddress, parseHttpUrl, parseListen, parsePieceSize, parseSize } from '../config/values.js'
import { CALIBRATION } from '../pdp/calibration.js'
import { announceAddress } from '../routing/multiaddr.js'

/** `one`: always has a value; `optional`: none unless given; `many`: repeatable, a list (an array in config.json). */
type Arity = 'one' | 'optional' | 'many'

interface OptionSpec<T, A extends Arity = Arity> {
  /** commander's form, e.g. `--max-piece-size <size>` (a switch such as `--hash-on-read` takes no value); the key is its camelCase name */
  flag: string
  help: string
  /** as a person would write it; undefined for an optional or repeatable option */
  default: string | undefined
  arity: A
  parse: (value: string, flag: string) => T
  /** the value as config.json takes it back (docs/json.md: sizes in bytes and durations in seconds as numbers, money as a decimal string) */
  json: (value: T) => string | number | boolean
}

type Kind<T> = Pick<OptionSpec<T>, 'parse' | 'json'>
/** A kind of value, as rows: `kind(flag, help, default)`, `kind.optional(flag, help)`, `kind.many(flag, help)`. */
const kind = <T>(k: Kind<T>) => Object.assign(
  (flag: string, help: string, def: string): OptionSpec<T, 'one'> => ({ flag, help, default: def, arity: 'one', ...k }),
  {
    optional: (flag: string, help: string): OptionSpec<T, 'optional'> => ({ flag, help, default: undefined, arity: 'optional', ...k }),
    many: (flag: string, help: string): OptionSpec<T, 'many'> => ({ flag, help, default: undefined, arity: 'many', ...k })
  }
)

const size = kind<bigint>({ parse: (v, f) => positiveSize(v, f), json: Number })
const bytes = kind<bigint>({ parse: (v, f) => parseSize(v, f, 0n), json: Number })
const pieceSize = kind<bigint>({ parse: parsePieceSize, json: Number })
const amount = kind<bigint>({ parse: parseAmount, json: String })
const duration = kind<number>({ parse: (v, f) => parseDuration(v, f, 0), json: (v) => v })
/** a duration that may be 0 (at once) */
const durationOrNone = kind<number>({ parse: (v, f) => /^0+\s*[smhdw]?$/i.test(v.trim()) ? 0 : parseDuration(v, f, 0), json: (v) => v })
const count = (min: number, max: number) => kind<number>({ parse: (v, f) => parseCount(v, f, min, max), json: (v) => v })
const choice = <T extends string>(choices: readonly T[]) => kind<T>({ parse: (v, f) => parseChoice(v, f, choices), json: (v) => v })
const hostPort = kind<{ host: string, port: number }>({ parse: parseListen, json: ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}` })
const chainId = kind<bigint>({ parse: parseChainId, json: (v) => v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v) })
const ethAddress = kind<string>({ parse: parseEthAddress, json: (v) => v })
const httpUrl = kind<string>({ parse: (v, f) => parseHttpUrl(v, `a URL for ${f}`), json: (v) => v })
/** a PostgreSQL URL: its form checked here (src/postgres/db.ts checks it again when it connects) */
const dbUrl = kind<string>({ parse: parseDbUrlText, json: (v) => v })
const nodeName = kind<string>({ parse: (v, f) => { if (!/^[\x21-\x7e]{1,200}$/.test(v)) throw new CairnError('ERR_INVALID_ARGUMENT', `${f} is 1 to 200 printable ASCII characters without spaces, got ${JSON.stringify(v)}`); return v }, json: (v) => v })
/** a switch: on when its flag is given (commander passes true), or true/false in config.json */
const onOff = kind<boolean>({ parse: parseOnOff, json: (v) => v })
/** as a multiaddr (docs/routing.md), given as one or as an http(s) URL */
const reachableAt = kind<string>({ parse: (v) => announceAddress(v), json: (v) => v })

export const providerOptions = {
  listen: hostPort('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:7470'),
  price: amount('--price <amount>', 'price per GiB per day, base units', '40'),
  collateral: amount('--collateral <amount>', 'provider collateral per GiB, base units', '0'),
  minPieceSize: pieceSize('--min-piece-size <size>', 'smallest padded piece taken, a power of two (bytes, or 1MiB, 2GiB…)', '128'),
  maxPieceSize: pieceSize('--max-piece-size <size>', 'largest padded piece taken, a power of two', '32GiB'),
  capacity: size('--capacity <size>', 'total padded bytes this provider holds', '100GiB'),
  maxDuration: duration('--max-duration <duration>', 'longest deal taken (seconds, or 24h, 180d…)', '540d'),
  provingPeriod: duration('--proving-period <duration>', 'shortest proving period offered', '24h'),
  challenges: count(1, 1024)('--challenges <n>', 'most challenges answered per proof (1 to 1024)', '16'),
  proofBurst: count(1, 1_000_000)('--proof-burst <n>', 'proof requests one deal may make at once before they are rate-limited to one per 15 s', '8'),
  // the deal lifecycle (docs/protocol.md "Deal lifecycle"); the defaults are src/provider/deals.ts's DEFAULT_* (test/provider/config.test.ts holds them equal)
  uploadWindow: duration('--upload-window <duration>', 'time an accepted deal has to be uploaded (never past its start) before it expires and its space is freed', '1h'),
  maxStartDelay: duration('--max-start-delay <duration>', 'how far ahead a proposed deal may start', '7d'),
  retentionGrace: durationOrNone('--retention-grace <duration>', 'how long a piece no active deal holds is kept before its file is removed (0: at once)', '24h'),
  // connection caps (docs/protocol.md "Limits"): past them a connection is answered 503 ERR_TOO_MANY_CONNECTIONS and closed
  maxConnections: count(1, 1_000_000)('--max-connections <n>', 'connections open at once, in total', '4096'),
  maxConnectionsPerPeer: count(1, 1_000_000)('--max-connections-per-peer <n>', 'connections open at once from one address', '1024'),
  adminPort: count(0, 65535)('--admin-port <port>', 'port of the loopback admin API and dashboard (0: any free port)', '0'),
  logFormat: choice(['text', 'json'] as const)('--log-format <format>', 'log lines on stderr: text, or json (one JSON object per line)', 'text'),
  logLevel: choice(['debug', 'info', 'warn', 'error'] as const)('--log-level <level>', 'least severe level logged: debug, info, warn or error', 'info'),
  // the PDP piece API (docs/pdp.md); the park defaults are src/pdp/mount.ts's PDP_DEFAULTS (test/cli/provider-pdp.test.ts holds them equal)
  payee: ethAddress.optional('--payee <address>', 'Ethereum address PDP clients name as payee (announced in the ask)'),
  chainId: chainId('--chain-id <id>', "EIP-712 chain id of PDP clients' signatures (314159: Filecoin calibration)", String(CALIBRATION.chainId)),
  fwssAddress: ethAddress('--fwss-address <address>', 'EIP-712 verifying contract: the FilecoinWarmStorageService address', CALIBRATION.fwssAddress),
  parkTtl: duration('--park-ttl <duration>', 'how long an uploaded PDP piece no data set references is kept', '24h'),
  parkQuota: bytes('--park-quota <size>', 'parked PDP bytes in total', '64GiB'),
  parkQuotaPerClient: bytes('--park-quota-per-client <size>', 'parked PDP bytes per client', '8GiB'),
  dataSetTerm: duration('--data-set-term <duration>', 'how long a PDP data set lasts from its creation; then it is no longer proven and its pieces are released (its capacity freed)', '365d'),
  pullSources: choice(['public', 'any'] as const)('--pull-sources <which>', 'hosts POST /pdp/piece/pull may fetch from: public, or any (also loopback, private and link-local addresses, for providers on one private network)', 'public'),
  // the self-check (docs/monitoring.md "Provider self-check"): 0 turns it off
  selfCheck: durationOrNone('--self-check <duration>', 'every so often (10m, 1h), store a synthetic piece through the PDP upload route, fetch it back through /piece and /ipfs, prove and remove it, then prove and verify a sample of stored pieces as a client would; results in /metrics (0: never)', '0'),
  selfCheckSample: count(1, 1000)('--self-check-sample <n>', 'pieces proved per self-check round', '4'),
  // content routing (docs/routing.md)
  announceTo: httpUrl.many('--announce-to <url>', "an indexer to announce active deals' blocks to (repeatable)"),
  announceAddress: reachableAt.many('--announce-address <url>', 'where clients reach this provider, as announced (repeatable; default: the --listen URL)'),
  // cluster mode (docs/cluster.md "Running a cluster"): every node started with the same --db is one provider
  db: dbUrl.optional('--db <url>', "PostgreSQL URL (postgres://…) of the cluster's shared state: deals, indexes, ledger, tasks; leave out for one node on the repo's LevelDB"),
  node: nodeName.optional('--node <name>', "this node's name in the cluster (default: host name and --listen port)"),
  deadAfter: duration('--dead-after <duration>', 'silence after which a cluster node is dead and its tasks are taken over', '60s'),
  copies: count(1, 16)('--copies <n>', 'nodes of a cluster that hold each piece', '2'),
  // serve-time verification (docs/protocol.md "Retrieval"): off, as kubo's Datastore.HashOnRead
  hashOnRead: onOff('--hash-on-read', "re-hash every raw leaf of a stored CAR as it is streamed (inner nodes and each block's place are always checked; clients verify every block anyway)", 'false')
} as const

function parseOnOff (value: string, flag: string): boolean {
  if (value === 'true') return true
  if (value === 'false') return false
  throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} is true or false, got ${JSON.stringify(value)}`)
}

/** The form of a database URL (kept free of src/postgres/db.ts, which loads `pg`). */
function parseDbUrlText (value: string): string {
  let url: URL | undefined
  try { url = new URL(value) } catch {}
  if (url === undefined || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')) {
    throw new CairnError('ERR_DB_URL', `--db takes a PostgreSQL URL such as postgres://user@host:5432/cairn, got ${JSON.stringify(value.replace(/:[^:@/]*@/, ':***@'))}`)
  }
  return value
}

function positiveSize (value: string, flag: string): bigint {
  const n = parseSize(value, flag, 0n)
  if (n <= 0n) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be more than 0 bytes, got ${JSON.stringify(value)}`)
  return n
}

export type ProviderOptionName = keyof typeof providerOptions
type SettingOf<O extends { arity: Arity, parse: (value: string, flag: string) => unknown }> =
  O['arity'] extends 'many' ? Array<ReturnType<O['parse']>> : O['arity'] extends 'optional' ? ReturnType<O['parse']> | undefined : ReturnType<O['parse']>
export type ProviderSettings = { [K in ProviderOptionName]: SettingOf<typeof providerOptions[K]> }
export type SettingSource = 'default' | 'config' | 'flag'
/** Options as given, before checking: a string each, a list for a repeatable one (commander's values, or config.json's) */
export type RawOptions = Partial<Record<ProviderOptionName, string | boolean | string[]>>
/** An option's value as config.json holds it and `provider config --json` prints it */
export type SettingJSON = string | number | boolean | Array<string | number | boolean> | null

export interface EffectiveSettings {
  settings: ProviderSettings
  /** where each value came from */
  sources: Record<ProviderOptionName, SettingSource>
  /** the config file read, if any */
  file: string | undefined
}

const names = Object.keys(providerOptions) as ProviderOptionName[]
const specOf = (name: ProviderOptionName): OptionSpec<unknown> => providerOptions[name] as OptionSpec<unknown>

const isScalar = (value: unknown): value is string | number | boolean => typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)

/** The `provider` section of a config file, each value a string as on the command line (a list for a repeatable option). */
export async function readProviderConfig (file: string, required: boolean): Promise<RawOptions | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined
    throw new CairnError('ERR_PATH_NOT_FOUND', `cannot read the config file ${file}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new CairnError('ERR_INVALID_JSON', `${file} is not valid JSON: ${(err as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CairnError('ERR_INVALID_JSON', `${file} must hold a JSON object`)
  const section = (parsed as { provider?: unknown }).provider
  if (section === undefined) return {}
  if (section === null || typeof section !== 'object' || Array.isArray(section)) throw new CairnError('ERR_INVALID_ARGUMENT', `"provider" in ${file} must be an object of provider start options`)
  const out: RawOptions = {}
  for (const [key, value] of Object.entries(section)) {
    if (!names.includes(key as ProviderOptionName)) {
      throw new CairnError('ERR_UNKNOWN_FIELD', `"provider.${key}" in ${file} is not a provider start option; known: ${names.join(', ')}`)
    }
    const name = key as ProviderOptionName
    const arity = specOf(name).arity
    // null is what `provider config --json` prints for an optional option that is not set
    if (value === null && arity === 'optional') continue
    if (arity === 'many' && Array.isArray(value) && value.every(isScalar)) {
      out[name] = value.map(String)
    } else if (isScalar(value)) {
      out[name] = arity === 'many' ? [String(value)] : String(value)
    } else {
      const expected = arity === 'many' ? 'a string, a whole number or an array of them' : arity === 'optional' ? 'a string, a whole number or null' : 'a string or a whole number'
      throw new CairnError('ERR_INVALID_ARGUMENT', `"provider.${key}" in ${file} must be ${expected}, got ${JSON.stringify(value)}`)
    }
  }
  return out
}

/**
 * The settings from options as given: `given` (the flags) over `configured`
 * (the config file, named `file` in messages) over the defaults, each
 * checked, and the combination checked as a whole.
 */
export function settingsFrom (given: RawOptions, configured: RawOptions = {}, file = 'the config file'): Omit<EffectiveSettings, 'file'> {
  const settings: Record<string, unknown> = {}
  const sources = {} as Record<ProviderOptionName, SettingSource>
  for (const name of names) {
    const option = specOf(name)
    const source: SettingSource = given[name] !== undefined ? 'flag' : configured[name] !== undefined ? 'config' : 'default'
    const raw = given[name] ?? configured[name] ?? option.default
    const label = source === 'config' ? `provider.${name} in ${file}` : option.flag.split(' ')[0] as string
    const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
    if (option.arity !== 'many' && values.length > 1) throw new CairnError('ERR_USAGE', `${label} takes one value, got ${values.length}`)
    const parsed = values.map((v) => option.parse(String(v), label))
    settings[name] = option.arity === 'many' ? parsed : parsed[0]
    sources[name] = source
  }
  const checked = settings as ProviderSettings
  if (checked.minPieceSize > checked.maxPieceSize) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--min-piece-size ${checked.minPieceSize} bytes exceeds --max-piece-size ${checked.maxPieceSize} bytes`)
  }
  if (checked.provingPeriod > checked.maxDuration) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--proving-period ${checked.provingPeriod} s is longer than --max-duration ${checked.maxDuration} s: no deal could hold one period`)
  }
  if (checked.announceAddress.length > 0 && checked.announceTo.length === 0) {
    throw new CairnError('ERR_USAGE', '--announce-address says where clients reach the provider; it needs --announce-to')
  }
  const { host } = checked.listen
  if (checked.announceTo.length > 0 && checked.announceAddress.length === 0 && (host === '0.0.0.0' || host === '::')) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--listen ${settingsJSON(checked).listen as string} is a wildcard address that clients cannot reach; name the provider's public URL with --announce-address`)
  }
  return { settings: checked, sources }
}

/**
 * The settings `provider start` runs with: `flags` (commander's values, only
 * those given) over the config file (`--config`, else the repo's config.json)
 * over the defaults (settingsFrom).
 */
export async function effectiveSettings (repoPath: string, flags: RawOptions & { config?: string }): Promise<EffectiveSettings> {
  const file = flags.config ?? join(repoPath, 'config.json')
  const fromFile = await readProviderConfig(file, flags.config !== undefined)
  const given: RawOptions = {}
  for (const name of names) if (flags[name] !== undefined) given[name] = flags[name]
  return { ...settingsFrom(given, fromFile, file), file: fromFile === undefined ? undefined : file }
}

/** Settings as JSON a config file takes back (docs/json.md); an optional option not set is null. */
export function settingsJSON (settings: ProviderSettings): Record<ProviderOptionName, SettingJSON> {
  const out = {} as Record<ProviderOptionName, SettingJSON>
  for (const name of names) {
    const option = specOf(name)
    const value = settings[name] as unknown
    out[name] = option.arity === 'many' ? (value as unknown[]).map(option.json) : value === undefined ? null : option.json(value)
  }
  return out
}
