/* SPDX-License-Identifier: MIT */
#pragma once

/* The reason phrase of a status code lbproxy answers with itself. */
const char *http_status_reason(unsigned status);
