#!/bin/sh
# server.error-handler: a page for any error, keeping lighttpd's status.
printf 'Status: %s\r\nContent-Type: text/plain\r\n\r\nerror page for %s\n' \
  "$REDIRECT_STATUS" "$REDIRECT_STATUS"
