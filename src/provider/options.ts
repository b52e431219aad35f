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
import { parseAmount, parseChoice, parseCount, parseDuration, parseListen, parsePieceSize, parseSize } from '../config/values.js'

interface OptionSpec<T> {
  /** commander's form, e.g. `--max-piece-size <size>`; the key is its camelCase name */
  flag: string
  help: string
  /** as a person would write it */
  default: string
  parse: (value: string, flag: string) => T
  /** the value as config.json takes it back (docs/json.md: sizes in bytes and durations in seconds as numbers, money as a decimal string) */
  json: (value: T) => string | number
}

type Kind<T> = Pick<OptionSpec<T>, 'parse' | 'json'>
const spec = <T>(kind: Kind<T>) => (flag: string, help: string, def: string): OptionSpec<T> => ({ flag, help, default: def, ...kind })

const size = spec<bigint>({ parse: (v, f) => positiveSize(v, f), json: Number })
const pieceSize = spec<bigint>({ parse: parsePieceSize, json: Number })
const amount = spec<bigint>({ parse: parseAmount, json: String })
const duration = spec<number>({ parse: (v, f) => parseDuration(v, f, 0), json: (v) => v })
const count = (min: number, max: number) => spec<number>({ parse: (v, f) => parseCount(v, f, min, max), json: (v) => v })
const choice = <T extends string>(choices: readonly T[]) => spec<T>({ parse: (v, f) => parseChoice(v, f, choices), json: (v) => v })
const address = spec<{ host: string, port: number }>({ parse: parseListen, json: ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}` })

export const providerOptions = {
  listen: address('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:7470'),
  price: amount('--price <amount>', 'price per GiB per day, base units', '40'),
  collateral: amount('--collateral <amount>', 'provider collateral per GiB, base units', '0'),
  minPieceSize: pieceSize('--min-piece-size <size>', 'smallest padded piece taken, a power of two (bytes, or 1MiB, 2GiB…)', '128'),
  maxPieceSize: pieceSize('--max-piece-size <size>', 'largest padded piece taken, a power of two', '32GiB'),
  capacity: size('--capacity <size>', 'total padded bytes this provider holds', '100GiB'),
  maxDuration: duration('--max-duration <duration>', 'longest deal taken (seconds, or 24h, 180d…)', '540d'),
  provingPeriod: duration('--proving-period <duration>', 'shortest proving period offered', '24h'),
  challenges: count(1, 1024)('--challenges <n>', 'most challenges answered per proof (1 to 1024)', '16'),
  adminPort: count(0, 65535)('--admin-port <port>', 'port of the loopback admin API and dashboard (0: any free port)', '0'),
  logFormat: choice(['text', 'json'] as const)('--log-format <format>', 'log lines on stderr: text, or json (one JSON object per line)', 'text'),
  logLevel: choice(['debug', 'info', 'warn', 'error'] as const)('--log-level <level>', 'least severe level logged: debug, info, warn or error', 'info')
} as const

function positiveSize (value: string, flag: string): bigint {
  const n = parseSize(value, flag, 0n)
  if (n <= 0n) throw new CairnError('ERR_INVALID_ARGUMENT', `${flag} must be more than 0 bytes, got ${JSON.stringify(value)}`)
  return n
}

export type ProviderOptionName = keyof typeof providerOptions
export type ProviderSettings = { [K in ProviderOptionName]: ReturnType<typeof providerOptions[K]['parse']> }
export type SettingSource = 'default' | 'config' | 'flag'

export interface EffectiveSettings {
  settings: ProviderSettings
  /** where each value came from */
  sources: Record<ProviderOptionName, SettingSource>
  /** the config file read, if any */
  file: string | undefined
}

const names = Object.keys(providerOptions) as ProviderOptionName[]

/** The `provider` section of a config file, each value a string as on the command line. */
export async function readProviderConfig (file: string, required: boolean): Promise<Partial<Record<ProviderOptionName, string>> | undefined> {
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
  const out: Partial<Record<ProviderOptionName, string>> = {}
  for (const [key, value] of Object.entries(section)) {
    if (!names.includes(key as ProviderOptionName)) {
      throw new CairnError('ERR_UNKNOWN_FIELD', `"provider.${key}" in ${file} is not a provider start option; known: ${names.join(', ')}`)
    }
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0)) {
      throw new CairnError('ERR_INVALID_ARGUMENT', `"provider.${key}" in ${file} must be a string or a whole number, got ${JSON.stringify(value)}`)
    }
    out[key as ProviderOptionName] = String(value)
  }
  return out
}

/**
 * The settings `provider start` runs with: `flags` (commander's values, only
 * those given) over the config file (`--config`, else the repo's config.json)
 * over the defaults, each checked, and the combination checked as a whole.
 */
export async function effectiveSettings (repoPath: string, flags: Partial<Record<ProviderOptionName, string>> & { config?: string }): Promise<EffectiveSettings> {
  const file = flags.config ?? join(repoPath, 'config.json')
  const fromFile = await readProviderConfig(file, flags.config !== undefined)
  const settings: Record<string, unknown> = {}
  const sources = {} as Record<ProviderOptionName, SettingSource>
  for (const name of names) {
    const option = providerOptions[name] as OptionSpec<unknown>
    const given = flags[name]
    const configured = fromFile?.[name]
    const source: SettingSource = given !== undefined ? 'flag' : configured !== undefined ? 'config' : 'default'
    const label = source === 'config' ? `provider.${name} in ${file}` : option.flag.split(' ')[0] as string
    settings[name] = option.parse(given ?? configured ?? option.default, label)
    sources[name] = source
  }
  const checked = settings as ProviderSettings
  if (checked.minPieceSize > checked.maxPieceSize) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--min-piece-size ${checked.minPieceSize} bytes exceeds --max-piece-size ${checked.maxPieceSize} bytes`)
  }
  if (checked.provingPeriod > checked.maxDuration) {
    throw new CairnError('ERR_INVALID_ARGUMENT', `--proving-period ${checked.provingPeriod} s is longer than --max-duration ${checked.maxDuration} s: no deal could hold one period`)
  }
  return { settings: checked, sources, file: fromFile === undefined ? undefined : file }
}

/** Settings as JSON a config file takes back (docs/json.md). */
export function settingsJSON (settings: ProviderSettings): Record<ProviderOptionName, string | number> {
  const out = {} as Record<ProviderOptionName, string | number>
  for (const name of names) out[name] = (providerOptions[name] as OptionSpec<unknown>).json(settings[name])
  return out
}
