import { encryptTree } from './dist/src/crypto/encrypt.js'
import { carStream } from './dist/src/unixfs/importer.js'
import { unpackCar } from './dist/src/crypto/unpack.js'
import { decrypterFor, parseRecipient } from './dist/src/crypto/keys.js'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { writeFile, rm } from 'node:fs/promises'
const id = await generateX25519Identity()
const r = await parseRecipient(await identityToRecipient(id))
await writeFile('/tmp/agesmoke/id.txt', id + '\n')
const plan = await encryptTree(['/tmp/agesmoke/in'], [r])
console.log(plan.root.toString(), plan.carSize, plan.files, plan.bytes)
const chunks = []
for await (const c of carStream(plan)) chunks.push(c)
await writeFile('/tmp/agesmoke/out.car', Buffer.concat(chunks))
await rm('/tmp/agesmoke/out', { recursive: true, force: true })
console.log(await unpackCar('/tmp/agesmoke/out.car', '/tmp/agesmoke/out', { decrypter: decrypterFor([id]) }))
await rm('/tmp/agesmoke/raw', { recursive: true, force: true })
console.log(await unpackCar('/tmp/agesmoke/out.car', '/tmp/agesmoke/raw', { decrypt: false }))
