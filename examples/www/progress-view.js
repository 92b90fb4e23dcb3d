// Draws the states of uploadprogress.js into a progress widget of the
// example pages: a bar (role="progressbar"), a percentage, details (bytes,
// speed, time left) and a status line (aria-live).

export function formatBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(s) {
  s = Math.ceil(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// "Processing: <stage> <percent> %": the server's work after the upload.
function describeWork(w) {
  const parts = [w.stage, w.percent !== undefined ? `${w.percent} %` : undefined];
  const told = parts.filter((p) => p !== undefined).join(" ");
  return told ? `Processing: ${told}` : "Processing…";
}

// The default message for a state; pages pass their own for some states.
export function describe(s) {
  const work = s.processing;
  if (work?.phase === "processing") return describeWork(work);
  if (work?.phase === "failed") return `Processing failed: ${work.message ?? "no reason given"}.`;
  switch (s.state) {
    case "starting": return "Waiting for the upload to start…";
    case "uploading": return "Uploading…";
    case "done": return `Upload complete: ${formatBytes(s.received ?? s.size ?? 0)} received.`
                        + (work?.message ? ` ${work.message}.` : "");
    case "cancelled": return "Upload cancelled.";
    default:
      if (s.status === 413) return "File is too big: the server refused it.";
      if (s.status === 0) return "The connection to the server was lost.";
      return `The upload failed (HTTP ${s.status}).`;
  }
}

function details(s) {
  if (s.state !== "uploading") return "";
  const parts = [s.size > 0 ? `${formatBytes(s.received)} of ${formatBytes(s.size)}`
                            : formatBytes(s.received)];
  parts.push(s.speed > 0 ? `${formatBytes(Math.round(s.speed))}/s` : "– /s");
  parts.push(s.eta !== undefined ? `${formatSeconds(s.eta)} left` : "time left –");
  return parts.join(" · ");
}

const WIDGET = `
  <div class="bar" role="progressbar" aria-label="Upload progress"
       aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="fill"></div></div>
  <p class="numbers"><span class="percent">0%</span> <span class="details"></span></p>
  <p class="status" role="status" aria-live="polite"></p>`;

// Fills the element `root` with the widget and returns show(state), which
// draws a state into it.  `messages` may map a state name (or "413") to a
// function of the state that gives the status text instead of describe().
export function progressView(root, idleText, messages = {}) {
  root.innerHTML = WIDGET;
  const bar = root.querySelector(".bar");
  const fill = root.querySelector(".fill");
  const percent = root.querySelector(".percent");
  const info = root.querySelector(".details");
  const status = root.querySelector(".status");
  root.dataset.state = "idle";
  status.textContent = idleText;

  return function show(s) {
    root.dataset.state = s.state;
    const work = s.processing;
    if (work) root.dataset.phase = work.phase;
    else delete root.dataset.phase;
    // while the server works on the upload, the bar is the work's: its
    // percent, or indeterminate (moving, no value) where none is known
    const working = work?.phase === "processing";
    const indeterminate = working && work.percent === undefined;
    bar.classList.toggle("indeterminate", indeterminate);
    if (indeterminate) bar.removeAttribute("aria-valuenow");
    const pct = working ? work.percent : s.percent ?? (s.state === "starting" ? 0 : undefined);
    if (indeterminate) {
      percent.textContent = "…";
    } else if (pct !== undefined) {
      fill.style.width = `${pct}%`;
      bar.setAttribute("aria-valuenow", String(pct));
      percent.textContent = `${pct}%`;
    } else if (s.state === "error" && s.received === undefined) {
      percent.textContent = "–";   // refused before any byte was read
    }
    info.textContent = details(s);
    const custom = (s.status === 413 && messages["413"]) || messages[s.state];
    status.textContent = custom ? custom(s) : describe(s);
  };
}
