// Drives Debian's chromium (headless, through playwright-core) over one
// example page served by the real lighttpd, and checks what the page shows.
//   node run.mjs SCENARIO BASE_URL WORKDIR
// Prints what it saw; the last line is "RESULT <json>" (the progress id and
// the values the bar went through) for the caller's checks on the server.
// Exits 1 when a check fails.
import assert from "node:assert/strict";
import { mkdtempSync, openSync, closeSync, ftruncateSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [scenario, base, workdir] = process.argv.slice(2);
const MiB = 1024 * 1024;
const WAIT = { timeout: 90_000 };   // generous: the machine is shared and slow

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
];

function randomFile(name, size) {
  const path = join(workdir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

function sparseFile(name, size) {
  const path = join(workdir, name);
  const fd = openSync(path, "w");
  ftruncateSync(fd, size);
  closeSync(fd);
  return path;
}

// Lets uploads leave the browser at `bytesPerSecond` (DevTools emulation).
async function throttleUploads(page, bytesPerSecond) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond,
  });
}

// Records every value the page's progress bars take, in any frame, and
// when (seen.times: the page's clock, in ms).
async function recordBar(page) {
  const seen = [];
  seen.times = [];
  seen.events = [];   // the JSON of every progress event the page got
  await page.exposeFunction("recordProgress", (value, ms) => {
    seen.push(Number(value));
    seen.times.push(ms);
  });
  await page.exposeFunction("recordEvent", (data) => seen.events.push(JSON.parse(data)));
  await page.addInitScript(() => {
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("progress", (event) => window.recordEvent(event.data));
      }
    };
    new MutationObserver((records) => {
      for (const r of records) {
        window.recordProgress(r.target.getAttribute("aria-valuenow"), performance.now());
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["aria-valuenow"] });
  });
  return seen;
}

// How many times a second the bar moved between 0 and 100 % (exclusive):
// its distinct values there, less the first, over the time between the
// first and the last of them.
function movesPerSecond(seen) {
  const moves = [];
  seen.forEach((value, i) => {
    if (value > 0 && value < 100 && value !== moves.at(-1)?.value) {
      moves.push({ value, ms: seen.times[i] });
    }
  });
  if (moves.length < 2) return 0;
  return (moves.length - 1) / ((moves.at(-1).ms - moves[0].ms) / 1000);
}

function widget(frame) {
  const root = frame.locator(".progress");
  return {
    root,
    status: root.locator(".status"),
    waitFor: (state) => frame.locator(`.progress[data-state="${state}"]`).waitFor(WAIT),
  };
}

function assertSeveralSteps(seen) {
  const between = [...new Set(seen.filter((v) => v > 0 && v < 100))];
  console.log("bar values:", seen.join(" "));
  assert.ok(between.length >= 3, `the bar passed through only ${between.length} values between 0 and 100`);
  assert.deepEqual(between, [...between].sort((a, b) => a - b), "the bar went backwards");
  assert.equal(seen.at(-1), 100);
}

// Opens the frames page at `path` and submits `file` through its form frame.
async function submitInFrames(page, path, file) {
  await page.goto(base + path);
  const form = page.frame({ name: "form" });
  const progress = page.frame({ name: "progress" });
  await form.setInputFiles("#file", file);
  await form.click("button[type=submit]");
  const id = await form.locator("form").getAttribute("data-progress-id");
  return { id, view: widget(progress) };
}

// Answers the page's event-stream requests at the progress URL with
// `response` (Playwright's route.fulfill options) instead of the server;
// polls still reach the server.
async function answerEventStreams(page, response) {
  await page.route((url) => url.pathname === "/progress", (route) => {
    const accept = route.request().headers().accept ?? "";
    return accept.includes("text/event-stream") ? route.fulfill(response) : route.continue();
  });
}

// Uploads 5 MiB at 1 MiB/s on the modern page (its URL's query: `query`)
// and checks what it shows on the way; returns the id, the bar's values,
// the transport the page used last and how often the bar moved.
async function uploadOnModernPage(page, query) {
  const seen = await recordBar(page);
  await throttleUploads(page, 1024 * 1024);
  await page.goto(base + "/modern/" + query);
  await page.setInputFiles("#file", randomFile("five.bin", 5 * MiB));
  await page.click("#send");
  const view = widget(page);
  // Mid-upload, with speed and time left known: the README's screenshot.
  await page.waitForFunction(() => {
    const pct = Number(document.querySelector(".bar").getAttribute("aria-valuenow"));
    const details = document.querySelector(".details").textContent;
    return pct >= 20 && pct <= 90 && /\d \S+\/s/.test(details) && / left$/.test(details);
  }, null, WAIT);
  const details = await page.locator(".details").textContent();
  console.log("mid-upload:", await page.locator(".percent").textContent(), details);
  assert.match(details, /^\d+\.\d MiB of 5\.0 MiB · \d+\.\d (KiB|MiB)\/s · \d+ s left$/);
  assert.equal(await view.status.textContent(), "Uploading…");
  assert.equal(await page.locator("#cancel").isEnabled(), true);
  await page.screenshot({ path: join(process.env.SCREENSHOT_DIR || workdir, "screenshot-modern.png"),
                         animations: "disabled" });
  await view.waitFor("done");
  assert.match(await view.status.textContent(), /^Upload complete: 5\.0 MiB received\.$/);
  assert.equal(await page.locator(".percent").textContent(), "100%");
  assert.equal(await page.locator("#cancel").isEnabled(), false);
  assertSeveralSteps(seen);
  const form = page.locator("form");
  const result = { id: await form.getAttribute("data-progress-id"), seen,
                   transport: await form.getAttribute("data-transport"),
                   movesPerSecond: movesPerSecond(seen) };
  console.log("transport:", result.transport,
              "bar moves per second:", result.movesPerSecond.toFixed(2));
  return result;
}

// The demo's upload.cgi works on an upload in two stages that it reports
// (doc/processing.md): the page says "Processing: <stage> <percent> %",
// with the bar at that percent, then the next stage, whose percent is not
// known, with an indeterminate bar; then the upload's end.
async function seeTheWork(frame, view) {
  const status = (text) => frame.locator(".progress .status", { hasText: text });
  await status(/^Processing: checking the file 0 %$/).waitFor(WAIT);
  assert.equal(await frame.locator(".percent").textContent(), "0%");
  assert.equal(await frame.locator(".bar").getAttribute("aria-valuenow"), "0");
  console.log("processing:", await view.status.textContent());
  await status(/^Processing: storing it$/).waitFor(WAIT);
  assert.equal(await frame.locator(".bar.indeterminate").count(), 1);
  assert.equal(await frame.locator(".bar").getAttribute("aria-valuenow"), null);
  assert.equal(await frame.locator(".percent").textContent(), "…");
  console.log("processing:", await view.status.textContent());
  await view.waitFor("done");
  assert.match(await view.status.textContent(), /^Upload complete: 1\.0 MiB received\.$/);
  assert.equal(await frame.locator(".bar.indeterminate").count(), 0);
}

async function processingOnModernPage(page, transport) {
  await page.goto(base + "/modern/?transport=" + transport);
  await page.setInputFiles("#file", randomFile("one.bin", MiB));
  await page.click("#send");
  await seeTheWork(page, widget(page));
  const form = page.locator("form");
  return { id: await form.getAttribute("data-progress-id"),
           transport: await form.getAttribute("data-transport") };
}

async function processingInFrames(page, transport) {
  const { id, view } = await submitInFrames(page, "/classic/?transport=" + transport,
                                            randomFile("one.bin", MiB));
  const frame = page.frame({ name: "progress" });
  await seeTheWork(frame, view);
  return { id, transport: await frame.locator("body").getAttribute("data-transport") };
}

const scenarios = {
  "modern-processing-events": (page) => processingOnModernPage(page, "events"),
  "modern-processing-poll": (page) => processingOnModernPage(page, "poll"),
  "classic-processing-events": (page) => processingInFrames(page, "events"),
  "classic-processing-poll": (page) => processingInFrames(page, "poll"),

  async classic(page) {
    const seen = await recordBar(page);
    await throttleUploads(page, 768 * 1024);
    const { id, view } = await submitInFrames(page, "/classic/", randomFile("three.bin", 3 * MiB));
    await view.waitFor("done");
    assert.match(await view.status.textContent(), /^Upload complete: 3\.0 MiB received\.$/);
    assertSeveralSteps(seen);
    return { id, seen };
  },

  async "too-big"(page) {
    const { id, view } = await submitInFrames(page, "/too-big/", randomFile("two.bin", 2 * MiB));
    await view.waitFor("error");
    assert.equal(await view.status.textContent(),
      "File is too big. This page accepts files of up to 1 MiB: please choose a smaller one.");
    return { id };
  },

  modern: (page) => uploadOnModernPage(page, ""),

  // Forced polling: the bar still moves, in steps of the poll interval.
  async "modern-poll"(page) {
    const result = await uploadOnModernPage(page, "?transport=poll");
    assert.equal(result.transport, "poll");
    return result;
  },

  // Forced events: the bar takes the value of every event the server
  // pushes (at its push interval, 250 ms: how often is the bench's
  // business, not a test's, on a shared machine).
  async "modern-events"(page) {
    const result = await uploadOnModernPage(page, "?transport=events");
    assert.equal(result.transport, "events");
    const shown = new Set(result.seen);
    const pushed = result.seen.events
      .filter((a) => a.state === "uploading" && a.size > 0 && a.received > 0)
      .map((a) => Math.min(100, Math.floor((100 * a.received) / a.size)));
    console.log("percents pushed:", pushed.join(" "));
    assert.ok(new Set(pushed).size >= 3, `only ${pushed.length} events of an upload in flight`);
    const missed = pushed.filter((pct) => !shown.has(pct));
    assert.deepEqual(missed, [], "the bar never showed these events' percents");
    result.eventsPushed = pushed.length;
    return result;
  },

  // An event stream that breaks off before the upload ends (here one the
  // test serves itself: one event, then the end of the response): the page
  // goes on by polling, to the end.
  async "modern-stream-breaks"(page) {
    await answerEventStreams(page, { status: 200, contentType: "text/event-stream",
                                     body: 'event: progress\ndata: {"state":"starting"}\n\n' });
    const result = await uploadOnModernPage(page, "");
    assert.equal(result.transport, "poll");
    return result;
  },

  // Forced events, and the server refuses the stream (here the test answers
  // for it, as a server at max-streams would: 503 with JSON): no fallback,
  // the watch ends with an error of status 0.
  async "modern-events-refused"(page) {
    await answerEventStreams(page, {
      status: 503, contentType: "application/json", headers: { "Retry-After": "5" },
      body: '{"error":"too many event streams: poll, or retry later"}' });
    await throttleUploads(page, 256 * 1024);
    await page.goto(base + "/modern/?transport=events");
    await page.setInputFiles("#file", randomFile("one.bin", MiB));
    await page.click("#send");
    const view = widget(page);
    await view.waitFor("error");
    const message = await view.status.textContent();
    assert.equal(message, "The connection to the server was lost.");
    const form = page.locator("form");
    const transport = await form.getAttribute("data-transport");
    assert.equal(transport, "events");
    return { id: await form.getAttribute("data-progress-id"), message, transport };
  },

  async "modern-cancel"(page) {
    await throttleUploads(page, 512 * 1024);
    await page.goto(base + "/modern/");
    await page.setInputFiles("#file", randomFile("four.bin", 4 * MiB));
    await page.click("#send");
    await page.waitForFunction(
      () => Number(document.querySelector(".bar").getAttribute("aria-valuenow")) >= 10, null, WAIT);
    await page.click("#cancel");
    const view = widget(page);
    await view.waitFor("cancelled");
    assert.equal(await view.status.textContent(), "Upload cancelled.");
    assert.equal(await page.locator("#send").isEnabled(), true);
    return { id: await page.locator("form").getAttribute("data-progress-id") };
  },

  // The client's options in this Chromium: a page-chosen id (a UUID), a
  // CSRF header on the upload only, an Authorization header on the polls
  // only, withCredentials; an id the module would refuse is an error.  The
  // Chromium is at least the baseline doc/client.md states.
  async "client-options"(page) {
    const agent = await page.evaluate(() => navigator.userAgent);
    const major = Number(/Chrome\/(\d+)/.exec(agent)[1]);
    console.log("browser:", agent);
    assert.ok(major >= 80, `Chromium ${major} is older than the client's baseline (80)`);
    const sent = { upload: [], poll: [] };
    page.on("request", (request) => {
      const path = new URL(request.url()).pathname;
      if (path === "/upload.cgi") sent.upload.push(request.headers());
      if (path === "/progress") sent.poll.push(request.headers());
    });
    await page.goto(base + "/");
    const id = "01234567-89ab-cdef-0123-" + randomBytes(6).toString("hex");
    const out = await page.evaluate(async (id) => {
      const { uploadWithProgress } = await import("/uploadprogress.js");
      let refused = null;
      try {
        uploadWithProgress("/upload.cgi", "x", () => {}, { id: "not-an-id" });
      } catch (err) {
        refused = err.message;
      }
      const upload = uploadWithProgress("/upload.cgi", new Blob([new Uint8Array(300000)]), () => {}, {
        id, withCredentials: true,
        headers: { "X-CSRF-Token": "t0k3n" },
        progressHeaders: { Authorization: "Bearer p0ll" },
      });
      return { refused, final: await upload.finished, transport: upload.transport };
    }, id);
    assert.equal(out.refused, 'progress id "not-an-id" is not 32 hex digits or a UUID');
    assert.equal(out.final.state, "done");
    assert.equal(out.transport, "poll");
    assert.equal(sent.upload.length, 1);
    assert.equal(sent.upload[0]["x-csrf-token"], "t0k3n");
    assert.equal(sent.upload[0].authorization, undefined);
    assert.ok(sent.poll.length >= 1);
    for (const headers of sent.poll) {
      assert.equal(headers.authorization, "Bearer p0ll");
      assert.equal(headers["x-csrf-token"], undefined);
    }
    return { id, major };
  },

  async "modern-too-big"(page) {
    // Over the global limit of 100 MiB; sparse, so it costs no disk.
    await page.goto(base + "/modern/");
    await page.setInputFiles("#file", sparseFile("huge.bin", 101 * MiB));
    await page.click("#send");
    const view = widget(page);
    await view.waitFor("error");
    assert.equal(await view.status.textContent(), "File is too big: the server refused it.");
    return { id: await page.locator("form").getAttribute("data-progress-id") };
  },
};

const context = await chromium.launchPersistentContext(mkdtempSync(join(workdir, "profile-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 820, height: 460 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  const result = await scenarios[scenario](page);
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  console.log("RESULT " + JSON.stringify(result));
} catch (err) {
  console.log(err.stack ?? String(err));
  process.exitCode = 1;
} finally {
  await context.close();
}
