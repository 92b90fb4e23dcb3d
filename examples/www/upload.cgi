#!/bin/sh
# The demo's upload target: reads the whole body (an application would store
# the file here) and answers with how many bytes arrived.
n=$(cat | wc -c)
printf 'Status: 200\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{"stored":%s}\n' "$n"
