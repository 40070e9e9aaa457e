#!/usr/bin/env node
/*
 * peer.js -- a scriptable PZP reference peer (npm pzp-* packages, see
 * package.json) driven over JSON lines, so that Rust tests can make the
 * JavaScript reference talk to a Rust peer and compare what both hold.
 *
 *     node interop/peer.js            (then write commands on stdin)
 *
 * PROTOCOL. One JSON object per line on stdin = one command; exactly one JSON
 * object per line on stdout = its reply. Nothing else is ever written to
 * stdout (console.log/info/debug of the libraries are redirected to stderr;
 * logs go to stderr; set DEBUG=pzp:* for the libraries' own debug logs).
 *
 *   request:  {"id": <any JSON>, "cmd": "<name>", ...params}
 *   success:  {"id": <same>, "ok": true,  "result": {...}}
 *   failure:  {"id": <same>, "ok": false, "error": "<message>", "causes": ["<cause message>", ...]}
 *
 * Replies are written when a command finishes, so they may come out of
 * order: match them by `id`. Commands are executed one at a time in arrival
 * order (so two publishes never race into a fork), except `waitFor` and
 * `ping`, which run concurrently with the queue. Every command accepts an
 * optional `timeoutMs` (default 600000) after which it fails with an error
 * reply (the operation itself may still be running inside the reference).
 *
 * COMMANDS (params -> result). IDs are base58 strings (msg IDs, tangle IDs,
 * account IDs, pubkeys).
 *
 *   init {seed?, dir?, host?="127.0.0.1", port?=0, nonce?, inactivityMs?=0, keepDir?=false,
 *         addShim?=true}
 *     -> {pubkey, address, host, port, dir, seedHex, account, addShim}
 *     Starts secret-stack 8.1 + SHSE (pzp-caps) listening on host:port (0 =
 *     any free port) with pzp-db, pzp-dict, pzp-set, pzp-goals, pzp-sync.
 *     seed: 64 hex chars = the 32-byte ed25519 seed; any other string is
 *     handed to pzp-keypair as a string seed (first 32 UTF-16 units, UTF-8,
 *     zero-padded); absent = random. address = "net:HOST:PORT~shse:PUBKEY".
 *     dir absent = a fresh temp dir (deleted at stop unless keepDir).
 *     account = the account already in dir for this key (reopen), or null.
 *     nonce = the nonce used when an account is auto-created.
 *     inactivityMs = secret-stack's muxrpc inactivity timeout; 0 = off
 *     (secret-stack's own default would be 5 s, which kills long syncs).
 *     addShim=false runs pzp-db's add() raw, with its hangs and pzp-sync's
 *     commit race (see installAddShim below and README "Quirks").
 *   createAccount {nonce?} -> {account, created}
 *     Finds the local key's account (subdomain "account") or creates it
 *     (nonce default: init's nonce, else pzp-db's random one). Loads
 *     pzp-set and pzp-dict for it.
 *   publish {domain, data, tangles?: [tangleID...]} -> {msgID, tangleID, account, depth, msg}
 *     db.feed.publish; account created on first use. tangleID = feed moot ID.
 *   publishMany {domain, count, textPrefix?="hello world #", start?=1, fast?=false}
 *     -> {count, tangleID, account, firstMsgID, lastMsgID, maxDepth, ms}
 *     Publishes data {"text": textPrefix + i, "n": i} for i = start ..
 *     start+count-1 (the jsbench fixtures' shape). fast=false: one
 *     db.feed.publish per msg (the real path; realtime sync sees each msg).
 *     fast=true: the msgs are built with pzp-db/msg-v4 exactly as
 *     feed.publish builds them and appended straight to pzp-db's log, then
 *     pzp-db reloads its log (db.log.compact() rescans it). Same msgs, but
 *     no onRecordAdded events: use it only while not connected, and not for
 *     set_v1__/dict_v1__ domains (their plugins learn through those events).
 *   accountAdd {seed | (pubkey, consent), powers?: [..]} -> {msgID, key, consent, msg}
 *     Adds another ed25519 key to the local account: with seed, the consent
 *     is made by that key (db.account.consent); else pass its pubkey and a
 *     base58 consent signature. powers ⊆ add, del, external-encryption,
 *     internal-encryption.
 *   accountDel {seed | pubkey} -> {msgID, key, msg}
 *   setAdd / setDel {subdomain, value} -> {changed, tangleID, msgID|null}
 *   dictUpdate {subdomain, update: {field: value}} -> {changed, tangleID, msgID|null}
 *   setValues {subdomain, account?} -> {values}      (pzp-set's own view)
 *   dictRead {subdomain, account?} -> {value}        (pzp-dict's own view)
 *   mootID {account, domain} -> {mootID}   (domain is the full one, e.g.
 *     "post", "set_v1__follows", "dict_v1__profile")
 *   goal {tangleID | (account, domain), goal} -> {tangleID, goal}
 *     goal: "all" | "newest-N" | "set" | "dict" | "none" (pzp-goals DSL).
 *   goals {} -> {goals: {tangleID: dsl}}
 *   connect {address} -> {remote}   secret-stack dials address (multiserver
 *     form). The dialer is the side whose pzp-sync stream initiates; it
 *     does so only once startSync ran (before or after connect).
 *   startSync {} -> {}   pzp-sync sync.start() (idempotent).
 *   disconnect {address? | pubkey?} -> {closed: n}   all connections if neither.
 *   peers {} -> {peers: [pubkey...]}
 *   add {msg, tangleID?} -> {msgID}   db.add() of a raw msg (e.g. made by a
 *     Rust peer). A msg whose ID pzp-db already rejected fails at once
 *     (pzp-db 1.0.4 would never call back, protocol.md §6.2).
 *   get {msgID} -> {msg|null}
 *   ghosts {tangleID} -> {ghosts: [msgID...]}   (sorted)
 *   state {} -> {tangles: {tangleID: [msgID in topoSort order]},
 *                sets: {"<account>/<subdomain>": [value...]},
 *                dicts: {"<account>/<subdomain>": {field: value}},
 *                msgs: {msgID: msg}}
 *     Every tangle whose root msg is held (account tangles, feeds, threads);
 *     topoSort is pzp-db's own (DBTangle). sets/dicts: every set_v1__ /
 *     dict_v1__ feed held, reduced over that topoSort with pzp-set's /
 *     pzp-dict's rules (set values sorted; see stateSetsDicts for why this
 *     does not call the plugins). msgs: every record, erased ones with
 *     data null. All object keys are sorted; compare as parsed JSON.
 *   waitFor {tangleID, count | exactly, dataful?=false, timeoutMs?=30000}
 *     -> {count, ms}   resolves once the tangle's msg count (topoSort
 *     length, root included; only msgs with data if dataful) is >= count
 *     (or == exactly); fails on timeout with the last count in the error.
 *   log {} -> {records: [{id, msg, received}...]}   log order, deleted
 *     records skipped.
 *   ping {} -> {pong: true}
 *   stop {} -> {}   closes connections and the peer, replies, exits 0.
 *
 * With init {hub: true} the peer also runs pzp-net, pzp-hub-client,
 * pzp-promise and pzp-invite, listens and dials through hub tunnels, and
 * takes the commands of lib/hub.js (startNet, addHub, netConnect,
 * createToken, inviteForFriend, inviteForMyself, inviteParse,
 * promiseCreate, promiseFollow, promiseAccountAdd).
 *
 * stdin EOF also stops the peer. Uncaught errors are logged, never fatal.
 */
'use strict'

// --- stdout is reserved for replies -----------------------------------------
// Keep the real writer for replies and send every console.log-style call
// from the libraries to stderr, so a stray log can never corrupt the stream.
const writeOut = process.stdout.write.bind(process.stdout)
const toErr = (...args) => process.stderr.write(require('node:util').format(...args) + '\n')
console.log = toErr
console.info = toErr
console.debug = toErr

const FS = require('node:fs')
const OS = require('node:os')
const Net = require('node:net')
const Path = require('node:path')
const Crypto = require('node:crypto')
const Readline = require('node:readline')
const { promisify: p } = require('node:util')

const Keypair = require('pzp-keypair')
const MsgV4 = require('pzp-db/msg-v4')
const caps = require('pzp-caps')
const { installAddShim } = require('./lib/add-shim')
const Hub = require('./lib/hub')

const SET_PREFIX = 'set_v1__'
const DICT_PREFIX = 'dict_v1__'
const DEFAULT_TEXT_PREFIX = 'hello world #'

function log(...args) {
  toErr('[peer.js]', ...args)
}

// --- state of this process --------------------------------------------------
const S = {
  peer: null, // secret-stack instance
  keypair: null,
  dir: null,
  removeDirAtStop: false,
  nonce: undefined, // nonce for auto-created account
  account: null, // local account ID, once known
  connections: new Map(), // rpc -> {pubkey, address}
  rejected: new Map(), // msgID -> error text (pzp-db add() hang workaround)
  addShim: true, // see installAddShim
  stopping: false,
}

// --- helpers ----------------------------------------------------------------
class CmdError extends Error {}

function need(cond, msg) {
  if (!cond) throw new CmdError(msg)
}

function needPeer() {
  need(S.peer, 'peer not initialized: send "init" first')
  return S.peer
}

/** Recursively sort object keys (arrays keep their order) for canonical output. */
function sortKeys(x) {
  if (Array.isArray(x)) return x.map(sortKeys)
  if (x && typeof x === 'object') {
    const out = {}
    for (const k of Object.keys(x).sort()) out[k] = sortKeys(x[k])
    return out
  }
  return x
}

function errorCauses(err) {
  const out = []
  let e = err && err.cause
  while (e) {
    if (typeof e === 'string') {
      out.push(e)
      break
    }
    out.push(String(e.message ?? e))
    e = e.cause
  }
  return out
}

function parseSeed(seed) {
  if (seed === undefined || seed === null) return Crypto.randomBytes(32)
  need(typeof seed === 'string', 'seed must be a string (64 hex chars, or a string seed)')
  if (/^[0-9a-fA-F]{64}$/.test(seed)) return Buffer.from(seed, 'hex')
  return seed // pzp-keypair string seed
}

/** Effective 32 seed bytes (mirrors pzp-keypair's string-seed rule) for reporting. */
function seedHexOf(seed) {
  if (Buffer.isBuffer(seed)) return seed.toString('hex')
  const buf = Buffer.alloc(32)
  Buffer.from(seed.slice(0, 32), 'utf8').copy(buf, 0, 0, 32)
  return buf.toString('hex')
}

/** Ask the OS for a free TCP port (multiserver would otherwise pick a random one
 *  and secret-stack would swallow an EADDRINUSE), or check that `port` is free. */
function reservePort(host, port) {
  return new Promise((resolve, reject) => {
    const srv = Net.createServer()
    srv.once('error', (err) => reject(new CmdError(`cannot listen on ${host}:${port}: ${err.message}`)))
    srv.listen(port, host, () => {
      const got = srv.address().port
      srv.close(() => resolve(got))
    })
  })
}

function withTimeout(promise, ms, what) {
  if (!ms || ms <= 0 || !Number.isFinite(ms)) return promise
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CmdError(`${what} timed out after ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

async function allRecords() {
  const out = []
  for await (const rec of S.peer.db.records()) if (rec.msg) out.push(rec)
  return out
}

// --- account / set / dict ---------------------------------------------------
async function loadSetDict(account) {
  const peer = S.peer
  await p(peer.set.load)(account)
  await p(peer.dict.load)(account)
}

async function findAccount() {
  try {
    return await p(S.peer.db.account.find)({ subdomain: 'account' })
  } catch (err) {
    if (err && err.cause === 'ENOENT') return null
    throw err
  }
}

async function ensureAccount(nonce) {
  if (S.account) return { account: S.account, created: false }
  let account = await findAccount()
  let created = false
  if (!account) {
    const opts = { subdomain: 'account' }
    const n = nonce ?? S.nonce
    if (n !== undefined) opts._nonce = String(n)
    account = await p(S.peer.db.account.create)(opts)
    created = true
  }
  S.account = account
  await loadSetDict(account)
  return { account, created }
}

// --- state dump ---------------------------------------------------------------
/**
 * sets/dicts of the state dump. Why not pzp-set's values() / pzp-dict's
 * read()? Both require a *loaded local account*, and pzp-dict 1.0.1 also
 * ignores every dict msg whose author is not that account (isValidDictMsg),
 * so a peer that only replicates someone's dict would report {}. Tests need
 * the protocol-level value, so we reduce the DB's own topoSort with the
 * plugins' rules (pzp-set readSet: add then del per valid msg; pzp-dict
 * read: Object.assign of each valid update), minus the local-account check.
 * `setValues` / `dictRead` expose the plugins' own view.
 */
function isValidSetMsg(msg) {
  return (
    !!msg &&
    !!msg.data &&
    msg.metadata.domain.startsWith(SET_PREFIX) &&
    Array.isArray(msg.data.add) &&
    Array.isArray(msg.data.del) &&
    Array.isArray(msg.data.supersedes)
  )
}

function isValidDictMsg(msg, account) {
  return (
    !!msg &&
    !!msg.data &&
    msg.metadata.account === account &&
    msg.metadata.domain.startsWith(DICT_PREFIX) &&
    !!msg.data.update &&
    typeof msg.data.update === 'object' &&
    !Array.isArray(msg.data.update) &&
    Array.isArray(msg.data.supersedes)
  )
}

async function dumpState() {
  const db = S.peer.db
  const recs = await allRecords()
  const byID = new Map(recs.map((r) => [r.id, r.msg]))

  // Every tangle whose root we hold: roots (moots, account roots) plus any
  // tangle a msg names (threads rooted at ordinary msgs).
  const tangleIDs = new Set()
  for (const { id, msg } of recs) {
    if (MsgV4.isRoot(msg)) tangleIDs.add(id)
    for (const t of Object.keys(msg.metadata.tangles)) if (byID.has(t)) tangleIDs.add(t)
  }

  const tangles = {}
  const sets = {}
  const dicts = {}
  for (const tangleID of [...tangleIDs].sort()) {
    const tangle = await p(db.getTangle)(tangleID)
    if (!tangle) continue
    const order = tangle.topoSort()
    tangles[tangleID] = order
    const root = byID.get(tangleID)
    if (!MsgV4.isMoot(root)) continue
    const { account, domain } = root.metadata
    if (domain.startsWith(SET_PREFIX)) {
      const set = new Set()
      for (const id of order) {
        const msg = byID.get(id)
        if (!isValidSetMsg(msg)) continue
        for (const v of msg.data.add) set.add(v)
        for (const v of msg.data.del) set.delete(v)
      }
      sets[`${account}/${domain.slice(SET_PREFIX.length)}`] = [...set].sort()
    } else if (domain.startsWith(DICT_PREFIX)) {
      const dict = {}
      for (const id of order) {
        const msg = byID.get(id)
        if (isValidDictMsg(msg, account)) Object.assign(dict, msg.data.update)
      }
      dicts[`${account}/${domain.slice(DICT_PREFIX.length)}`] = dict
    }
  }

  const msgs = {}
  for (const { id, msg } of recs) msgs[id] = msg
  return { tangles, sets, dicts, msgs }
}

async function tangleCount(tangleID, dataful) {
  const tangle = await p(S.peer.db.getTangle)(tangleID)
  if (!tangle) return 0
  // A tangle without its root would console.trace in topoSort(); treat as 0.
  if (!(await p(S.peer.db.get)(tangleID))) return 0
  const order = tangle.topoSort()
  if (!dataful) return order.length
  let n = 0
  for (const id of order) {
    const msg = await p(S.peer.db.get)(id)
    if (msg && msg.data !== null) n++
  }
  return n
}

// --- fast bulk publishing -------------------------------------------------------
/**
 * Builds each msg exactly as db.feed.publish does (MsgV4.create with the
 * feed's DBTangle and the account tangle's current tips as accountTips),
 * appends {id, msg, received} records with pzp-db's own log, then has pzp-db
 * rescan its log (db.log.compact(): with no deleted bytes the log module
 * skips compaction and pzp-db still reloads every record). This avoids
 * pzp-db's per-publish full rebuild of every tangle (quadratic cost), but
 * fires no onRecordAdded events.
 */
async function publishManyDirect(account, domain, from, count, textPrefix) {
  const db = S.peer.db
  const keypair = S.keypair
  const mootID = MsgV4.getMootID(account, domain)
  if (!(await p(db.get)(mootID))) {
    const moot = MsgV4.createMoot(account, domain, keypair)
    await p(db.add)(moot, mootID)
  }
  const tangle = await p(db.getTangle)(mootID)
  const accountTangle = await p(db.getTangle)(account)
  const accountTips = [...accountTangle.tips]
  const rawLog = db._getLog()
  let first = null
  let last = null
  for (let i = from; i < from + count; i++) {
    const msg = MsgV4.create({
      account,
      accountTips,
      domain,
      data: { text: textPrefix + i, n: i },
      keypair,
      tangles: { [mootID]: tangle },
    })
    const id = MsgV4.getMsgID(msg)
    tangle.add(id, msg)
    await p(rawLog.append)({ id, msg, received: Date.now() })
    first ??= id
    last = id
  }
  await p(rawLog.onDrain)()
  await p(db.log.compact)()
  return { first, last, maxDepth: tangle.maxDepth }
}

// --- command handlers ---------------------------------------------------------
const handlers = {
  async ping() {
    return { pong: true }
  },

  async init(cmd) {
    need(!S.peer, 'already initialized')
    const seed = parseSeed(cmd.seed)
    const keypair = Keypair.generate('ed25519', seed)
    const host = cmd.host ?? '127.0.0.1'
    const port = await reservePort(host, cmd.port ?? 0)
    let dir = cmd.dir
    if (dir) {
      FS.mkdirSync(dir, { recursive: true })
      S.removeDirAtStop = false
    } else {
      dir = FS.mkdtempSync(Path.join(OS.tmpdir(), 'pzp-peer-'))
      S.removeDirAtStop = !cmd.keepDir
    }
    S.keypair = keypair
    S.dir = dir
    S.nonce = cmd.nonce
    let stack = require('secret-stack/bare')()
      .use(require('secret-stack/plugins/net'))
      .use(require('secret-handshake-ext/secret-stack'))
      .use(require('pzp-db'))
      .use(require('pzp-dict'))
      .use(require('pzp-set'))
      .use(require('pzp-goals'))
      .use(require('pzp-sync'))
    const hub = cmd.hub ? Hub.config() : { incoming: {}, outgoing: {} }
    if (cmd.hub) for (const plugin of Hub.plugins()) stack = stack.use(plugin)
    const peer = stack.call(null, {
        shse: { caps },
        net: hub.net,
        global: {
          path: dir,
          keypair,
          timers: { inactivity: cmd.inactivityMs ?? 0 },
          connections: {
            incoming: { net: [{ scope: 'device', transform: 'shse', host, port }], ...hub.incoming },
            outgoing: { net: [{ transform: 'shse' }], ...hub.outgoing },
          },
        },
      })
    S.peer = peer
    S.addShim = cmd.addShim !== false
    if (S.addShim) installAddShim(peer.db, S.rejected)
    peer.on('rpc:connect', (rpc, isClient) => {
      const pubkey = rpc.shse?.pubkey
      S.connections.set(rpc, { pubkey, isClient, address: rpc.stream?.address })
      log(`connected ${isClient ? 'to' : 'from'} ${pubkey}`)
      rpc.once('closed', () => {
        S.connections.delete(rpc)
        log(`disconnected ${pubkey}`)
      })
    })
    const listening = new Promise((resolve) => peer.once('multiserver:listening', resolve))
    await peer.db.loaded()
    const address = peer.getAddress()
    await withTimeout(listening, 10000, 'listening')
    const account = await findAccount()
    if (account) {
      S.account = account
      await loadSetDict(account)
    }
    return { pubkey: keypair.public, address, host, port, dir, seedHex: seedHexOf(seed), account, addShim: S.addShim }
  },

  async createAccount(cmd) {
    needPeer()
    return ensureAccount(cmd.nonce)
  },

  async publish(cmd) {
    const peer = needPeer()
    need(typeof cmd.domain === 'string', 'publish needs "domain"')
    need(cmd.data && typeof cmd.data === 'object', 'publish needs "data" (an object)')
    const { account } = await ensureAccount()
    const opts = { account, domain: cmd.domain, data: cmd.data }
    if (cmd.tangles) opts.tangles = [...cmd.tangles]
    const rec = await p(peer.db.feed.publish)(opts)
    const tangleID = MsgV4.getMootID(account, cmd.domain)
    return { msgID: rec.id, tangleID, account, depth: rec.msg.metadata.tangles[tangleID].depth, msg: rec.msg }
  },

  async publishMany(cmd) {
    const peer = needPeer()
    need(typeof cmd.domain === 'string', 'publishMany needs "domain"')
    need(Number.isInteger(cmd.count) && cmd.count > 0, 'publishMany needs a positive integer "count"')
    const textPrefix = cmd.textPrefix ?? DEFAULT_TEXT_PREFIX
    const start = cmd.start ?? 1
    const { account } = await ensureAccount()
    const tangleID = MsgV4.getMootID(account, cmd.domain)
    const t0 = Date.now()
    let first = null
    let last = null
    let maxDepth
    if (cmd.fast) {
      need(
        !cmd.domain.startsWith(SET_PREFIX) && !cmd.domain.startsWith(DICT_PREFIX),
        'publishMany fast=true is not allowed for set/dict domains'
      )
      ;({ first, last, maxDepth } = await publishManyDirect(account, cmd.domain, start, cmd.count, textPrefix))
    } else {
      for (let i = start; i < start + cmd.count; i++) {
        const rec = await p(peer.db.feed.publish)({
          account,
          domain: cmd.domain,
          data: { text: textPrefix + i, n: i },
        })
        first ??= rec.id
        last = rec.id
        maxDepth = rec.msg.metadata.tangles[tangleID].depth
      }
    }
    return { count: cmd.count, tangleID, account, firstMsgID: first, lastMsgID: last, maxDepth, ms: Date.now() - t0 }
  },

  async accountAdd(cmd) {
    const peer = needPeer()
    const { account } = await ensureAccount()
    let pub
    let consent = cmd.consent
    if (cmd.seed !== undefined) {
      const kp = Keypair.generate('ed25519', parseSeed(cmd.seed))
      pub = kp.public
      consent ??= peer.db.account.consent({ keypair: kp, account })
    } else {
      need(typeof cmd.pubkey === 'string' && typeof consent === 'string', 'accountAdd needs "seed", or "pubkey" and "consent"')
      pub = cmd.pubkey
    }
    const opts = { account, keypair: { curve: 'ed25519', public: pub }, consent }
    if (cmd.powers) opts.powers = cmd.powers
    const rec = await p(peer.db.account.add)(opts)
    return { msgID: rec.id, key: pub, consent, msg: rec.msg }
  },

  async accountDel(cmd) {
    const peer = needPeer()
    const { account } = await ensureAccount()
    const pub = cmd.seed !== undefined ? Keypair.generate('ed25519', parseSeed(cmd.seed)).public : cmd.pubkey
    need(typeof pub === 'string', 'accountDel needs "seed" or "pubkey"')
    const rec = await p(peer.db.account.del)({ account, keypair: { curve: 'ed25519', public: pub } })
    return { msgID: rec.id, key: pub, msg: rec.msg }
  },

  async setAdd(cmd) {
    return setOp('add', cmd)
  },

  async setDel(cmd) {
    return setOp('del', cmd)
  },

  async dictUpdate(cmd) {
    const peer = needPeer()
    need(typeof cmd.subdomain === 'string', 'dictUpdate needs "subdomain"')
    need(cmd.update && typeof cmd.update === 'object' && !Array.isArray(cmd.update), 'dictUpdate needs "update" (an object)')
    const { account } = await ensureAccount()
    const tangleID = MsgV4.getMootID(account, DICT_PREFIX + cmd.subdomain)
    const before = await tangleMsgIDs(tangleID)
    const changed = await p(peer.dict.update)(cmd.subdomain, cmd.update)
    return { changed, tangleID, msgID: changed ? await newestNewMsg(tangleID, before) : null }
  },

  async setValues(cmd) {
    const peer = needPeer()
    need(typeof cmd.subdomain === 'string', 'setValues needs "subdomain"')
    await ensureLoadedForRead()
    return { values: await p(peer.set.values)(cmd.subdomain, cmd.account ?? null) }
  },

  async dictRead(cmd) {
    const peer = needPeer()
    need(typeof cmd.subdomain === 'string', 'dictRead needs "subdomain"')
    await ensureLoadedForRead()
    return { value: await p(peer.dict.read)(cmd.account ?? S.account, cmd.subdomain) }
  },

  async mootID(cmd) {
    need(typeof cmd.account === 'string' && typeof cmd.domain === 'string', 'mootID needs "account" and "domain"')
    return { mootID: MsgV4.getMootID(cmd.account, cmd.domain) }
  },

  async goal(cmd) {
    const peer = needPeer()
    let tangleID = cmd.tangleID
    if (!tangleID) {
      need(typeof cmd.account === 'string' && typeof cmd.domain === 'string', 'goal needs "tangleID", or "account" and "domain"')
      tangleID = MsgV4.getMootID(cmd.account, cmd.domain)
    }
    need(typeof cmd.goal === 'string', 'goal needs "goal" ("all", "newest-N", "set", "dict" or "none")')
    peer.goals.parse(cmd.goal) // throws on a bad DSL before anything changes
    peer.goals.set(tangleID, cmd.goal)
    return { tangleID, goal: cmd.goal }
  },

  async goals() {
    const peer = needPeer()
    const out = {}
    for (const g of peer.goals.list()) out[g.id] = peer.goals.serialize(g)
    return { goals: out }
  },

  async connect(cmd) {
    const peer = needPeer()
    need(typeof cmd.address === 'string', 'connect needs "address"')
    const rpc = await p(peer.connect)(cmd.address)
    return { remote: rpc.shse?.pubkey ?? null }
  },

  async startSync() {
    needPeer().sync.start()
    return {}
  },

  async disconnect(cmd) {
    needPeer()
    let wanted = cmd.pubkey ?? null
    if (!wanted && cmd.address) {
      const m = /~shse:([^:;~]+)/.exec(cmd.address)
      need(m, 'cannot find the shse pubkey in "address"')
      wanted = m[1]
    }
    const rpcs = [...S.connections.entries()].filter(([, c]) => !wanted || c.pubkey === wanted).map(([rpc]) => rpc)
    for (const rpc of rpcs) await p(rpc.close)(true)
    return { closed: rpcs.length }
  },

  async peers() {
    needPeer()
    return { peers: [...S.connections.values()].map((c) => c.pubkey).sort() }
  },

  async add(cmd) {
    const peer = needPeer()
    need(cmd.msg && typeof cmd.msg === 'object', 'add needs "msg"')
    const msgID = MsgV4.getMsgID(cmd.msg)
    // pzp-db 1.0.4 never clears its "being added" marker for a msg it
    // rejected, so adding the same msg ID again would never call back.
    if (S.rejected.has(msgID)) {
      throw new CmdError(`msg ${msgID} was already rejected by pzp-db (${S.rejected.get(msgID)}); ` +
        'pzp-db 1.0.4 would never answer a second add() of it')
    }
    try {
      const rec = await p(peer.db.add)(cmd.msg, cmd.tangleID ?? null)
      return { msgID: rec.id }
    } catch (err) {
      // (the shim records rejections itself; this covers addShim: false)
      if (!S.rejected.has(msgID)) S.rejected.set(msgID, [err.message, ...errorCauses(err)].join(' <- '))
      throw err
    }
  },

  async get(cmd) {
    const peer = needPeer()
    need(typeof cmd.msgID === 'string', 'get needs "msgID"')
    return { msg: (await p(peer.db.get)(cmd.msgID)) ?? null }
  },

  async ghosts(cmd) {
    const peer = needPeer()
    need(typeof cmd.tangleID === 'string', 'ghosts needs "tangleID"')
    return { ghosts: peer.db.ghosts.get(cmd.tangleID).sort() }
  },

  async state() {
    needPeer()
    return dumpState()
  },

  async waitFor(cmd) {
    const peer = needPeer()
    need(typeof cmd.tangleID === 'string', 'waitFor needs "tangleID"')
    const exact = cmd.exactly !== undefined
    const target = exact ? cmd.exactly : cmd.count
    need(Number.isInteger(target) && target >= 0, 'waitFor needs an integer "count" or "exactly"')
    const dataful = !!cmd.dataful
    const timeoutMs = cmd.timeoutMs ?? 30000
    const t0 = Date.now()
    const reached = (n) => (exact ? n === target : n >= target)
    return new Promise((resolve, reject) => {
      let last = -1
      let checking = false
      let again = false
      let done = false
      let debounce = null
      const finish = (err, val) => {
        if (done) return
        done = true
        clearTimeout(timer)
        clearTimeout(debounce)
        stopAdded()
        stopDeleted()
        err ? reject(err) : resolve(val)
      }
      // Re-count after DB changes, at most every 50 ms (rebuilding a tangle
      // costs a full log scan in pzp-db).
      const check = async () => {
        if (done) return
        if (checking) return void (again = true)
        checking = true
        try {
          last = await tangleCount(cmd.tangleID, dataful)
          if (reached(last)) finish(null, { count: last, ms: Date.now() - t0 })
        } catch (err) {
          finish(err)
        } finally {
          checking = false
          if (again && !done) {
            again = false
            schedule()
          }
        }
      }
      const schedule = () => {
        if (!debounce) debounce = setTimeout(() => ((debounce = null), check()), 50)
      }
      const stopAdded = peer.db.onRecordAdded(schedule, false)
      const stopDeleted = peer.db.onRecordDeletedOrErased(schedule, false)
      const timer = setTimeout(() => {
        finish(new CmdError(`waitFor timed out after ${timeoutMs} ms: tangle ${cmd.tangleID} has ${last} ` +
          `${dataful ? 'dataful ' : ''}msgs, wanted ${exact ? 'exactly' : 'at least'} ${target}`))
      }, timeoutMs)
      check()
    })
  },

  async log() {
    needPeer()
    const records = []
    for await (const rec of S.peer.db.records()) {
      if (rec.msg) records.push({ id: rec.id, msg: rec.msg, received: rec.received })
    }
    return { records }
  },

  async stop() {
    await shutdown()
    return {}
  },
}

async function setOp(op, cmd) {
  const peer = needPeer()
  need(typeof cmd.subdomain === 'string', `set${op === 'add' ? 'Add' : 'Del'} needs "subdomain"`)
  need(typeof cmd.value === 'string', `set${op === 'add' ? 'Add' : 'Del'} needs "value" (a string)`)
  const { account } = await ensureAccount()
  const tangleID = MsgV4.getMootID(account, SET_PREFIX + cmd.subdomain)
  const before = await tangleMsgIDs(tangleID)
  const changed = await p(peer.set[op])(cmd.subdomain, cmd.value)
  return { changed, tangleID, msgID: changed ? await newestNewMsg(tangleID, before) : null }
}

async function tangleMsgIDs(tangleID) {
  const tangle = await p(S.peer.db.getTangle)(tangleID)
  return new Set(tangle && (await p(S.peer.db.get)(tangleID)) ? tangle.topoSort() : [])
}

/** The msg a set/dict write just appended (the plugins only return a boolean):
 *  the deepest msg of the tangle that was not there before. */
async function newestNewMsg(tangleID, before) {
  const tangle = await p(S.peer.db.getTangle)(tangleID)
  const fresh = tangle.topoSort().filter((id) => !before.has(id))
  return fresh.length ? fresh[fresh.length - 1] : null
}

/** pzp-set/pzp-dict reads assert that some account is loaded. */
async function ensureLoadedForRead() {
  if (S.account) return
  const account = await findAccount()
  need(account, 'pzp-set/pzp-dict reads need a local account: send "createAccount" first')
  S.account = account
  await loadSetDict(account)
}

async function shutdown() {
  if (S.stopping) return
  S.stopping = true
  const peer = S.peer
  if (!peer) return
  for (const rpc of [...S.connections.keys()]) {
    try {
      await withTimeout(p(rpc.close)(true), 3000, 'closing a connection')
    } catch (err) {
      log('close rpc:', err.message)
    }
  }
  await withTimeout(p(peer.close)(true), 10000, 'closing the peer')
  if (S.removeDirAtStop && S.dir) FS.rmSync(S.dir, { recursive: true, force: true })
}

Object.assign(handlers, Hub.handlers(S, needPeer, need, ensureAccount))

// --- dispatch -------------------------------------------------------------------
function reply(obj) {
  return new Promise((resolve) => writeOut(JSON.stringify(sortKeys(obj)) + '\n', resolve))
}

const CONCURRENT = new Set(['waitFor', 'ping'])
let queue = Promise.resolve()

async function run(id, cmd) {
  const handler = Object.prototype.hasOwnProperty.call(handlers, cmd.cmd) ? handlers[cmd.cmd] : null
  try {
    need(handler, `unknown command "${cmd.cmd}"`)
    need(!S.stopping || cmd.cmd === 'stop', 'peer is stopping')
    // waitFor has its own timeoutMs (its default is 30 s)
    const ms = cmd.cmd === 'waitFor' ? 0 : cmd.timeoutMs ?? 600000
    const result = await withTimeout(handler(cmd), ms, `"${cmd.cmd}"`)
    await reply({ id, ok: true, result: result ?? {} })
  } catch (err) {
    const causes = errorCauses(err)
    log(`command ${JSON.stringify(cmd.cmd)} (id ${JSON.stringify(id)}) failed:`, err?.message ?? err, causes.length ? causes : '')
    await reply({ id, ok: false, error: String(err?.message ?? err), causes })
  }
  if (cmd.cmd === 'stop' && S.stopping) process.exit(0)
}

function onLine(line) {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
    if (!cmd || typeof cmd !== 'object' || Array.isArray(cmd)) throw new Error('a command must be a JSON object')
    if (typeof cmd.cmd !== 'string') throw new Error('a command needs a string "cmd"')
  } catch (err) {
    let id = null
    try {
      id = JSON.parse(line)?.id ?? null
    } catch {}
    reply({ id, ok: false, error: 'bad request: ' + err.message, causes: [] })
    return
  }
  const id = cmd.id ?? null
  if (CONCURRENT.has(cmd.cmd)) run(id, cmd)
  else queue = queue.then(() => run(id, cmd))
}

// The driver went away mid-write: nobody is listening any more.
process.stdout.on('error', () => shutdown().finally(() => process.exit(0)))
process.on('uncaughtException', (err) => log('uncaught exception (ignored):', err?.stack ?? err))
process.on('unhandledRejection', (err) => log('unhandled rejection (ignored):', err?.stack ?? err))

const rl = Readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', onLine)
rl.on('close', () => {
  // stdin closed (the driver went away): finish queued work, then stop.
  queue = queue.then(async () => {
    try {
      await shutdown()
    } catch (err) {
      log('shutdown:', err.message)
    }
    process.exit(0)
  })
})
