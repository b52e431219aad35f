/**
 * The direction of imports, checked on the sources: which folder may not
 * import which, that car/ is entered through its index, and that no files
 * import each other in a circle. The rules are a table; a rule that a later
 * change needs is a row added here, and an exception is listed with its
 * reason until the code it excuses is gone (an exception that no longer
 * matches anything fails too, so the list only shrinks).
 */
import test from 'ava'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Rule {
  /** files whose path starts with this… */
  from: string
  /** …may not import files whose path starts with this */
  to: string
  /** …unless the imported file is one of these */
  unless?: string[]
  why: string
}

const RULES: Rule[] = [
  { from: 'proofs/', to: 'src/', why: 'proofs/ stands alone, so that a third party can verify proofs with it alone' },
  { from: 'src/client/', to: 'src/gateway/', why: 'the client reads UnixFS through unixfs/, as the gateway does; it speaks to a gateway only over HTTP' },
  { from: 'src/unixfs/', to: 'src/gateway/', why: 'the gateway is built on the UnixFS reader, not the other way round' },
  { from: 'src/car/', to: 'src/unixfs/', why: 'CAR framing knows blocks, not what they mean' },
  { from: 'src/', to: 'src/car/', unless: ['src/car/index.ts'], why: 'car/index.ts is the one import surface of car/' },
  { from: 'src/client/', to: 'src/provider/', why: 'client and provider meet only in protocol/ (the messages) and http/ (the plumbing)' },
  { from: 'src/provider/', to: 'src/client/', why: 'client and provider meet only in protocol/ (the messages) and http/ (the plumbing)' },
  { from: 'src/gateway/', to: 'src/provider/', why: 'the provider mounts the gateway; the gateway knows only the block source it is given' },
  { from: 'src/protocol/', to: 'src/client/', why: 'the protocol is what both sides speak; it depends on neither' },
  { from: 'src/protocol/', to: 'src/provider/', why: 'the protocol is what both sides speak; it depends on neither' },
  { from: 'src/http/', to: 'src/client/', why: 'the HTTP plumbing is shared by both sides and depends on neither' },
  { from: 'src/http/', to: 'src/provider/', why: 'the HTTP plumbing is shared by both sides and depends on neither' }
]

/** Imports that break a rule today, each with why it is still there; `from -> to`. */
const EXCEPTIONS: Record<string, string> = {}

/** Circles that exist today, each with why; files in sorted order, joined by ' <-> '. */
const KNOWN_CIRCLES: Record<string, string> = {}

const SOURCES = ['src', 'proofs']

function sourceFiles (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) {
      if (name !== 'build' && name !== 'node_modules') out.push(...sourceFiles(path))
    } else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) {
      out.push(path)
    }
  }
  return out
}

/** Module specifiers a file imports or re-exports, type-only ones included: they are dependencies of its design too. */
export function specifiers (text: string): string[] {
  const out: string[] = []
  const statement = /(?:^|\n)[ \t]*(?:import|export)[ \t]+(?:type[ \t]+)?(?:[^'";]*?[ \t\n]from[ \t]*)?['"]([^'"\n]+)['"]/g
  const dynamic = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g
  for (const re of [statement, dynamic]) {
    for (const m of text.matchAll(re)) out.push(m[1])
  }
  return out
}

function resolveImport (file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined
  const base = resolve(ROOT, dirname(file), spec)
  for (const candidate of [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return relative(ROOT, candidate)
  }
  throw new Error(`${file}: cannot resolve import ${JSON.stringify(spec)}`)
}

type Graph = Map<string, Set<string>>

function importGraph (): Graph {
  const graph: Graph = new Map()
  for (const file of SOURCES.flatMap(sourceFiles)) {
    const edges = new Set<string>()
    for (const spec of specifiers(readFileSync(join(ROOT, file), 'utf8'))) {
      const target = resolveImport(file, spec)
      if (target !== undefined) edges.add(target)
    }
    graph.set(file, edges)
  }
  return graph
}

/** Every import that breaks a rule, as `from -> to (why)`. */
export function violations (graph: Graph, rules: Rule[]): Array<{ edge: string, why: string }> {
  const out: Array<{ edge: string, why: string }> = []
  for (const [from, targets] of graph) {
    for (const to of targets) {
      for (const rule of rules) {
        if (from.startsWith(rule.from) && to.startsWith(rule.to) && !from.startsWith(rule.to) && rule.unless?.includes(to) !== true) {
          out.push({ edge: `${from} -> ${to}`, why: rule.why })
        }
      }
    }
  }
  return out
}

/** The strongly connected components of more than one file, or of one file importing itself (Tarjan). */
export function circles (graph: Graph): string[] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || graph.get(v)?.has(v) === true) out.push(component.sort().join(' <-> '))
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return out.sort()
}

const graph = importGraph()

test('the parser reads every form of import the sources use', t => {
  const text = [
    "import a from './a.js'",
    "import type { B } from '../b.js'",
    'import {\n  c,\n  type D\n} from "./c.js"',
    "export * from './e.js'",
    "export { f } from './f.js'",
    "import './side-effect.js'",
    "const g = await import('./g.js')",
    " * import x from './not-code.js' inside a comment"
  ].join('\n')
  t.deepEqual(specifiers(text), ['./a.js', '../b.js', './c.js', './e.js', './f.js', './side-effect.js', './g.js'])
  t.true(graph.size > 100, `read ${graph.size} files`)
  t.true(graph.get('src/unixfs/exporter.ts')?.has('src/car/index.ts'))
})

test('the checks find a forbidden import and a circle when there is one', t => {
  const bad: Graph = new Map([
    ['src/client/x.ts', new Set(['src/gateway/y.ts', 'src/car/index.ts', 'src/protocol/m.ts', 'src/http/h.ts'])],
    ['src/gateway/y.ts', new Set(['src/car/reader.ts', 'src/client/x.ts', 'src/provider/interface.ts'])],
    ['src/provider/z.ts', new Set(['src/client/x.ts', 'src/protocol/m.ts'])]
  ])
  t.deepEqual(violations(bad, RULES).map(v => v.edge), [
    'src/client/x.ts -> src/gateway/y.ts',
    'src/gateway/y.ts -> src/car/reader.ts',
    'src/gateway/y.ts -> src/provider/interface.ts',
    'src/provider/z.ts -> src/client/x.ts'
  ])
  t.deepEqual(circles(bad), ['src/client/x.ts <-> src/gateway/y.ts'])
})

test('no import breaks a rule of the table', t => {
  const found = violations(graph, RULES)
  const unexpected = found.filter(v => EXCEPTIONS[v.edge] === undefined).map(v => `${v.edge}: ${v.why}`)
  t.deepEqual(unexpected, [])
  const stale = Object.keys(EXCEPTIONS).filter(edge => !found.some(v => v.edge === edge))
  t.deepEqual(stale, [], 'an exception that no longer applies is removed from the list')
})

test('no files import each other in a circle', t => {
  const found = circles(graph)
  t.deepEqual(found.filter(c => KNOWN_CIRCLES[c] === undefined), [])
  t.deepEqual(Object.keys(KNOWN_CIRCLES).filter(c => !found.includes(c)), [], 'a circle that is gone is removed from the list')
})
