#!/usr/bin/env node
/*
 * selftest.js -- end-to-end check of the interop harness with JS peers only:
 * several peer.js processes (each its own Node process) replicate with each
 * other over 127.0.0.1 + SHSE + muxrpc + pzp-sync, driven through the JSON
 * lines protocol exactly as a Rust test would drive them.
 *
 *     node selftest.js [N=1000]        (exit code 0 = success)
 *
 * Scenario:
 *   bob   (seed 02..): account (nonce "bob"), N posts, a 2nd key (bob2) with
 *         power "add", a 30-msg "news" feed, set "follows" (add/add/del/add),
 *         dict "profile" (3 updates).
 *   dave  (seed 02.. too, nonce "bob"): the same N posts via publishMany
 *         fast=true; its posts must be byte-identical to bob's.
 *   alice (seed 01..): own account + "diary" feed; dials bob and syncs, in
 *         stages: goals all (bob's account), all (posts), set (follows) +
 *         dict (profile), all (own account + diary: bob's goals make him,
 *         the responder, accept them).
 *         Checks: alice's and bob's states agree on every shared tangle, msg,
 *         set and dict, and match pzp-set/pzp-dict's own view on bob.
 *   realtime: with the connection open, bob posts 3 msgs back to back, adds
 *         to the set, updates the dict; alice writes her diary; each side
 *         receives everything.
 *   carol (seed 04..): goal newest-5 on bob's news; dials bob; must end with
 *         exactly the newest 5 news msgs with data, the rest of her news
 *         tangle being dataless trail copies of bob's msgs.
 *   errors: unknown command, bad JSON, bad goal DSL, a tampered msg via
 *         `add` and its re-submission (pzp-db would hang: §6.2), waitFor
 *         timeout -- all must come back as error replies, the peer alive.
 */
'use strict'

const assert = require('node:assert/strict')
const { spawnPeer } = require('./client')

const N = Number(process.argv[2] || process.env.SELFTEST_N || 1000)
const NEWS = 30
const SEED = { alice: '01'.repeat(32), bob: '02'.repeat(32), bob2: '03'.repeat(32), carol: '04'.repeat(32) }
const VERBOSE = !!process.env.SELFTEST_VERBOSE

const t0 = Date.now()
function step(msg) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`)
}

/** The part of a state dump that concerns the given tangles. */
function slice(state, tangleIDs) {
  const out = { tangles: {}, msgs: {} }
  for (const t of tangleIDs) {
    assert.ok(state.tangles[t], `tangle ${t} missing`)
    out.tangles[t] = state.tangles[t]
    for (const id of state.tangles[t]) out.msgs[id] = state.msgs[id]
  }
  return out
}

async function main() {
  const peers = []
  const spawn = (name) => {
    const p = spawnPeer(name, { stderr: VERBOSE })
    peers.push(p)
    return p
  }
  try {
    // ------------------------------------------------------------------ bob
    const bob = spawn('bob')
    const bobInfo = await bob.call('init', { seed: SEED.bob, nonce: 'bob' })
    assert.match(bobInfo.address, /^net:127\.0\.0\.1:\d+~shse:[1-9A-HJ-NP-Za-km-z]+$/)
    assert.equal(bobInfo.account, null)
    const { account: bobAcc, created } = await bob.call('createAccount', {})
    assert.equal(created, true)
    // same key + nonce as bob in vectors/sync-trace.json (bobAccountID)
    assert.equal(bobAcc, 'DjtwbRU97gLHAgy4PDFHeJo4u72JPdNYEqmR3rzqDeAc')
    step(`bob ${bobInfo.pubkey} listening at ${bobInfo.address}, account ${bobAcc}`)

    let r = await bob.call('publishMany', { domain: 'post', count: N })
    const postsID = r.tangleID
    assert.equal(postsID, '33ttLXGWQfpov1FY1XNwCbJMBYCVwL5Bs4toCLdgdoyp') // sync-trace.json bobPostsFeedID
    assert.equal(r.maxDepth, N)
    step(`bob published ${N} posts via feed.publish in ${r.ms} ms`)

    const add2 = await bob.call('accountAdd', { seed: SEED.bob2, powers: ['add'] })
    assert.equal(add2.msg.data.action, 'add')
    assert.deepEqual(add2.msg.data.powers, ['add'])
    r = await bob.call('publishMany', { domain: 'news', count: NEWS, textPrefix: 'news #' })
    const newsID = r.tangleID
    for (const v of ['alice', 'carol']) assert.equal((await bob.call('setAdd', { subdomain: 'follows', value: v })).changed, true)
    assert.equal((await bob.call('setAdd', { subdomain: 'follows', value: 'alice' })).changed, false)
    await bob.call('setDel', { subdomain: 'follows', value: 'carol' })
    const sa = await bob.call('setAdd', { subdomain: 'follows', value: 'dave' })
    const followsID = sa.tangleID
    await bob.call('dictUpdate', { subdomain: 'profile', update: { name: 'Bob' } })
    await bob.call('dictUpdate', { subdomain: 'profile', update: { age: 42 } })
    const du = await bob.call('dictUpdate', { subdomain: 'profile', update: { name: 'Bob B.' } })
    const profileID = du.tangleID
    assert.equal((await bob.call('mootID', { account: bobAcc, domain: 'set_v1__follows' })).mootID, followsID)
    assert.equal((await bob.call('mootID', { account: bobAcc, domain: 'dict_v1__profile' })).mootID, profileID)
    assert.equal((await bob.call('mootID', { account: bobAcc, domain: 'post' })).mootID, postsID)
    step('bob: 2nd key, news feed, set and dict written')

    // ------------------------------------ dave: same posts via the fast path
    {
      const dave = spawn('dave')
      await dave.call('init', { seed: SEED.bob, nonce: 'bob' })
      const rf = await dave.call('publishMany', { domain: 'post', count: N, fast: true })
      assert.equal(rf.tangleID, postsID)
      const ds = await dave.call('state')
      const bs = await bob.call('state')
      assert.deepEqual(slice(ds, [bobAcc, postsID]).tangles[postsID], bs.tangles[postsID])
      for (const id of bs.tangles[postsID]) assert.deepEqual(ds.msgs[id], bs.msgs[id])
      await dave.call('stop')
      assert.equal((await dave.exited).code, 0)
      step(`dave: publishMany fast=true made the same ${N} posts in ${rf.ms} ms`)
    }

    // ---------------------------------------------------------------- alice
    const alice = spawn('alice')
    const aliceInfo = await alice.call('init', { seed: SEED.alice, nonce: 'alice' })
    const { account: aliceAcc } = await alice.call('createAccount', {})
    r = await alice.call('publish', { domain: 'diary', data: { text: 'dear diary 1' } })
    const diaryID = r.tangleID
    await alice.call('publish', { domain: 'diary', data: { text: 'dear diary 2' } })

    // bob (responder) must want alice's diary, or his want-range is empty
    await bob.call('goal', { tangleID: aliceAcc, goal: 'all' })
    await bob.call('goal', { account: aliceAcc, domain: 'diary', goal: 'all' })

    // alice (dialer) drives: only the dialer's goals are requested. Goals
    // are given in stages: pzp-sync re-sends phase 1 for every tangle still
    // in its `requested` set whenever a record is added locally (README
    // quirk 3), so a small tangle completing while the big feed is in flight
    // would make bob rebuild the whole feed slice again (about a minute of
    // CPU each at N=1000).
    const bobState0 = await bob.call('state')
    const wanted = {}
    for (const t of [bobAcc, postsID, followsID, profileID]) wanted[t] = bobState0.tangles[t].length
    const waitAll = (peer, tangles, timeoutMs) =>
      Promise.all(Object.entries(tangles).map(([t, count]) => peer.call('waitFor', { tangleID: t, count, timeoutMs })))

    await alice.call('goal', { tangleID: bobAcc, goal: 'all' })
    await alice.call('startSync')
    const conn = await alice.call('connect', { address: bobInfo.address })
    assert.equal(conn.remote, bobInfo.pubkey)
    await waitAll(alice, { [bobAcc]: wanted[bobAcc] }, 60e3)
    step(`alice ${aliceInfo.pubkey} dialed bob; has bob's account tangle`)

    await alice.call('goal', { tangleID: postsID, goal: 'all' })
    const [posts] = await waitAll(alice, { [postsID]: wanted[postsID] }, 1800e3)
    step(`alice has bob's ${N} posts (${posts.ms} ms)`)

    await alice.call('goal', { tangleID: followsID, goal: 'set' })
    await alice.call('goal', { account: bobAcc, domain: 'dict_v1__profile', goal: 'dict' })
    const g = await alice.call('goals')
    assert.equal(g.goals[followsID], 'set')
    assert.equal(g.goals[profileID], 'dict')
    await waitAll(alice, { [followsID]: wanted[followsID], [profileID]: wanted[profileID] }, 120e3)
    step("alice has bob's set and dict")

    await alice.call('goal', { tangleID: aliceAcc, goal: 'all' })
    await alice.call('goal', { tangleID: diaryID, goal: 'all' })
    await bob.call('waitFor', { tangleID: diaryID, count: 3, timeoutMs: 60e3 })
    step("bob (the responder) has alice's diary")

    // alice must hold exactly what bob holds for bob's tangles
    const compare = async (label) => {
      const as = await alice.call('state')
      const bs = await bob.call('state')
      const shared = [bobAcc, postsID, followsID, profileID]
      assert.deepEqual(slice(as, shared), slice(bs, shared), `${label}: bob's tangles differ`)
      assert.deepEqual(slice(bs, [aliceAcc, diaryID]), slice(as, [aliceAcc, diaryID]), `${label}: alice's tangles differ`)
      const key = (sub) => `${bobAcc}/${sub}`
      assert.deepEqual(as.sets[key('follows')], bs.sets[key('follows')])
      assert.deepEqual(as.dicts[key('profile')], bs.dicts[key('profile')])
      // the state reduction agrees with the plugins' own view on bob's side
      const pluginSet = (await bob.call('setValues', { subdomain: 'follows' })).values.sort()
      const pluginDict = (await bob.call('dictRead', { subdomain: 'profile' })).value
      assert.deepEqual(bs.sets[key('follows')], pluginSet)
      assert.deepEqual(bs.dicts[key('profile')], pluginDict)
      // pzp-set's view on alice (a replica) agrees too
      assert.deepEqual((await alice.call('setValues', { subdomain: 'follows', account: bobAcc })).values.sort(), pluginSet)
      return { as, bs, set: pluginSet, dict: pluginDict }
    }
    let c = await compare('after initial sync')
    assert.deepEqual(c.set, ['alice', 'dave'])
    assert.deepEqual(c.dict, { age: 42, name: 'Bob B.' })
    assert.equal(c.as.tangles[postsID].length, N + 1)
    step(`states agree: set ${JSON.stringify(c.set)}, dict ${JSON.stringify(c.dict)}`)

    // ------------------------------------------------------------- realtime
    // A burst: three posts back to back. pzp-sync commits each phase-9 frame
    // concurrently; without peer.js's add shim pzp-db would reject some of
    // them (README quirk 1; quirks.js shows it with addShim: false).
    for (let i = 1; i <= 3; i++) await bob.call('publish', { domain: 'post', data: { text: 'realtime ' + i } })
    await bob.call('setAdd', { subdomain: 'follows', value: 'erin' })
    await bob.call('dictUpdate', { subdomain: 'profile', update: { mood: 'happy' } })
    await alice.call('publish', { domain: 'diary', data: { text: 'dear diary 3 (realtime)' } })
    await waitAll(alice, { [postsID]: N + 4, [followsID]: wanted[followsID] + 1, [profileID]: wanted[profileID] + 1 }, 60e3)
    await bob.call('waitFor', { tangleID: diaryID, count: 4, timeoutMs: 60e3 })
    c = await compare('after realtime')
    assert.deepEqual(c.set, ['alice', 'dave', 'erin'])
    assert.equal(c.dict.mood, 'happy')
    step('realtime msgs arrived on both sides; states agree')

    assert.equal((await alice.call('disconnect', { address: bobInfo.address })).closed, 1)
    assert.deepEqual((await alice.call('peers')).peers, [])

    // ------------------------------------------------------ newest-N (carol)
    const carol = spawn('carol')
    await carol.call('init', { seed: SEED.carol })
    await carol.call('goal', { tangleID: bobAcc, goal: 'all' })
    await carol.call('goal', { tangleID: newsID, goal: 'newest-5' })
    await carol.call('connect', { address: bobInfo.address })
    await carol.call('startSync') // after connect works too
    await carol.call('waitFor', { tangleID: newsID, exactly: 5, dataful: true, timeoutMs: 120e3 })
    {
      const cs = await carol.call('state')
      const bs = await bob.call('state')
      const bobNews = bs.tangles[newsID]
      const carolNews = cs.tangles[newsID]
      const dataful = carolNews.filter((id) => cs.msgs[id].data !== null)
      assert.deepEqual(dataful, bobNews.slice(-5), 'carol must hold the newest 5 news msgs with data')
      for (const id of carolNews) {
        assert.ok(bobNews.includes(id))
        const trail = cs.msgs[id].data === null
        assert.deepEqual(cs.msgs[id], trail ? { ...bs.msgs[id], data: null } : bs.msgs[id])
      }
      assert.equal(carolNews[0], newsID, 'the moot stays')
      step(`carol (newest-5): ${carolNews.length} msgs in bob's news tangle, dataful = the newest 5`)
    }

    // --------------------------------------------------------------- errors
    {
      const bad = await carol.raw('{"id":"x1","cmd":"nope"}', 'x1')
      assert.equal(bad.ok, false)
      assert.match(bad.error, /unknown command/)
      const junk = await carol.raw('{"id":"x2","cmd":', null)
      assert.equal(junk.ok, false)
      await assert.rejects(carol.call('goal', { tangleID: newsID, goal: 'most' }), /Unrecognized goal DSL/)
      await assert.rejects(carol.call('waitFor', { tangleID: newsID, count: 999, timeoutMs: 300 }), /timed out/)
      await assert.rejects(carol.call('publish', { domain: 'x' }), /needs "data"/)
      // a tampered msg (data changed after signing) is rejected by pzp-db...
      const good = c.bs.msgs[c.bs.tangles[postsID][5]]
      const tampered = { ...good, data: { text: 'tampered' } }
      await assert.rejects(carol.call('add', { msg: tampered, tangleID: postsID }), /add\(\) failed to verify msg/)
      // ...and re-submitting it answers at once instead of hanging (§6.2)
      await assert.rejects(carol.call('add', { msg: tampered, tangleID: postsID }), /already rejected/)
      // a valid msg of bob's is accepted (carol has bob's account; moot needed first)
      await carol.call('add', { msg: c.bs.msgs[postsID] })
      const ok = await carol.call('add', { msg: c.bs.msgs[c.bs.tangles[postsID][1]], tangleID: postsID })
      assert.equal(ok.msgID, c.bs.tangles[postsID][1])
      assert.equal((await carol.call('ping')).pong, true)
      step('error replies ok; peer still alive')
    }

    // ----------------------------------------------------------------- stop
    for (const peer of [alice, bob, carol]) {
      await peer.call('stop')
      const { code } = await peer.exited
      assert.equal(code, 0, `${peer.name} exit code`)
    }
    step('all peers stopped with exit code 0')
    console.log('SELFTEST OK')
  } catch (err) {
    console.error('SELFTEST FAILED:', err)
    for (const p of peers) p.kill()
    process.exit(1)
  }
}

main()
