/*
 * add-shim.js -- works around pzp-db 1.0.4 add() hangs and pzp-sync 1.0.4's
 * concurrent commits (see README "Quirks"), without touching validation.
 */
'use strict'

const MsgV4 = require('pzp-db/msg-v4')

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

/**
 * pzp-db 1.0.4's add() keeps a per-msgID "being added" marker that it only
 * clears after a *successful new* append. When add() rejects a msg, or
 * answers "already stored", the marker stays, and every later add() of that
 * msg ID waits on it forever (so: a re-submitted rejected msg never gets an
 * answer, and the *third* add() of a stored msg never gets one either).
 * pzp-sync re-sends a feed's account msgs with every tangle it syncs, so a
 * peer syncing 3+ tangles of one account hangs the later commits. pzp-sync
 * also starts one commit per received phase-9 frame without awaiting the
 * previous one, so consecutive msgs arriving back to back race and the later
 * one is rejected ("all prev are locally unknown").
 *
 * installAddShim(peer.db, rejected) routes every peer.db.add call (pzp-sync's
 * commits included) through a hook (secret-stack's own hook mechanism), which:
 *   - runs add() calls one at a time, in call order (fixes the race);
 *   - answers with the stored record when the msg is already stored, as
 *     pzp-db itself does, without entering pzp-db's add() (no stale marker);
 *   - answers at once with an error for a msg pzp-db already rejected;
 *   - gives up on an add() that has not answered after 60 s.
 * Validation itself is pzp-db's, untouched. `rejected` (msgID -> reason) is
 * filled with every msg pzp-db rejects. peer.js installs it unless init gets
 * {addShim: false}; quirks.js shows the behaviour with and without it.
 */
function installAddShim(db, rejected = new Map()) {
  let tail = Promise.resolve()
  db.add.hook(function addShim(origAdd, args) {
    const [msg, tangleID, cb] = args
    const answer = (err, rec) => process.nextTick(cb, err, rec) // outside our queue's promise chain
    let msgID
    try {
      msgID = MsgV4.getMsgID(msg)
    } catch (err) {
      return answer(err)
    }
    const step = () =>
      new Promise((release) => {
        const finish = (err, rec) => {
          release()
          answer(err, rec)
        }
        if (rejected.has(msgID)) {
          return finish(new Error(`add() refused msg ${msgID}: pzp-db already rejected it (${rejected.get(msgID)})`))
        }
        db.getRecord(msgID, (err, existing) => {
          if (err) return finish(err)
          // same answer pzp-db gives, unless a dataful copy replaces an erased one
          if (existing && !(existing.msg.data === null && msg.data !== null)) return finish(null, existing)
          let answered = false
          const timer = setTimeout(() => {
            answered = true
            finish(new Error(`add() of ${msgID} did not answer within 60 s`))
          }, 60e3)
          origAdd.call(this, msg, tangleID, (err, rec) => {
            if (answered) return
            answered = true
            clearTimeout(timer)
            if (err) rejected.set(msgID, [err.message, ...errorCauses(err)].join(' <- '))
            finish(err, rec)
          })
        })
      })
    tail = tail.then(step, step)
  })
}

module.exports = { installAddShim }
