#!/usr/bin/env node
// @stomp/stompjs 7 `Client` with configurable settings, for
// tests/gateway/test_stompjs_variants.py: its defaults (heart-beats 10 s both
// ways, content-length on SEND, reconnectDelay 5 s), forceBinaryWSFrames,
// splitLargeFrames with a small maxWebSocketChunkSize, and automatic
// reconnection with re-subscription in onConnect.
//
// Same line protocol as stompjs_client.mjs (driven by the same NodeClient
// helper):
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

import { createInterface } from 'node:readline';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

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
    process.stderr.write(`variants_client: invalid scenario argument: ${error.message}\n`);
    process.exit(1);
  }
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fatal(message, code = 1) {
  process.stderr.write(`variants_client: ${message}\n`);
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
  return { event, client: name, command: frame.command, headers: { ...frame.headers }, body: frame.body };
}

function messageEvent(name, callbackId, message) {
  const bytes = message.binaryBody;
  return {
    event: callbackId === null ? 'unhandledMessage' : 'message',
    client: name,
    callback: callbackId,
    command: message.command,
    headers: { ...message.headers },
    body: message.body,
    bodyBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    isBinaryBody: message.isBinaryBody,
  };
}

// A promise that settles with the RECEIPT, or fails if the socket closes first.
function receiptOf(entry, receiptId) {
  return new Promise((resolve, reject) => {
    entry.closeWaiters.add(reject);
    entry.client.watchForReceipt(receiptId, frame => {
      entry.closeWaiters.delete(reject);
      resolve(frame);
    });
  });
}

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
  const holder = {};
  const headers = receipt === undefined ? {} : { receipt };
  const waiting = receipt === undefined ? undefined : receiptOf(entry, receipt);
  const subscription = entry.client.subscribe(
    destination,
    message => emit(messageEvent(entry.name, holder.id, message)),
    headers,
  );
  holder.id = subscription.id;
  return { id: subscription.id, receipt: waiting };
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
  return new Promise((resolve, reject) => {
    entry.closeWaiters.add(reject);
    const client = new Client({
      ...(action.options ?? {}),
      webSocketFactory: () => {
        const socket = new WebSocket(url, action.protocols ?? PROTOCOLS);
        if (action.traceSend) traceSend(entry, socket);
        entry.socket = socket;
        return socket;
      },
      debug: scenario.debug ? text => process.stderr.write(`[${name}] ${text}\n`) : () => {},
      onConnect: frame => {
        entry.count += 1;
        emit({
          ...frameEvent('connected', name, frame),
          count: entry.count,
          subprotocol: entry.socket.protocol,
        });
        if (entry.count === 1) {
          entry.closeWaiters.delete(reject);
          resolve({ headers: { ...frame.headers }, subprotocol: entry.socket.protocol });
        } else {
          void resubscribe(entry, entry.count);
        }
      },
      onStompError: frame => emit(frameEvent('stompError', name, frame)),
      onUnhandledMessage: message => emit(messageEvent(name, null, message)),
      onUnhandledReceipt: frame => emit(frameEvent('unhandledReceipt', name, frame)),
      onUnhandledFrame: frame => emit(frameEvent('unhandledFrame', name, frame)),
      onHeartbeatReceived: () => emit({ event: 'heartbeat', client: name }),
      onHeartbeatLost: () => emit({ event: 'heartbeatLost', client: name }),
      onWebSocketError: error => emit({ event: 'wsError', client: name, message: String(error?.message ?? error) }),
      onWebSocketClose: closeEvent => {
        emit({
          event: 'close',
          client: name,
          code: closeEvent.code,
          reason: String(closeEvent.reason ?? ''),
          wasClean: Boolean(closeEvent.wasClean),
        });
        const waiters = [...entry.closeWaiters];
        entry.closeWaiters.clear();
        for (const fail of waiters) {
          fail(new Error(`client ${name}: socket closed (code ${closeEvent.code}) while waiting`));
        }
      },
    });
    entry.client = client;
    client.activate();
  });
}

async function subscribe(action) {
  const entry = entryOf(action);
  const destination = need(action, 'destination');
  if (action.standing) entry.standing.push(destination);
  const { id, receipt } = subscribeNow(entry, destination, action.receipt);
  const result = { id };
  if (receipt !== undefined) result.receipt = frameEvent('receipt', entry.name, await receipt);
  return result;
}

async function publish(action) {
  const entry = entryOf(action);
  const headers = { ...(action.headers ?? {}) };
  let receipt;
  if (action.receipt !== undefined) {
    headers.receipt = action.receipt;
    receipt = receiptOf(entry, action.receipt);
  }
  entry.client.publish({ destination: need(action, 'destination'), headers, body: need(action, 'body') });
  const result = {};
  if (receipt !== undefined) result.receipt = frameEvent('receipt', entry.name, await receipt);
  return result;
}

async function disconnect(action) {
  await entryOf(action).client.deactivate();
  return {};
}

const OPERATIONS = {
  connect,
  subscribe,
  publish,
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
  for (const entry of clients.values()) await entry.client.deactivate();
  process.exit(0);
}

main().catch(error => fatal(error.message));
