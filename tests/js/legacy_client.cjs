#!/usr/bin/env node
// A scriptable legacy STOMP client for tests/gateway/test_legacy_clients.py:
// the `stompjs` 2.3.3 package (Jeff Mesnil's stomp-websocket, the `Stomp`
// global of the seed's front end) over either
//   * `sockjs-client` 1.6.1, exactly as the seed's page does it:
//       var sock = new SockJS(url); var client = Stomp.over(sock);
//       client.connect(headers, onConnect, onError);
//   * a raw `ws` WebSocket offering ['v10.stomp', 'v11.stomp'] (what
//     `Stomp.client(url)` does in a browser).
//
// It speaks the same line protocol as stompjs_client.mjs, so the tests drive
// it with the same NodeClient helper:
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

const { createInterface } = require('node:readline');

const Stomp = require('stompjs');
const SockJS = require('sockjs-client');
const WebSocket = require('ws');

const WS_PROTOCOLS = ['v10.stomp', 'v11.stomp']; // Stomp.client()'s default

const scenario = parseScenario(process.argv[2]);
const clients = new Map(); // name -> entry

function parseScenario(text) {
  if (text === undefined || text === '') return {};
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('the scenario must be a JSON object');
    }
    return value;
  } catch (error) {
    process.stderr.write(`legacy_client: invalid scenario argument: ${error.message}\n`);
    process.exit(1);
  }
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fatal(message, code = 1) {
  process.stderr.write(`legacy_client: ${message}\n`);
  emit({ event: 'fatal', message });
  process.exit(code);
}

process.on('uncaughtException', error => fatal(`uncaught exception: ${error.stack ?? error}`));
process.on('unhandledRejection', error => fatal(`unhandled rejection: ${error?.stack ?? error}`));

const timeoutMs = scenario.timeoutMs ?? 30_000;
setTimeout(() => fatal(`global timeout of ${timeoutMs} ms reached`, 3), timeoutMs).unref();

function need(action, key) {
  if (action[key] === undefined) throw new Error(`action ${action.op} needs "${key}"`);
  return action[key];
}

function entryOf(action) {
  const name = need(action, 'client');
  const entry = clients.get(name);
  if (entry === undefined) throw new Error(`no client named ${JSON.stringify(name)}`);
  return entry;
}

function frameEvent(event, name, frame) {
  return {
    event,
    client: name,
    command: frame.command,
    headers: { ...frame.headers },
    body: frame.body,
  };
}

// Settle every pending wait of a connection with an error (it is gone).
function failWaiters(entry, why) {
  const waiters = [...entry.waiters];
  entry.waiters.clear();
  entry.receipts.clear();
  for (const fail of waiters) fail(new Error(`client ${entry.name}: ${why}`));
}

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
    const waiting = entry.receipts.get(id);
    if (waiting === undefined) {
      emit(frameEvent('unhandledReceipt', name, frame));
      return;
    }
    entry.receipts.delete(id);
    waiting(frame);
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
          failWaiters(entry, `connection lost: ${error}`);
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
      emit({
        event: 'close',
        client: name,
        code: event.code,
        reason: String(event.reason ?? ''),
        wasClean: Boolean(event.wasClean),
      });
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

function receiptOf(entry, receiptId) {
  return new Promise((resolve, reject) => {
    entry.waiters.add(reject);
    entry.receipts.set(receiptId, frame => {
      entry.waiters.delete(reject);
      resolve(frame);
    });
  });
}

async function subscribe(action) {
  const entry = entryOf(action);
  const headers = { ...(action.headers ?? {}) };
  let receipt;
  if (action.receipt !== undefined) {
    headers.receipt = action.receipt;
    receipt = receiptOf(entry, action.receipt);
  }
  const holder = {};
  const subscription = entry.client.subscribe(
    need(action, 'destination'),
    frame => emit(messageEvent(entry.name, holder.id, frame)),
    headers,
  );
  holder.id = subscription.id;
  const result = { id: subscription.id };
  if (receipt !== undefined) result.receipt = frameEvent('receipt', entry.name, await receipt);
  return result;
}

function unsubscribe(action) {
  entryOf(action).client.unsubscribe(need(action, 'id'));
  return {};
}

async function send(action) {
  const entry = entryOf(action);
  const destination = need(action, 'destination');
  const bodies = action.bodies ?? [need(action, 'body')];
  let receipt;
  if (action.receipt !== undefined) {
    if (bodies.length !== 1) throw new Error('a receipt needs a single body');
    receipt = receiptOf(entry, action.receipt);
  }
  for (const body of bodies) {
    // Client.send() adds "destination" to the object it is given: a fresh one each time.
    const headers = { ...(action.headers ?? {}) };
    if (action.receipt !== undefined) headers.receipt = action.receipt;
    entry.client.send(destination, headers, body);
  }
  const result = { sent: bodies.length };
  if (receipt !== undefined) result.receipt = frameEvent('receipt', entry.name, await receipt);
  return result;
}

function disconnect(action) {
  const entry = entryOf(action);
  return new Promise(resolve => entry.client.disconnect(() => resolve({})));
}

const OPERATIONS = {
  connect,
  subscribe,
  unsubscribe,
  send,
  disconnect,
  sleep: action => new Promise(resolve => setTimeout(() => resolve({}), need(action, 'ms'))),
};

async function run(action, index) {
  const seq = action.seq ?? index;
  try {
    const operation = OPERATIONS[action.op];
    if (operation === undefined) throw new Error(`unknown op ${JSON.stringify(action.op)}`);
    emit({ event: 'done', seq, op: action.op, ...(await operation(action)) });
  } catch (error) {
    throw new Error(`action #${seq} ${JSON.stringify(action)} failed: ${error.message}`);
  }
}

async function shutdown() {
  for (const entry of clients.values()) {
    if (!entry.closed && entry.client.connected) {
      await new Promise(resolve => entry.client.disconnect(resolve));
    }
  }
}

async function main() {
  let index = 0;
  for (const action of scenario.actions ?? []) await run(action, index++);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let action;
    try {
      action = JSON.parse(line);
    } catch (error) {
      throw new Error(`invalid action line ${JSON.stringify(line)}: ${error.message}`);
    }
    await run(action, index++);
  }
  await shutdown();
  // Let the DISCONNECTs and close frames go out before exiting.
  setTimeout(() => process.exit(0), 50);
}

main().catch(error => fatal(error.message));
