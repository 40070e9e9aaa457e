#!/usr/bin/env node
/*
 * compare.js -- prints the Rust transport/sync figures beside the JS reference's, with
 * ratios, from one benches/compare.sh run:
 *   node benches/compare.js OUT_DIR JS_SYNC_MSGS
 * Reads criterion's estimates (target/criterion/...) for the Rust benches and the
 * "RESULT {json}" lines the JS scripts and the serve_sync bench print (OUT_DIR/*.txt).
 */
'use strict'

const FS = require('node:fs')
const Path = require('node:path')

const [outDir, jsN] = process.argv.slice(2)
const root = Path.join(__dirname, '..')
const criterionDir = process.env.CARGO_TARGET_DIR
  ? Path.join(process.env.CARGO_TARGET_DIR, 'criterion')
  : Path.join(root, 'target', 'criterion')

/** Median time of a criterion bench, in seconds (null if it did not run). */
function criterion(...id) {
  const file = Path.join(criterionDir, ...id, 'new', 'estimates.json')
  if (!FS.existsSync(file)) return null
  return JSON.parse(FS.readFileSync(file, 'utf8')).median.point_estimate / 1e9
}

function results(file) {
  const path = Path.join(outDir, file)
  if (!FS.existsSync(path)) return []
  return FS.readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('RESULT '))
    .map((line) => JSON.parse(line.slice('RESULT '.length)))
}

const jsTransport = Object.fromEntries(results('js-transport.txt').map((r) => [r.name, r]))
const jsSync = Object.fromEntries(results('js-sync.txt').map((r) => [r.bench, r]))
const serve = results('rust-serve.txt')[0]
const MIB4 = 4 * 1024 * 1024

const fmt = (x, digits = 0) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }))
const rows = []
function row(what, rust, js, unit, higherIsBetter = true, digits = 0) {
  const ratio = rust && js ? (higherIsBetter ? rust / js : js / rust) : null
  rows.push([what, `${fmt(rust, digits)} ${unit}`, `${fmt(js, digits)} ${unit}`, ratio ? `${fmt(ratio, 1)}×` : '—'])
}

const perSec = (secs) => (secs ? 1 / secs : null)
const mbps = (secs) => (secs ? MIB4 / secs / 1e6 : null)

row('SHSE handshakes (client + server in one process, in-memory pipe)', perSec(criterion('shse', 'duplex')), jsTransport['shse/handshake']?.opsPerSec, '/s')
row('SHSE handshake machines alone (no I/O)', perSec(criterion('shse', 'sans_io')), jsTransport['shse/handshake']?.opsPerSec, '/s')
row('secretstream encrypt + decrypt in memory', mbps(criterion('secretstream', 'sans_io')), jsTransport['secretstream/memory']?.MBps, 'MB/s', true, 1)
row('secretstream over an in-memory duplex (BoxStream pair)', mbps(criterion('secretstream', 'duplex')), jsTransport['secretstream/memory']?.MBps, 'MB/s', true, 1)
row('secretstream over loopback TCP', mbps(criterion('secretstream', 'tcp')), jsTransport['secretstream/tcp']?.MBps, 'MB/s', true, 1)

const n = Number(jsN)
const fullN = criterion('stack_sync', `full_${n}`)
const catchN = criterion('stack_sync', `catch_up_100_${n}`)
const jsFull = jsSync['sync-full']
const jsIncr = jsSync['sync-incr']
row(`full sync of ${n} posts (+2), two peers over loopback`, fullN ? (n + 2) / fullN : null, jsFull?.complete ? jsFull.msgsPerSec : null, 'msgs/s')
row(`catch-up of 100 posts on ${n}`, catchN ? catchN * 1000 : null, jsIncr?.complete ? jsIncr.ms : null, 'ms', false, 1)

const full10k = criterion('stack_sync', 'full_10000')
const catch10k = criterion('stack_sync', 'catch_up_100_10000')

console.log('\n| what | Rust | JS reference | Rust / JS |\n|---|---|---|---|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
console.log('\nRust only (the JS reference would take hours: its slicing is cubic):')
console.log(`- full sync of 10,000 posts (+2) over the stack, in one process: ${fmt(full10k ? 10002 / full10k : null)} msgs/s (${fmt(full10k, 2)} s)`)
console.log(`- catch-up of 100 on 10,000 over the stack, in one process: ${fmt(catch10k ? catch10k * 1000 : null, 1)} ms`)
if (serve) {
  console.log(
    `- two ppppp serve processes, ${fmt(serve.msgs)} msgs: full sync ${fmt(serve.fullSyncMsgsPerSec)} msgs/s; ` +
      `validation ${fmt(serve.validateMemoryMsgsPerSec)} msgs/s in memory, ${fmt(serve.validateDiskMsgsPerSec)} into a disk store; ` +
      `ratio ${fmt(serve.fullSyncMsgsPerSec / serve.validateMemoryMsgsPerSec, 2)} / ${fmt(serve.fullSyncMsgsPerSec / serve.validateDiskMsgsPerSec, 2)} (target ≥ 0.33); ` +
      `catch-up of 100: ${fmt(serve.catchUpMs, 1)} ms after connect, ${fmt(serve.catchUpFromSpawnMs, 1)} ms after spawn (target well under 1 s)`
  )
}
