// Sends the chosen file with an X-Progress-ID and polls /progress for it.
"use strict";

function newProgressId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function show(state, text, percent) {
  document.body.className = state;
  document.getElementById("status").textContent = text;
  if (percent !== undefined) {
    document.getElementById("fill").style.width = percent + "%";
    document.querySelector(".bar").setAttribute("aria-valuenow", String(percent));
  }
}

function describe(p) {
  switch (p.state) {
    case "starting": return ["starting", "Starting…", 0];
    case "uploading": {
      const pct = p.size ? Math.floor((100 * p.received) / p.size) : 0;
      return ["uploading", `Uploading: ${p.received} of ${p.size} bytes (${pct}%)`, pct];
    }
    case "done": return ["done", `Done: ${p.received} bytes received.`, 100];
    default:
      return ["error", p.status === 413 ? "File is too big." : `Upload failed (HTTP ${p.status}).`, 100];
  }
}

async function pollUntilFinished(id) {
  for (;;) {
    const answer = await (await fetch(`/progress?X-Progress-ID=${id}`)).json();
    const [state, text, percent] = describe(answer);
    show(state, text, percent);
    if (answer.state === "done" || answer.state === "error") return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

document.getElementById("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  const id = newProgressId();
  const upload = new XMLHttpRequest();
  upload.open("POST", `/upload.cgi?X-Progress-ID=${id}`);
  // a refused upload may end the connection before the page reads the
  // answer; the progress poll still reports the 413
  upload.onerror = () => {};
  upload.send(file);
  show("starting", "Starting…", 0);
  pollUntilFinished(id).catch((err) => show("error", `Polling failed: ${err}`));
});
