/*
 * client.js -- spawn peer.js as a child process and talk to it over its JSON
 * lines protocol (see peer.js header). Used by selftest.js; a Rust test
 * harness does the same thing with std::process::Command.
 *
 *   const peer = spawnPeer('alice')
 *   const info = await peer.call('init', { seed: '01'.repeat(32) })
 *   await peer.call('stop')
 */
'use strict'

const { spawn } = require('node:child_process')
const Path = require('node:path')
const Readline = require('node:readline')

class PeerError extends Error {
  constructor(cmd, reply) {
    super(`${cmd} failed: ${reply.error}${reply.causes?.length ? ' <- ' + reply.causes.join(' <- ') : ''}`)
    this.reply = reply
  }
}

/**
 * @param {string} name label for the peer's stderr lines
 * @param {{ stderr?: boolean, env?: object }} opts stderr=false silences its logs
 */
function spawnPeer(name, opts = {}) {
  const child = spawn(process.execPath, [Path.join(__dirname, 'peer.js')], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env ?? {}) },
  })
  const pending = new Map()
  let nextId = 1
  let exitInfo = null

  Readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      process.stderr.write(`[${name}] NON-JSON ON STDOUT: ${line}\n`)
      return
    }
    const waiter = pending.get(msg.id)
    if (!waiter) {
      process.stderr.write(`[${name}] reply with unknown id: ${line.slice(0, 200)}\n`)
      return
    }
    pending.delete(msg.id)
    waiter(msg)
  })
  Readline.createInterface({ input: child.stderr }).on('line', (line) => {
    if (opts.stderr !== false) process.stderr.write(`  [${name}] ${line}\n`)
  })
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal }
      for (const [, waiter] of pending) waiter({ ok: false, error: `peer exited (${code ?? signal})`, causes: [] })
      pending.clear()
      resolve(exitInfo)
    })
  )

  /** Send one command; resolves with `result`, rejects with PeerError. */
  function call(cmd, params = {}) {
    if (exitInfo) return Promise.reject(new Error(`${name} has exited`))
    const id = nextId++
    return new Promise((resolve, reject) => {
      pending.set(id, (reply) => (reply.ok ? resolve(reply.result) : reject(new PeerError(cmd, reply))))
      child.stdin.write(JSON.stringify({ id, cmd, ...params }) + '\n')
    })
  }

  /** Send a raw line (for protocol-error tests); resolves with the raw reply object. */
  function raw(line, id) {
    return new Promise((resolve) => {
      pending.set(id, resolve)
      child.stdin.write(line + '\n')
    })
  }

  return { name, child, call, raw, exited, kill: () => child.kill('SIGKILL') }
}

module.exports = { spawnPeer, PeerError }
