// The client's options (examples/uploadprogress.js): a page-chosen id,
// extra request headers, withCredentials.  The browser's XMLHttpRequest,
// fetch and EventSource are stand-ins that record what the client asks of
// them; tests/browser runs the same options in Chromium.
//   node --test client_options.test.mjs
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";
import { isProgressId, uploadWithProgress, watchProgress } from "../../examples/uploadprogress.js";

const HEX = "0123456789abcdef0123456789ABCDEF";
const UUID = "01234567-89ab-cdef-0123-456789abcdef";
const FINAL = { state: "done", received: 10, size: 10 };

let xhrs, fetches, streams;

class FakeXHR {
  constructor() {
    this.headers = {};
    this.withCredentials = false;
    xhrs.push(this);
  }
  addEventListener() {}
  open(method, url) { this.method = method; this.url = url; }
  setRequestHeader(name, value) {
    assert.ok(this.url, "setRequestHeader before open() throws in a browser");
    assert.equal(this.sent, undefined, "setRequestHeader after send() throws in a browser");
    this.headers[name] = value;
  }
  send(body) { this.sent = body; }
  abort() {}
}

class FakeEventSource {
  static CLOSED = 2;
  constructor(url, init) { this.url = url; this.init = init; streams.push(this); }
  addEventListener() {}
  close() {}
}

beforeEach(() => {
  xhrs = [];
  fetches = [];
  streams = [];
  globalThis.XMLHttpRequest = FakeXHR;
  globalThis.EventSource = FakeEventSource;
  globalThis.fetch = async (url, init) => {
    fetches.push({ url, init });
    return { ok: true, status: 200, json: async () => FINAL };
  };
});

// The first state a watch reports (the stand-in fetch answers done at once).
function firstState(id, options) {
  return new Promise((resolve) => watchProgress(id, resolve, options));
}

test("isProgressId takes what the module takes: 32 hex digits or a UUID", () => {
  for (const id of [HEX, HEX.toLowerCase(), UUID, UUID.toUpperCase()]) {
    assert.equal(isProgressId(id), true, id);
  }
  for (const id of [HEX.slice(1), HEX + "0", "g" + HEX.slice(1), "{" + UUID + "}",
                    "urn:uuid:" + UUID, UUID.replace(/-/g, "").replace(/^(.{4})/, "$1-"),
                    "", undefined, null, 12345]) {
    assert.equal(isProgressId(id), false, String(id));
  }
});

test("a page-chosen id is the upload's and the watch's", async () => {
  const upload = uploadWithProgress("/upload.cgi", "body", () => {}, { id: UUID, transport: "poll" });
  assert.equal(upload.id, UUID);
  assert.equal(xhrs[0].url, "/upload.cgi?X-Progress-ID=" + UUID);
  assert.equal(xhrs[0].sent, "body");
  assert.deepEqual(await upload.finished, { id: UUID, ...FINAL, percent: 100 });
  assert.equal(fetches[0].url, "/progress?X-Progress-ID=" + UUID);
});

test("an id the module would refuse is an error, and nothing is sent", () => {
  for (const id of ["nope", HEX.slice(2), "{" + UUID + "}", 42]) {
    assert.throws(() => uploadWithProgress("/upload.cgi", "body", () => {}, { id }),
                  /is not 32 hex digits or a UUID/);
    assert.throws(() => watchProgress(id, () => {}), /is not 32 hex digits or a UUID/);
  }
  assert.equal(xhrs.length, 0);
  assert.equal(fetches.length + streams.length, 0);
});

test("without options: a new id, no extra header, no credentials", () => {
  const upload = uploadWithProgress("/upload.cgi?a=1", "body", () => {});
  assert.equal(isProgressId(upload.id), true);
  assert.equal(xhrs[0].url, "/upload.cgi?a=1&X-Progress-ID=" + upload.id);
  assert.equal(xhrs[0].method, "POST");
  assert.deepEqual(xhrs[0].headers, {});
  assert.equal(xhrs[0].withCredentials, false);
  assert.equal(streams.length, 1);
  assert.deepEqual(streams[0].init, { withCredentials: false });
});

test("headers go with the upload only; progressHeaders with each poll", async () => {
  uploadWithProgress("/upload.cgi", "body", () => {}, {
    id: HEX,
    headers: { "X-CSRF-Token": "t0k3n", Authorization: "Bearer abc" },
    progressHeaders: { Authorization: "Bearer poll" },
  });
  assert.deepEqual(xhrs[0].headers, { authorization: "Bearer abc", "x-csrf-token": "t0k3n" });
  assert.equal(streams.length, 0, "EventSource sends no headers: the watch polls");
  const state = await firstState(HEX, { progressHeaders: { Authorization: "Bearer poll" } });
  assert.equal(state.state, "done");
  for (const { init } of fetches) {
    assert.deepEqual(init.headers, { Authorization: "Bearer poll" });
    assert.equal(init.cache, "no-store");
  }
});

test("progressHeaders with transport \"events\" is an error", () => {
  assert.throws(() => watchProgress(HEX, () => {}, { transport: "events", progressHeaders: {} }),
                /cannot send progressHeaders/);
  assert.equal(streams.length + fetches.length, 0);
});

test("withCredentials reaches the upload, the polls and the event stream", async () => {
  uploadWithProgress("/upload.cgi", "body", () => {}, { id: HEX, withCredentials: true });
  assert.equal(xhrs[0].withCredentials, true);
  assert.deepEqual(streams[0].init, { withCredentials: true });
  await firstState(HEX, { withCredentials: true, transport: "poll" });
  assert.equal(fetches.at(-1).init.credentials, "include");
  await firstState(HEX, { transport: "poll" });
  assert.equal(fetches.at(-1).init.credentials, "same-origin");
});

test("a header name that is not a token is an error before anything is sent", () => {
  assert.throws(() => uploadWithProgress("/upload.cgi", "body", () => {}, {
    id: HEX, headers: { "Bad Name": "x" } }), TypeError);
  assert.equal(xhrs.length + streams.length + fetches.length, 0);
});
