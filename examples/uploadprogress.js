// uploadprogress.js: a small client for mod_uploadprogress (an ES module,
// no dependencies).  It makes a progress id, attaches it to an upload,
// follows it at the progress URL (an event stream where the server sends
// one, else polls) and reports each state to a callback until the upload is
// done, has failed or was cancelled.  Reference: doc/client.md.

export const PROGRESS_URL = "/progress";
export const POLL_INTERVAL = 500;     // ms between the end of a poll and the next
const MAX_POLL_FAILURES = 3;          // polls in a row that may fail before giving up
const SPEED_WINDOW = 5000;            // ms of samples behind a computed speed

const FINAL_STATES = new Set(["done", "error", "cancelled"]);

// Final: the upload has ended, and so has the server's work on it (a 202's
// work goes on after "done" until its outcome: doc/processing.md).
export function isFinal(state) {
  return FINAL_STATES.has(state.state) && state.processing?.phase !== "processing";
}

// 128 random bits as 32 lower-case hex digits.
export function newProgressId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Whether id is one the module accepts: 32 hex digits, or a UUID
// (8-4-4-4-12 hex digits), in any case.
const ID_FORMAT = /^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;
export function isProgressId(id) {
  return typeof id === "string" && ID_FORMAT.test(id);
}

function checkedId(id) {
  if (!isProgressId(id)) {
    throw new Error("progress id " + JSON.stringify(id) + " is not 32 hex digits or a UUID");
  }
  return id;
}

// url with the X-Progress-ID query parameter added.
export function withProgressId(url, id) {
  return url + (url.includes("?") ? "&" : "?") + "X-Progress-ID=" + encodeURIComponent(id);
}

// Bytes per second over the last SPEED_WINDOW ms of samples, or undefined
// until two samples lie apart.
function speedMeter() {
  const samples = [];
  return (received, now) => {
    samples.push({ received, now });
    while (samples.length > 2 && now - samples[1].now >= SPEED_WINDOW) samples.shift();
    const seconds = (now - samples[0].now) / 1000;
    return seconds > 0 ? (received - samples[0].received) / seconds : undefined;
  };
}

// The server's work on the upload after its last byte, where the server
// tells it: { phase: "processing" | "finished" | "failed", stage, percent,
// message } (each of the last three only when known).
function processingOf(answer) {
  if (!answer.phase) return undefined;
  const work = { phase: answer.phase };
  for (const key of ["stage", "percent", "message"]) {
    if (answer[key] !== undefined) work[key] = answer[key];
  }
  return work;
}

// Turns one answer of the server into the state reported to callbacks.
// The server's "speed" and "eta" are used when it sends them; its speed is 0
// for the first second or two of an upload, while it has no measurement yet.
function stateOf(id, answer, measure) {
  const s = { id, state: answer.state, received: answer.received, size: answer.size };
  const processing = processingOf(answer);
  if (processing) s.processing = processing;
  if (answer.state === "error") s.status = answer.status;
  if (answer.state === "done") s.percent = 100;
  if (answer.state !== "uploading") return s;
  if (s.size > 0) s.percent = Math.min(100, Math.floor((100 * s.received) / s.size));
  const measured = measure(s.received, performance.now());
  s.speed = answer.speed > 0 ? answer.speed : measured;
  if (typeof answer.eta === "number") s.eta = answer.eta;
  else if (s.size > 0 && s.speed > 0) s.eta = (s.size - s.received) / s.speed;
  return s;
}

async function fetchAnswer(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error("progress URL answered HTTP " + response.status);
  return response.json();
}

// The transports of watchProgress: "auto" follows an event stream where
// the server answers with one and polls otherwise; the others force one.
const TRANSPORTS = new Set(["auto", "events", "poll"]);

// Follows the progress of upload `id` and calls onState(state) with each
// answer until a final state: over an event stream (EventSource) or by
// polling, as options.transport says.  Returns { id, transport, stop(),
// ended(fallback) }: transport is "events" or "poll", the one in use;
// stop() ends the watch silently; ended(fallback) tells the watcher that
// the upload request itself has ended: it polls once more at once and
// reports that answer if it is final, else `fallback`.
export function watchProgress(id, onState, options = {}) {
  const url = withProgressId(options.progressUrl ?? PROGRESS_URL, checkedId(id));
  const interval = options.interval ?? POLL_INTERVAL;
  const wanted = options.transport ?? "auto";
  if (!TRANSPORTS.has(wanted)) throw new Error("unknown transport " + wanted);
  // EventSource sends no request headers of the page's: with
  // progressHeaders the watch polls.
  const pollOnly = options.progressHeaders !== undefined;
  if (pollOnly && wanted === "events") {
    throw new Error("transport \"events\" cannot send progressHeaders (EventSource sends none)");
  }
  const pollInit = {
    cache: "no-store",
    headers: options.progressHeaders ?? {},
    credentials: options.withCredentials ? "include" : "same-origin",
  };
  const measure = speedMeter();
  let timer = null;
  let source = null;
  let over = false;
  let failures = 0;
  const watcher = { id, transport: "poll", stop, ended };

  function report(state) {
    if (over) return;
    if (isFinal(state)) stop();
    onState(state);
  }

  function stop() {
    over = true;
    clearTimeout(timer);
    closeStream();
  }

  function closeStream() {
    source?.close();
    source = null;
  }

  async function tick() {
    try {
      const answer = await fetchAnswer(url, pollInit);
      failures = 0;
      report(stateOf(id, answer, measure));
    } catch (err) {
      if (++failures >= MAX_POLL_FAILURES) {
        report({ id, state: "error", status: 0, reason: String(err) });
      }
    }
    if (!over) timer = setTimeout(tick, interval);
  }

  function poll() {
    watcher.transport = "poll";
    tick();
  }

  // A stream that fails, or that the server ends before a final event,
  // leaves the watch to polling (or, with transport "events", to the
  // browser's own reconnection, and to an error once it gives up).
  function streamFailed(reason) {
    if (over) return;
    if (wanted === "events") {
      if (source.readyState === EventSource.CLOSED) {
        report({ id, state: "error", status: 0, reason });
      }
      return;
    }
    closeStream();
    poll();
  }

  function listen() {
    watcher.transport = "events";
    source = new EventSource(url, { withCredentials: Boolean(options.withCredentials) });
    source.addEventListener("progress", (event) => {
      let answer;
      try {
        answer = JSON.parse(event.data);
      } catch {
        streamFailed("the event stream sent " + event.data);
        return;
      }
      report(stateOf(id, answer, measure));
    });
    source.addEventListener("error", () => streamFailed("the event stream failed"));
    // The server's last event for an id that has not begun within its
    // remove-timeout: the upload may still come (polls wait for it).
    source.addEventListener("timeout", () => {
      source.close();
      streamFailed("the upload did not begin within the server's remove-timeout");
    });
  }

  async function ended(fallback) {
    if (over) return;
    clearTimeout(timer);
    closeStream();
    let state = fallback;
    try {
      const last = stateOf(id, await fetchAnswer(url, pollInit), measure);
      if (isFinal(last)) state = last;
      else if (last.state === "done") {
        // a 202: the server works on; follow the work to its outcome
        report(last);
        if (watcher.transport === "events") listen();
        else poll();
        return;
      }
    } catch {
      // the fallback stands
    }
    report(state);
  }

  const polls = wanted === "poll" || (wanted === "auto" && typeof EventSource !== "function");
  if (polls || pollOnly) poll();
  else listen();
  return watcher;
}

// What the upload's own response says, for when the server's table cannot
// (the entry is gone, or the module does not see the request).
function stateOfResponse(id, xhr) {
  if (xhr.status === 0) return { id, state: "error", status: 0, reason: "network error" };
  if (xhr.status >= 400) return { id, state: "error", status: xhr.status };
  return { id, state: "done", percent: 100 };
}

// Sends `body` (a File, Blob or FormData) with XMLHttpRequest to `url` with
// a progress id (options.id, else a new one), and reports its progress to
// onState(state).  Returns { id, cancel(), finished, transport }: cancel()
// aborts the upload and reports "cancelled"; finished is a promise of the
// final state; transport is the watch's ("events" or "poll").
export function uploadWithProgress(url, body, onState, options = {}) {
  const id = options.id === undefined ? newProgressId() : checkedId(options.id);
  const headers = new Headers(options.headers ?? {});   // a bad name throws here, before any request
  const xhr = new XMLHttpRequest();
  let last = { id, state: "starting" };
  let settle;
  const finished = new Promise((resolve) => { settle = resolve; });
  const deliver = (state) => {
    last = state;
    onState(state);
    if (isFinal(state)) settle(state);
  };
  const watcher = watchProgress(id, deliver, options);

  xhr.addEventListener("loadend", () => watcher.ended(stateOfResponse(id, xhr)));
  xhr.open(options.method ?? "POST", withProgressId(url, id));
  xhr.withCredentials = Boolean(options.withCredentials);
  headers.forEach((value, name) => xhr.setRequestHeader(name, value));
  xhr.send(body);

  function cancel() {
    if (isFinal(last)) return;
    watcher.stop();
    xhr.abort();
    deliver({ ...last, state: "cancelled", speed: undefined, eta: undefined });
  }
  return {
    id, cancel, finished,
    get transport() { return watcher.transport; },
  };
}
