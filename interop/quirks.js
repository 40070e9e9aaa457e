#!/usr/bin/env node
/*
 * quirks.js -- reproduces the pzp-db 1.0.4 add() quirks that peer.js works
 * around (README "Quirks" 1 and 2). Each case runs twice: on a raw pzp-db,
 * then on one with lib/add-shim.js installed.
 *
 *     node quirks.js      (exit 0 = raw pzp-db misbehaves as documented and
 *                          the shim fixes every case; any other outcome
 *                          exits 1, e.g. after an upgrade that fixed pzp-db)
 *
 * In process, no network: it calls peer.db.add exactly as pzp-sync's
 * commit() does.
 */
'use strict'

const OS = require('node:os')
const FS = require('node:fs')
const Path = require('node:path')
const { promisify: p } = require('node:util')
const Keypair = require('pzp-keypair')
const MsgV4 = require('pzp-db/msg-v4')
const caps = require('pzp-caps')
const { installAddShim } = require('./lib/add-shim')

const HANG_MS = 2000

// An account and a feed of 3 linear msgs, made once.
const author = Keypair.generate('ed25519', Buffer.alloc(32, 2))
const accountMsg = MsgV4.createAccount(author, 'account__account', 'quirks')
const accountID = MsgV4.getMsgID(accountMsg)
const moot = MsgV4.createMoot(accountID, 'post', author)
const mootID = MsgV4.getMsgID(moot)
const tangle = new MsgV4.Tangle(mootID)
tangle.add(mootID, moot)
const posts = [1, 2, 3].map((i) => {
  const msg = MsgV4.create({ account: accountID, accountTips: [accountID], domain: 'post', data: { i }, keypair: author, tangles: { [mootID]: tangle } })
  tangle.add(MsgV4.getMsgID(msg), msg)
  return msg
})
// A msg of a second feed, and a copy of it with tampered data. A msg ID
// covers only the metadata, so both copies have the same ID.
const moot2 = MsgV4.createMoot(accountID, 'other', author)
const moot2ID = MsgV4.getMsgID(moot2)
const tangle2 = new MsgV4.Tangle(moot2ID)
tangle2.add(moot2ID, moot2)
const genuine = MsgV4.create({ account: accountID, accountTips: [accountID], domain: 'other', data: { x: 1 }, keypair: author, tangles: { [moot2ID]: tangle2 } })
const tampered = { ...genuine, data: { x: 'tampered' } }

function makePeer(shim) {
  const dir = FS.mkdtempSync(Path.join(OS.tmpdir(), 'pzp-quirks-'))
  const peer = require('secret-stack/bare')()
    .use(require('secret-handshake-ext/secret-stack'))
    .use(require('pzp-db'))
    .call(null, {
      shse: { caps },
      global: { path: dir, keypair: Keypair.generate('ed25519', Buffer.alloc(32, 9)), connections: { incoming: {}, outgoing: {} } },
    })
  if (shim) installAddShim(peer.db)
  return { peer, dir }
}

/** 'ok' | 'error: …' | 'NO ANSWER' (after HANG_MS) */
function outcome(promise) {
  return Promise.race([
    promise.then(
      () => 'ok',
      (e) => ('error: ' + [e.message, ...(e.cause ? [String(e.cause.cause ?? e.cause.message ?? e.cause)] : [])].join(' <- ')).split('\n')[0].slice(0, 110)
    ),
    new Promise((r) => setTimeout(() => r('NO ANSWER'), HANG_MS)),
  ])
}

async function runCases(shim) {
  const { peer, dir } = makePeer(shim)
  const add = (msg, t) => p(peer.db.add)(msg, t)
  await peer.db.loaded()
  const out = {}
  // A: the same stored msg added three times (pzp-sync re-sends an account's
  //    msgs with every tangle it syncs)
  out.a = []
  for (let i = 0; i < 3; i++) out.a.push(await outcome(add(accountMsg, null)))
  await add(moot, mootID)
  await add(moot2, moot2ID)
  // B: a rejected msg submitted again, then the genuine msg with the same ID
  out.b = [await outcome(add(tampered, moot2ID)), await outcome(add(tampered, moot2ID)), await outcome(add(genuine, moot2ID))]
  // C: three consecutive feed msgs added concurrently (one pzp-sync commit per
  //    phase-9 frame, none awaited)
  out.c = await Promise.all(posts.map((m) => outcome(add(m, mootID))))
  await p(peer.close)(true)
  FS.rmSync(dir, { recursive: true, force: true })
  return out
}

async function main() {
  const raw = await runCases(false)
  const shim = await runCases(true)
  const show = (label, r, s) => console.log(`${label}\n   raw pzp-db: ${r.join(' | ')}\n   with shim:  ${s.join(' | ')}`)
  show('A. add() of one stored msg, 3 times in a row', raw.a, shim.a)
  show('B. add() of a tampered msg twice, then of the genuine msg (same ID)', raw.b, shim.b)
  show('C. add() of 3 consecutive feed msgs, concurrently', raw.c, shim.c)

  const checks = [
    ['raw A: 1st and 2nd answer, 3rd never does', raw.a[0] === 'ok' && raw.a[1] === 'ok' && raw.a[2] === 'NO ANSWER'],
    ['raw B: rejected, then no answer, not even for the genuine msg', raw.b[0].startsWith('error') && raw.b[1] === 'NO ANSWER' && raw.b[2] === 'NO ANSWER'],
    ['raw C: a middle msg rejected (all prev are locally unknown)', raw.c.some((x) => /all prev are locally unknown/.test(x))],
    ['shim A: all answer', shim.a.every((x) => x === 'ok')],
    ['shim B: rejected, then refused at once (the genuine msg too)', shim.b[0].startsWith('error') && /already rejected/.test(shim.b[1]) && /already rejected/.test(shim.b[2])],
    ['shim C: all accepted', shim.c.every((x) => x === 'ok')],
  ]
  let failed = 0
  for (const [label, ok] of checks) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${label}`)
    if (!ok) failed++
  }
  process.exit(failed ? 1 : 0)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
