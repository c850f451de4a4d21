// One table: a human message for every error code the console can meet -
// the HTTP API's (protocol/API.md), the WebSocket protocol's
// (protocol/PROTOCOL.md section 5), the SDK's own and the console's.

/** @type {Record<string, string>} */
export const MESSAGES = {
  // HTTP API
  bad_json: 'The request could not be read. Reload the page and try again.',
  not_object: 'The request could not be read. Reload the page and try again.',
  unknown_field: 'This field is not accepted here.',
  missing_field: 'A required field is empty.',
  bad_field: 'A value is not acceptable.',
  bad_request: 'The server could not accept this request.',
  bad_query: 'A filter value is not acceptable.',
  bad_rule: 'A guideline rule is not valid.',
  domain_not_allowed: 'This workspace only admits email addresses of its allowed domains.',
  weak_password: 'Choose a stronger password.',
  unauthorized: 'Your session has ended. Please sign in again.',
  invalid_credentials: 'Wrong email or password.',
  password_required: 'This address already has an account: its password is needed.',
  forbidden: 'Your role does not allow this.',
  not_found: 'Not found: it may have been removed, or you no longer have access.',
  invitation_invalid: 'This invitation does not exist, expired, was revoked or was already used.',
  verification_invalid: 'This confirmation link is unknown, expired or already used.',
  method_not_allowed: 'The server does not allow this action here.',
  conflict: 'This email or phone number is already in use.',
  already_member: 'This person is already in the workspace.',
  not_deleted: 'This workspace is not deleted, so there is nothing to restore.',
  purging: 'The grace period of this workspace is over: it is being removed and can no longer be restored.',
  invitation_redeemed: 'This invitation was already used, so it cannot be revoked.',
  request_timeout: 'The request took too long to send. Try again.',
  length_required: 'The request could not be sent. Try again.',
  body_too_large: 'This is too large to save.',
  headers_too_large: 'The request was too large. Sign in again if this persists.',
  uri_too_long: 'The address was too long.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  unavailable: 'The server cannot reach its storage right now. Try again in a moment.',
  busy: 'The server is busy. Try again in a moment.',
  internal: 'Something went wrong on the server. Try again; if it persists, tell the operator.',
  // WebSocket protocol
  auth_required: 'Not signed in yet: reconnecting.',
  auth_failed: 'Your session has ended. Please sign in again.',
  already_authenticated: 'Already signed in on this connection.',
  unknown_op: 'The server does not know this command (is it an older version?).',
  room_not_found: 'No such room (it may be archived, or you have no access).',
  not_joined: 'Not in this room yet: joining again.',
  already_joined: 'Already in this room.',
  too_many_rooms: 'Too many rooms open at once. Close one and try again.',
  body_too_long: 'This message is too long.',
  no_such_message: 'That message does not exist (check the number).',
  likes_not_allowed: 'Dialogue entries take stars, not likes.',
  ratings_not_allowed: 'Chat messages take likes, not stars.',
  stars_out_of_range: 'Stars go from 1 to 5.',
  bad_parent: 'Replies can only answer an entry of this dialogue room.',
  guideline_violation: 'The communication guidelines refused this message.',
  muted: 'This person is muted.',
  room_locked: 'The room is locked (read-only).',
  slow_mode: 'Slow mode: wait before sending again.',
  edit_window_closed: 'This message is too old to change.',
  no_such_pending: 'This held message was already decided by someone else.',
  room_archived: 'This room is archived.',
  // SDK
  disconnected: 'The connection dropped while this was being done: check the result, then retry.',
  timeout: 'The server did not answer in time. Try again.',
  closed: 'The connection is closed.',
  // console
  network: 'The server cannot be reached: check the connection.',
};

/** The message for an error (an ApiError, a ParleyError or anything else). */
export function humanError(e) {
  const code = e && e.code;
  let msg = (code && MESSAGES[code]) || 'Something went wrong. Try again.';
  // The server names the field or rule; people need to know which.
  if (e && e.field && (code === 'bad_field' || code === 'missing_field' || code === 'unknown_field' || code === 'bad_rule')) {
    msg += ` (${e.field})`;
  }
  if (e && (code === 'weak_password' || code === 'guideline_violation' || code === 'bad_rule' || code === 'bad_field') && e.message) {
    msg += ` ${e.message}`;
  }
  return msg;
}
