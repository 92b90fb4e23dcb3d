// The modern example: one page, an XMLHttpRequest upload, a cancel button.
// It follows the upload over an event stream where the server sends one;
// ?transport=poll (or =events) in the page's URL forces one way.
import { uploadWithProgress } from "/uploadprogress.js";
import { progressView } from "/progress-view.js";

const form = document.getElementById("upload");
const send = document.getElementById("send");
const cancel = document.getElementById("cancel");
const show = progressView(document.querySelector(".progress"), "Choose a file to upload.");
const transport = new URLSearchParams(location.search).get("transport") ?? "auto";
let upload = null;

// Draws a state and notes the way it came (for the browser tests).
function showState(state) {
  form.dataset.transport = upload.transport;
  show(state);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  send.disabled = true;
  cancel.disabled = false;
  upload = uploadWithProgress("/upload.cgi", new FormData(form), showState, { transport });
  form.dataset.progressId = upload.id;
  await upload.finished;
  send.disabled = false;
  cancel.disabled = true;
});

cancel.addEventListener("click", () => upload.cancel());
