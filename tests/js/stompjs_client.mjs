#!/usr/bin/env node
// A scriptable STOMP client for the gateway's end-to-end tests
// (tests/interop/test_node_clients.py): the real @stomp/stompjs 7 `Client`
// over the `ws` WebSocket implementation, driven by JSON actions.
//
// Usage (the line protocol of harness.cjs):
//   node stompjs_client.mjs '{"timeoutMs": 30000, "actions": [...]}'
//
// The optional argv scenario runs first; then one JSON action per line is
// read from stdin until it ends (keep stdin open to drive the client
// interactively). Actions run one at a time, in order. When stdin ends,
// every client is deactivated (DISCONNECT) and the process exits 0.
//
// Every output line on stdout is one JSON object with an "event" field:
//   {"event":"done","seq":N,"op":...,...}   an action finished (its result)
//   {"event":"connected","client":C,"headers":{...}}
//   {"event":"message","client":C,"callback":SUBID,"headers":{...},
//    "body":"...","bodyBase64":"...","isBinaryBody":false}
//   {"event":"receipt"|"stompError"|"unhandledMessage"|"unhandledReceipt"|
//    "unhandledFrame","client":C,"headers":{...},"body":"..."}
//   {"event":"heartbeat"|"heartbeatLost","client":C}
//   {"event":"close","client":C,"code":N,"reason":"...","wasClean":B}
//   {"event":"wsError","client":C,"message":"..."}
//   {"event":"raw","client":C,"data":"..."}   (raw connections only)
//
// Actions ("client" names a connection; "seq" is echoed in "done"):
//   {"op":"connect","client":C,"url":U,"heartbeatIncoming":MS,
//    "heartbeatOutgoing":MS,"connectHeaders":{},"muteHeartbeats":false}
//   {"op":"subscribe","client":C,"destination":D,"id":ID?,"headers":{}?,
//    "receipt":R?}                 (with "receipt", waits for the RECEIPT)
//   {"op":"unsubscribe","client":C,"id":ID}
//   {"op":"publish","client":C,"destination":D,"body":S | "bodies":[S...],
//    "headers":{}?,"receipt":R?}   (with "receipt", waits for the RECEIPT)
//   {"op":"rawConnect","client":C,"url":U,"frames":[S...],"waitFor":CMD?}
//                                  a bare `ws` socket that sends the frames,
//                                  then nothing (not even heart-beats)
//   {"op":"terminate","client":C}  drop the socket: no DISCONNECT, no close
//   {"op":"disconnect","client":C} graceful DISCONNECT (client.deactivate())
//   {"op":"sleep","ms":MS}
//   {"op":"exit","code":N}         process.exit at once, no DISCONNECT
//
// Any failure (bad action, lost connection while waiting, global timeout)
// is reported on stderr and as {"event":"fatal",...}, and the exit code is
// non-zero: 1 for errors, 3 for the global timeout.

import WebSocket from 'ws';

import harness from './harness.cjs';
import { PROTOCOLS, activate, messageEvent, receiptOf } from './stompjs7.mjs';

const { bodiesOf, emit, entryOf, frameEvent, headersOf, need, sleep, start } = harness;
const { subscribeReporting, withReceipt } = harness;

const { scenario, serve } = start('stompjs_client');
const clients = new Map(); // name -> {name, client, socket, closeWaiters}
const raws = new Map(); // name -> ws

function stompClient(action) {
  return entryOf(clients, action, 'STOMP client');
}

function connect(action) {
  const name = need(action, 'client');
  if (clients.has(name) || raws.has(name)) throw new Error(`client ${name} already exists`);
  const url = need(action, 'url');
  const entry = { name, client: undefined, socket: undefined, closeWaiters: new Set() };
  clients.set(name, entry);
  const settings = {
    webSocketFactory: () => {
      const socket = new WebSocket(url, PROTOCOLS);
      if (action.muteHeartbeats) {
        // Promise heart-beats in CONNECT, then never send them.
        const send = socket.send.bind(socket);
        socket.send = (data, ...rest) => (data === '\n' ? undefined : send(data, ...rest));
      }
      entry.socket = socket;
      return socket;
    },
    reconnectDelay: 0,
    heartbeatIncoming: action.heartbeatIncoming ?? 0,
    heartbeatOutgoing: action.heartbeatOutgoing ?? 0,
    connectHeaders: action.connectHeaders ?? {},
  };
  const onConnect = (frame, connected) => {
    emit(frameEvent('connected', name, frame));
    connected(frame);
  };
  return activate(entry, settings, onConnect, scenario.debug);
}

async function subscribe(action) {
  const entry = stompClient(action);
  const headers = headersOf(action, action.id === undefined ? {} : { id: action.id });
  const receipt = receiptOf(entry, action.receipt);
  const id = subscribeReporting(entry, need(action, 'destination'), headers, messageEvent);
  return withReceipt({ id }, entry.name, receipt);
}

function unsubscribe(action) {
  stompClient(action).client.unsubscribe(need(action, 'id'));
  return {};
}

async function publish(action) {
  const entry = stompClient(action);
  const destination = need(action, 'destination');
  const headers = headersOf(action);
  const bodies = bodiesOf(action);
  const receipt = receiptOf(entry, action.receipt);
  for (const body of bodies) entry.client.publish({ destination, headers, body });
  return withReceipt({ published: bodies.length }, entry.name, receipt);
}

function rawConnect(action) {
  const name = need(action, 'client');
  if (clients.has(name) || raws.has(name)) throw new Error(`client ${name} already exists`);
  const socket = new WebSocket(need(action, 'url'), action.protocols ?? PROTOCOLS);
  raws.set(name, socket);
  return new Promise((resolve, reject) => {
    let settled = action.waitFor === undefined;
    socket.on('open', () => {
      for (const frame of action.frames ?? []) socket.send(frame);
      if (settled) resolve({ subprotocol: socket.protocol });
    });
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? Buffer.from(data).toString('latin1') : data.toString();
      emit({ event: 'raw', client: name, data: text, isBinary });
      // One WebSocket message may carry several frames (the gateway joins
      // frames that are ready together), each ended by NUL.
      const frames = text.split('\0').map(frame => frame.replace(/^[\r\n]+/, ''));
      if (!settled && frames.some(frame => frame.startsWith(`${action.waitFor}\n`))) {
        settled = true;
        resolve({ subprotocol: socket.protocol });
      }
    });
    socket.on('error', error => emit({ event: 'wsError', client: name, message: String(error.message) }));
    socket.on('close', (code, reason) => {
      emit({ event: 'close', client: name, code, reason: reason.toString(), wasClean: code !== 1006 });
      if (!settled) reject(new Error(`raw client ${name}: closed (code ${code}) before ${action.waitFor}`));
    });
  });
}

function terminate(action) {
  const name = need(action, 'client');
  const socket = clients.get(name)?.socket ?? raws.get(name);
  if (socket === undefined) throw new Error(`no client named ${JSON.stringify(name)}`);
  socket.terminate();
  return {};
}

async function disconnect(action) {
  await stompClient(action).client.deactivate();
  return {};
}

async function shutdown() {
  for (const entry of clients.values()) {
    if (entry.client !== undefined) await entry.client.deactivate();
  }
  for (const socket of raws.values()) socket.terminate();
}

serve(
  {
    connect,
    subscribe,
    unsubscribe,
    publish,
    rawConnect,
    terminate,
    disconnect,
    sleep,
    exit: action => process.exit(action.code ?? 0),
  },
  shutdown,
);
