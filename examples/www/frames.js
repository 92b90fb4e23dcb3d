// The classic frame pattern: the form frame posts the upload to a hidden
// iframe, and tells the progress frame (by postMessage) which id to poll
// and when the upload's response has arrived.
import { newProgressId, watchProgress, withProgressId } from "/uploadprogress.js";

// In the form frame: `form` targets a hidden iframe; `progressFrame` is the
// window of the progress frame.
export function sendFormToHiddenFrame(form, progressFrame) {
  const action = form.getAttribute("action");
  const target = document.querySelector(`iframe[name="${form.target}"]`);
  let current = null;

  form.addEventListener("submit", () => {
    current = newProgressId();
    form.action = withProgressId(action, current);
    form.dataset.progressId = current;
    progressFrame.postMessage({ watch: current }, location.origin);
  });
  // The hidden frame loads the upload's response, or the browser's error page.
  target.addEventListener("load", () => {
    if (current) progressFrame.postMessage({ ended: current }, location.origin);
    current = null;
  });
}

// In the progress frame: follows the id the form frame sends and shows its
// states with show(state); options go to watchProgress (transport, ...).
export function showProgressOfFormFrame(show, options = {}) {
  let watcher = null;
  window.addEventListener("message", (event) => {
    if (event.origin !== location.origin) return;
    if (event.data.watch) {
      watcher?.stop();
      watcher = watchProgress(event.data.watch, (state) => {
        document.body.dataset.transport = watcher.transport;   // (for the browser tests)
        show(state);
      }, options);
    } else if (event.data.ended && watcher?.id === event.data.ended) {
      // the response came and the server's table says nothing final:
      // the upload never reached the module
      watcher.ended({ id: watcher.id, state: "error", status: 0 });
    }
  });
}
