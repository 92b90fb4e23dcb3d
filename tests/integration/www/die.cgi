#!/bin/sh
# Reads the whole body, then dies without a word, as a crashing handler does.
cat >/dev/null
kill -9 $$
