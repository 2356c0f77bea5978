#!/usr/bin/env node
// A scriptable legacy STOMP client for tests/interop/test_legacy_clients.py:
// the `stompjs` 2.3.3 package (Jeff Mesnil's stomp-websocket, the `Stomp`
// global of the seed's front end) over either
//   * `sockjs-client` 1.6.1, exactly as the seed's page does it:
//       var sock = new SockJS(url); var client = Stomp.over(sock);
//       client.connect(headers, onConnect, onError);
//   * a raw `ws` WebSocket offering ['v10.stomp', 'v11.stomp'] (what
//     `Stomp.client(url)` does in a browser).
//
// It speaks the same line protocol as stompjs_client.mjs (harness.cjs), so
// the tests drive it with the same NodeClient helper (tests/support/node.py):
//   node legacy_client.cjs '{"timeoutMs": 30000, "actions": [...]}'
// then one JSON action per line on stdin; when stdin ends every client
// DISCONNECTs and the process exits 0.
//
// Output, one JSON object per line:
//   {"event":"done","seq":N,"op":...,...}      an action finished (its result)
//   {"event":"connected","client":C,"command":"CONNECTED","headers":{...},"body":""}
//   {"event":"message","client":C,"callback":SUBID,"command":"MESSAGE",
//    "headers":{...},"body":"...","bodyBase64":"..."}
//   {"event":"receipt"|"unhandledReceipt"|"stompError","client":C,
//    "command":...,"headers":{...},"body":"..."}
//   {"event":"unhandledMessage","client":C,...}   a MESSAGE for no live subscription
//   {"event":"lost","client":C,"message":"Whoops! Lost connection to ..."}
//                                    stompjs's error callback with a string
//   {"event":"close","client":C,"code":N,"reason":"...","wasClean":B}
//   {"event":"heartbeat","client":C}  a STOMP heart-beat (a lone "\n") arrived
//   {"event":"sockjsHeartbeat","client":C}   a SockJS "h" frame arrived
//   {"event":"wire","client":C,"data":"..."}  every message the STOMP client
//                                    got, when the connect action had "trace"
//   {"event":"sent","client":C,"data":"..."}  every message it sent (a frame
//                                    or a piece of one), with "trace" too
//
// Actions ("client" names a connection; "seq" is echoed in "done"):
//   {"op":"connect","client":C,"url":U,"transport":"sockjs"|"ws",
//    "protocols":[...]?,"connectHeaders":{}?,"trace":false?,
//    "heartbeat":{"outgoing":MS,"incoming":MS}?}   (stompjs default: 10000 both)
//        done: {"headers":{CONNECTED headers},"transport":T,"protocol":P,"url":U}
//   {"op":"subscribe","client":C,"destination":D,"headers":{}?,"receipt":R?}
//        done: {"id":SUBID,"receipt":{...}?}  (with "receipt", waits for it)
//   {"op":"send","client":C,"destination":D,"headers":{}?,
//    "body":S | "bodies":[S...],"receipt":R?}
//   {"op":"unsubscribe","client":C,"id":ID}
//   {"op":"disconnect","client":C}    client.disconnect(): DISCONNECT, then close
//   {"op":"sleep","ms":MS}
//
// Failures (bad action, socket lost while waiting, global timeout) go to
// stderr and as {"event":"fatal",...}; the exit code is then 1 (3 for the
// global timeout).

'use strict';

const Stomp = require('stompjs');
const SockJS = require('sockjs-client');
const WebSocket = require('ws');

const harness = require('./harness.cjs');

const { bodiesOf, closeEvent, emit, entryOf, failWaiters, frameEvent, headersOf, need } = harness;
const { sleep, start, subscribeReporting, waiting, withReceipt } = harness;

const WS_PROTOCOLS = ['v10.stomp', 'v11.stomp']; // Stomp.client()'s default

const { serve } = start('legacy_client');
const clients = new Map(); // name -> {name, client, socket, waiters, receipts, closed}

function openSocket(action) {
  const url = need(action, 'url');
  const transport = action.transport ?? 'sockjs';
  if (transport === 'sockjs') return new SockJS(url);
  if (transport === 'ws') return new WebSocket(url, action.protocols ?? WS_PROTOCOLS);
  throw new Error(`unknown transport ${JSON.stringify(transport)}`);
}

function connect(action) {
  const name = need(action, 'client');
  if (clients.has(name)) throw new Error(`client ${name} already exists`);
  const socket = openSocket(action);
  if (action.trace) {
    const send = socket.send.bind(socket);
    socket.send = data => {
      emit({ event: 'sent', client: name, data: String(data) });
      return send(data);
    };
  }
  const client = Stomp.over(socket);
  client.debug = null; // stompjs 2.3.3 logs every frame to window.console otherwise
  if (action.heartbeat !== undefined) client.heartbeat = { ...client.heartbeat, ...action.heartbeat };
  const entry = { name, client, socket, waiters: new Set(), receipts: new Map(), closed: false };
  clients.set(name, entry);

  client.onreceipt = frame => {
    const id = frame.headers['receipt-id'];
    const settle = entry.receipts.get(id);
    if (settle === undefined) {
      emit(frameEvent('unhandledReceipt', name, frame));
      return;
    }
    entry.receipts.delete(id);
    settle(frame);
  };
  // A MESSAGE whose subscription has no callback any more.
  client.onreceive = frame => emit({ ...messageEvent(name, null, frame), event: 'unhandledMessage' });

  if (action.transport !== 'ws') {
    socket.addEventListener('heartbeat', () => emit({ event: 'sockjsHeartbeat', client: name }));
  }

  return new Promise((resolve, reject) => {
    entry.waiters.add(reject);
    client.connect(
      action.connectHeaders ?? {},
      frame => {
        entry.waiters.delete(reject);
        emit(frameEvent('connected', name, frame));
        resolve({
          headers: { ...frame.headers },
          transport: action.transport === 'ws' ? 'raw' : socket.transport,
          protocol: socket.protocol,
          url: socket.url,
        });
      },
      error => {
        // stompjs 2.3.3 calls the error callback with an ERROR frame, or with
        // a string when the socket closed.
        if (typeof error === 'string') {
          emit({ event: 'lost', client: name, message: error });
          entry.receipts.clear();
          failWaiters(entry.waiters, `client ${name}: connection lost: ${error}`);
        } else {
          emit(frameEvent('stompError', name, error));
        }
      },
    );
    // Client.connect() has just installed its handlers: wrap them to see
    // heart-beats, the wire and the close code.
    const onmessage = socket.onmessage;
    socket.onmessage = event => {
      const data = event.data;
      if (action.trace) emit({ event: 'wire', client: name, data: String(data) });
      if (data === '\n') emit({ event: 'heartbeat', client: name });
      return onmessage(event);
    };
    const onclose = socket.onclose;
    socket.onclose = event => {
      entry.closed = true;
      emit(closeEvent(name, event));
      return onclose(event);
    };
  });
}

function messageEvent(name, callbackId, frame) {
  return {
    event: 'message',
    client: name,
    callback: callbackId,
    command: frame.command,
    headers: { ...frame.headers },
    body: frame.body,
    bodyBase64: Buffer.from(frame.body, 'utf8').toString('base64'),
  };
}

// A promise that settles with the RECEIPT, or fails if the connection is lost
// first (undefined when no receipt is asked for).
function receiptOf(entry, receiptId) {
  if (receiptId === undefined) return undefined;
  return waiting(entry.waiters, settle => entry.receipts.set(receiptId, settle));
}

async function subscribe(action) {
  const entry = entryOf(clients, action);
  const headers = headersOf(action);
  const receipt = receiptOf(entry, action.receipt);
  const id = subscribeReporting(entry, need(action, 'destination'), headers, messageEvent);
  return withReceipt({ id }, entry.name, receipt);
}

function unsubscribe(action) {
  entryOf(clients, action).client.unsubscribe(need(action, 'id'));
  return {};
}

async function send(action) {
  const entry = entryOf(clients, action);
  const destination = need(action, 'destination');
  const bodies = bodiesOf(action);
  const receipt = receiptOf(entry, action.receipt);
  // Client.send() adds "destination" to the object it is given: a fresh one each time.
  for (const body of bodies) entry.client.send(destination, headersOf(action), body);
  return withReceipt({ sent: bodies.length }, entry.name, receipt);
}

function disconnect(action) {
  const entry = entryOf(clients, action);
  return new Promise(resolve => entry.client.disconnect(() => resolve({})));
}

async function shutdown() {
  for (const entry of clients.values()) {
    if (!entry.closed && entry.client.connected) {
      await new Promise(resolve => entry.client.disconnect(resolve));
    }
  }
  // Let the DISCONNECTs and close frames go out before exiting.
  await new Promise(resolve => setTimeout(resolve, 50));
}

serve({ connect, subscribe, unsubscribe, send, disconnect, sleep }, shutdown);
