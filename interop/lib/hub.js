/*
 * hub.js -- the hub side of peer.js: pzp-net 1.0.1, pzp-hub-client 1.0.0,
 * pzp-promise 1.0.0 and pzp-invite 1.0.0 (npm, exact pins), loaded when
 * peer.js is initialized with {"hub": true}.
 *
 * With them a JS peer attends hubs (hubClient.addHub), is reachable and
 * dials others through `tunnel:HUB:TARGET~shse:TARGET` addresses (the
 * multiserver transport of pzp-hub-client), makes and parses invites, and
 * keeps and redeems promises.
 *
 * pzp-net's scheduler reads the pzp-set "hubs" of the loaded account, so the
 * net plugin is started (net.start) only once the account is loaded.
 */
'use strict'

const { promisify: p } = require('node:util')

/** secret-stack plugins, in the order they need each other. */
function plugins() {
  return [require('pzp-net'), ...require('pzp-hub-client'), require('pzp-promise'), require('pzp-invite')]
}

/** secret-stack config additions: the tunnel transport, net not autostarted. */
function config() {
  return {
    incoming: { tunnel: [{ scope: 'public', transform: 'shse' }] },
    outgoing: { tunnel: [{ transform: 'shse' }] },
    net: { autostart: false },
  }
}

/** The rpc of an open connection to `pubkey` (any direction). */
function rpcOf(S, pubkey) {
  for (const [rpc, c] of S.connections) if (c.pubkey === pubkey) return rpc
  return null
}

/**
 * Extra commands (see peer.js's header):
 *   startNet {} -> {}      pzp-net start() (hub discovery from the "hubs" set)
 *   addHub {multiaddr} -> {}    hubClient.addHub: adds to the "hubs" set, connects
 *   netConnect {multiaddr} -> {remote}   pzp-net connect (multiaddr form)
 *   createToken {hub} -> {token}   hub.createToken on the connected hub `hub` (pubkey)
 *   inviteForFriend {hub, account} -> {uri, url}   invite.createForFriend (_hubMultiaddr: hub, id: account;
 *     "id" is the request's own field)
 *   inviteForMyself {hub, account} -> {uri, url}   invite.createForMyself
 *   inviteParse {uri} -> {commands}
 *   promiseCreate {type, account} -> {token}
 *   promiseFollow {pubkey, token, account} -> {result}   rpc.promise.follow on the connection to pubkey
 *   promiseAccountAdd {pubkey, token, account, seed?} -> {result}   rpc.promise.accountAdd with this
 *     peer's key (consent for `account`)
 */
function handlers(S, needPeer, need, ensureAccount) {
  return {
    async startNet() {
      const peer = needPeer()
      await ensureAccount()
      await peer.net.start()
      return {}
    },

    async addHub(cmd) {
      const peer = needPeer()
      need(typeof cmd.multiaddr === 'string', 'addHub needs "multiaddr"')
      await ensureAccount()
      await p(peer.hubClient.addHub)(cmd.multiaddr)
      return {}
    },

    async netConnect(cmd) {
      const peer = needPeer()
      need(typeof cmd.multiaddr === 'string', 'netConnect needs "multiaddr"')
      const rpc = await p(peer.net.connect)(cmd.multiaddr)
      return { remote: rpc.shse?.pubkey ?? null }
    },

    async createToken(cmd) {
      needPeer()
      const rpc = rpcOf(S, cmd.hub)
      need(rpc, `not connected to ${cmd.hub}`)
      const token = await p(rpc.hub.createToken)()
      return { token }
    },

    async inviteForFriend(cmd) {
      const peer = needPeer()
      const { uri, url } = await p(peer.invite.createForFriend)({ _hubMultiaddr: cmd.hub, id: cmd.account })
      return { uri, url }
    },

    async inviteForMyself(cmd) {
      const peer = needPeer()
      const { uri, url } = await p(peer.invite.createForMyself)({ _hubMultiaddr: cmd.hub, id: cmd.account })
      return { uri, url }
    },

    async inviteParse(cmd) {
      return { commands: require('pzp-invite').parse(cmd.uri) }
    },

    async promiseCreate(cmd) {
      const peer = needPeer()
      const token = await p(peer.promise.create)({ type: cmd.type, account: cmd.account })
      return { token }
    },

    async promiseFollow(cmd) {
      needPeer()
      const rpc = rpcOf(S, cmd.pubkey)
      need(rpc, `not connected to ${cmd.pubkey}`)
      const result = await p(rpc.promise.follow)(cmd.token, cmd.account)
      return { result }
    },

    async promiseAccountAdd(cmd) {
      const peer = needPeer()
      const rpc = rpcOf(S, cmd.pubkey)
      need(rpc, `not connected to ${cmd.pubkey}`)
      const consent = peer.db.account.consent({ account: cmd.account, keypair: S.keypair })
      const addition = { key: { purpose: 'sig', algorithm: 'ed25519', bytes: S.keypair.public }, consent }
      const result = await p(rpc.promise.accountAdd)(cmd.token, addition)
      return { result }
    },
  }
}

module.exports = { plugins, config, handlers }
