#!/bin/sh
# Reads the whole request body, as an upload handler does, and says how much.
n=$(cat | wc -c)
printf 'Status: 200\r\nContent-Type: text/plain\r\n\r\nread %s bytes\n' "$n"
