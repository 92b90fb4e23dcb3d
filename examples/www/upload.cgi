#!/bin/sh
# The demo's upload target: reads the whole body (an application would store
# the file here), then works on it in two short stages that it reports to
# the module's report URL (doc/processing.md), and answers with how many
# bytes arrived.  ?mode=202 answers 202 Accepted at once and reports a third
# stage and the outcome afterwards, as work queued for later would.
# Without curl it reports nothing; the pages then show the plain upload.
n=$(cat | wc -c)
id=${HTTP_X_PROGRESS_ID:-$(printf '%s' "$QUERY_STRING" | sed -n 's/.*[Xx]-[Pp]rogress-[Ii][Dd]=\([^&]*\).*/\1/p')}

report() {
  [ -n "$id" ] && command -v curl >/dev/null || return 0
  # (the server's preloads, such as a sanitizer's runtime, are not curl's)
  LD_PRELOAD= curl -s -o /dev/null --max-time 5 -H "X-Progress-ID: $id" --data "$1" \
    "http://127.0.0.1:$SERVER_PORT/progress-report"
}

# each stage takes DEMO_STAGE_SECONDS (0.3 unless the server's environment
# says otherwise: setenv.add-environment)
stage=${DEMO_STAGE_SECONDS:-0.3}
case $stage in *[!0-9.]*|'') stage=0.3 ;; esac

report 'stage=checking+the+file&percent=0'
sleep "$stage"
report 'percent=100'
report 'stage=storing+it'
sleep "$stage"

case $QUERY_STRING in
  *mode=202*)
    trap '' TERM   # mod_cgi ends a CGI with its response: the work outlives it
    printf 'Status: 202\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{"accepted":%s}\n' "$n"
    exec >&-
    report 'stage=making+thumbnails&percent=50'
    sleep 1
    report 'outcome=finished&message=thumbnails+ready' ;;
  *)
    printf 'Status: 200\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\r\n{"stored":%s}\n' "$n" ;;
esac
