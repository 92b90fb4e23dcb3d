#!/bin/sh
# Reads the body, then asks lighttpd for a local redirect (cgi.local-redir).
cat >/dev/null
printf 'Location: /redirected.txt\r\n\r\n'
