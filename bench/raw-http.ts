/**
 * The loopback HTTP baseline for upload and retrieval figures: the same bytes
 * over plain node:http and undici, with nothing verified.
 *
 *   node dist/bench/raw-http.js serve <file>       prints {"url"} and serves GET (the file) and PUT (discarded)
 *   node dist/bench/raw-http.js put <url> <file>
 *   node dist/bench/raw-http.js get <url> <out>   (<out> - : to stdout)
 */
import { createServer } from 'node:http'
import { createReadStream, createWriteStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { request } from 'undici'

const [verb, a, b] = process.argv.slice(2)
if (verb === 'serve' && a !== undefined) {
  const { size } = await stat(a)
  const server = createServer((req, res) => {
    if (req.method === 'PUT') {
      req.resume()
      req.on('end', () => res.end())
      return
    }
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' })
    createReadStream(a, { highWaterMark: 1 << 20 }).pipe(res)
  })
  server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number }
    process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${address.port}/` }) + '\n')
  })
  process.on('SIGTERM', () => server.close(() => process.exit(0)))
} else if (verb === 'put' && a !== undefined && b !== undefined) {
  const { size } = await stat(b)
  const res = await request(a, { method: 'PUT', body: createReadStream(b, { highWaterMark: 1 << 20 }), headers: { 'content-length': String(size) } })
  await res.body.dump()
} else if (verb === 'get' && a !== undefined && b !== undefined) {
  const res = await request(a)
  await pipeline(res.body, b === '-' ? process.stdout : createWriteStream(b))
} else {
  throw new TypeError('usage: raw-http.js serve <file> | put <url> <file> | get <url> <out>')
}
