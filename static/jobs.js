// Job page: poll the job's JSON, show its progress, and reload the page when it ends (the
// page then shows the outcome). Without JavaScript the page refreshes itself.
"use strict";
(function () {
  var box = document.getElementById("job");
  if (!box || !window.fetch) return;
  var bar = document.getElementById("job-progress");
  var text = document.getElementById("job-progress-text");
  var state = document.getElementById("job-state");
  function show(job) {
    if (job.state === "done" || job.state === "failed") {
      window.location.reload();
      return false;
    }
    if (state) state.textContent = job.state === "queued" ? "Waiting to start…" : (job.kind === "import" ? "Importing…" : "Writing the export…");
    if (bar && job.percent !== null) {
      bar.value = job.percent;
      bar.textContent = job.percent + "%";
      if (text) text.textContent = job.percent + "% of " + job.bytes_total + " bytes read";
    }
    return true;
  }
  function poll() {
    fetch(box.dataset.status, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (job === null || show(job)) window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
