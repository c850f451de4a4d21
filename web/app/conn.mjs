// The page's one WebSocket client (the SDK), for the workspace on screen.
// A session token is valid in every workspace of the person, so the
// client names the workspace when it authenticates; moving to another
// workspace replaces the client.

import { ParleyClient } from '../sdk/parley.mjs';
import { getSession } from './api.mjs';

/** The gateway that served the page: the WebSocket URL on the same origin. */
export function gatewayUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`;
}

let current = null; // {ws, client, onOnline}

/**
 * The client for workspace ws, connected (or connecting) with the session.
 * @param {string} ws
 * @returns {ParleyClient}
 */
export function clientFor(ws) {
  if (current && current.ws === ws) return current.client;
  closeClient();
  const session = getSession();
  const client = new ParleyClient({
    urls: [gatewayUrl()],
    token: session ? session.token : '',
    workspace: ws,
    backoff: { initialMs: 250, maxMs: 5000 },
  });
  // Reconnect at once when the browser says the network is back (the SDK
  // still waits out a pause a busy gateway asked for: retry_after_ms).
  const onOnline = () => client.reconnect();
  window.addEventListener('online', onOnline);
  current = { ws, client, onOnline };
  client.connect().catch(() => {}); // failures arrive as state and error events
  return client;
}

/** Closes the current client (signing out, leaving the workspace). */
export function closeClient() {
  if (!current) return;
  window.removeEventListener('online', current.onOnline);
  current.client.close();
  current = null;
}
