/*
 * deliver.h - `parleyd deliver`: the process that delivers the outbox by
 * email (smtp.c) and SMS (sms.c) through the documented mailer contract
 * of a gateway (API.md, "Invitations and the outbox"): lease a batch,
 * render each item's templates (template.c), check right before sending
 * that the item is still due and still leased by us, send, acknowledge
 * sent / failed / retry with backoff. Several deliverers may run at once:
 * leases keep them apart, delivery is at least once.
 *
 * A blocking, single-threaded process (one message at a time), apart from
 * the gateways. Owns its configuration, the loaded templates, the metrics
 * (written as a Prometheus text file) and the leased batch.
 */
#ifndef PARLEY_DELIVER_H
#define PARLEY_DELIVER_H

/* Runs the deliverer with its flags (after "deliver"); the exit status:
 * 0 after SIGTERM/SIGINT (or --once with nothing left), 2 for a bad
 * setting or template, 1 for a failure to start. */
int deliver_main(int argc, char **argv);

/* "i***@example.com", "+358******67": enough to tell items apart in logs
 * without writing out whose address it is. */
void deliver_mask(const char *addr, char *out, unsigned cap);

#endif
