// What the two @stomp/stompjs 7 clients (stompjs_client.mjs and
// variants_client.mjs) share: a `Client` that reports everything it sees as
// events (see their headers), MESSAGE events and waits for RECEIPTs.
//
// A connection's entry: {name, client, socket, closeWaiters: Set}, where
// closeWaiters holds the rejections of what waits on the connection.

import { Client } from '@stomp/stompjs';

import { closeEvent, emit, failWaiters, frameEvent, waiting } from './harness.cjs';

export const PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

export function messageEvent(name, callbackId, message) {
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

// A promise that settles with the RECEIPT, or fails if the socket closes first
// (undefined when no receipt is asked for).
export function receiptOf(entry, receiptId) {
  if (receiptId === undefined) return undefined;
  return waiting(entry.closeWaiters, settle => entry.client.watchForReceipt(receiptId, settle));
}

// Create entry.client with `settings` (webSocketFactory, heart-beats...) and
// activate it. `onConnect(frame, connected)` runs on every CONNECTED;
// connected(frame) settles the returned promise with the "done" fields of a
// connect action. The promise fails if the socket closes first. With `debug`,
// stompjs's log goes to stderr.
export function activate(entry, settings, onConnect, debug = false) {
  const name = entry.name;
  return new Promise((resolve, reject) => {
    entry.closeWaiters.add(reject);
    const connected = frame => {
      entry.closeWaiters.delete(reject);
      resolve({ headers: { ...frame.headers }, subprotocol: entry.socket.protocol });
    };
    entry.client = new Client({
      ...settings,
      debug: debug ? text => process.stderr.write(`[${name}] ${text}\n`) : () => {},
      onConnect: frame => onConnect(frame, connected),
      onStompError: frame => emit(frameEvent('stompError', name, frame)),
      onUnhandledMessage: message => emit(messageEvent(name, null, message)),
      onUnhandledReceipt: frame => emit(frameEvent('unhandledReceipt', name, frame)),
      onUnhandledFrame: frame => emit(frameEvent('unhandledFrame', name, frame)),
      onHeartbeatReceived: () => emit({ event: 'heartbeat', client: name }),
      onHeartbeatLost: () => emit({ event: 'heartbeatLost', client: name }),
      onWebSocketError: error => emit({ event: 'wsError', client: name, message: String(error?.message ?? error) }),
      onWebSocketClose: event => {
        emit(closeEvent(name, event));
        failWaiters(entry.closeWaiters, `client ${name}: socket closed (code ${event.code}) while waiting`);
      },
    });
    entry.client.activate();
  });
}
