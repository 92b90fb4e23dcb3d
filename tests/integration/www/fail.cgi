#!/bin/sh
# Reads the body, then fails the way a broken application does.
cat >/dev/null
printf 'Status: 500\r\nContent-Type: text/plain\r\n\r\nbackend failed\n'
