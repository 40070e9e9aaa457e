/*
 * transport.js -- the JS reference's transport figures, for benches/compare.sh to set beside
 * the Rust ones (benches/benches/transport.rs measures the same things):
 *
 *   shse/handshake        secret-handshake-ext 0.0.12 handshakes per second, client and server
 *                         in this process, connected by an in-memory pull-stream pair;
 *   secretstream/memory   pull-secretstream 2.0.3 encrypt -> decrypt of MB chunks in memory
 *                         (64 KiB writes), MB/s;
 *   secretstream/tcp      one SHSE + secretstream connection over loopback TCP (client and
 *                         server in this process), MB chunks client -> server, MB/s.
 *
 * How to run (after `npm ci` in interop/):
 *     node transport.js [seconds-per-item=3] [MiB-per-transfer=4]
 * Prints human-readable lines plus one "RESULT {json}" line per item.
 */
'use strict'

const net = require('node:net')
const pull = require('pull-stream')
const toPull = require('stream-to-pull-stream')
const Pushable = require('pull-pushable')
const SHSE = require('secret-handshake-ext')
const { createEncryptStream, createDecryptStream } = require('pull-secretstream')
const sodium = require('sodium-universal')
const caps = require('pzp-caps')
const bs58 = require('bs58')
const { now, emit } = require('./common')

const SECS = Number(process.argv[2] || 3)
const MIB = Number(process.argv[3] || 4)
const APP_KEY = Buffer.from(bs58.decode(caps))
const TIMEOUT = 15e3
const CHUNK = 64 * 1024

function keypair(byte) {
  const out = { publicKey: Buffer.alloc(32), secretKey: Buffer.alloc(64) }
  sodium.crypto_sign_seed_keypair(out.publicKey, out.secretKey, Buffer.alloc(32, byte))
  return out
}
const alice = keypair(1)
const bob = keypair(2)
const client = SHSE.createClient(alice, APP_KEY, TIMEOUT)
const server = SHSE.createServer(bob, (_pub, _extra, cb) => cb(null, true), APP_KEY, TIMEOUT)

/** One handshake over an in-memory duplex pair; resolves with both box streams. */
function handshakeInMemory() {
  return new Promise((resolve, reject) => {
    let pending = 2
    const boxes = {}
    const done = (side) => (err, box) => {
      if (err) return reject(err)
      boxes[side] = box
      if (--pending === 0) resolve(boxes)
    }
    const c = client(bob.publicKey, null, done('client'))
    const s = server(done('server'))
    pull(c, s, c)
  })
}

function chunks() {
  const chunk = Buffer.alloc(CHUNK, 0x61)
  return Array.from({ length: (MIB * 1024 * 1024) / CHUNK }, () => chunk)
}

async function timed(name, unit, perRun, run) {
  // warm-up
  const t0 = now()
  while (now() - t0 < 300) await run()
  let runs = 0
  const start = now()
  let t
  do {
    await run()
    runs++
    t = now()
  } while (t - start < SECS * 1000)
  const secs = (t - start) / 1000
  const r = { bench: 'transport', name, runs, secs: Math.round(secs * 1000) / 1000 }
  if (unit === 'ops') {
    r.opsPerSec = Math.round(runs / secs)
    r.usPerOp = Math.round((secs / runs) * 1e6 * 10) / 10
    console.log(`${name.padEnd(24)} ${String(r.opsPerSec).padStart(8)} /s   ${r.usPerOp} us each`)
  } else {
    r.MBps = Math.round(((runs * perRun) / secs / 1e6) * 10) / 10
    console.log(`${name.padEnd(24)} ${String(r.MBps).padStart(8)} MB/s (${runs} x ${MIB} MiB)`)
  }
  emit(r)
}

function encryptDecryptInMemory() {
  const key = Buffer.alloc(32, 7)
  return new Promise((resolve, reject) => {
    let got = 0
    pull(
      pull.values(chunks()),
      createEncryptStream(key),
      createDecryptStream(key),
      pull.drain(
        (buf) => {
          got += buf.length
        },
        (err) => (err ? reject(err) : resolve(got))
      )
    )
  })
}

/** A connected SHSE + secretstream pair over loopback TCP. */
function tcpPair() {
  return new Promise((resolve, reject) => {
    const boxes = {}
    let pending = 2
    const done = (side) => (err, box) => {
      if (err) return reject(err)
      boxes[side] = box
      if (--pending === 0) resolve({ ...boxes, listener })
    }
    const listener = net.createServer((socket) => {
      socket.setNoDelay(true)
      const s = server(done('server'))
      const duplex = toPull.duplex(socket)
      pull(duplex, s, duplex)
    })
    listener.listen(0, '127.0.0.1', () => {
      const socket = net.connect(listener.address().port, '127.0.0.1', () => {
        socket.setNoDelay(true)
        const c = client(bob.publicKey, null, done('client'))
        const duplex = toPull.duplex(socket)
        pull(duplex, c, duplex)
      })
    })
  })
}

/** One connection for all transfers: each sends MIB MiB client -> server. */
async function tcpTransfers() {
  const { client: c, server: s, listener } = await tcpPair()
  const outgoing = Pushable()
  pull(outgoing, c.sink)
  let got = 0
  let waiting = null
  pull(
    s.source,
    pull.drain((buf) => {
      got += buf.length
      if (waiting && got >= waiting.want) {
        const w = waiting
        waiting = null
        w.resolve()
      }
    })
  )
  const transfer = () =>
    new Promise((resolve) => {
      waiting = { want: got + MIB * 1024 * 1024, resolve }
      for (const chunk of chunks()) outgoing.push(chunk)
    })
  return { transfer, close: () => { outgoing.end(); listener.close() } }
}

async function main() {
  await timed('shse/handshake', 'ops', 0, handshakeInMemory)
  await timed('secretstream/memory', 'MB', MIB * 1024 * 1024, encryptDecryptInMemory)
  const tcp = await tcpTransfers()
  await timed('secretstream/tcp', 'MB', MIB * 1024 * 1024, tcp.transfer)
  tcp.close()
  process.exit(0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
