#!/usr/bin/env node
// @stomp/stompjs 7 `Client` with configurable settings, for
// tests/interop/test_stompjs_variants.py: its defaults (heart-beats 10 s both
// ways, content-length on SEND, reconnectDelay 5 s), forceBinaryWSFrames,
// splitLargeFrames with a small maxWebSocketChunkSize, and automatic
// reconnection with re-subscription in onConnect.
//
// Same line protocol as stompjs_client.mjs (harness.cjs; driven by the same
// NodeClient helper, tests/support/node.py):
//   node variants_client.mjs '{"timeoutMs": 30000, "actions": [...]}'
// then one JSON action per line on stdin; when stdin ends, every client is
// deactivated (DISCONNECT) and the process exits 0.
//
// Output, one JSON object per line:
//   {"event":"done","seq":N,"op":...,...}     an action finished (its result)
//   {"event":"connected","client":C,"count":N,"subprotocol":P,"headers":{...}}
//                                   every CONNECTED (count 1, 2... on reconnects)
//   {"event":"resubscribed","client":C,"count":N,"ids":{DEST:SUBID}}
//                                   onConnect re-subscribed the standing
//                                   subscriptions and got their RECEIPTs
//   {"event":"message","client":C,"callback":SUBID,"headers":{...},
//    "body":"...","bodyBase64":"...","isBinaryBody":B}
//   {"event":"receipt"|"stompError"|"unhandledMessage"|"unhandledReceipt"|
//    "unhandledFrame","client":C,"headers":{...},"body":"..."}
//   {"event":"heartbeat"|"heartbeatLost","client":C}
//   {"event":"close","client":C,"code":N,"reason":"...","wasClean":B}
//   {"event":"wsError","client":C,"message":"..."}
//   {"event":"sent","client":C,"binary":B,"length":N,"head":S}
//                                   every WebSocket message the client sent
//                                   (connect with "traceSend": true); length
//                                   in bytes for binary, UTF-16 units for
//                                   text; head: the text up to the first
//                                   blank line (a frame's command and headers),
//                                   at most 512 units
//
// Actions:
//   {"op":"connect","client":C,"url":U,"options":{...Client settings}?,
//    "protocols":[...]?,"traceSend":false?}
//        "options" go to the Client as-is (JSON-able ones: heartbeatIncoming,
//        forceBinaryWSFrames, splitLargeFrames, maxWebSocketChunkSize,
//        reconnectDelay, connectHeaders...); anything not given keeps the
//        library's default. Waits for the first CONNECTED.
//   {"op":"subscribe","client":C,"destination":D,"receipt":R?,"standing":B?}
//        "standing": onConnect subscribes to D again after every reconnect
//   {"op":"publish","client":C,"destination":D,"body":S,"headers":{}?,"receipt":R?}
//   {"op":"disconnect","client":C}
//   {"op":"sleep","ms":MS}

import WebSocket from 'ws';

import harness from './harness.cjs';
import { PROTOCOLS, activate, messageEvent, receiptOf } from './stompjs7.mjs';

const { emit, entryOf, frameEvent, headersOf, need, sleep, start } = harness;
const { subscribeReporting, withReceipt } = harness;

const { scenario, serve } = start('variants_client');
const clients = new Map(); // name -> entry

function traceSend(entry, socket) {
  const send = socket.send.bind(socket);
  socket.send = (data, ...rest) => {
    const binary = typeof data !== 'string';
    const text = binary ? Buffer.from(data).toString('utf8') : data;
    emit({
      event: 'sent',
      client: entry.name,
      binary,
      length: binary ? data.byteLength : data.length,
      // The command and header lines (not the body): "" for a heart-beat.
      head: text.replace(/^\n+/, '').split('\n\n', 1)[0].slice(0, 512),
    });
    return send(data, ...rest);
  };
}

function subscribeNow(entry, destination, receipt) {
  const headers = receipt === undefined ? {} : { receipt };
  const waiting = receiptOf(entry, receipt);
  const id = subscribeReporting(entry, destination, headers, messageEvent);
  return { id, receipt: waiting };
}

// onConnect after a reconnect: subscribe to the standing destinations again.
async function resubscribe(entry, count) {
  const ids = {};
  const receipts = [];
  for (const destination of entry.standing) {
    const { id, receipt } = subscribeNow(entry, destination, `resubscribe-${count}-${destination}`);
    ids[destination] = id;
    receipts.push(receipt);
  }
  try {
    await Promise.all(receipts);
  } catch (error) {
    emit({ event: 'resubscribeFailed', client: entry.name, count, message: error.message });
    return;
  }
  emit({ event: 'resubscribed', client: entry.name, count, ids });
}

function connect(action) {
  const name = need(action, 'client');
  if (clients.has(name)) throw new Error(`client ${name} already exists`);
  const url = need(action, 'url');
  const entry = { name, client: undefined, socket: undefined, closeWaiters: new Set(), standing: [], count: 0 };
  clients.set(name, entry);
  const settings = {
    ...(action.options ?? {}),
    webSocketFactory: () => {
      const socket = new WebSocket(url, action.protocols ?? PROTOCOLS);
      if (action.traceSend) traceSend(entry, socket);
      entry.socket = socket;
      return socket;
    },
  };
  const onConnect = (frame, connected) => {
    entry.count += 1;
    emit({
      ...frameEvent('connected', name, frame),
      count: entry.count,
      subprotocol: entry.socket.protocol,
    });
    if (entry.count === 1) {
      connected(frame);
    } else {
      void resubscribe(entry, entry.count);
    }
  };
  return activate(entry, settings, onConnect, scenario.debug);
}

async function subscribe(action) {
  const entry = entryOf(clients, action);
  const destination = need(action, 'destination');
  if (action.standing) entry.standing.push(destination);
  const { id, receipt } = subscribeNow(entry, destination, action.receipt);
  return withReceipt({ id }, entry.name, receipt);
}

async function publish(action) {
  const entry = entryOf(clients, action);
  const headers = headersOf(action);
  const receipt = receiptOf(entry, action.receipt);
  entry.client.publish({ destination: need(action, 'destination'), headers, body: need(action, 'body') });
  return withReceipt({}, entry.name, receipt);
}

async function disconnect(action) {
  await entryOf(clients, action).client.deactivate();
  return {};
}

async function shutdown() {
  for (const entry of clients.values()) await entry.client.deactivate();
}

serve({ connect, subscribe, publish, disconnect, sleep }, shutdown);
