#!/usr/bin/env node
// The cairn command line: declares commands and lazily loads one module per
// command from dist/src/cli/. Exit statuses are decided here and nowhere else.
import { Command, CommanderError, Option } from 'commander'
import { readFileSync } from 'node:fs'

// A reader that stops early (`cairn ledger log | head`) is no failure: stop quietly, as a
// SIGPIPE would, instead of dying on an unhandled EPIPE.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  process.stderr.write(`error ERR_IO: cannot write to stdout: ${err.message}\n`)
  process.exit(1)
})

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

const load = (name, fn = 'default') => async (...args) => {
  const command = args.at(-1)
  const options = { ...command.optsWithGlobals() }
  const positional = args.slice(0, -2).flat()
  const mod = await import(`../dist/src/cli/${name}.js`)
  await mod[fn](positional, options)
}

const program = new Command('cairn')
  .description('A Filecoin-style storage node and client: content-addressed pieces, signed deals, proofs of storage, verified retrieval.')
  .version(pkg.version, '-V, --version')
  .option('--repo <dir>', 'repository directory (env CAIRN_REPO, default ~/.cairn)')
  .option('--json', 'print one JSON document (streaming commands: one object per line)')
  .option('-q, --quiet', 'print only the essential result')
  .option('--no-progress', 'never draw progress bars')
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text.startsWith('error: ') ? `error ERR_USAGE: ${text.slice(7)}` : text) })

const profile = () => new Option('--profile <name>', 'UnixFS profile (IPIP-499): unixfs-v1-2025 or unixfs-v0-2015').default('unixfs-v1-2025')
const contentOptions = (cmd) => cmd
  .addOption(profile())
  .option('--chunk-size <bytes>', 'chunk size in bytes (overrides the profile)')
  .option('--max-links <n>', 'maximum links per file node (overrides the profile)')
  .option('--wrap', 'wrap the input in a directory, as ipfs-car pack does')
  .option('--hidden', 'include hidden files (names starting with .)')

program.command('init').description('create the repo: Ed25519 identity, config.json, ledger, piece store').action(load('init'))
program.command('id').description("print this node's did:key, age recipient, repo path and roles")
  .option('--age-identity', 'print the age identity (AGE-SECRET-KEY-1…) instead, for `age -d -i`; keep it secret')
  .action(load('id'))
program.command('demo').description('run a provider and a client on loopback in a temporary repo and store, retrieve and compare a sample directory')
  .option('--keep', 'keep the temporary repos').action(load('demo'))

contentOptions(program.command('add').argument('<path...>').description('chunk files into a UnixFS DAG, store its piece (CAR) in the repo and print the root CID'))
  .option('--only-hash', 'compute the CIDs only; store nothing')
  .option('-Q, --quieter', 'print the root CID only')
  .action(load('add'))
contentOptions(program.command('pack').argument('<path...>').description('write the piece (a DFS-ordered CARv1) of files or directories, and print its piece CID'))
  .requiredOption('-o, --output <file>', 'output CAR file, or - for stdout')
  .action(load('pack'))
program.command('piece').argument('<file>').description('piece CID (v2 and v1), padded size and payload size of any file').action(load('piece'))
program.command('ls').argument('<cid|file.car>').description('list the entries of a DAG, verifying every block; an encrypted tree by its real names when this node can open them').action(load('ls'))
program.command('unpack').argument('<file.car>').description('verify a CAR and write its files')
  .requiredOption('-o, --output <dir>', 'target directory')
  .option('--force', 'overwrite an existing target')
  .action(load('unpack'))

const many = (value, previous = []) => [...previous, value]
program.command('get').argument('<cid[/path]>').description('retrieve from the repo, else from providers; verify every block; write the file or directory')
  .option('-o, --output <path>', 'where to write the file or directory (default: its name, or the CID)')
  .option('--car <file>', 'write the verified CAR instead of the files (- for stdout: streamed as each block is verified; a failure ends it at the last verified block)')
  .option('--provider <url>', 'a provider to try (repeatable), after the local repo and those holding deals', many)
  .option('--router <url>', 'a delegated router to ask for providers when none is named (repeatable; default: `cairn routers ls`)', many)
  .option('--force', 'replace an existing target')
  .option('--timeout <duration>', 'give up on a provider that sends no byte for this long, or averages under 16 KiB/s from twice this on (500ms, 30s, 2m)', '30s')
  .action(load('get'))

const providers = program.command('providers').description('the address book: providers known by URL and did:key, with their signed asks')
const providersVerb = (verb) => (...args) => load('providers')(verb, ...args)
providers.command('add').argument('<url>').description("fetch and verify a provider's signed ask and keep it").action(providersVerb('add'))
providers.command('ls').description('known providers: price, free capacity, last seen').action(providersVerb('ls'))
providers.command('rm').argument('<did|url>').description('forget a provider').action(providersVerb('rm'))
const routers = program.command('routers').description('delegated routers (Delegated Routing V1 HTTP API, e.g. a cairn indexer) that `get` asks for providers')
const routersVerb = (verb) => (...args) => load('routers')(verb, ...args)
routers.command('add').argument('<url>').description('check that a router answers and keep it').action(routersVerb('add'))
routers.command('ls').description('the configured routers').action(routersVerb('ls'))
routers.command('rm').argument('<url>').description('forget a router').action(routersVerb('rm'))
program.command('ask').argument('<url>').description("show a provider's signed ask, verified").action(load('ask'))
program.command('deal').argument('[cid]').description('propose the piece of <cid>, upload it, wait until the provider has verified and stored it; --resume <id> takes an interrupted deal on')
  .option('--provider <url>', 'provider to deal with (repeatable; default: the cheapest in the address book)', many)
  .option('--replicas <n>', 'without --provider: how many distinct providers to use', '1')
  .option('--duration <duration>', 'deal length (seconds, or 24h, 180d…)', '180d')
  .option('--max-price <amount>', 'most paid per GiB per day, base units (default 1000: a provider\'s ask is never taken as it is)')
  .option('--challenges <n>', 'challenges per proof')
  .option('--proving-period <duration>', 'how often the provider proves possession (default: its ask)')
  .option('--label <text>', 'a label of up to 256 bytes')
  .option('--resume <id>', 'resume an interrupted deal (proposed or accepted) instead of making a new one; with one --provider <url>, at that node of the deal\'s provider')
  .option('--start-delay <duration>', 'time from now to the deal\'s start, by which the upload must be done (default: the upload at 1 MiB/s, 0 up to 60 MiB)')
  .option('--distinct', 'each replica its own encryption (own keys, own piece CID), so providers cannot serve each other\'s audits from one copy; the default for encrypted content (or --encrypt) with more than one replica; plaintext cannot be distinct')
  .option('--no-distinct', 'identical replicas of encrypted content: the same piece at every provider')
  .action(load('deal'))
program.command('deals').argument('[show|cancel]').argument('[id]').description("the client's deals; `deals show <id>` for one; `deals cancel <id>` cancels one not yet active and tells its provider")
  .option('--state <state>', 'only deals in this state')
  .option('--provider <did|url>', 'only deals with this provider')
  .action(load('deals'))
const auditFlags = (cmd) => cmd
  .option('--challenges <n>', "leaves challenged per proof (default: the deal's term)")
  .option('--timeout <duration>', 'deadline for a proof (500ms, 30s, 2m)', '30s')
  .option('--deadline <auto|duration>', 'auto: a deadline per deal from its piece size, the challenges and the provider\'s round trip, about what proving from a local copy takes (docs/encryption.md "Deadlines"); a duration: as --timeout')
  .option('--retries <n>', 're-sends to an unreachable provider before it counts as a miss', '3')
  .option('--backoff <duration>', 'first wait before a re-send, doubled each time', '1s')
auditFlags(program.command('audit').argument('[deal-id...]').description('challenge providers now, verify the proofs, record the results; exit 3 if any fails or is missed'))
  .option('--all', 'every active deal')
  .option('--data-set <id>', 'audit this PDP data set at --provider instead: challenges drawn as PDPVerifier draws them, proofs verified here, the result recorded in the ledger (watch then audits it every --data-set-period)')
  .option('--provider <url>', 'the PDP service holding --data-set; with deal ids or --all: send the challenges here instead of where each deal was made (another node of the same provider, docs/cluster.md)')
  .action(load('audit'))
auditFlags(program.command('watch').description('audit every active deal once per proving period, and every PDP data set audited before once per --data-set-period, at a random moment, until SIGINT'))
  .option('--once', 'audit every deal whose current period is not yet audited, now, then stop')
  .option('--until <time>', 'stop at this time (ISO, unix seconds, or a duration from now)')
  .option('--max-periods <n>', 'stop after auditing each deal this many times')
  .option('--tick <duration>', 'how often the schedule is looked at', '1s')
  .option('--data-set-period <duration>', 'how often each PDP data set recorded by `audit --data-set` is audited', '24h')
  .option('--alert-exec <cmd>', 'run this shell command once per incident opened and resolved, the alert as JSON on stdin (docs/monitoring.md)')
  .option('--alert-webhook <url>', 'POST each alert as JSON to this URL, with retries')
  .option('--alert-timeout <duration>', 'bound on one alert command or webhook attempt', '10s')
  .option('--alert-expiring <duration>', 'alert on a piece whose last deal ends within this (24h, 7d)', '7d')
  .option('--alert-below <p>', "alert when a provider's predicted pass probability falls below this", '0.7')
  .action(load('watch'))

const ledger = program.command('ledger').description('the signed, hash-chained record of everything that happened to deals')
const ledgerVerb = (verb) => (...args) => load('ledger')(verb, ...args)
ledger.command('log').description('entries, newest first')
  .option('--deal <id>', 'only entries about this deal')
  .option('--kind <kind>', 'only entries of this kind (deal-proposed, proof-passed, payment-accrued, …)')
  .option('--limit <n>', 'at most this many entries')
  .action(ledgerVerb('log'))
ledger.command('verify').description('re-check the whole chain (links, entry CIDs, signatures) and re-derive every index from it; exit 3 at the first broken entry or index')
  .option('--all-signatures', 'verify every signature on its own, not only through the hash chain')
  .option('--against <export>', "also check a counterparty's `ledger export` still holds every head of it this ledger witnessed (exit 3 if cut short or rewritten)")
  .action(ledgerVerb('verify'))
ledger.command('export').description('all entries as newline-delimited DAG-JSON, verifiable by a third party')
  .option('-o, --output <file>', 'write to a new file instead of stdout')
  .action(ledgerVerb('export'))
ledger.command('balance').description('per counterparty: earned, paid, slashed collateral, outstanding').action(ledgerVerb('balance'))
ledger.command('witness').description("counterparties' ledger heads seen in signed messages: how many, and the newest").action(ledgerVerb('witness'))

const provider = program.command('provider').description('run a storage provider and ask the running one about itself')
// every `provider start` option comes from one table (src/provider/options.ts), which also reads config.json
const { providerOptions } = await import('../dist/src/provider/options.js')
const providerSettings = (cmd) => {
  for (const o of Object.values(providerOptions)) {
    if (o.arity === 'many') cmd.option(o.flag, o.help, many)
    // a switch (no <value>) is off unless given
    else cmd.option(o.flag, o.default === undefined || !o.flag.includes('<') ? o.help : `${o.help} (default: ${o.default})`)
  }
  return cmd.option('--config <file>', "read the provider's options from this JSON file's \"provider\" object (default: the repo's config.json)")
}
providerSettings(provider.command('start').description('run the provider in the foreground (HTTP API, Trustless Gateway, piece retrieval) until SIGINT/SIGTERM'))
  .action(load('provider', 'start'))
providerSettings(provider.command('config').description('print the settings `provider start` would use: flags over the config file over the defaults, and where each came from'))
  .action(load('provider', 'config'))
provider.command('status').description('capacity used and free, deals by state, proofs answered, earnings (from the running provider)').action(load('provider', 'status'))
provider.command('deals').description("the running provider's deals")
  .option('--state <state>', 'only deals in this state (accepted, active, failed, …)')
  .action(load('provider', 'deals'))

// a cluster of provider nodes on one PostgreSQL database (docs/cluster.md)
const cluster = program.command('cluster').description('the nodes of a provider cluster sharing one PostgreSQL database: their pieces and tasks')
const clusterDb = (cmd) => cmd.option('--db <url>', "the cluster's PostgreSQL URL (default: the \"db\" of the repo's provider config)")
clusterDb(cluster.command('status').description('nodes with their last heartbeat and pieces held, pieces on too few nodes, tasks by type and state'))
  .option('--copies <n>', 'nodes each piece should be on (default: the provider config\'s, 2)')
  .action(load('cluster', 'status'))
clusterDb(cluster.command('drain').argument('<node>').description('stop a node taking tasks and copy each of its pieces to another node, before it leaves'))
  .action(load('cluster', 'drain'))

// Encryption (docs/encryption.md): the flags of add and pack, and share
const encryptOptions = (cmd) => cmd
  .option('--encrypt', "encrypt every file and name (age format) for this node's age key and any --recipient")
  .option('--recipient <age1…>', 'also encrypt for this age recipient (repeatable; implies --encrypt)', many)
  .option('--recipients-file <file>', 'also encrypt for the recipients in this file, one per line as age -R reads them (repeatable)', many)
for (const name of ['add', 'pack', 'deal']) encryptOptions(program.commands.find(c => c.name() === name))
const decryptOptions = (cmd) => cmd
  .option('--identity <file>', "also decrypt with the age identities in this file (repeatable; the repo's own is always tried)", many)
  .option('--no-decrypt', 'take an encrypted tree as it is stored: entries by number, files in the age format')
for (const name of ['get', 'unpack', 'ls']) decryptOptions(program.commands.find(c => c.name() === name))
program.command('share').argument('<root|file.car>').description('a new root of an encrypted tree that these recipients can read too: each file\'s age header is rewritten, no payload block changes')
  .option('--to <age1…>', 'share with this age recipient (repeatable)', many)
  .option('--recipients-file <file>', 'share with the recipients in this file, one per line as age -R reads them (repeatable)', many)
  .option('--identity <file>', "also open the headers with the age identities in this file (the repo's own is always tried)", many)
  .action(load('share'))

const indexer = program.command('indexer').description('run an indexer: takes signed advertisements from providers, answers Delegated Routing V1 lookups')
indexer.command('start').description('run the indexer in the foreground until SIGINT/SIGTERM; the index is kept in the repo, or in PostgreSQL with --db')
  .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7480')
  .option('--db <url>', "keep the index in this PostgreSQL database (postgres://…; its schema is created at start) instead of the repo's LevelDB; no repo needed")
  .action(load('indexer', 'start'))

// Examples shown at the end of each command's --help (every command has some: test/cli/help.test.ts)
const examples = {
  '': ['cairn init', 'cairn add photos/', 'cairn deal bafy… --provider http://provider.example:7470', 'cairn demo'],
  init: ['cairn init', 'cairn --repo /srv/cairn init'],
  id: ['cairn id', 'cairn id --json', 'cairn id --age-identity > key.txt   # for age -d -i key.txt; keep it secret'],
  demo: ['cairn demo', 'cairn demo --keep --json'],
  add: ['cairn add photos/', 'cairn add --json big.iso', 'cairn add -Q --profile unixfs-v0-2015 notes.txt', 'cairn add --only-hash --wrap photos/', 'cairn add --encrypt --recipient age1… photos/'],
  pack: ['cairn pack photos/ -o photos.car', 'cairn pack photos/ -o - | ipfs dag import', 'cairn pack --encrypt --recipients-file team.txt photos/ -o photos.car'],
  piece: ['cairn piece photos.car', 'cairn piece --json photos.car | jq -r .pieceCid'],
  ls: ['cairn ls photos.car', 'cairn ls bafy…', 'cairn ls --json bafy… | jq -r .path', 'cairn ls bafy… --identity key.txt   # an encrypted tree by its real names', 'cairn ls --no-decrypt bafy…'],
  unpack: ['cairn unpack photos.car -o restored/', 'cairn unpack photos.car -o restored/ --force', 'cairn unpack photos.car -o restored/ --identity key.txt'],
  get: [
    'cairn get bafy… -o photos/   # the repo, providers with deals, then the configured routers',
    'cairn get bafy…/cat.jpg -o - > cat.jpg',
    'cairn get bafy… --car - --provider http://provider.example:7470 > photos.car',
    'cairn get bafy…/notes/diary.txt   # in an encrypted tree too: real names, looked up in its encrypted names',
    'cairn get bafy… --router http://indexer.example:7480   # no repo needed',
    'cairn get bafy… -o photos/ --timeout 2m   # give up on a provider silent for 2 minutes, or slower than 16 KiB/s on average'
  ],
  share: ['cairn share bafy… --to age1…', 'cairn share photos.car --recipients-file team.txt --json'],
  providers: ['cairn providers add http://provider.example:7470', 'cairn providers ls'],
  'providers add': ['cairn providers add http://provider.example:7470'],
  'providers ls': ['cairn providers ls', 'cairn providers ls --json | jq -r ".[].url"'],
  'providers rm': ['cairn providers rm http://provider.example:7470', 'cairn providers rm did:key:z6Mk…'],
  routers: ['cairn routers add http://indexer.example:7480', 'cairn routers ls', 'cairn routers rm http://indexer.example:7480'],
  'routers add': ['cairn routers add http://indexer.example:7480   # checked with a lookup before it is kept'],
  'routers ls': ['cairn routers ls', 'cairn routers ls --json | jq -r ".[].url"'],
  'routers rm': ['cairn routers rm http://indexer.example:7480'],
  indexer: ['cairn --repo /srv/indexer indexer start --listen 0.0.0.0:7480'],
  'indexer start': [
    'cairn --repo /srv/indexer init && cairn --repo /srv/indexer indexer start --listen 0.0.0.0:7480',
    'cairn indexer start --json   # prints its URL; GET /routing/v1/providers/<cid> asks it who serves a CID',
    'cairn indexer start --db postgres://cairn@db.example:5432/cairn --listen 0.0.0.0:7480   # the index in PostgreSQL'
  ],
  ask: ['cairn ask http://provider.example:7470', 'cairn ask --json http://provider.example:7470 | jq .ask.pricePerGiBDay'],
  deal: [
    'cairn deal bafy… --provider http://provider.example:7470 --duration 180d --max-price 50',
    'cairn deal bafy… --replicas 3   # at most 1000 per GiB per day: a provider\'s ask is never taken as it is',
    'cairn deal --json bafy… --provider http://a:7470 --provider http://b:7470',
    'cairn deal bafy… --provider http://provider.example:7470 --start-delay 1h   # the upload must be done by the start',
    'cairn deal --resume bafyrei…   # an interrupted deal, from where it stopped',
    'cairn deal bafy… --encrypt --replicas 3   # three distinct encryptions: three pieces, one per provider',
    'cairn deal bafy… --replicas 2 --no-distinct   # an encrypted root as it is, the same piece twice'
  ],
  deals: ['cairn deals', 'cairn deals --state active --json', 'cairn deals show bafyrei…', 'cairn deals cancel bafyrei…   # a deal not yet active; its provider frees the space'],
  audit: ['cairn audit --all', 'cairn audit bafyrei… --challenges 32 --timeout 1m', 'cairn audit --all --deadline auto   # a proof must come about as fast as reading the leaves locally', 'cairn audit --data-set 3 --provider http://provider.example:7470 --json   # a PDP data set, proofs checked here'],
  watch: ['cairn watch', 'cairn watch --once --json', 'cairn watch --until 2025-12-31T00:00:00Z', 'cairn watch --deadline auto', 'cairn watch --alert-webhook https://alerts.example/cairn', "cairn watch --alert-exec 'logger -t cairn-alert'"],
  ledger: ['cairn ledger log --limit 20', 'cairn ledger verify', 'cairn ledger export -o ledger.ndjson', 'cairn ledger witness'],
  'ledger log': ['cairn ledger log --limit 20', 'cairn ledger log --deal bafyrei… --json', 'cairn ledger log --kind proof-failed | head'],
  'ledger verify': [
    'cairn ledger verify',
    'cairn ledger verify --all-signatures --json',
    'cairn ledger verify --against provider-ledger.ndjson   # the provider\'s export still holds every head of it seen here'
  ],
  'ledger export': ['cairn ledger export -o ledger.ndjson', 'cairn ledger export | gzip > ledger.ndjson.gz'],
  'ledger balance': ['cairn ledger balance', 'cairn ledger balance --json'],
  'ledger witness': ['cairn ledger witness', 'cairn ledger witness --json | jq -r ".[].counterparty"'],
  provider: ['cairn provider start --listen 0.0.0.0:7470', 'cairn provider status', 'cairn provider config --json'],
  'provider start': [
    'cairn --repo /srv/cairn provider start --listen 0.0.0.0:7470 --price 40 --capacity 4TiB',
    'cairn provider start --log-format json --admin-port 7471',
    'cairn provider start --config /etc/cairn/provider.json',
    'cairn provider start --listen 0.0.0.0:7470 --announce-to http://indexer.example:7480 --announce-address http://provider.example:7470',
    'cairn provider start --payee 0x1111111111111111111111111111111111111111 --park-ttl 24h --park-quota 64GiB',
    'cairn provider start --listen 10.0.0.5:7470 --pull-sources any   # PDP pulls from private addresses too (default: public only)',
    'cairn provider start --upload-window 30m --max-start-delay 3d --retention-grace 0   # deals that end, and their pieces removed at once',
    'cairn provider start --max-connections 8192 --max-connections-per-peer 256',
    'cairn provider start --self-check 10m --self-check-sample 8   # prove and verify 8 stored pieces every 10 minutes; see /metrics',
    'cairn provider start --db postgres://cairn@db.example/cairn --node node-a --listen 0.0.0.0:7470   # one node of a cluster'
  ],
  'provider config': ['cairn provider config', 'cairn provider config --capacity 8TiB --json > provider.json'],
  'provider status': ['cairn provider status', 'cairn provider status --json | jq .capacity'],
  'provider deals': ['cairn provider deals', 'cairn provider deals --state active --json'],
  cluster: ['cairn cluster status --db postgres://cairn@db.example/cairn', 'cairn cluster drain node-b'],
  'cluster status': ['cairn cluster status --db postgres://cairn@db.example/cairn', 'cairn cluster status --json | jq ".machines[] | {name, pieces}"'],
  'cluster drain': ['cairn cluster drain node-b   # then wait until `cluster status` shows no piece on too few nodes', 'cairn cluster drain node-b --db postgres://cairn@db.example/cairn --json']
}
const withExamples = (cmd, path = []) => {
  const key = path.join(' ')
  if (examples[key] !== undefined) cmd.addHelpText('after', `\nExamples:\n${examples[key].map((e) => `  $ ${e}`).join('\n')}\n`)
  for (const sub of cmd.commands) withExamples(sub, [...path, sub.name()])
}
withExamples(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  process.exitCode = await report(err)
}

/** The exit status of a known code (src/errors.ts), or undefined for an unknown one. */
async function exitStatusOf (code) {
  const { codes, exitStatusOf } = await import('../dist/src/errors.js')
  return Object.hasOwn(codes, code) ? exitStatusOf(code) : undefined
}

async function report (err) {
  if (err instanceof CommanderError) {
    // help and version are "errors" to commander; they are successes to a user
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0
    return 2
  }
  const json = process.argv.includes('--json')
  // CairnErrors, and the coded errors of proofs/ (which stands alone), keep their code
  const status = typeof err?.code === 'string' && err.code.startsWith('ERR_') ? await exitStatusOf(err.code) : undefined
  if (status !== undefined) {
    if (json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message } }) + '\n')
    process.stderr.write(`error ${err.code}: ${err.message}\n`)
    return status
  }
  if (err?.code === 'EPIPE') return 0
  process.stderr.write(`error ERR_INTERNAL: ${err?.message ?? err}\n`)
  if (process.env.CAIRN_DEBUG) process.stderr.write(`${err?.stack}\n`)
  return 1
}
