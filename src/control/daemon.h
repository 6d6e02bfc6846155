/* SPDX-License-Identifier: MIT */
#pragma once

/* What systemd hears from the service: readiness, status, reload and stop notices, watchdog
 * pings. Each is a no-op when not run under systemd (no $NOTIFY_SOCKET). */

#include <event2/event.h>
#include <stdint.h>

#include "base/util.h"

void daemon_notify_ready(const char *status);
void daemon_notify_status(const char *status);
void daemon_notify_reloading(void);
void daemon_notify_stopping(void);

/* Pings the watchdog at half the period systemd asked for; returns the timer event or NULL when
 * no watchdog is enabled. */
struct event *daemon_watchdog_start(struct event_base *base);
