// The modern example: one page, an XMLHttpRequest upload, a cancel button.
import { uploadWithProgress } from "/uploadprogress.js";
import { progressView } from "/progress-view.js";

const form = document.getElementById("upload");
const send = document.getElementById("send");
const cancel = document.getElementById("cancel");
const show = progressView(document.querySelector(".progress"), "Choose a file to upload.");
let upload = null;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  send.disabled = true;
  cancel.disabled = false;
  upload = uploadWithProgress("/upload.cgi", new FormData(form), show);
  form.dataset.progressId = upload.id;
  await upload.finished;
  send.disabled = false;
  cancel.disabled = true;
});

cancel.addEventListener("click", () => upload.cancel());
