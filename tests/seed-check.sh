#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The APISIX load-balancing tutorial's own check: send N requests to the proxy and count which
# upstream answered, by the names httpbin.org and mock.api7.ai in the answers.
#
#   tests/seed-check.sh [URL] [N]      (default http://127.0.0.1:9080/headers 50)
#
# Prints the two counts; exits 0 iff each is exactly N/2.
set -uo pipefail

url=${1:-http://127.0.0.1:9080/headers}
n=${2:-50}
if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 100000)); then
        echo "usage: $0 [URL] [N]   (N: 1..100000)" >&2
        exit 2
fi

httpbin=0
mock=0
for ((i = 0; i < n; i++)); do
        out=$(curl -sL --max-time 10 "$url" 2>/dev/null) || true
        [[ $out == *httpbin.org* ]] && httpbin=$((httpbin + 1))
        [[ $out == *mock.api7.ai* ]] && mock=$((mock + 1))
done

echo "httpbin.org: $httpbin, mock.api7.ai: $mock"
if ((n % 2 == 0 && httpbin == n / 2 && mock == n / 2)); then
        exit 0
fi
exit 1
