/**
 * `--help` of every command (found by walking `cairn --help`) shows examples
 * and the global options; progress lines carry the rate and the time left.
 */
import test from 'ava'
import { progressLine } from '../../src/cli/output.js'
import { cairn } from '../helpers/cli.js'

function subcommands (help: string): string[] {
  const section = help.split(/\n(?=\S)/).find(s => s.startsWith('Commands:')) ?? ''
  return section.split('\n').slice(1)
    .map(line => /^ {2}([a-z][a-z-]*)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined && name !== 'help')
}

test('every command has examples and shows the global options in --help', async t => {
  const queue: string[][] = [[]]
  const seen: string[] = []
  while (queue.length > 0) {
    const path = queue.shift() as string[]
    const r = await cairn([...path, '--help'])
    t.is(r.code, 0, `${path.join(' ')}: ${r.stderr}`)
    t.regex(r.stdout, /\nExamples:\n {2}\$ cairn /, `cairn ${path.join(' ')} --help has examples`)
    for (const example of r.stdout.split('Examples:')[1]?.trim().split('\n') ?? []) t.regex(example, /^ *\$ cairn /)
    if (path.length > 0) {
      t.regex(r.stdout, /\nGlobal Options:\n/, `cairn ${path.join(' ')} --help shows the global options`)
      for (const flag of ['--repo <dir>', '--json', '--quiet', '--no-progress']) t.true(r.stdout.includes(flag), `${path.join(' ')}: ${flag}`)
    }
    seen.push(path.join(' '))
    for (const sub of subcommands(r.stdout)) queue.push([...path, sub])
  }
  const expected = ['add', 'get', 'deal', 'ledger export', 'ledger verify', 'ledger witness', 'provider start', 'provider config', 'deals', 'watch', 'share', 'indexer', 'indexer start', 'routers', 'routers add', 'routers ls', 'routers rm']
  for (const command of expected) t.true(seen.includes(command), command)
})

test('the flags and verbs of deal lifecycle, limits and witnessed heads have examples of their own', async t => {
  const wanted: Array<[string[], string]> = [
    [['deal'], 'cairn deal --resume '],
    [['deal'], '--start-delay '],
    [['deals'], 'cairn deals cancel '],
    [['get'], '--timeout '],
    [['ledger', 'verify'], '--against '],
    [['ledger', 'witness'], 'cairn ledger witness'],
    [['provider', 'start'], '--upload-window '],
    [['provider', 'start'], '--max-connections ']
  ]
  for (const [path, text] of wanted) {
    const r = await cairn([...path, '--help'])
    t.true((r.stdout.split('Examples:')[1] ?? '').includes(text), `cairn ${path.join(' ')} --help: an example with ${text}`)
  }
})

test('a progress line shows done of total, the rate and the time left at that rate', t => {
  const line = progressLine('uploading', 256 * 1024 * 1024, 2, 1024 * 1024 * 1024)
  t.regex(line, /^uploading \[#{8}-{22}\] 256\.0 MiB\/1\.0 GiB 128\.0 MiB\/s eta 6s$/)
  t.regex(progressLine('fetching', 10 << 20, 1), /^fetching 10\.0 MiB 10\.0 MiB\/s$/)
  t.regex(progressLine('x', 1, 100, 1 << 30), /eta 2h59m|eta \d+h\d\dm/)
  t.regex(progressLine('x', 0, 1, 100), /eta \?$/)
})
