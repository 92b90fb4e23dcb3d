#!/bin/sh
# Reads the body, then asks lighttpd for a local redirect into the progress
# URL (cgi.local-redir; tests/integration/test_reentry.py).
cat >/dev/null
printf 'Location: /progress\r\n\r\n'
