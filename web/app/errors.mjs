// One table: every error code a person can meet (PROTOCOL.md section 5, the
// HTTP API's table in API.md, the SDK's own codes and the page's) with the
// sentence shown for it. web/test/errors.test.mjs checks it against the docs.

/** @type {Readonly<Record<string, string>>} */
export const MESSAGES = Object.freeze({
  // WebSocket protocol (PROTOCOL.md section 5)
  bad_json: 'The request could not be read. Please reload the page.',
  bad_request: 'The request was not accepted.',
  unknown_op: 'This page is out of date. Please reload it.',
  auth_required: 'You are not signed in.',
  auth_failed: 'Your session has ended. Please sign in again.',
  already_authenticated: 'You are already signed in on this connection.',
  room_not_found: 'This room does not exist or you may not see it.',
  forbidden: 'You are not allowed to do that.',
  not_joined: 'You are not in this room.',
  already_joined: 'You are already in this room.',
  too_many_rooms: 'Too many rooms are open. Close one and try again.',
  body_too_long: 'That message is too long.',
  unavailable: 'The service is unavailable for a moment. Retrying…',
  busy: 'The service is busy. Please try again in a moment.',
  internal: 'Something went wrong on the server. Please try again.',
  no_such_message: 'That message no longer exists.',
  likes_not_allowed: 'Entries take stars, not likes.',
  ratings_not_allowed: 'Chat messages take likes, not stars.',
  stars_out_of_range: 'Choose between 1 and 5 stars.',
  bad_parent: 'You can only reply to an entry of this room.',
  guideline_violation: 'This message goes against the workspace’s communication guidelines.',
  muted: 'A moderator muted you here.',
  room_locked: 'This room is read-only.',
  slow_mode: 'Slow mode is on: wait a little before your next message.',
  edit_window_closed: 'This message is too old to edit or delete.',
  no_such_pending: 'That held message was already decided.',
  room_archived: 'This room was archived.',
  // HTTP API (API.md, "Errors")
  not_object: 'The request could not be read. Please reload the page.',
  unknown_field: 'The request was not accepted.',
  missing_field: 'Please fill in the required field.',
  bad_field: 'Please check this field.',
  bad_query: 'Please check the options you chose.',
  domain_not_allowed: 'This address’s domain is not allowed in the workspace.',
  weak_password: 'Choose a stronger password.',
  unauthorized: 'Your session has ended. Please sign in again.',
  invalid_credentials: 'Wrong email or password.',
  password_required: 'This address already has an account: enter its password to accept the invitation.',
  not_found: 'Not found, or you may not see it.',
  invitation_invalid: 'This invitation link is no longer valid (expired, revoked or already used).',
  verification_invalid: 'This confirmation link is no longer valid. Ask for a new one.',
  method_not_allowed: 'This page is out of date. Please reload it.',
  conflict: 'This address is already in use.',
  already_member: 'You are already a member of this workspace.',
  invitation_redeemed: 'This invitation was already used.',
  request_timeout: 'The request took too long. Please try again.',
  length_required: 'The request was not accepted.',
  body_too_large: 'That is too large to send.',
  headers_too_large: 'The request was not accepted.',
  rate_limited: 'Too many attempts. Please wait before trying again.',
  reauth_required: 'For your safety, confirm your password again, then retry.',
  sole_owner:
    'You are the only owner of a workspace. Make someone else its owner, or delete the workspace, before erasing your account.',
  already_erased: 'This person’s data was already erased.',
  lease_lost: 'Another mailer took over this delivery.',
  not_deleted: 'This workspace is not deleted, so there is nothing to restore.',
  purging: 'The grace period of this workspace is over: it is being removed and can no longer be restored.',
  // The SDK's own codes (web/sdk/parley.mjs CLIENT_ERROR_CODES)
  disconnected: 'The connection dropped before the answer came. Please check and try again.',
  timeout: 'No answer from the server. Please try again.',
  closed: 'The connection is closed.',
  // The page's own
  network: 'Cannot reach the server. Retrying…',
  offline: 'Cannot reach the server. Check your connection and try again.',
  incomplete: 'The download was interrupted before it was complete. Please try again.',
});

/* Codes whose server message carries the specifics a person needs (which
 * field, which rule, how long to wait). */
const DETAILED = new Set([
  'bad_field',
  'bad_query',
  'missing_field',
  'weak_password',
  'guideline_violation',
  'muted',
  'slow_mode',
  'rate_limited',
  'bad_request',
]);

/**
 * The sentence to show for an error from the API, the SDK or the page.
 * @param {{code?: string, message?: string}|null|undefined} err
 * @returns {string}
 */
export function humanError(err) {
  if (!err) return '';
  const base = MESSAGES[err.code] || 'Something went wrong. Please try again.';
  if (DETAILED.has(err.code) && err.message && err.message !== base) return `${base} (${err.message})`;
  return base;
}
