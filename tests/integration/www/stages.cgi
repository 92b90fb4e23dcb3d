#!/bin/sh
# An upload handler that works on the upload after reading it and tells
# the module how far it is, with curl (doc/processing.md).  Two stages,
# each held until the test opens its gate (a file gates/<id>.<n>), then
# the response.  ?mode=202 answers 202 Accepted after the stages and
# reports the outcome later (gate 3); ?mode=202-failed reports a failure.
# Each report's status goes to gates/<id>.codes.
id=$HTTP_X_PROGRESS_ID
url="http://127.0.0.1:$SERVER_PORT/progress-report"
gates=$(dirname "$SCRIPT_FILENAME")/gates
n=$(cat | wc -c)

report() {
  # (the server's preloads, a sanitizer's runtime in scripts/test, are not curl's)
  LD_PRELOAD= curl -s -o /dev/null -w '%{http_code}\n' -H "X-Progress-ID: $id" --data "$1" "$url" \
    >> "$gates/$id.codes"
}

gate() {   # waits up to 30 s for the test
  i=0
  while [ ! -e "$gates/$id.$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}

report 'stage=checking&percent=50'
gate 1
report 'stage=saving+the+file'
gate 2
case $QUERY_STRING in
  *mode=202*)
    trap '' TERM   # mod_cgi ends a CGI with its response: the work outlives it
    printf 'Status: 202\r\nContent-Type: text/plain\r\n\r\naccepted %s bytes\n' "$n"
    exec >&-    # the response ends here; the work goes on
    report 'stage=indexing&percent=10'
    gate 3
    case $QUERY_STRING in
      *mode=202-failed*) report 'outcome=failed&message=index+is+full' ;;
      *) report 'outcome=finished&message=indexed' ;;
    esac ;;
  *)
    printf 'Status: 200\r\nContent-Type: text/plain\r\n\r\nread %s bytes\n' "$n" ;;
esac
